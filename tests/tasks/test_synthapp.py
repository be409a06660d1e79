"""SynthApp: the synthetic screen/app generator (tasks/synthapp/) and guienv/SynthApp-v0."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import guienv  # noqa: F401  (registers ids)
from agents.baselines import OracleAgent, RandomAgent
from guienv.actions import Action, ActionType, to_space
from guienv.errors import DataError
from guienv.frames import Frame, Screen, convert_point
from guienv.geometry import point_in_box
from tasks.synthapp import (
    SynthConfig,
    export_screenspot,
    generate_screen,
    make_app_task,
    make_grounding_samples,
)
from tasks.synthapp.render import CONTROL_CLASSES

REPO = Path(__file__).resolve().parents[2]
CONTROL_NAMES = set(CONTROL_CLASSES.values())
DESKTOP = SynthConfig.desktop_preset()


def _area_frac(box, cfg) -> float:
    x1, y1, x2, y2 = box
    return (x2 - x1) * (y2 - y1) / (cfg.width * cfg.height)


def _controls(elements):
    return [e for e in elements if e.class_name in CONTROL_NAMES]


def _run_oracle(env, obs, info, limit=40):
    agent = OracleAgent()
    n, r = 0, 0.0
    for n in range(1, limit + 1):  # noqa: B007  (n is the step count returned below)
        obs, r, term, trunc, info = env.step(agent.act(obs, info))
        if term or trunc:
            break
    return n, r, term, info


# -- generator --------------------------------------------------------------------------------
def test_same_seed_same_bytes_different_seeds_differ():
    cfg = SynthConfig(seed=11)
    a = make_grounding_samples(4, cfg)
    b = make_grounding_samples(4, cfg)
    assert [s.image.data for s in a] == [s.image.data for s in b]
    assert [(s.instruction, s.box) for s in a] == [(s.instruction, s.box) for s in b]
    other = make_grounding_samples(4, cfg, seed=12)
    digests = {hashlib.sha256(s.image.data).hexdigest() for s in a + other}
    assert len(digests) == 8  # every screen differs, across indices and seeds
    t1, t2 = make_app_task(cfg, 3, 5, steps=3), make_app_task(cfg, 3, 5, steps=3)
    assert t1.instruction == t2.instruction and t1.goals == t2.goals
    assert t1.app.render(t1.start).tobytes() == t2.app.render(t2.start).tobytes()
    t3 = make_app_task(cfg, 3, 6, steps=3)
    assert t3.app.render(t3.start).tobytes() != t1.app.render(t1.start).tobytes()


_DIGEST_SNIPPET = """
import hashlib
from tasks.synthapp import SynthConfig, generate_screen, make_app_task
h = hashlib.sha256()
for i in range(3):
    h.update(generate_screen(SynthConfig(), 5, i).image().tobytes())
