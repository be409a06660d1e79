"""The Appium env layer on the real web stack: Appium 3 + appium-chromium-driver + Debian's
chromium/chromedriver, MiniWoB++ pages from the `miniwob` package (emulator/install.sh installs it).

One Appium server serves the module (the kill/restart test restarts it on the same port)."""

from __future__ import annotations

import json
import os
import signal
import time

import numpy as np
import pytest

pytest.importorskip("gymnasium")
import gymnasium as gym  # noqa: E402

from emulator.appium_server import (  # noqa: E402
    AppiumServer,
    AppiumServerConfig,
    add_appium_args,
    appium_binary,
    query_status,
    server_argv,
)

pytestmark = [pytest.mark.realstack, pytest.mark.slow]

REPO_HOME = AppiumServerConfig().appium_home


def _stack_missing() -> str | None:
    if not appium_binary(REPO_HOME).exists():
        return f"Appium is not installed in {REPO_HOME}"
    for exe in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(exe):
            return f"{exe} is missing"
    try:
        import appium.webdriver  # noqa: F401
        import miniwob  # noqa: F401
    except ImportError as exc:
        return str(exc)
    return None


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    missing = _stack_missing()
    if missing:
        msg = f"{missing}: run emulator/install.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    log = tmp_path_factory.mktemp("appium") / "appium.log"
    srv = AppiumServer(AppiumServerConfig(log_path=str(log))).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def env(server):
    from guienv.envs.miniwob import MiniWoBEnv

    e = MiniWoBEnv(task="click-button", server_url=server.url, device_scale_factor=2.0, command_timeout_s=15)
    yield e
    e.close()


def _run_oracle(env, task, seed, max_steps=8):
    from agents.miniwob_oracle import oracle_action

    obs, info = env.reset(seed=seed, options={"task": task})
    total, steps = 0.0, 0
    for _ in range(max_steps):
        obs, r, term, trunc, info = env.step(oracle_action(task, obs))
        total += r
        steps += 1
        if term or trunc:
            break
    return total, info


# -- the server --------------------------------------------------------------------------------
def test_server_binds_loopback_and_answers_status(server):
    argv = server_argv(server.config, server.port, server.log_path)
    assert argv[argv.index("--address") + 1] == "127.0.0.1"
    status = query_status(server.url)
    assert status["ready"] is True and status["build"]["version"].startswith("3.")
    assert server.log_path.exists() and server.log_path.stat().st_size > 0
    with pytest.raises(ValueError, match="loopback"):
        AppiumServerConfig(host="0.0.0.0")


# -- observation and coordinates ----------------------------------------------------------------
def test_observation_scaled_by_device_pixel_ratio(env):
    obs, info = env.reset(seed=11, options={"task": "click-button"})
    shot = obs["screenshot"]
    assert shot.shape == (420, 320, 3) and shot.dtype == np.uint8  # 160x210 CSS px at dpr 2
    assert env.observation_space.contains(obs)
    assert obs["instruction"].startswith('Click on the "')
    elements = json.loads(obs["elements"])
    query = next(e for e in elements if e["resource_id"] == "query")
    x1, y1, x2, y2 = query["box"]
    # The #query box is painted #FF0 (yellow): the box must land on yellow screenshot pixels.
    patch = shot[int(y1) + 4 : int(y2) - 4, int(x1) + 4 : int(x2) - 4].reshape(-1, 3)
    assert np.mean(np.all(patch == [255, 255, 0], axis=1)) > 0.6
    assert x2 - x1 == pytest.approx(320, abs=2)  # 160 CSS px wide -> 320 screenshot px
    assert len(info["elements"]) == len(elements)
    assert info["elements"][0].box == tuple(elements[0]["box"])


def test_actions_in_other_frames_hit_the_same_target(env):
    from guienv.actions import Action
    from guienv.frames import Frame

    obs, _ = env.reset(seed=3, options={"task": "focus-text"})
    field = next(e for e in json.loads(obs["elements"]) if e["editable"])
    x1, y1, x2, y2 = field["box"]
    h, w = obs["screenshot"].shape[:2]
    # Same point as a normalized-frame action: the tap must still focus the field (reward 1).
    _, r, term, _, info = env.step(Action.click((x1 + x2) / 2 / w, (y1 + y2) / 2 / h, frame=Frame.NORMALIZED))
    assert (r, term, info["success"]) == (1.0, True, True)


# -- oracle and random agent --------------------------------------------------------------------
@pytest.mark.parametrize("task", ["click-button", "click-link", "click-checkboxes", "enter-text", "focus-text"])
def test_oracle_solves_task(env, task):
    for seed in (0, 1, 2):
        total, info = _run_oracle(env, task, seed)
        assert total == 1.0, (task, seed, info)
        assert info["done"] and info["success"] and info["raw_reward"] == 1.0


