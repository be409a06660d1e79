"""A local Appium server run from an ``APPIUM_HOME`` filled by ``emulator/install.sh`` (from
``emulator/package.json``).

Where the server is looked for (:func:`default_home`): ``$GUIENV_APPIUM_HOME``, else Appium's own
``$APPIUM_HOME``, else ``.appium/`` in the source checkout when it exists (an editable install), else
the per-user ``$XDG_DATA_HOME/guienv/appium`` (``~/.local/share/guienv/appium``).

The server binds to the loopback interface only (``extra_args`` may not rebind it), on a free port
unless one is given, logs to a file, and runs in its own process group. Stopping it stops the whole
group, also when the server itself already died (a crash or ``kill -9`` leaves its chromedriver and
Chromium processes behind, still in the group: they are reaped then). A detached server's state file
records the process's start time and command line, and ``stop`` signals only a process that still
matches them, never one that reused the pid. Use it as a context manager::

    with AppiumServer(AppiumServerConfig()) as server:
        env = gym.make("guienv/MiniWoB-v0", server_url=server.url)

or from the command line (``guienv appium start|stop|status``), which keeps the server's pid,
port and log path in a state file so ``stop``/``status`` find it from another process.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
HOME_ENV = ("GUIENV_APPIUM_HOME", "APPIUM_HOME")
# Flags that would move the server off loopback or onto another port/config than the one given.
_BINDING_FLAGS = ("--address", "-a", "--port", "-p", "--config", "--base-path", "-pa")
LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Appium 3 accepts only driver-scoped insecure features; this one enables `mobile: shell`.
ADB_SHELL_FEATURE = "uiautomator2:adb_shell"


class AppiumServerError(RuntimeError):
    """The Appium server could not be started, or is not installed."""


def user_home() -> Path:
    """The per-user Appium home: ``$XDG_DATA_HOME/guienv/appium`` (``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "guienv" / "appium"


def default_home() -> Path:
    """Where ``emulator/install.sh`` put Appium (see the module docstring for the order)."""
    for var in HOME_ENV:
        if os.environ.get(var):
            return Path(os.environ[var]).expanduser()
    checkout = REPO / ".appium"
    if (REPO / "emulator" / "install.sh").exists() and checkout.exists():
        return checkout
    return user_home()


DEFAULT_HOME = default_home()


def _is_binding_flag(arg: str) -> bool:
    return any(arg == f or arg.startswith(f + "=") for f in _BINDING_FLAGS)


@dataclass
class AppiumServerConfig:
    appium_home: str = field(default_factory=lambda: str(default_home()))
    host: str = "127.0.0.1"
    port: int | None = None  # None: pick a free port
    log_path: str | None = None  # None: <appium_home>/logs/appium-<port>.log
    allow_insecure: tuple[str, ...] = ()  # e.g. (ADB_SHELL_FEATURE,) for Android maintenance
    startup_timeout_s: float = 60.0
    stop_timeout_s: float = 10.0
    log_level: str = "info"
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.host not in LOOPBACK:
            raise ValueError(f"the Appium server binds to loopback only (127.0.0.1/::1), got host {self.host!r}")
        if self.port is not None and not (1 <= int(self.port) <= 65535):
            raise ValueError(f"port must be in 1..65535, got {self.port}")
        for feat in self.allow_insecure:
            if ":" not in feat:
                raise ValueError(f"Appium 3 needs driver-scoped insecure features (driver:feature), got {feat!r}")
        bad = [a for a in self.extra_args if _is_binding_flag(str(a))]
        if bad:
            raise ValueError(f"extra_args may not set the address, port, base path or config file ({bad[0]!r}): "
                             "the server binds to loopback on the configured port only; use host=/port=")


def appium_binary(home: str | Path) -> Path:
    return Path(home) / "node_modules" / ".bin" / "appium"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the server may still lose a race for it: start retries)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def server_argv(cfg: AppiumServerConfig, port: int, log_path: str | Path) -> list[str]:
    """The server's argv (no shell): ``appium --address 127.0.0.1 --port P --log FILE ...``."""
    argv = [
        str(appium_binary(cfg.appium_home)),
        "--address", "127.0.0.1" if cfg.host == "localhost" else cfg.host,
        "--port", str(int(port)),
        "--log", str(log_path),
        "--log-no-colors",
        "--log-timestamp",
        "--log-level", f"{cfg.log_level}:{cfg.log_level}",
    ]
    if cfg.allow_insecure:
        argv += ["--allow-insecure", ",".join(cfg.allow_insecure)]
    return argv + list(cfg.extra_args)


