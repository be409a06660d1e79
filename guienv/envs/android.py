"""Android through Appium's UiAutomator2 driver (``guienv/AppiumAndroid-v0``;
capabilities and gestures as documented in appium/appium-uiautomator2-driver ``README.md``).

Capabilities come from :class:`AndroidConfig` (:func:`uiautomator2_capabilities`):
``platformName: Android``, ``appium:automationName: UiAutomator2``, ``appium:udid`` (always set:
several emulators may run), ``appium:systemPort`` unique per emulator (8200 + emulator index, in
8200-8299), ``noReset``, ``newCommandTimeout``, ``disableWindowAnimation`` and
``uiautomator2ServerLaunchTimeout``.

Actions (pixel frame of the screenshot, which UiAutomator2 takes at device resolution, so driver
coordinates are device pixels): click/long-press/swipe as W3C touch pointer actions (shared
layer); ``scroll`` as ``mobile: swipeGesture`` whose ``direction`` is the **finger's**, the
opposite of AndroidControl's content direction (:func:`scroll_gesture`); keys through
``press_keycode`` (HOME 3, BACK 4, ENTER 66); ``type`` with ``send_keys`` on the focused element
(``mobile: type`` when none is focused); ``open_app`` with ``activate_app`` after an app-name ->
package lookup.

Reset: ``reset_mode="snapshot"`` loads an emulator snapshot (``adb emu avd snapshot load``),
``"clear_data"`` clears the task's apps with ``pm clear``/``am force-stop`` through
``mobile: shell`` (server flag ``--allow-insecure uiautomator2:adb_shell``), ``"none"`` only runs
the task's setup. Only :class:`~emulator.android.MaintenanceCommand` s reach ``mobile: shell``.

Success (``info["success"]``, reward 1.0) is the task's predicate over device state, checked on
``finish`` and when the episode truncates (android_world's protocol).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emulator.android import AndroidSdk, MaintenanceCommand, SubprocessRunner, snapshot_load_argv, validate_package
from emulator.page_source import hierarchy_size, parse_page_source
from guienv.actions import OPPOSITE, Action, ActionType
from guienv.envs.appium_base import AppiumEnv
from guienv.envs.appium_commands import (
    AppiumConfig,
    Command,
    LaunchApp,
    Noop,
    PressKey,
    SwipeGesture,
    TypeText,
    Viewport,
)
from guienv.io import decode_image
from tasks.android_tasks import TASKS

KEYCODES = {"home": 3, "back": 4, "enter": 66, "delete": 67}
SYSTEM_PORT_RANGE = (8200, 8299)
_UDID_EMULATOR = re.compile(r"^emulator-(\d+)$")
_UDID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")

# Common app names (AndroidControl / android_world open_app targets) -> AOSP/GMS packages.
DEFAULT_APP_PACKAGES: dict[str, str] = {
    "settings": "com.android.settings",
    "clock": "com.google.android.deskclock",
    "chrome": "com.android.chrome",
    "contacts": "com.google.android.contacts",
    "phone": "com.google.android.dialer",
    "messages": "com.google.android.apps.messaging",
    "camera": "com.android.camera2",
    "files": "com.google.android.documentsui",
    "calendar": "com.google.android.calendar",
    "gmail": "com.google.android.gm",
    "maps": "com.google.android.apps.maps",
    "photos": "com.google.android.apps.photos",
    "youtube": "com.google.android.youtube",
    "play store": "com.android.vending",
    "calculator": "com.google.android.calculator",
}


def system_port_for(udid: str) -> int:
    """8200 + emulator index for ``emulator-<5554 + 2n>``; 8200 for other devices."""
    m = _UDID_EMULATOR.match(udid)
    n = (int(m.group(1)) - 5554) // 2 if m else 0
    port = SYSTEM_PORT_RANGE[0] + max(n, 0)
    if port > SYSTEM_PORT_RANGE[1]:
        raise ValueError(f"no systemPort in {SYSTEM_PORT_RANGE} for {udid!r}")
    return port


@dataclass
class AndroidConfig(AppiumConfig):
    udid: str = "emulator-5554"
    system_port: int | None = None  # None: 8200 + emulator index
    no_reset: bool = True
    new_command_timeout_s: int = 120
    disable_window_animation: bool = True
    uiautomator2_server_launch_timeout_ms: int = 60000
    app_packages: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_APP_PACKAGES))
    tasks: tuple[str, ...] = ()  # task names from tasks.android_tasks; () = all
    reset_mode: str = "clear_data"  # "clear_data" | "snapshot" | "none"
    snapshot_name: str | None = None  # for reset_mode="snapshot"
    sdk_root: str | None = None  # for snapshot loads through adb; default ANDROID_SDK_ROOT
    settle_s: float = 0.5
    wait_s: float = 2.0
    swipe_margin: float = 0.1  # a screen-wide scroll gesture keeps off the edges by this fraction
    max_steps: int = 20

    def __post_init__(self) -> None:
        if not _UDID_RE.match(self.udid):
            raise ValueError(f"invalid udid {self.udid!r}")
        port = self.system_port if self.system_port is not None else system_port_for(self.udid)
        if not SYSTEM_PORT_RANGE[0] <= port <= SYSTEM_PORT_RANGE[1]:
            raise ValueError(f"systemPort must be in {SYSTEM_PORT_RANGE}, got {port}")
        self.system_port = port
        if self.reset_mode not in ("clear_data", "snapshot", "none"):
            raise ValueError(f"reset_mode must be clear_data, snapshot or none, got {self.reset_mode!r}")
        if self.reset_mode == "snapshot" and not self.snapshot_name:
            raise ValueError("reset_mode='snapshot' needs snapshot_name")
        # Keys are matched case- and space-insensitively (see app_package).
        self.app_packages = {" ".join(k.lower().split()): validate_package(v) for k, v in self.app_packages.items()}


def uiautomator2_capabilities(cfg: AndroidConfig) -> dict[str, Any]:
    """W3C capabilities of a UiAutomator2 session for ``cfg``."""
    return {
        "platformName": "Android",
        "appium:automationName": "UiAutomator2",
        "appium:udid": cfg.udid,
        "appium:systemPort": int(cfg.system_port),
        "appium:noReset": bool(cfg.no_reset),
        "appium:newCommandTimeout": int(cfg.new_command_timeout_s),
        "appium:disableWindowAnimation": bool(cfg.disable_window_animation),
        "appium:uiautomator2ServerLaunchTimeout": int(cfg.uiautomator2_server_launch_timeout_ms),
    }


def app_package(name: str, packages: dict[str, str]) -> str | None:
    """Package for an ``open_app`` name: the mapped app, or a literal valid package name."""
    key = " ".join(name.strip().lower().split())
    if key in packages:
        return packages[key]
    try:
        return validate_package(name.strip())
    except ValueError:
        return None


def scroll_gesture(action: Action, vp: Viewport, fraction: float = 0.5, margin: float = 0.1) -> SwipeGesture:
    """``mobile: swipeGesture`` for a ``scroll`` (AndroidControl content direction; pixel frame).

    The gesture's direction is the finger's: scrolling content *down* swipes the finger *up*.
    The area is the screen inset by ``margin`` or, with a point, a region centred on it.
    """
    if action.type is not ActionType.SCROLL:
        raise ValueError(f"scroll_gesture needs a scroll action, got {action.type.value}")
    W, H = vp.width / vp.scale, vp.height / vp.scale  # driver units
    if action.point is not None:
        cx, cy = vp.to_driver(*action.point)
        w, h = W * (1 - 2 * margin), H / 2
        left, top = min(max(cx - w / 2, 0.0), W - w), min(max(cy - h / 2, 0.0), H - h)
    else:
        left, top, w, h = W * margin, H * margin, W * (1 - 2 * margin), H * (1 - 2 * margin)
    return SwipeGesture(
        left=int(round(left)), top=int(round(top)), width=int(round(w)), height=int(round(h)),
        direction=OPPOSITE[action.direction], percent=float(fraction),
    )


# -- device state through the Appium session --------------------------------------------------
class AppiumDeviceState:
    """:class:`tasks.android_tasks.DeviceState` over a UiAutomator2 session."""

    def __init__(self, driver: Any):
        self.driver = driver

    def shell(self, cmd: MaintenanceCommand) -> str:
        if not isinstance(cmd, MaintenanceCommand):  # the only door to `mobile: shell`
            raise TypeError("shell() takes a MaintenanceCommand")
        return str(self.driver.execute_script("mobile: shell", cmd.mobile_shell()) or "")

    def current_package(self) -> str | None:
        return self.driver.current_package

    def page_source(self) -> str | None:
        return self.driver.page_source


# -- the env -----------------------------------------------------------------------------------
class AndroidEnv(AppiumEnv):
    """``guienv/AppiumAndroid-v0``: android_world-style tasks on an emulator through UiAutomator2."""

    def __init__(self, render_mode: str | None = None, config: AndroidConfig | None = None, **kwargs: Any):
        if config is None:
            config = AndroidConfig.from_dict(kwargs, "AndroidEnv keyword options")
        elif kwargs:
            raise ValueError("pass either config= or keyword options, not both")
        names = config.tasks or tuple(TASKS)
        unknown = [n for n in names if n not in TASKS]
        if unknown:
            raise ValueError(f"unknown Android tasks {unknown}; known: {sorted(TASKS)}")
        self.task_names = tuple(names)
        self.task = TASKS[self.task_names[0]]
        super().__init__(config, render_mode)
        self.device = None

    def capabilities(self) -> dict[str, Any]:
        return uiautomator2_capabilities(self.config)

    def on_session_start(self) -> None:
        self.device = AppiumDeviceState(self.driver)

    # -- episodes ------------------------------------------------------------------------------
    def begin_episode(self, options: dict[str, Any]) -> str:
        if "task" in options:
            name = options["task"]
        elif "index" in options:
            name = self.task_names[int(options["index"]) % len(self.task_names)]
        else:
            name = self.task_names[int(self.np_random.integers(len(self.task_names)))]
        if name not in TASKS:
            raise ValueError(f"unknown Android task {name!r}")
        self.task = TASKS[name]
        if self.config.reset_mode == "snapshot":
            self._load_snapshot()
        # Snapshot: the device state is restored, only the task's setup runs; clear_data also
        # wipes the task's apps (`pm clear`); none only stops them.
        self.task.initialize(self.device, clear_data=self.config.reset_mode == "clear_data")
        self.driver.press_keycode(KEYCODES["home"])
        return self.task.goal

    def _load_snapshot(self) -> None:
        sdk = AndroidSdk(self.config.sdk_root) if self.config.sdk_root else AndroidSdk.from_env()
        argv = snapshot_load_argv(sdk, self.config.udid, self.config.snapshot_name)
        SubprocessRunner().run(argv, timeout=300).check()

    def judge_step(self, action: Action) -> tuple[float, bool, dict[str, Any]]:
        info: dict[str, Any] = {"task": self.task.name}
        last = action.type is ActionType.FINISH or self._steps >= min(self.config.max_steps, self.task.max_steps)
        if not last:
            return 0.0, False, info
        score = self.task.is_successful(self.device)
        info["success"] = score >= 1.0
        return float(score), action.type is ActionType.FINISH, info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        if not terminated and self._steps >= self.task.max_steps:
            truncated = True
        return obs, reward, terminated, truncated, info

    # -- observation ---------------------------------------------------------------------------
    def capture(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        source = self.driver.page_source
        img = decode_image(self.driver.get_screenshot_as_png(), "<appium screenshot>")
        size = hierarchy_size(source)
        # UiAutomator2 screenshots are at device resolution; if not, scale by the hierarchy width.
        scale = img.shape[1] / size[0] if size and size[0] > 0 else 1.0
        self.viewport = Viewport(img.shape[1], img.shape[0], scale=scale)
        elements = []
        for e in parse_page_source(source):
            e["box"] = list(self.viewport.box_to_pixels(e["box"]))
            if e["box"][2] > e["box"][0] and e["box"][3] > e["box"][1]:
                elements.append(e)
        return img, elements

    # -- actions -------------------------------------------------------------------------------
    def plan_platform(self, action: Action, vp: Viewport) -> list[Command]:
        if action.type is ActionType.SCROLL:
            return [scroll_gesture(action, vp, self.config.scroll_fraction, self.config.swipe_margin)]
        if action.type is ActionType.OPEN_APP:
            pkg = app_package(action.text, self.config.app_packages)
            if pkg is None:
                return [Noop(f"unknown app {action.text[:80]!r}")]
            return [LaunchApp(pkg)]
        return super().plan_platform(action, vp)

    def execute_platform(self, cmd: Command) -> None:
        d = self.driver
        if isinstance(cmd, PressKey):
            d.press_keycode(KEYCODES[cmd.key])
        elif isinstance(cmd, LaunchApp):
            d.activate_app(validate_package(cmd.app_id))
        elif isinstance(cmd, SwipeGesture):
            d.execute_script("mobile: swipeGesture", {
                "left": cmd.left, "top": cmd.top, "width": cmd.width, "height": cmd.height,
                "direction": cmd.direction, "percent": cmd.percent,
            })
        elif isinstance(cmd, TypeText):
            self._type(cmd.text)
        else:
            super().execute_platform(cmd)

    def _type(self, text: str) -> None:
        from appium.webdriver.common.appiumby import AppiumBy
        from selenium.common.exceptions import NoSuchElementException

        if not text:
            return
        try:
            el = self.driver.find_element(AppiumBy.ANDROID_UIAUTOMATOR, "new UiSelector().focused(true)")
        except NoSuchElementException:
            self.driver.execute_script("mobile: type", {"text": text})
            return
        el.send_keys(text)
