"""Format and composite rewards, YAML configuration, TRL adapters (rewards/format.py, composite.py, trl.py)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from guienv.actions import Action
from guienv.frames import Frame, Resize, Screen, convert_box
from guienv.io import encode_png
from guienv.types import ImageRef, Step
from rewards.composite import PRESETS, TERMS, CompositeConfig, CompositeReward, TermConfig, register_term
from rewards.format import FormatSpec, check_format, extract_tag, format_reward
from rewards.grounding import grounding_reward, gui_g1_reward
from rewards.trl import completion_text, composite_reward_func, grounding_reward_func
from tasks.screenspot import load_screenspot

BOX_TEXT = '[{"bbox_2d": [1207, 1025, 1350, 1079]}]'


@pytest.fixture()
def g1_sample(shared_data, tmp_path):
    for name in ("gui-g1_1033.json", "gui-g1_1033.jpg"):
        shutil.copy(shared_data / "screens" / name, tmp_path / name)
    return load_screenspot(tmp_path / "gui-g1_1033.json", fmt="gui-g1")[0]


def click_step() -> Step:
    png = encode_png(np.zeros((4, 4, 3), np.uint8))
    return Step(image=ImageRef(data=png), width=1080, height=2400, action=Action.click(540, 1200),
                candidates=((440, 1100, 640, 1300),))


def answer(think: str | None, body: str) -> str:
    return (f"<think>{think}</think>" if think is not None else "") + f"<answer>{body}</answer>"


CLICK_OK = '{"action": "click", "coordinate": [560, 1210]}'
CLICK_MISS = '{"action": "click", "coordinate": [60, 100]}'
TYPE_ACT = '{"action": "type", "text": "hello"}'


# -- format -----------------------------------------------------------------------------------
def test_format_rules():
    assert format_reward(answer("plan", CLICK_OK)) == 1.0
    assert check_format(answer(None, CLICK_OK)).reason == "missing <think>...</think>"
    assert "exactly once" in check_format(answer("a", CLICK_OK) + "<answer>x</answer>").reason
    assert "after" in check_format(f"<answer>{CLICK_OK}</answer><think>x</think>").reason
    assert format_reward(f"<answer>{CLICK_OK}</answer><think>x</think>", FormatSpec(ordered=False)) == 1.0
    assert "does not parse" in check_format(answer("a", "click somewhere")).reason
    assert format_reward(answer("a", "whatever"), FormatSpec(require_parsable=False)) == 1.0
    # strict: nothing outside the tags
    assert format_reward("Sure! " + answer("a", CLICK_OK), FormatSpec(strict=True)) == 0.0
    assert format_reward(" \n" + answer("a", CLICK_OK) + "\n", FormatSpec(strict=True)) == 1.0
    # allowed types (GUI-G1 wants a box)
    spec = FormatSpec(required_tags=(), answer_tag=None, allowed_types=("box",))
    assert format_reward(BOX_TEXT, spec) == 1.0
    assert "not in ['box']" in check_format(CLICK_OK, spec).reason
    # tool_call style
    call = '<tool_call>{"name": "mobile_use", "arguments": ' + CLICK_OK + "}</tool_call>"
    assert format_reward(call, FormatSpec(required_tags=("tool_call",), answer_tag="tool_call")) == 1.0
    assert extract_tag("<a> x </a><a>y</a>", "a") == "x" and extract_tag("<a>x", "a") is None
    with pytest.raises(ValueError):
        FormatSpec(required_tags=("a b",))


def test_format_never_raises_on_hostile_text():
    for text in [None, 5, "<think>" * 20000, "</answer><answer>" * 5000, "<think>x</think>" + "<answer>" + "[" * 50000,
                 "a" * 200_000, "\x00\udcff"]:
        assert format_reward(text) == 0.0


# -- composite presets --------------------------------------------------------------------------
def test_gui_g1_preset_equals_the_reward_function(g1_sample):
    r = CompositeReward("gui-g1")(BOX_TEXT, g1_sample)
    assert r.total == pytest.approx(grounding_reward(BOX_TEXT, g1_sample).total)
    assert r.terms["gui_g1"] == r.total and r.action.type.value == "box"
    assert CompositeReward("gui-g1")("no idea", g1_sample).total == 0.0


def test_gui_r1_preset_levels():
    s, reward = click_step(), CompositeReward("gui-r1-lenient")
    assert reward(answer("tap the button", CLICK_OK), s).total == pytest.approx(1.0)
    assert reward(answer(None, CLICK_OK), s).total == pytest.approx(0.8)  # no <think>: no format credit
    assert reward(answer("x", CLICK_MISS), s).total == pytest.approx(0.2)
    assert reward(answer("x", '{"action": "click", "coordinate": [680, 1200]}'), s).total == pytest.approx(1.0)  # 140 px
    assert reward("nonsense", s).total == 0.0


def test_ui_s1_preset_levels(g1_sample):
    s, reward = click_step(), CompositeReward("ui-s1")
    assert reward(answer("x", CLICK_OK), s).total == pytest.approx(0.1 + 0.9 * 1.0)
    assert reward(answer("x", CLICK_MISS), s).total == pytest.approx(0.1 + 0.9 * 0.5)
    assert reward(answer("x", TYPE_ACT), s).total == pytest.approx(0.1 + 0.9 * 0.1)
    assert reward(answer("x", "tap it"), s).total == pytest.approx(0.0)  # unparsable: no format either
    # on a grounding sample: a hit is exact, a miss is type-only, a non-pointer is wrong type
    assert reward(answer("x", BOX_TEXT), g1_sample).terms["action_levels"] == 1.0
    assert reward(answer("x", '[{"bbox_2d": [0, 0, 10, 10]}]'), g1_sample).terms["action_levels"] == 0.5
    assert reward(answer("x", TYPE_ACT), g1_sample).terms["action_levels"] == 0.1


def test_resized_frame_and_custom_terms(g1_sample):
    resize = Resize(max_pixels=1280 * 28 * 28)
    rb = convert_box((1207, 1025, 1350, 1079), Frame.PIXEL, Frame.RESIZED, Screen(1920, 1080, resize))
    cfg = CompositeConfig(terms=[TermConfig("hit", 1.0), TermConfig("iou", 2.0), TermConfig("gaussian_point", 0.5),
                                 TermConfig("se_gui_point", 0.25), TermConfig("box", 1.0)],
                          frame="resized", max_pixels=1280 * 28 * 28, answer_tag=None)
    r = CompositeReward(cfg)(json.dumps([{"bbox_2d": list(rb)}]), g1_sample)
    ref = gui_g1_reward((1207, 1025, 1350, 1079), g1_sample.box, 1920, 1080)
    assert r.terms["hit"] == 1.0
    assert r.terms["iou"] == pytest.approx(ref.iou) and r.terms["box"] == pytest.approx(ref.box)
    assert r.total == pytest.approx(1 + 2 * ref.iou + 0.5 * r.terms["gaussian_point"] + 0.25 * r.terms["se_gui_point"] + ref.box)
    with pytest.raises(TypeError, match="GroundingSample"):
        CompositeReward(cfg)(json.dumps([{"bbox_2d": list(rb)}]), click_step())


def test_register_term():
    name = "test_length_penalty"
    if name not in TERMS:
        register_term(name)(lambda inp, per_char=0.01: -per_char * len(inp.text))
    with pytest.raises(ValueError, match="already registered"):
        register_term(name)(lambda inp: 0.0)
    r = CompositeReward({"terms": [{"name": name, "params": {"per_char": 0.5}}]})(answer("x", CLICK_OK), click_step())
    assert r.total == pytest.approx(-0.5 * len(answer("x", CLICK_OK)))


# -- YAML configuration -----------------------------------------------------------------------
def test_config_from_yaml_file(tmp_path):
    path = tmp_path / "reward.yaml"
    path.write_text(
        "frame: grid1000\n"
        "answer_tag: answer\n"
        "terms:\n"
        "  - {name: accuracy, weight: 0.8, params: {protocol: gui-r1}}\n"
        "  - name: format\n"
        "    weight: 0.2\n"
        "    params:\n"
        "      required_tags: [think, answer]\n"
    )
    cfg = CompositeConfig.from_yaml(path)
    assert cfg.frame == "grid1000"
    assert cfg.terms == PRESETS["gui-r1-lenient"].terms
    assert CompositeConfig.from_yaml(str(path)).to_dict() == cfg.to_dict()
    # 0-1000 grid click at the GT point (540/1080, 1200/2400) -> (500, 500)
    r = CompositeReward(cfg)(answer("x", '{"action": "click", "coordinate": [500, 500]}'), click_step())
    assert r.total == pytest.approx(1.0)


@pytest.mark.parametrize(
    "text, match",
    [
        ("terms:\n  - {name: nope}\n", "unknown reward term 'nope'"),
        ("terms:\n  - {name: accuracy, params: {protcol: qwen}}\n", "bad params"),
        ("terms:\n  - {name: format, params: {required_tag: [a]}}\n", "bad params"),
        ("terms:\n  - {name: accuracy}\nframes: pixel\n", "unknown key 'frames'"),
        ("terms:\n  - {name: accuracy, extra: 1}\n", r"terms\[0\]"),
        ("terms: {name: accuracy}\n", "must be a list"),
        ("frame: inches\nterms:\n  - {name: hit}\n", "inches"),
        ("terms: []\n", "at least one term"),
    ],
)
def test_bad_configs_fail_at_construction(text, match):
    with pytest.raises(ValueError, match=match):
        CompositeReward(CompositeConfig.from_yaml(text))


def test_unknown_protocol_in_a_term_fails_when_scored():
    r = CompositeReward({"terms": [{"name": "accuracy", "params": {"protocol": "nope"}}]})
    with pytest.raises(ValueError, match="unknown matching protocol"):
        r(answer("x", CLICK_OK), click_step())


# -- TRL adapters -------------------------------------------------------------------------------
def trl_call(fn, completions, **columns):
    """Call ``fn`` the way TRL's GRPOTrainer does: prompts, completions, completion_ids, trainer
    state and every dataset column as keyword arguments."""
    n = len(completions)
    return fn(prompts=[[{"role": "user", "content": "find it"}]] * n, completions=completions,
              completion_ids=[[1, 2, 3]] * n, trainer_state=None, **columns)


def test_completion_text_shapes():
    assert completion_text("abc") == "abc"
    assert completion_text([{"role": "assistant", "content": "abc"}]) == "abc"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"},
                                                               {"type": "text", "text": "b"}]}]) == "ab"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert completion_text(None) == "" and completion_text([]) == ""


def test_grounding_reward_func_with_trl_calling_convention(g1_sample):
    box, size = list(g1_sample.box), [1920, 1080]
    texts = [BOX_TEXT, "no idea", '[{"point_2d": [1280, 1050]}]', '[{"bbox_2d": [0, 0, 50, 50]}]']
    expected = [grounding_reward(t, g1_sample).total for t in texts]
    conv = [[{"role": "assistant", "content": t}] for t in texts]
    fn = grounding_reward_func()
    assert fn.__name__ == "gui_g1"
    got = trl_call(fn, conv, bbox=[box] * 4, image_size=[size] * 4, instruction=["x"] * 4)
    assert got == pytest.approx(expected) and all(isinstance(v, float) for v in got)
    assert trl_call(fn, texts, bbox=[box] * 4, width=[1920] * 4, height=[1080] * 4) == pytest.approx(expected)
    hits = trl_call(grounding_reward_func("hit"), texts, bbox=[box] * 4, image_size=[size] * 4)
    assert hits == [1.0, 0.0, 1.0, 0.0]
    gauss = trl_call(grounding_reward_func("gaussian"), texts, bbox=[box] * 4, image_size=[size] * 4)
    assert gauss[0] > 0.9 and gauss[1] == 0.0
    se = trl_call(grounding_reward_func("se_gui"), texts, bbox=[box] * 4, image_size=[size] * 4)
    assert se[0] > 1.9 and se[1] == 0.0
    # a per-row frame column: the same box in 0-1000 grid units
    g = convert_box((1207, 1025, 1350, 1079), Frame.PIXEL, Frame.GRID1000, Screen(1920, 1080))
    grid_text = json.dumps([{"bbox_2d": list(g)}])
    got = trl_call(fn, [grid_text, BOX_TEXT], bbox=[box] * 2, image_size=[size] * 2, frame=["grid1000", None])
    assert got == pytest.approx([expected[0], expected[0]])
    assert trl_call(fn, [], bbox=[], image_size=[]) == []
    with pytest.raises(KeyError, match="bbox"):
        trl_call(fn, texts, image_size=[size] * 4)
    with pytest.raises(ValueError, match="term"):
        grounding_reward_func("nope")


def test_composite_reward_func_with_steps_and_samples(g1_sample):
    fn = composite_reward_func("gui-r1-lenient")
    assert fn.__name__ == "gui_r1_lenient"
    gt = Action.click(540, 1200).to_dict()
    cands = [[[440, 1100, 640, 1300]]] * 3
    texts = [answer("x", CLICK_OK), answer(None, CLICK_OK), answer("x", CLICK_MISS)]
    got = trl_call(fn, texts, gt_action=[gt] * 3, candidates=cands, image_size=[[1080, 2400]] * 3)
    assert got == pytest.approx([1.0, 0.8, 0.2])
    g1 = composite_reward_func("gui-g1")
    assert trl_call(g1, [BOX_TEXT], bbox=[list(g1_sample.box)], image_size=[[1920, 1080]]) == pytest.approx(
        [grounding_reward(BOX_TEXT, g1_sample).total])
    with pytest.raises(ValueError, match="gt_action"):
        trl_call(fn, texts[:1], gt_action=[{"type": "teleport"}], image_size=[[1080, 2400]])
