"""Android emulator / AVD lifecycle, as android_world and AndroidEnv run it
(google-research/android_world ``README.md``; Android
emulator command-line docs, https://developer.android.com/studio/run/emulator-commandline).

Every command is an argv list built by a pure function (``create_avd_argv``, ``boot_argv``,
``boot_completed_argv``, ...), and runs through one :class:`Runner`: the real
:class:`SubprocessRunner` calls ``subprocess`` without a shell, :class:`DryRunRunner` records the
argv lists (``--dry-run``; the tests check exact construction with it). Names that reach an argv
(AVD, snapshot, package, setting keys) are validated against strict patterns first, so neither an
option (``-foo``) nor shell syntax can be smuggled in.

Ports: emulator ``n`` (0-based) listens on console port ``5554 + 2n``, adb on console + 1, and is
``emulator-<console>`` to adb. Boot: ``emulator -avd NAME -no-window -no-audio -no-boot-anim
-gpu swiftshader_indirect -ports C,C+1 [-no-snapshot | -snapshot NAME] -grpc P``; ready when
``adb -s SERIAL shell getprop sys.boot_completed`` prints ``1`` (polled, 300 s timeout).

:class:`MaintenanceCommand` is the closed set of device shell commands guienv ever sends (to adb
here, or through Appium's ``mobile: shell`` in :mod:`guienv.envs.android`): ``pm clear``,
``am force-stop``, ``settings get|put``, ``svc wifi|data``, ``cmd connectivity airplane-mode`` and
``dumpsys window``; each argument is a fixed token or a validated name, never model text.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from emulator.appium_server import stop_process_group

# -- validation --------------------------------------------------------------------------------
# Java package names: dot-separated identifiers, at least two segments, each starting with a letter.
PACKAGE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+$")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")  # AVD and snapshot names
SETTING_KEY_RE = re.compile(r"^[a-z][a-z0-9_.]{0,99}$")
SETTING_VALUE_RE = re.compile(r"^-?[0-9A-Za-z._:]{1,100}$")
SYSTEM_IMAGE_RE = re.compile(r"^system-images;android-[0-9]+(-ext[0-9]+)?;[a-z0-9_]+;(x86_64|x86|arm64-v8a|armeabi-v7a)$")
DEVICE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_ .-]{0,63}$")
SETTING_NAMESPACES = ("system", "secure", "global")
CONSOLE_BASE = 5554
MAX_EMULATORS = 64  # console ports 5554..5680 (the emulator's own limit is 5554-5682)


class EmulatorError(RuntimeError):
    """An emulator/adb command failed or the device did not come up in time."""


def validate_package(pkg: str) -> str:
    """``pkg`` if it is a plain Android package name, else ``ValueError`` (injection guard)."""
    if not isinstance(pkg, str) or not PACKAGE_RE.match(pkg) or len(pkg) > 255:
        raise ValueError(f"not a valid Android package name: {pkg!r}")
    return pkg


def validate_name(name: str, what: str = "name") -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValueError(f"invalid {what} {name!r}: use letters, digits, '.', '_' or '-' (not leading)")
    return name


# -- maintenance shell commands ---------------------------------------------------------------
@dataclass(frozen=True)
class MaintenanceCommand:
    """A device shell command from a closed, validated set (build with the constructors)."""

    command: str
    args: tuple[str, ...]

    def mobile_shell(self) -> dict:
        """Arguments of Appium UiAutomator2's ``mobile: shell`` (needs the server flag
        ``--allow-insecure uiautomator2:adb_shell``)."""
        return {"command": self.command, "args": list(self.args)}

    def adb_argv(self, adb: str, serial: str) -> list[str]:
        return [adb, "-s", serial, "shell", self.command, *self.args]

    # constructors: the only ways to make one
    @classmethod
    def pm_clear(cls, pkg: str) -> MaintenanceCommand:
        return cls("pm", ("clear", validate_package(pkg)))

    @classmethod
    def force_stop(cls, pkg: str) -> MaintenanceCommand:
        return cls("am", ("force-stop", validate_package(pkg)))

    @classmethod
    def settings_get(cls, namespace: str, key: str) -> MaintenanceCommand:
        return cls("settings", ("get", _namespace(namespace), _key(key)))

    @classmethod
    def settings_put(cls, namespace: str, key: str, value: str | int) -> MaintenanceCommand:
        value = str(value)
        if not SETTING_VALUE_RE.match(value):
            raise ValueError(f"invalid setting value {value!r}")
        return cls("settings", ("put", _namespace(namespace), _key(key), value))

    @classmethod
    def svc(cls, service: str, state: bool) -> MaintenanceCommand:
        if service not in ("wifi", "data"):
            raise ValueError(f"svc service must be wifi or data, got {service!r}")
        return cls("svc", (service, "enable" if state else "disable"))

    @classmethod
    def airplane_mode(cls, on: bool) -> MaintenanceCommand:
        return cls("cmd", ("connectivity", "airplane-mode", "enable" if on else "disable"))

    @classmethod
    def dumpsys_window(cls) -> MaintenanceCommand:
        return cls("dumpsys", ("window", "windows"))


def _namespace(ns: str) -> str:
    if ns not in SETTING_NAMESPACES:
        raise ValueError(f"settings namespace must be one of {SETTING_NAMESPACES}, got {ns!r}")
    return ns


def _key(key: str) -> str:
    if not isinstance(key, str) or not SETTING_KEY_RE.match(key):
        raise ValueError(f"invalid settings key {key!r}")
    return key


_FOCUS_RE = re.compile(r"mCurrentFocus=Window\{[^}]*? ([A-Za-z][\w.]*)/")


def focused_package(dumpsys_window: str) -> str | None:
    """The package of ``mCurrentFocus`` in ``dumpsys window windows`` output."""
    m = _FOCUS_RE.search(dumpsys_window)
    return m.group(1) if m else None


# -- runners -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str = ""
    stderr: str = ""

    def check(self) -> CommandResult:
        if self.returncode != 0:
            raise EmulatorError(
                f"command {list(self.argv)} exited with {self.returncode}: {(self.stderr or self.stdout).strip()[:500]}"
            )
        return self


class Runner(Protocol):
    def run(self, argv: Sequence[str], *, timeout: float, input: str | None = None) -> CommandResult: ...

    def spawn(self, argv: Sequence[str], *, log_path: str | Path) -> int:
        """Start a long-running process (the emulator) in its own process group; return its pid."""
        ...


class SubprocessRunner:
    """Runs argv lists with ``subprocess`` (never ``shell=True``)."""

    def __init__(self) -> None:
        self.children: dict[int, subprocess.Popen] = {}

    def run(self, argv: Sequence[str], *, timeout: float, input: str | None = None) -> CommandResult:
        argv = [str(a) for a in argv]
        try:
            p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout, shell=False)
        except FileNotFoundError as exc:
            raise EmulatorError(f"{argv[0]} not found: install the Android SDK tools or set ANDROID_SDK_ROOT") from exc
        except subprocess.TimeoutExpired as exc:
            raise EmulatorError(f"command {argv} timed out after {timeout:g}s") from exc
        return CommandResult(tuple(argv), p.returncode, p.stdout, p.stderr)

    def spawn(self, argv: Sequence[str], *, log_path: str | Path) -> int:
        argv = [str(a) for a in argv]
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            try:
                p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, shell=False)
            except FileNotFoundError as exc:
                raise EmulatorError(f"{argv[0]} not found: install the Android SDK emulator") from exc
        self.children[p.pid] = p
        return p.pid


class DryRunRunner:
    """Records argv lists instead of running them (``--dry-run``); answers with canned output.

    ``responses`` maps an argv tuple to the stdout to return (default: empty, exit 0)."""

    def __init__(self, responses: dict[tuple[str, ...], str] | None = None):
        self.calls: list[list[str]] = []
        self.spawned: list[list[str]] = []
        self.responses = dict(responses or {})

    def run(self, argv: Sequence[str], *, timeout: float, input: str | None = None) -> CommandResult:
        argv = [str(a) for a in argv]
        self.calls.append(argv)
        return CommandResult(tuple(argv), 0, self.responses.get(tuple(argv), ""))

    def spawn(self, argv: Sequence[str], *, log_path: str | Path) -> int:
        self.spawned.append([str(a) for a in argv])
        return -1


# -- SDK and emulator configuration -------------------------------------------------------------
@dataclass(frozen=True)
class AndroidSdk:
    """Where the SDK tools are: under ``sdk_root`` (ANDROID_SDK_ROOT / ANDROID_HOME) or on PATH."""

    sdk_root: str | None = None

    @classmethod
    def from_env(cls) -> AndroidSdk:
        return cls(os.environ.get("ANDROID_SDK_ROOT") or os.environ.get("ANDROID_HOME"))

    def _tool(self, rel: str, name: str) -> str:
        if self.sdk_root:
            return str(Path(self.sdk_root) / rel)
        return shutil.which(name) or name

    @property
    def adb(self) -> str:
        return self._tool("platform-tools/adb", "adb")

    @property
    def emulator(self) -> str:
        return self._tool("emulator/emulator", "emulator")

    @property
    def avdmanager(self) -> str:
        return self._tool("cmdline-tools/latest/bin/avdmanager", "avdmanager")


@dataclass(frozen=True)
class EmulatorConfig:
    avd_name: str = "guienv_pixel_6_api33"
    index: int = 0  # emulator n: console port 5554 + 2n
    system_image: str = "system-images;android-33;google_apis;x86_64"
    device: str = "pixel_6"
    gpu: str = "swiftshader_indirect"
    snapshot: str | None = None  # boot from this snapshot; None boots cold (-no-snapshot)
    grpc_port: int | None = None  # default 8554 + index
    boot_timeout_s: float = 300.0
    poll_interval_s: float = 2.0
    command_timeout_s: float = 60.0
    memory_mb: int | None = None
    log_dir: str = "runs/emulator"

    def __post_init__(self) -> None:
        validate_name(self.avd_name, "AVD name")
        if self.snapshot is not None:
            validate_name(self.snapshot, "snapshot name")
        if not SYSTEM_IMAGE_RE.match(self.system_image):
            raise ValueError(f"invalid system image {self.system_image!r} (e.g. system-images;android-33;google_apis;x86_64)")
        if not DEVICE_RE.match(self.device):
            raise ValueError(f"invalid device profile {self.device!r}")
        if self.gpu not in ("swiftshader_indirect", "swangle_indirect", "host", "guest", "auto", "off"):
            raise ValueError(f"unknown -gpu mode {self.gpu!r}")
        if not (isinstance(self.index, int) and 0 <= self.index < MAX_EMULATORS):
            raise ValueError(f"emulator index must be in 0..{MAX_EMULATORS - 1}, got {self.index!r}")

    @property
    def console_port(self) -> int:
        return CONSOLE_BASE + 2 * self.index

    @property
    def adb_port(self) -> int:
        return self.console_port + 1

    @property
    def serial(self) -> str:
        return f"emulator-{self.console_port}"

    @property
    def grpc(self) -> int:
        return self.grpc_port if self.grpc_port is not None else 8554 + self.index


# -- argv builders (pure) ------------------------------------------------------------------------
def create_avd_argv(sdk: AndroidSdk, cfg: EmulatorConfig) -> list[str]:
    return [sdk.avdmanager, "create", "avd", "--name", cfg.avd_name, "--package", cfg.system_image,
            "--device", cfg.device, "--force"]


def boot_argv(sdk: AndroidSdk, cfg: EmulatorConfig) -> list[str]:
    c = cfg.console_port
    argv = [sdk.emulator, "-avd", cfg.avd_name, "-no-window", "-no-audio", "-no-boot-anim",
            "-gpu", cfg.gpu, "-ports", f"{c},{c + 1}"]
    argv += ["-snapshot", cfg.snapshot] if cfg.snapshot else ["-no-snapshot"]
    argv += ["-grpc", str(cfg.grpc)]
    if cfg.memory_mb:
        argv += ["-memory", str(int(cfg.memory_mb))]
    return argv


def boot_completed_argv(sdk: AndroidSdk, serial: str) -> list[str]:
    return [sdk.adb, "-s", serial, "shell", "getprop", "sys.boot_completed"]


ANIMATION_SETTINGS = ("window_animation_scale", "transition_animation_scale", "animator_duration_scale")


def disable_animations_argvs(sdk: AndroidSdk, serial: str) -> list[list[str]]:
    return [MaintenanceCommand.settings_put("global", k, 0).adb_argv(sdk.adb, serial) for k in ANIMATION_SETTINGS]


def snapshot_save_argv(sdk: AndroidSdk, serial: str, name: str) -> list[str]:
    return [sdk.adb, "-s", serial, "emu", "avd", "snapshot", "save", validate_name(name, "snapshot name")]


def snapshot_load_argv(sdk: AndroidSdk, serial: str, name: str) -> list[str]:
    return [sdk.adb, "-s", serial, "emu", "avd", "snapshot", "load", validate_name(name, "snapshot name")]


def kill_argv(sdk: AndroidSdk, serial: str) -> list[str]:
    return [sdk.adb, "-s", serial, "emu", "kill"]


def get_state_argv(sdk: AndroidSdk, serial: str) -> list[str]:
    return [sdk.adb, "-s", serial, "get-state"]


@dataclass(frozen=True)
class Health:
    serial: str
    state: str  # adb get-state: "device" when usable
    boot_completed: bool

    @property
    def ok(self) -> bool:
        return self.state == "device" and self.boot_completed


# -- lifecycle -----------------------------------------------------------------------------------
@dataclass
class Emulator:
    """One emulator instance: create its AVD, boot it headless, snapshot, check, tear down."""

    config: EmulatorConfig = field(default_factory=EmulatorConfig)
    sdk: AndroidSdk = field(default_factory=AndroidSdk.from_env)
    runner: Runner = field(default_factory=SubprocessRunner)
    pid: int | None = None

    @property
    def serial(self) -> str:
        return self.config.serial

    def _run(self, argv: list[str], *, timeout: float | None = None, input: str | None = None) -> CommandResult:
        return self.runner.run(argv, timeout=timeout or self.config.command_timeout_s, input=input).check()

    def create_avd(self) -> None:
        # avdmanager asks "Do you wish to create a custom hardware profile? [no]".
        self._run(create_avd_argv(self.sdk, self.config), input="no\n", timeout=300)

    def boot(self, wait: bool = True) -> None:
        log = Path(self.config.log_dir) / f"{self.config.avd_name}-{self.config.console_port}.log"
        self.pid = self.runner.spawn(boot_argv(self.sdk, self.config), log_path=log)
        if wait:
            self.wait_for_boot()
            self.disable_animations()

    def boot_completed(self) -> bool:
        r = self.runner.run(boot_completed_argv(self.sdk, self.serial), timeout=self.config.command_timeout_s)
        return r.returncode == 0 and r.stdout.strip() == "1"

    def wait_for_boot(self, timeout_s: float | None = None) -> float:
        """Poll ``sys.boot_completed`` until it is 1; returns the seconds waited."""
        timeout_s = self.config.boot_timeout_s if timeout_s is None else timeout_s
        t0 = time.monotonic()
        while True:
            try:
                if self.boot_completed():
                    return time.monotonic() - t0
            except EmulatorError:  # adb not ready yet ("device offline", a timeout)
                pass
            if time.monotonic() - t0 >= timeout_s:
                raise EmulatorError(f"{self.serial} did not finish booting within {timeout_s:g}s")
            time.sleep(self.config.poll_interval_s)

    def disable_animations(self) -> None:
        for argv in disable_animations_argvs(self.sdk, self.serial):
            self._run(argv)

    def snapshot_save(self, name: str) -> None:
        self._run(snapshot_save_argv(self.sdk, self.serial, name), timeout=300)

    def snapshot_load(self, name: str) -> None:
        self._run(snapshot_load_argv(self.sdk, self.serial, name), timeout=300)

    def shell(self, cmd: MaintenanceCommand) -> str:
        return self._run(cmd.adb_argv(self.sdk.adb, self.serial)).stdout

    def health(self) -> Health:
        r = self.runner.run(get_state_argv(self.sdk, self.serial), timeout=self.config.command_timeout_s)
        state = r.stdout.strip() if r.returncode == 0 else "absent"
        booted = False
        if state == "device":
            try:
                booted = self.boot_completed()
            except EmulatorError:
                booted = False
        return Health(self.serial, state, booted)

    def stop(self) -> None:
        """``adb emu kill``; the process group is killed too if this runner spawned it."""
        self.runner.run(kill_argv(self.sdk, self.serial), timeout=self.config.command_timeout_s)
        if isinstance(self.runner, SubprocessRunner) and self.pid in self.runner.children:
            stop_process_group(self.pid, timeout_s=30)
            self.runner.children.pop(self.pid, None)
        self.pid = None

    def __enter__(self) -> Emulator:
        self.boot()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class AdbDeviceState:
    """Device state read through adb (the :class:`tasks.android_tasks.DeviceState` protocol)."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator

    def shell(self, cmd: MaintenanceCommand) -> str:
        return self.emulator.shell(cmd)

    def current_package(self) -> str | None:
        return focused_package(self.shell(MaintenanceCommand.dumpsys_window()))

    def page_source(self) -> str | None:
        return None  # needs UiAutomator; use the Appium env's device state


