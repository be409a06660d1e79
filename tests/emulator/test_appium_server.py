"""The Appium server's lifecycle under faults: stale state files, a crashed server's children,
binding flags in extra_args, and where the server is looked for. Real processes throughout."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from emulator import appium_server as srv_mod
from emulator.appium_server import (
    AppiumServer,
    AppiumServerConfig,
    AppiumServerError,
    appium_binary,
    cmd_status,
    cmd_stop,
    default_home,
    process_identity,
)


def _live(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _group_members(pgid: int) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["pid", "status"]):
        try:
            if p.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(p.info["pid"]) == pgid:
                out.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            pass
    return out


def _wait(pred, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


def _args(state_file, home, **kw):
    base = dict(state_file=str(state_file), home=str(home), port=None, log=None, allow_adb_shell=False)
    return argparse.Namespace(**{**base, **kw})


@pytest.mark.parametrize("flag", [("--address", "0.0.0.0"), ("--address=0.0.0.0",), ("-a", "0.0.0.0"),
                                  ("--port", "4723"), ("-p", "4723"), ("--config", "x.json"), ("--base-path=/wd/hub",)])
def test_extra_args_may_not_rebind_the_server(flag):
    with pytest.raises(ValueError, match="extra_args may not set the address"):
        AppiumServerConfig(extra_args=("--relaxed-security",) + flag)
    AppiumServerConfig(extra_args=("--session-override",))  # other flags are fine


def test_stop_never_signals_a_process_that_reused_the_pid(tmp_path):
    # A stale state file from a crashed server whose pid now names an unrelated process group.
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        state_file = tmp_path / "server.json"
        fake_identity = {"create_time": process_identity(other.pid)["create_time"] - 100.0, "cmdline": ["node", "appium"]}
        state_file.write_text(json.dumps({"pid": other.pid, "port": 1, "url": "http://127.0.0.1:1",
                                          "log": "x", "home": str(tmp_path), "identity": fake_identity}))
        assert cmd_status(_args(state_file, tmp_path)) == 1  # not responding
        assert cmd_stop(_args(state_file, tmp_path)) == 0
        time.sleep(0.5)
        assert _live(other.pid), "stop signalled a process that is not the server it started"
        assert not state_file.exists()
        # A state file from before identities were recorded is treated the same way.
        state_file.write_text(json.dumps({"pid": other.pid, "port": 1, "url": "http://127.0.0.1:1"}))
        cmd_stop(_args(state_file, tmp_path))
        time.sleep(0.5)
        assert _live(other.pid)
        # An unreadable state file is removed, not a crash.
        state_file.write_text("{not json")
        assert cmd_stop(_args(state_file, tmp_path)) == 0 and not state_file.exists()
    finally:
        other.kill()
        other.wait()


def test_missing_server_error_names_both_home_settings(tmp_path):
    with pytest.raises(AppiumServerError) as err:
        AppiumServer(AppiumServerConfig(appium_home=str(tmp_path / "nowhere"))).start()
    msg = str(err.value)
    assert "GUIENV_APPIUM_HOME" in msg and "APPIUM_HOME" in msg and "install.sh" in msg


def test_default_home_order(monkeypatch, tmp_path):
    monkeypatch.setenv("GUIENV_APPIUM_HOME", str(tmp_path / "a"))
    monkeypatch.setenv("APPIUM_HOME", str(tmp_path / "b"))
    assert default_home() == tmp_path / "a"
    monkeypatch.delenv("GUIENV_APPIUM_HOME")
    assert default_home() == tmp_path / "b"
    monkeypatch.delenv("APPIUM_HOME")
    monkeypatch.setattr(srv_mod, "REPO", tmp_path / "installed-site-packages")  # no checkout around it
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_home() == tmp_path / "data" / "guienv" / "appium"
    assert AppiumServerConfig().appium_home == str(tmp_path / "data" / "guienv" / "appium")


def _stack_missing() -> str | None:
    if not appium_binary(AppiumServerConfig().appium_home).exists():
        return "Appium is not installed"
    if not (os.path.exists("/usr/bin/chromium") and os.path.exists("/usr/bin/chromedriver")):
        return "chromium/chromedriver missing"
    return None


def _open_session(url: str):
    import gymnasium as gym

    import guienv  # noqa: F401  (registers the ids)

    env = gym.make("guienv/MiniWoB-click-button-v0", server_url=url)
    env.reset(seed=0)
    return env


@pytest.mark.realstack
@pytest.mark.slow
def test_a_crashed_servers_chromedriver_and_chromium_are_reaped(tmp_path):
    missing = _stack_missing()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    # In-process owner: the server dies alone (kill -9 of its pid), stop() still reaps its group.
    server = AppiumServer(AppiumServerConfig(log_path=str(tmp_path / "a.log"))).start()
    pgid = server.pid
    env = _open_session(server.url)
    names = {p.name() for p in _group_members(pgid)}
    assert "chromedriver" in names and "chromium" in names
    os.kill(server.pid, signal.SIGKILL)
    assert _wait(lambda: not server.running(), 5)  # the owner notices (and reaps the leader)
    assert any(p.name() == "chromium" for p in _group_members(pgid))  # the leak being fixed
    server.stop()
    assert _wait(lambda: not _group_members(pgid)), [p.name() for p in _group_members(pgid)]
    env.unwrapped._drop_session(lost=True) if hasattr(env.unwrapped, "_drop_session") else None

    # Detached server (guienv appium start/stop): same after a crash, through the state file.
    state_file = tmp_path / "server.json"
    home = AppiumServerConfig().appium_home
    # started by another process that exits, as `guienv appium start` does
    subprocess.run([sys.executable, "-m", "guienv", "appium", "start", "--home", home, "--state-file", str(state_file),
                    "--log", str(tmp_path / "b.log")], check=True, timeout=120, capture_output=True)
    state = json.loads(state_file.read_text())
    assert state["identity"]["cmdline"] and state["identity"]["create_time"] > 0
    env2 = _open_session(state["url"])
    os.kill(state["pid"], signal.SIGKILL)
    _wait(lambda: not _live(state["pid"]), 5)
    assert any(p.name() == "chromium" for p in _group_members(state["pid"]))
    assert cmd_stop(_args(state_file, home)) == 0
    assert _wait(lambda: not _group_members(state["pid"])), [p.name() for p in _group_members(state["pid"])]
    del env, env2