def test_decayed_reward_is_below_raw(server):
    from guienv.envs.miniwob import MiniWoBEnv

    e = MiniWoBEnv(task="click-button", server_url=server.url, reward="decayed")
    try:
        total, info = _run_oracle(e, "click-button", 4)
    finally:
        e.close()
    assert 0.0 < total < 1.0 and total == pytest.approx(info["env_reward"]) and info["raw_reward"] == 1.0


def test_random_agent_mostly_fails(env):
    space = env.action_space
    space.seed(1234)
    successes = 0
    for ep in range(8):
        env.reset(seed=100 + ep, options={"task": "click-button"})
        for _ in range(4):
            _, r, term, trunc, info = env.step(space.sample())
            if term or trunc:
                break
        successes += int(info.get("success", False))
    assert successes <= 2


def test_same_seed_same_episode(env):
    a, _ = env.reset(seed=21, options={"task": "click-checkboxes"})
    b, _ = env.reset(seed=21, options={"task": "click-checkboxes"})
    c, _ = env.reset(seed=22, options={"task": "click-checkboxes"})
    assert a["instruction"] == b["instruction"] and a["elements"] == b["elements"]
    assert np.array_equal(a["screenshot"], b["screenshot"])
    assert (a["instruction"], a["elements"]) != (c["instruction"], c["elements"])


# -- text entry ---------------------------------------------------------------------------------
HOSTILE = "a$(rm -rf /);`id` 'single' \"double\" \\back|&;<>*?~ é中文😀"


def test_typed_text_arrives_verbatim(env):
    from guienv.actions import Action

    obs, _ = env.reset(seed=5, options={"task": "enter-text"})
    field = next(e for e in json.loads(obs["elements"]) if e["editable"])
    x1, y1, x2, y2 = field["box"]
    env.step(Action.type_text(HOSTILE, point=((x1 + x2) / 2, (y1 + y2) / 2)))
    assert env.execute_js("return document.getElementById('tt').value;") == HOSTILE
    # Newlines need a multi-line field: add a textarea to the page, focus it, type (no point).
    env.execute_js("const t = document.createElement('textarea'); t.id = 'ta'; document.getElementById('area').appendChild(t); t.focus();")
    multi = "line one\nline 'two' $HOME\n\"three\" ü"
    _, _, _, _, info = env.step(Action.type_text(multi))
    assert env.execute_js("return document.getElementById('ta').value;") == multi
    # WebDriver key code points (U+E006 = Enter) are dropped, not pressed, and reported.
    env.execute_js("document.getElementById('ta').value = ''; document.getElementById('ta').focus();")
    _, _, _, _, info = env.step(Action.type_text("x\ue006y"))
    assert env.execute_js("return document.getElementById('ta').value;") == "xy"
    assert any("dropped 1" in n for n in info["noops"])


def test_typed_newlines_and_tabs_never_press_keys(env):
    from guienv.actions import Action

    env.reset(seed=5, options={"task": "enter-text"})
    # A one-line field in a form: a typed "\n" must not press Enter (which would submit the form).
    env.execute_js(
        "window.__submits = 0; const f = document.createElement('form'); f.onsubmit = (e) => {window.__submits++; e.preventDefault();};"
        "const i = document.createElement('input'); i.id = 'one'; f.appendChild(i); document.getElementById('area').appendChild(f); i.focus();")
    _, _, _, _, info = env.step(Action.type_text("ab\ncd\tef"))
    assert env.execute_js("return window.__submits;") == 0
    assert env.execute_js("return document.activeElement.id;") == "one"  # the tab did not move focus
    assert env.execute_js("return document.getElementById('one').value;") == "abcd\tef"  # as a paste: the newline stripped
    assert any("inserted 2 newline/tab character(s) as text" in n for n in info["noops"])


def test_model_text_actions_and_invalid_text(env):
    obs, _ = env.reset(seed=6, options={"task": "click-button"})
    _, r, term, trunc, info = env.step("this is not an action <<<")
    assert r == 0.0 and not term and "invalid" in info
    _, r, term, _, info = env.step({"type": "finish", "status": "complete"})
    assert term and r == 0.0
    # Other sessions started on the same server meanwhile (chromedriver ports must not collide).
    assert info["sessions_started"] == 1


