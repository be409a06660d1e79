"""guienv.history.History on the real envs: SynthApp app mode (screen views in the resized frame,
previous screenshots, invalid-action feedback), the real ALFWorld engine and the MDP env (text views)."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

import guienv  # noqa: F401  registers the env ids
from guienv.actions import Action
from guienv.frames import Frame, Resize, Screen
from guienv.history import History, HistoryConfig, feedback_text
from guienv.prompts import history_text, observation_messages, render, step_images

RESIZE = Resize(min_pixels=64 * 28 * 28, max_pixels=256 * 28 * 28)


@pytest.fixture
def app():
    env = gym.make("guienv/SynthApp-v0", mode="app", steps=3, text_frame="resized",
                   min_pixels=RESIZE.min_pixels, max_pixels=RESIZE.max_pixels)
    yield env
    env.close()


def _resized_text(action: Action, screen: Screen) -> str:
    """The oracle's pixel action as a Qwen2.5-VL model would write it (resized-frame tool call)."""
    x, y = action.to_frame(Frame.RESIZED, screen).point
    return ('<tool_call>{"name": "mobile_use", "arguments": {"action": "click", '
            f'"coordinate": [{x:.1f}, {y:.1f}]}}}}</tool_call>')


def test_screen_history_lines_are_history_text_in_the_resized_frame_and_screens_the_real_earlier_ones(app):
    hist = History(HistoryConfig(screens=2, actions=8), Frame.RESIZED, RESIZE)
    obs, info = app.reset(seed=3)
    hist.reset(obs, info)
    v0 = hist.view()
    assert v0["history"] == "" and v0["previous_screenshots"] == () and "feedback" not in v0
    assert v0["instruction"] == obs["instruction"] and v0["screenshot"] is obs["screenshot"]
    shots, pixel_actions, screens = [], [], []
    for k in range(2):
        shot = np.asarray(obs["screenshot"]).copy()
        screen = Screen(shot.shape[1], shot.shape[0], RESIZE)
        act = Action.from_dict(info["oracle_action"])
        # step 0 the env receives an Action, step 1 model text in the resized frame
        sent = act if k == 0 else _resized_text(act, screen)
        obs, _, terminated, _, info = app.step(sent)
        assert not terminated and not info["invalid"]
        hist.record(sent, obs, info)
        shots.append(shot)
        pixel_actions.append(act)
        screens.append(screen)
    v = hist.view()
    expected = history_text(pixel_actions, screens, Frame.RESIZED)
    assert v["history"].splitlines()[0] == expected.splitlines()[0]
    # the text action went through read_action: its point is the oracle's up to the 0.1 rounding
    line = v["history"].splitlines()[1]
    assert line.startswith("2. ") and '"frame": "resized"' in line
    got, want = json.loads(line[3:]), json.loads(expected.splitlines()[1][3:])
    assert got["type"] == want["type"] == "click"
    assert np.allclose(got["point"], want["point"], atol=0.1)
    assert len(v["previous_screenshots"]) == 2
    for seen, real in zip(v["previous_screenshots"], shots):
        assert np.array_equal(seen, real)
    assert not np.array_equal(v["previous_screenshots"][0], v["previous_screenshots"][1])  # the app moved on
    # slots: two previous screens then the current one
    msgs = observation_messages("synthapp", v)
    slots = [c for c in msgs[-1]["content"] if c["type"] == "image"]
    assert len(slots) == 3 and len(step_images(v)) == 3
    assert np.array_equal(step_images(v)[-1], obs["screenshot"])
    text = "".join(c.get("text", "") for c in msgs[-1]["content"])
    assert f"Previous actions:\n{v['history']}" in text


def test_history_is_bounded_to_the_last_actions_and_screens(app):
    hist = History(HistoryConfig(screens=1, actions=2), Frame.PIXEL)
    obs, info = app.reset(seed=5)
    hist.reset(obs, info)
    sent = ["wait", Action.scroll("down"), "not an action at all"]
    last = None
    for a in sent:
        last = np.asarray(obs["screenshot"]).copy()
        obs, _, _, _, info = app.step(a)
        hist.record(a, obs, info)
    v = hist.view()
    lines = v["history"].splitlines()
    assert len(lines) == 2 and lines[0].startswith("1. ") and '"scroll"' in lines[0]
    assert '"invalid"' in lines[1]  # unreadable text is kept as an invalid line, not dropped
    assert len(v["previous_screenshots"]) == 1 and np.array_equal(v["previous_screenshots"][0], last)
    none = History(HistoryConfig(screens=0, actions=0))
    none.reset(obs, info)
    none.record("wait", obs, info)
    assert "previous_screenshots" not in none.view() and none.view()["history"] == ""