def server_env(cfg: AppiumServerConfig) -> dict[str, str]:
    env = dict(os.environ)
    env["APPIUM_HOME"] = str(Path(cfg.appium_home).resolve())
    # A loopback server must never be reached through a proxy from the environment.
    env["NO_PROXY"] = env["no_proxy"] = ",".join(filter(None, [env.get("NO_PROXY"), "127.0.0.1,localhost,::1"]))
    return env


def query_status(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """The server's ``/status`` value, or None if it does not answer."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url.rstrip("/") + "/status", timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8")).get("value")
    except (urllib.error.URLError, OSError, ValueError):
        return None


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def process_identity(pid: int) -> dict[str, Any] | None:
    """``{"create_time", "cmdline"}`` of a live process (what a state file records), or None."""
    import psutil

    try:
        proc = psutil.Process(pid)
        return {"create_time": proc.create_time(), "cmdline": proc.cmdline()}
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None


def same_process(pid: int, identity: dict[str, Any] | None) -> bool | None:
    """Is ``pid`` still the process ``identity`` describes? None when no process has that pid."""
    now = process_identity(pid)
    if now is None:
        return None
    if not identity:
        return False
    return abs(float(now["create_time"]) - float(identity.get("create_time", -1))) < 0.01 and \
        list(now["cmdline"]) == list(identity.get("cmdline", []))


def stop_process_group(pid: int, timeout_s: float = 10.0) -> bool:
    """SIGTERM the group led by ``pid``, SIGKILL it after ``timeout_s``; True if anything ran.

    The group is signalled even when its leader is gone: its chromedriver/Chromium children stay
    in it, and Linux does not hand the number to a new process while any member is alive, so what
    is left there is ours. (Callers that did not start ``pid`` themselves check it first with
    :func:`same_process`.)"""
    if not _alive(pid):
        if not _group_alive(pid):
            return False
        _kill_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _group_alive(pid):
            time.sleep(0.05)
        _kill_group(pid, signal.SIGKILL)
        return True
    _kill_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:  # reap it if it is our child
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                break
        except ChildProcessError:
            if not _alive(pid):
                break
        time.sleep(0.05)
    _kill_group(pid, signal.SIGKILL)  # the leader may be gone while helpers linger
    return True


class AppiumServer:
    """One Appium server process (``start``/``stop``/``kill``/``restart``; a context manager)."""

    def __init__(self, config: AppiumServerConfig | None = None):
        self.config = config or AppiumServerConfig()
        self.process: subprocess.Popen | None = None
        self.port: int | None = self.config.port
        self.log_path: Path | None = None
        self._log_file = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise AppiumServerError("the server has no port yet: start() it first")
        host = "[::1]" if self.config.host == "::1" else "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, port: int | None = None) -> AppiumServer:
        """Start and wait until ``/status`` reports ready; a lost port race is retried."""
        if self.running():
            return self
        binary = appium_binary(self.config.appium_home)
        if not binary.exists():
            raise AppiumServerError(
                f"Appium is not installed at {binary}: run emulator/install.sh (it fills $APPIUM_HOME, default "
                f"the checkout's .appium/), then point guienv at that folder with GUIENV_APPIUM_HOME or APPIUM_HOME "
                f"(or install into the per-user default: APPIUM_HOME={user_home()} bash emulator/install.sh)")
        want = port if port is not None else self.port
        attempts = 1 if want is not None else 3
        last = ""
        for _ in range(attempts):
            p = want if want is not None else free_port(self.config.host)
            try:
                self._spawn(p)
                self._wait_ready()
                return self
            except AppiumServerError as exc:
                last = str(exc)
                self.stop()
        raise AppiumServerError(last)

    def _spawn(self, port: int) -> None:
        self.port = port
        log = Path(self.config.log_path) if self.config.log_path else Path(self.config.appium_home) / "logs" / f"appium-{port}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log
        # stdout/stderr (startup errors before --log takes over) go to a sibling file.
        self._log_file = open(log.with_suffix(".out"), "ab")
        self.process = subprocess.Popen(
            server_argv(self.config, port, log),
            env=server_env(self.config),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: stop() reaches chromedriver/Chromium too
            cwd=self.config.appium_home,
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AppiumServerError(
                    f"Appium exited with code {self.process.returncode} while starting on port {self.port}; "
                    f"see {self.log_path} and {self.log_path.with_suffix('.out')}"
                )
            status = query_status(self.url, timeout=1.0)
            if status and status.get("ready", True):
                return
            time.sleep(0.2)
        raise AppiumServerError(f"Appium did not answer /status within {self.config.startup_timeout_s:g}s; see {self.log_path}")

    def stop(self) -> None:
        """Stop the server and everything it spawned (its process group, also after a crash)."""
        if self.process is not None:
            stop_process_group(self.process.pid, self.config.stop_timeout_s)
            try:
                self.process.wait(timeout=self.config.stop_timeout_s)
            except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL was sent
                pass
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def kill(self) -> None:
        """SIGKILL the whole process group at once (simulates a crash)."""
        if self.process is not None:
            _kill_group(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=self.config.stop_timeout_s)
            self.process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def restart(self) -> AppiumServer:
        """Stop and start again on the same port (sessions are lost; URLs stay valid)."""
        port = self.port
        self.stop()
        return self.start(port=port)

    def __enter__(self) -> AppiumServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


# -- `guienv appium start|stop|status` ---------------------------------------------------------
def default_state_file(home: str | Path | None = None) -> Path:
    return Path(home if home is not None else default_home()) / "server.json"


def read_state(state_file: Path) -> dict[str, Any] | None:
    """The state file's record, or None when it is missing or unreadable (then it is stale)."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(state, dict) or not isinstance(state.get("pid"), int) or not isinstance(state.get("url"), str):
        return None
    return state


def _ours(state: dict[str, Any]) -> bool | None:
    """True: the recorded pid is still the server we started; False: the pid now belongs to
    another process (or the file predates identity records); None: no process has the pid."""
    return same_process(int(state["pid"]), state.get("identity"))


def cmd_start(args: argparse.Namespace) -> int:
    """Start a detached server and record it in the state file."""
    state_file = Path(args.state_file or default_state_file(args.home))
    state = read_state(state_file)
    if state is not None and _ours(state) and query_status(state["url"]):
        print(json.dumps({"status": "already running", **state}))
        return 0
    insecure = (ADB_SHELL_FEATURE,) if args.allow_adb_shell else ()
    cfg = AppiumServerConfig(appium_home=args.home or str(default_home()), port=args.port, log_path=args.log, allow_insecure=insecure)
    server = AppiumServer(cfg).start()
    state = {"pid": server.pid, "port": server.port, "url": server.url, "log": str(server.log_path),
             "home": str(cfg.appium_home), "identity": process_identity(server.pid)}
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state))
    # Detach: the server outlives this process; `guienv appium stop` ends it.
    server.process = None
    print(json.dumps({"status": "started", **state}))
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the recorded server, only if its pid still is that server (else drop the stale file)."""
    state_file = Path(args.state_file or default_state_file(args.home))
    if not state_file.exists():
        print(json.dumps({"status": "not running"}))
        return 0
    state = read_state(state_file)
    if state is None:
        state_file.unlink()
        print(json.dumps({"status": "not running", "note": f"removed unreadable state file {state_file}"}))
        return 0
    pid, ours = int(state["pid"]), _ours(state)
    if ours is False:
        # A crashed server's pid now names another process: never signal it.
        state_file.unlink()
        print(json.dumps({"status": "not running", "pid": pid,
                          "note": f"pid {pid} is no longer the Appium server this tool started (stale state file removed)"}))
        return 0
    was = stop_process_group(pid)  # ours, or gone (then only its leftover group, if any, is reaped)
    state_file.unlink()
    print(json.dumps({"status": "stopped" if was else "not running", "pid": pid}))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    state_file = Path(args.state_file or default_state_file(args.home))
    state = read_state(state_file)
    if state is None:
        print(json.dumps({"status": "not running"}))
        return 1
    status = query_status(state["url"]) if _ours(state) else None
    print(json.dumps({"status": "running" if status else "not responding", **state, "server": status}))
    return 0 if status else 1


def add_appium_args(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``appium start|stop|status`` to a ``guienv`` subparsers object."""
    p = subparsers.add_parser("appium", help="start/stop/status of a local Appium server (loopback only)")
    sub = p.add_subparsers(dest="appium_command", required=True)
    for name, func, help_ in (
        ("start", cmd_start, "start a detached server from APPIUM_HOME and print its URL"),
        ("stop", cmd_stop, "stop the server started by `guienv appium start`"),
        ("status", cmd_status, "print the server's state and /status (exit 1 if not running)"),
    ):
        s = sub.add_parser(name, help=help_)
        s.add_argument("--home", default=None,
                       help="APPIUM_HOME (default: $GUIENV_APPIUM_HOME, $APPIUM_HOME, the checkout's .appium/, "
                            "or ~/.local/share/guienv/appium)")
        s.add_argument("--state-file", help="where start records pid/port (default: <home>/server.json)")
        if name == "start":
            s.add_argument("--port", type=int, help="port (default: a free one)")
            s.add_argument("--log", help="log file (default: <home>/logs/appium-<port>.log)")
            s.add_argument("--allow-adb-shell", action="store_true",
                           help=f"--allow-insecure {ADB_SHELL_FEATURE} (Android maintenance commands)")
        s.set_defaults(func=func)
    return p