# -- vector env ---------------------------------------------------------------------------------
def test_async_vector_env_two_sessions(server):
    from agents.miniwob_oracle import oracle_action
    from guienv.actions import to_space
    from guienv.envs.miniwob import register_miniwob_envs

    register_miniwob_envs()
    fns = [lambda: gym.make("guienv/MiniWoB-v0", task="focus-text", server_url=server.url) for _ in range(2)]
    venv = gym.vector.AsyncVectorEnv(fns, shared_memory=False)
    try:
        obs, infos = venv.reset(seed=[1, 2])
        assert obs["screenshot"].shape == (2, 210, 160, 3)
        assert len(set(infos["session_id"])) == 2  # one Appium session per env
        from guienv.frames import Screen

        acts = [to_space(oracle_action("focus-text", {k: obs[k][i] for k in ("instruction", "elements")}), Screen(160, 210))
                for i in range(2)]
        batch = {k: (tuple(a[k] for a in acts) if k == "text" else np.stack([np.asarray(a[k]) for a in acts])) for k in acts[0]}
        obs, rewards, term, trunc, infos = venv.step(batch)
        assert rewards.tolist() == [1.0, 1.0] and term.tolist() == [True, True]
    finally:
        venv.close()


def test_check_env(server):
    from gymnasium.utils.env_checker import check_env

    from guienv.envs.miniwob import MiniWoBEnv

    e = MiniWoBEnv(task="click-link", server_url=server.url, render_mode="rgb_array")
    try:
        check_env(e, skip_render_check=False)
        assert e.render().shape == (210, 160, 3)
    finally:
        e.close()


# -- session loss -------------------------------------------------------------------------------
def test_hung_server_raises_within_timeout(server):
    from guienv.actions import Action
    from guienv.envs.appium_base import AppiumSessionError
    from guienv.envs.miniwob import MiniWoBEnv

    e = MiniWoBEnv(task="click-button", server_url=server.url, command_timeout_s=2)
    try:
        e.reset(seed=0)
        os.kill(server.pid, signal.SIGSTOP)  # the server stops answering (not its children)
        try:
            # A GET is not retried behind our back (urllib3's default would take 4x the timeout).
            t0 = time.monotonic()
            with pytest.raises(Exception, match="timed out"):
                e.driver.get_screenshot_as_png()
            assert time.monotonic() - t0 < 2 + 1.5
            t0 = time.monotonic()
            with pytest.raises(AppiumSessionError, match="Read timed out|timed out"):
                e.step(Action.click(10, 150))
            assert time.monotonic() - t0 < 2 + 1.5
        finally:
            os.kill(server.pid, signal.SIGCONT)
        _, info = e.reset(seed=1)  # a new session
        assert info["sessions_started"] == 2
    finally:
        e.close()


def test_killed_server_raises_then_reset_recovers(server):
    from guienv.actions import Action
    from guienv.envs.appium_base import AppiumSessionError
    from guienv.envs.miniwob import MiniWoBEnv

    e = MiniWoBEnv(task="focus-text", server_url=server.url, command_timeout_s=5)
    try:
        e.reset(seed=0)
        first = e.session_id
        server.kill()  # SIGKILL the server's process group mid-episode
        t0 = time.monotonic()
        with pytest.raises(AppiumSessionError, match="next reset"):
            e.step(Action.click(10, 150))
        assert time.monotonic() - t0 < 5
        with pytest.raises(AppiumSessionError):  # no session until reset
            e.step(Action.click(10, 150))
        with pytest.raises(AppiumSessionError, match="cannot start an Appium session"):
            e.reset(seed=1)  # server still down: a clear error, not a hang
        server.start(port=server.port)
        obs, info = e.reset(seed=2)
        assert e.session_id != first and info["sessions_started"] == 2
        from agents.miniwob_oracle import oracle_action

        _, r, term, _, _ = e.step(oracle_action("focus-text", obs))
        assert (r, term) == (1.0, True)
    finally:
        e.close()


# -- CLI hooks ----------------------------------------------------------------------------------
def test_cli_start_status_stop(tmp_path, capsys):
    import argparse

    parser = argparse.ArgumentParser()
    add_appium_args(parser.add_subparsers(dest="command"))
    state = str(tmp_path / "server.json")
    log = str(tmp_path / "appium.log")
    args = parser.parse_args(["appium", "start", "--state-file", state, "--log", log])
    assert args.func(args) == 0
    started = json.loads(capsys.readouterr().out)
    try:
        assert started["status"] == "started" and started["url"].startswith("http://127.0.0.1:")
        args = parser.parse_args(["appium", "status", "--state-file", state])
        assert args.func(args) == 0
        assert json.loads(capsys.readouterr().out)["server"]["ready"] is True
    finally:
        args = parser.parse_args(["appium", "stop", "--state-file", state])
        assert args.func(args) == 0
    assert json.loads(capsys.readouterr().out)["status"] == "stopped"
    assert query_status(started["url"], timeout=1) is None
    args = parser.parse_args(["appium", "status", "--state-file", state])
    assert args.func(args) == 1