# -- `guienv emulator create|boot|health|snapshot|stop` ----------------------------------------
def _cmd_emulator(args) -> int:
    import json

    cfg = EmulatorConfig(avd_name=args.avd, index=args.index,
                         **({"system_image": args.image} if getattr(args, "image", None) else {}))
    runner: Runner = DryRunRunner({}) if args.dry_run else SubprocessRunner()
    emu = Emulator(cfg, AndroidSdk(args.sdk_root) if args.sdk_root else AndroidSdk.from_env(), runner)
    op = args.emulator_command
    if op == "create":
        emu.create_avd()
    elif op == "boot":
        emu.boot(wait=not args.dry_run)
    elif op == "health":
        h = emu.health()
        print(json.dumps({"serial": h.serial, "state": h.state, "boot_completed": h.boot_completed, "ok": h.ok}))
        if not args.dry_run:
            return 0 if h.ok else 1
    elif op == "snapshot-save":
        emu.snapshot_save(args.name)
    elif op == "snapshot-load":
        emu.snapshot_load(args.name)
    elif op == "stop":
        emu.stop()
    if args.dry_run:
        for argv in [*runner.spawned, *runner.calls]:
            print(json.dumps(argv))
    return 0


def add_emulator_args(subparsers):
    """Add ``emulator create|boot|health|snapshot-save|snapshot-load|stop`` to ``guienv``."""
    p = subparsers.add_parser("emulator", help="Android emulator lifecycle (needs the Android SDK)")
    sub = p.add_subparsers(dest="emulator_command", required=True)
    for name in ("create", "boot", "health", "snapshot-save", "snapshot-load", "stop"):
        s = sub.add_parser(name)
        s.add_argument("--avd", default=EmulatorConfig.avd_name)
        s.add_argument("--index", type=int, default=0, help="emulator n: console port 5554 + 2n")
        s.add_argument("--sdk-root", help="default: ANDROID_SDK_ROOT / ANDROID_HOME, else PATH")
        s.add_argument("--dry-run", action="store_true", help="print the argv lists instead of running them")
        if name == "create":
            s.add_argument("--image", help=f"system image (default {EmulatorConfig.system_image})")
        if name.startswith("snapshot"):
            s.add_argument("name")
        s.set_defaults(func=_cmd_emulator)
    return p