def test_invalid_action_feedback_names_the_reason_and_can_be_switched_off(app):
    on, off = History(HistoryConfig()), History(HistoryConfig(feedback=False))
    obs, info = app.reset(seed=1)
    on.reset(obs, info)
    off.reset(obs, info)
    garbage = "I would like to <tool_call>{not json"
    obs, _, _, _, info = app.step(garbage)
    assert info["invalid"] and info["invalid_reason"]
    on.record(garbage, obs, info)
    off.record(garbage, obs, info)
    v = on.view()
    reason = info["invalid_reason"].strip().rstrip(".")
    assert v["feedback"].startswith("Your last action was invalid: ") and reason[:40] in v["feedback"]
    assert "feedback" not in off.view() and "previous_screenshots" not in v
    text = render("synthapp", v)[0]["content"][1]["text"]
    assert v["feedback"] in text and "Previous actions:\n1. " in text
    # a valid step clears it
    obs, _, _, _, info = app.step(info["oracle_action"])
    on.record(info["oracle_action"], obs, info)
    assert "feedback" not in on.view()


def test_feedback_text_handles_hostile_and_missing_reasons():
    assert feedback_text({"invalid": False}) is None
    assert feedback_text({"invalid": True}) == "Your last action was invalid."
    assert feedback_text({"invalid": "no element at (3, 4)."}) == "Your last action was invalid: no element at (3, 4)."
    long = feedback_text({"invalid": True, "invalid_reason": "x" * 10_000})
    assert len(long) < 400
    assert "no action could be read" in feedback_text({"invalid": True, "action": None}, text_env=True)
    assert "'fly' is not one of the admissible" in feedback_text({"invalid": True, "action": "fly"}, text_env=True)


def test_history_rejects_bad_config_and_observations():
    with pytest.raises(ValueError, match="HistoryConfig.actions"):
        HistoryConfig(actions=-1)
    with pytest.raises(TypeError, match="text observation"):
        History().reset(np.zeros((2, 2, 3)), {})
    with pytest.raises(RuntimeError, match="before History.reset"):
        History().view()


def test_mdp_text_view_keeps_the_last_pairs_and_the_text_template_renders_it():
    env = gym.make("guienv/MDP-v0", spec="chain")
    hist = History(HistoryConfig(observations=2))
    obs, info = env.reset(seed=0)
    hist.reset(obs, info)
    v0 = hist.view()
    assert v0 == {"observation": obs, "task": "chain-6-trap", "admissible_commands": ["a0", "a1", "a2"],
                  "history": [], "step": 0}
    seen = [obs]
    for a in ["<action>a1</action>", "a2", "<action>fly</action>"]:
        obs, _, term, trunc, info = env.step(a)
        hist.record(a, obs, info)
        seen.append(obs)
        assert not (term or trunc)
    v = hist.view()
    assert v["step"] == 3 and v["observation"] == obs
    assert v["history"] == [(seen[1], "a2"), (seen[2], "<action>fly</action>")]  # read command, else the text
    assert "no action could be read" in v["feedback"]
    msgs = observation_messages("text", v)
    assert step_images(v) == [] and all(c["type"] == "text" for c in msgs[-1]["content"])
    text = msgs[-1]["content"][0]["text"]
    assert f"[Observation 2: '{seen[1]}', Action 2: 'a2']" in text and "Observation 1:" not in text
    assert f"Step 4. Current observation: {obs}" in text and "Admissible actions: ['a0', 'a1', 'a2']." in text
    assert v["feedback"] in text and "<action>a0</action>" in text
    env.close()


@pytest.mark.realstack
def test_alfworld_text_view_renders_the_envs_own_prompt_on_the_real_engine(shared_data, tmp_path):
    pytest.importorskip("alfworld", reason="pip install alfworld")
    from agents.baselines import ExpertPlanAgent

    env = gym.make("guienv/ALFWorld-v0", game=str(shared_data / "alfworld"), expert_plan=True,
                   cache_dir=str(tmp_path))
    hist = History(HistoryConfig(observations=2))  # the env's history_length
    agent = ExpertPlanAgent()
    obs, info = env.reset(seed=0)
    hist.reset(obs, info)
    pairs = []
    for _ in range(3):
        v = hist.view()
        assert v["observation"] == obs and v["admissible_commands"] == info["admissible_commands"]
        assert v["task"] == info["task"] and v["history"] == pairs[-2:]
        assert render("alfworld", v)[0]["content"][0]["text"] == info["prompt"]
        action = agent.act(v, info)
        prev = obs
        obs, _, _, _, info = env.step(action)
        hist.record(action, obs, info)
        pairs.append((prev, info["action"]))
    # an inadmissible command: feedback on top of the unchanged verl-agent prompt
    obs, _, _, _, info = env.step("<action>fly to the moon</action>")
    hist.record("<action>fly to the moon</action>", obs, info)
    v = hist.view()
    text = render("alfworld", v)[0]["content"][0]["text"]
    assert v["feedback"] == "Your last action was invalid: 'fly to the moon' is not one of the admissible actions."
    assert text == f"{v['feedback']}\n{info['prompt']}" and v["step"] == 4
    env.close()