t = make_app_task(SynthConfig(), 5, 0, steps=4)
h.update(t.app.render(t.start).tobytes())
h.update(t.instruction.encode())
print(h.hexdigest())
"""


def test_deterministic_across_processes():
    """Nothing depends on hash randomisation or cache state: a fresh interpreter agrees."""
    h = hashlib.sha256()
    for i in range(3):
        h.update(generate_screen(SynthConfig(), 5, i).image().tobytes())
    t = make_app_task(SynthConfig(), 5, 0, steps=4)
    h.update(t.app.render(t.start).tobytes())
    h.update(t.instruction.encode())
    env = dict(os.environ, PYTHONHASHSEED="12345", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", _DIGEST_SNIPPET], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == h.hexdigest()


@pytest.mark.parametrize("cfg", [SynthConfig(), SynthConfig(distractors=9), DESKTOP], ids=["phone", "dense", "desktop"])
def test_boxes_inside_screen_and_target_visible(cfg):
    for i in range(25):
        scr = generate_screen(cfg, 2, i)
        img = scr.image()
        assert img.shape == (cfg.height, cfg.width, 3) and img.dtype == np.uint8
        els = scr.elements()
        for e in els:
            x1, y1, x2, y2 = e.box
            assert 0 <= x1 < x2 <= cfg.width and 0 <= y1 < y2 <= cfg.height, (i, e)
        # the target is drawn: its box is not flat and differs from the screen's background
        x1, y1, x2, y2 = (int(v) for v in scr.box)
        region = img[y1:y2, x1:x2].reshape(-1, 3)
        bg = np.asarray(scr.scene.theme.bg, dtype=np.uint8)
        assert (region != region[0]).any(), (i, scr.instruction)  # not one flat colour
        assert (region != bg).any(axis=1).mean() > 0.02, (i, scr.instruction)
        # the instruction names the target, and no other control carries its label
        assert scr.target.label in scr.instruction
        clickable = [w for w in scr.scene.all_widgets() if w.is_control and w.interactive]
        assert scr.target in clickable
        assert [w.label for w in clickable].count(scr.target.label) == 1
        # clickable controls never overlap, so a point names one control
        boxes = [w.box for w in clickable]
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = boxes[a], boxes[b]
                assert min(ax2, bx2) <= max(ax1, bx1) or min(ay2, by2) <= max(ay1, by1), (i, boxes[a], boxes[b])
        assert scr.data_type == ("icon" if scr.kind == "icon" else "text")


@pytest.mark.parametrize("distractors", [0, 3, 12])
def test_distractor_knob_counts_controls(distractors):
    cfg = SynthConfig(distractors=distractors)
    kinds = set()
    for i in range(15):
        scr = generate_screen(cfg, 4, i)
        kinds.add(scr.kind)
        assert len(_controls(scr.elements())) == distractors + 1, (i, scr.kind)
    assert len(kinds) >= 3  # the knob works across target kinds, not one easy layout


def test_target_size_knob():
    small, large = SynthConfig(target_size=(0.002, 0.004)), SynthConfig(target_size=(0.03, 0.05))
    means = []
    for cfg in (small, large):
        lo, hi = cfg.target_size
        fracs = []
        for i in range(20):
            scr = generate_screen(cfg, 8, i)
            fracs.append(_area_frac(scr.box, cfg))
            for e in _controls(scr.elements()):  # every control is sized from the same range
                assert lo * 0.97 <= _area_frac(e.box, cfg) <= hi * 1.03, (i, e)
        means.append(np.mean(fracs))
    assert means[1] > 5 * means[0]
    # text targets stay possible with small targets (not only icons)
    assert any(generate_screen(small, 8, i).data_type == "text" for i in range(20))


def test_kinds_knob_and_config_validation(tmp_path):
    cfg = SynthConfig(kinds=("toggle",))
    for i in range(5):
        scr = generate_screen(cfg, 0, i)
        assert scr.kind == "toggle" and scr.target.kind == "switch"
        state = "off" if scr.target.on else "on"
        assert f" {state} " in f" {scr.instruction} " or scr.instruction.endswith(state)
    with pytest.raises(ValueError, match="target_size"):
        SynthConfig(target_size=(0.3, 0.4))
    with pytest.raises(ValueError, match="kinds"):
        SynthConfig(kinds=("slider",))
    with pytest.raises(DataError, match="unknown key 'widht'"):
        SynthConfig.from_dict({"widht": 10})
    with pytest.raises(DataError, match="width: must be an integer"):
        SynthConfig.from_dict({"width": "wide"})
    (tmp_path / "ok.yaml").write_text("width: 400\nheight: 700\ndistractors: 2\ntarget_size: [0.01, 0.02]\n")
    assert SynthConfig.from_yaml(tmp_path / "ok.yaml") == SynthConfig(width=400, height=700, distractors=2,
                                                                     target_size=(0.01, 0.02))
    (tmp_path / "bad.yaml").write_text("steps: 0\n")
    with pytest.raises(DataError, match="bad.yaml"):
        SynthConfig.from_yaml(tmp_path / "bad.yaml")
    with pytest.raises(ValueError, match="distractors"):
        generate_screen(SynthConfig(distractors=200, target_size=(0.04, 0.05)), 0, 0)


# -- app mode ---------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_oracle_solves_app_tasks_in_exactly_k_steps(k):
    env = gym.make("guienv/SynthApp-v0", mode="app", steps=k)
    kinds = set()
    for ep in range(6):
        obs, info = env.reset(seed=100 * k + ep)
        kinds.update(g["kind"] for g in info["task"]["goals"])
        assert info["task"]["k"] == k and info["steps_left"] == 2 * k + 3
        agent = OracleAgent()
        for t in range(1, k + 1):
            act = agent.act(obs, info)
            if act.type is ActionType.CLICK:  # the oracle touches the control info names
                assert point_in_box(act.point, info["target_box"])
            before = obs["screenshot"]
            obs, r, term, trunc, info = env.step(act)
            assert not info["invalid"]
            assert not np.array_equal(before, obs["screenshot"])  # every correct action shows
            if t < k:
                assert (r, term, trunc) == (0.0, False, False)
        assert (r, term, trunc) == (1.0, True, False), info["task"]["instruction"]
        assert info["success"] and info["target_box"] is None
        assert info["oracle_action"] == {"type": "finish", "status": "complete"}
    if k >= 3:
        assert len(kinds) >= 2


def test_random_agent_rarely_succeeds():
    env = gym.make("guienv/SynthApp-v0", mode="app")
    agent = RandomAgent(seed=0, other_rate=0.1)
    wins = 0
    for ep in range(48):
        obs, info = env.reset(seed=ep, options={"steps": 1 + ep % 4})
        while True:
            obs, r, term, trunc, info = env.step(agent.act(obs, info))
            if term or trunc:
                break
        wins += r
    assert wins / 48 < 0.25  # measured ~4%; the oracle scores 100%
    genv = gym.make("guienv/SynthApp-v0", mode="grounding")
    hits = 0
    for ep in range(100):
        obs, info = genv.reset(seed=ep)
        hits += genv.step(agent.act(obs, info))[1]
    assert hits / 100 < 0.15


def _task_with(kind: str, steps: int):
    for i in range(200):
        t = make_app_task(SynthConfig(), 9, i, steps=steps)
        if t.goals[0].kind == kind:
            return i, t
    raise AssertionError(f"no {kind} task found")


def test_type_fills_the_focused_field_and_success_reads_the_text():
    index, task = _task_with("fill", 3)
    goal = task.goals[0]
    env = gym.make("guienv/SynthApp-v0", mode="app", steps=3, max_steps=20)
    obs, info = env.reset(options={"index": index, "task_seed": 9})
    assert goal.value in obs["instruction"] and goal.target in obs["instruction"]
    # typing before any field has focus is an invalid no-op
    obs2, r, term, trunc, info = env.step(Action.type_text("x"))
    assert info["invalid"] and "focused" in info["invalid_reason"] and r == 0.0
    np.testing.assert_array_equal(obs2["screenshot"], obs["screenshot"])
    agent = OracleAgent()
    while info["oracle_action"]["type"] != "type":  # navigate and focus the field
        obs, r, term, trunc, info = env.step(agent.act(obs, info))
    field_box = tuple(int(v) for v in info["target_box"])
    before = obs["screenshot"]
    obs, r, term, trunc, info = env.step(Action.type_text("wrong text"))
    st = env.unwrapped.state
    assert st.fields[goal.target] == "wrong text" and r == 0.0 and not term
    x1, y1, x2, y2 = field_box
    assert not np.array_equal(before[y1:y2, x1:x2], obs["screenshot"][y1:y2, x1:x2])  # text is drawn
    el = next(e for e in env.unwrapped.elements() if e.resource_id == f"field:{goal.target}")
    assert el.text == "wrong text" and el.editable
    # the oracle wants the right text typed over it (type replaces, like ACTION_SET_TEXT)
    assert info["oracle_action"] == {"type": "type", "text": goal.value}
    obs, r, term, trunc, info = env.step(Action.type_text(f"  {goal.value} "))
    assert (r, term) == (1.0, True) and env.unwrapped.state.fields[goal.target] == f"  {goal.value} "


def test_type_with_point_focuses_then_fills():
    index, task = _task_with("fill", 2)
    env = gym.make("guienv/SynthApp-v0", mode="app", steps=2)
    obs, info = env.reset(options={"index": index, "task_seed": 9})
    obs, r, *_ , info = env.step(OracleAgent().act(obs, info))  # to the form tab
    w = task.app.widget(env.unwrapped.state, f"field:{task.goals[0].target}")
    obs, r, term, trunc, info = env.step(Action.type_text(task.goals[0].value, point=w.center))
    assert (r, term) == (1.0, True)


def test_app_transitions_toggle_back_dialog_and_truncation():
    index, task = _task_with("delete", 4)
    env = gym.make("guienv/SynthApp-v0", mode="app", steps=4, max_steps=6)
    obs, info = env.reset(options={"index": index, "task_seed": 9})
    agent = OracleAgent()
    st = env.unwrapped.state
    while st.dialog is None:
        obs, r, term, trunc, info = env.step(agent.act(obs, info))
        st = env.unwrapped.state
    item = task.goals[0].target
    assert st.dialog == ("delete", item) and any(e.text == "Delete" for e in env.unwrapped.elements())
    # while a dialog is open, taps outside it do nothing; back dismisses it
    obs, r, term, trunc, info = env.step(Action.click(2, 2))
    assert env.unwrapped.state.dialog == ("delete", item) and not info["invalid"]
    obs, r, term, trunc, info = env.step(Action.simple("navigate_back"))
    assert env.unwrapped.state.dialog is None and item in env.unwrapped.state.items
    # off-screen points and unknown action types are invalid no-ops; truncation at max_steps
    obs, r, term, trunc, info = env.step(Action.click(-5, 10))
    assert info["invalid"] and not trunc
    obs, r, term, trunc, info = env.step(Action.open_app("Maps"))
    assert info["invalid"] and trunc and not term and info["steps_left"] == 0
    with pytest.raises(RuntimeError):
        env.step(Action.simple("wait"))
    # a switch flips on click and its element reports it
    app = task.app
    s = app.initial_state(np.random.default_rng(0))
    s.tab = app.tab_of["settings"]
    lab = app.toggle_labels[0]
    w = app.widget(s, f"switch:{lab}")
    s2, why = app.apply(s, Action.click(*w.center))
    assert why is None and s2.toggles[lab] is (not s.toggles[lab])
    assert not np.array_equal(app.render(s), app.render(s2))


@pytest.mark.parametrize("distractors", [0, 6])
def test_app_distractor_knob(distractors):
    task = make_app_task(SynthConfig(distractors=distractors), 1, 0, steps=2)
    app, s = task.app, task.start.copy()
    s.tab = app.tab_of["list"]
    assert sum(e.class_name == "ListItem" for e in app.elements(s)) == distractors + 1
    s.tab = app.tab_of["settings"]
    assert sum(e.class_name == "Switch" for e in app.elements(s)) == distractors + 1
    s.tab = app.tab_of["form"]
    assert sum(e.class_name == "EditText" for e in app.elements(s)) == distractors + 1


def test_finish_ends_the_episode_without_reward():
    env = gym.make("guienv/SynthApp-v0", mode="app", steps=2)
    env.reset(seed=3)
    obs, r, term, trunc, info = env.step(Action.finish())
    assert (r, term, trunc) == (0.0, True, False)


# -- grounding mode ---------------------------------------------------------------------------
def test_grounding_env_matches_samples_and_scores_hits():
    cfg = SynthConfig(seed=21)
    samples = make_grounding_samples(3, cfg)
    env = gym.make("guienv/SynthApp-v0", mode="grounding", config=cfg)
    for i, s in enumerate(samples):
        obs, info = env.reset(options={"index": i})
        assert obs["instruction"] == s.instruction and info["target_box"] == s.box
        np.testing.assert_array_equal(obs["screenshot"], s.image.load())
        x1, y1, x2, y2 = s.box
        obs, r, term, trunc, info = env.step(Action.click(x1 - 3, y1 - 3))
        assert (r, term) == (0.0, True) and not info["invalid"]
        env.reset(options={"index": i})
        obs, r, *_ = env.step(Action.box_answer((x1, y1, x2, y2)))
        assert r == 1.0
    # model text in the grid1000 frame is converted before the hit test
    genv = gym.make("guienv/SynthApp-v0", mode="grounding", config=cfg, text_frame="grid1000")
    obs, info = genv.reset(options={"index": 0})
    x1, y1, x2, y2 = info["target_box"]
    gx, gy = convert_point(((x1 + x2) / 2, (y1 + y2) / 2), Frame.PIXEL, Frame.GRID1000, Screen(cfg.width, cfg.height))
    obs, r, term, trunc, info = genv.step(f'{{"action": "click", "coordinate": [{gx:.1f}, {gy:.1f}]}}')
    assert r == 1.0
    obs, info = genv.reset(options={"index": 0})
    obs, r, term, trunc, info = genv.step("I would tap somewhere")
    assert r == 0.0 and info["invalid"]


@pytest.mark.parametrize("mode", ["app", "grounding"])
def test_env_checker(mode):
    from gymnasium.utils.env_checker import check_env

    env = gym.make("guienv/SynthApp-v0", mode=mode, render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the checker's warnings count as failures
        check_env(env.unwrapped)
    obs, info = env.reset(seed=1)
    assert env.observation_space["screenshot"].shape == (568, 320, 3)
    np.testing.assert_array_equal(env.render(), obs["screenshot"])


def test_async_vector_env_with_oracle_actions():
    fns = [lambda: gym.make("guienv/SynthApp-v0", mode="app", steps=2),
           lambda: gym.make("guienv/SynthApp-v0", mode="grounding")]
    venv = gym.vector.AsyncVectorEnv(fns, shared_memory=False)
    try:
        obs, infos = venv.reset(seed=[0, 1])
        assert obs["screenshot"].shape == (2, 568, 320, 3)
        screen = Screen(320, 568)
        total = np.zeros(2)
        for _ in range(2):
            # Gymnasium batches dict infos key by key, with "_key" masks: unbatch env i's action
            batched = infos["oracle_action"]
            oracle = [{k: v[i] for k, v in batched.items() if not k.startswith("_") and batched["_" + k][i]}
                      for i in range(2)]
            acts = [to_space(Action.from_dict(a), screen) for a in oracle]
            batch = {k: (tuple(a[k] for a in acts) if k == "text" else np.stack([np.asarray(a[k]) for a in acts]))
                     for k in acts[0]}
            obs, rewards, term, trunc, infos = venv.step(batch)
            total += rewards
        assert total.tolist() == [1.0, 1.0]
    finally:
        venv.close()


# -- ScreenSpot export ------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["v2", "v1"])
def test_screenspot_export_round_trip(tmp_path, version):
    from tasks.screenspot import load_screenspot

    cfg = SynthConfig(seed=4)
    samples = make_grounding_samples(4, cfg) + make_grounding_samples(2, DESKTOP, seed=4)
    from tasks.screenspot import write_screenspot

    out = write_screenspot(samples, tmp_path / version, version=version)
    ds = load_screenspot(out)
    assert len(ds) == len(samples)
    got = {(s.instruction, s.box, s.split, s.data_type) for s in ds}
    want = {(s.instruction, s.box, s.split, s.data_type) for s in samples}
    assert got == want
    for s in ds:  # the written image is the generated one
        ref = next(x for x in samples if x.instruction == s.instruction and x.box == s.box)
        np.testing.assert_array_equal(s.image.load(), ref.image.load())
    out2 = export_screenspot(3, tmp_path / "helper", cfg)
    assert [s.box for s in load_screenspot(out2)] == [s.box for s in make_grounding_samples(3, cfg)]


@pytest.mark.parametrize("height", [280, 336])
def test_small_portrait_screens_render(height):
    """Regression: status bars on short portrait screens once drew an inverted rectangle."""
    from tasks.synthapp import SynthConfig, generate_screen

    cfg = SynthConfig(width=224, height=height, distractors=1)
    img = generate_screen(cfg, seed=0).image()
    assert np.asarray(img).shape[:2] == (height, 224)
