"""Online Android tasks for ``guienv/AppiumAndroid-v0``, in the style of android_world.

As in android_world (Rawles et al., 2024, "AndroidWorld: A Dynamic Benchmarking Environment for
Autonomous Agents", arXiv 2405.14573; google-research/android_world,
``android_world/task_evals/task_eval.py``), a task has a goal, an ``initialize`` step that puts
the device into a known start state, and a success check that reads **device state** (settings
values, the foreground app, the UI hierarchy), never the agent's transcript. Success is 1.0 when
every predicate holds, else 0.0.

Device state is read through a :class:`DeviceState` (the Appium env's ``mobile: shell`` with
fixed :class:`~emulator.android.MaintenanceCommand` s, or adb through
:class:`emulator.android.AdbDeviceState`); task text never reaches a shell.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Union

from emulator.android import MaintenanceCommand, validate_package
from emulator.page_source import parse_page_source


class DeviceState(Protocol):
    def shell(self, cmd: MaintenanceCommand) -> str: ...

    def current_package(self) -> str | None: ...

    def page_source(self) -> str | None: ...


@dataclass(frozen=True)
class SettingEquals:
    """``settings get <namespace> <key>`` prints ``value``."""

    namespace: str
    key: str
    value: str

    def __post_init__(self) -> None:
        MaintenanceCommand.settings_get(self.namespace, self.key)  # validates

    def __call__(self, device: DeviceState) -> bool:
        out = device.shell(MaintenanceCommand.settings_get(self.namespace, self.key))
        return out.strip() == self.value


@dataclass(frozen=True)
class ForegroundIs:
    """The focused window belongs to ``package``."""

    package: str

    def __post_init__(self) -> None:
        validate_package(self.package)

    def __call__(self, device: DeviceState) -> bool:
        return device.current_package() == self.package


@dataclass(frozen=True)
class ScreenShows:
    """An element of the UI hierarchy has this text or content description (exact match)."""

    text: str

    def __call__(self, device: DeviceState) -> bool:
        src = device.page_source()
        if not src:
            return False
        return any(self.text in (e["text"], e["content_description"]) for e in parse_page_source(src))


Predicate = Union[SettingEquals, ForegroundIs, ScreenShows]


@dataclass(frozen=True)
class AndroidTask:
    name: str
    goal: str
    success: tuple[Predicate, ...]
    setup: tuple[MaintenanceCommand, ...] = ()  # fixed commands that set the start state
    apps: tuple[str, ...] = ()  # packages force-stopped (and cleared with clear_data) first
    clear_data: bool = False
    max_steps: int = 20

    def __post_init__(self) -> None:
        for pkg in self.apps:
            validate_package(pkg)
        if not self.success:
            raise ValueError(f"task {self.name!r} needs at least one success predicate")

    def initialize(self, device: DeviceState, clear_data: bool | None = None) -> None:
        """Stop (and with ``clear_data``, default the task's own flag, clear) the task's apps,
        then run its setup commands."""
        clear = self.clear_data if clear_data is None else clear_data
        for pkg in self.apps:
            device.shell(MaintenanceCommand.force_stop(pkg))
            if clear:
                device.shell(MaintenanceCommand.pm_clear(pkg))
        for cmd in self.setup:
            device.shell(cmd)

    def is_successful(self, device: DeviceState) -> float:
        return 1.0 if all(p(device) for p in self.success) else 0.0


SETTINGS = "com.android.settings"
CLOCK = "com.google.android.deskclock"
M = MaintenanceCommand

TASKS: dict[str, AndroidTask] = {
    t.name: t
    for t in (
        AndroidTask(
            "open_settings",
            "Open the Settings app.",
            success=(ForegroundIs(SETTINGS),),
            apps=(SETTINGS,),
            max_steps=5,
        ),
        AndroidTask(
            "open_clock",
            "Open the Clock app.",
            success=(ForegroundIs(CLOCK),),
            apps=(CLOCK,),
            max_steps=5,
        ),
        AndroidTask(
            "wifi_off",
            "Turn off Wi-Fi.",
            success=(SettingEquals("global", "wifi_on", "0"),),
            setup=(M.svc("wifi", True),),
            apps=(SETTINGS,),
        ),
        AndroidTask(
            "airplane_mode_on",
            "Turn on airplane mode.",
            success=(SettingEquals("global", "airplane_mode_on", "1"),),
            setup=(M.airplane_mode(False),),
            apps=(SETTINGS,),
        ),
        AndroidTask(
            "dark_theme_on",
            "Turn on the dark theme.",
            success=(SettingEquals("secure", "ui_night_mode", "2"),),
            setup=(M.settings_put("secure", "ui_night_mode", 1),),
            apps=(SETTINGS,),
        ),
        AndroidTask(
            "screen_timeout_10min",
            "Set the screen timeout to 10 minutes.",
            success=(SettingEquals("system", "screen_off_timeout", "600000"),),
            setup=(M.settings_put("system", "screen_off_timeout", 30000),),
            apps=(SETTINGS,),
        ),
    )
}

