"""The ``gui-r1`` preset reproduces GUI-R1's reward code rule for rule (issue 13, "the same for
GUI-R1's preset"). Rules written from the public source (ritzz-ai/GUI-R1,
``verl/utils/reward_score/r1gui.py``); the cross-check against the unmodified file is
``benchmarks/crosscheck_gui_r1.py``."""

from __future__ import annotations

import time

import numpy as np
import pytest

from guienv.actions import Action
from guienv.io import encode_png
from guienv.parsing.gui_r1 import gui_r1_format_ok, read_gui_r1
from guienv.types import GroundingSample, ImageRef, Step
from rewards.composite import PRESETS, CompositeReward
from rewards.gui_r1 import gui_r1_f1, gui_r1_truth

PNG = encode_png(np.zeros((4, 4, 3), np.uint8))


def step(action: Action) -> Step:
    return Step(image=ImageRef(data=PNG), width=1080, height=2400, action=action, candidates=((440, 1100, 640, 1300),))


def ans(action: str, point=(540, 1200), text: str = "no input text", think: bool = True) -> str:
    body = f"[{{'action': '{action}', 'point': [{point[0]}, {point[1]}], 'input_text': '{text}'}}]"
    return ("<think>plan</think>" if think else "") + f"<answer>{body}</answer>"


@pytest.fixture(scope="module")
def r1():
    return CompositeReward("gui-r1")


@pytest.fixture(scope="module")
def lenient():
    return CompositeReward("gui-r1-lenient")


def test_exact_answer_and_weights(r1):
    r = r1(ans("click"), step(Action.click(540, 1200)))
    assert r.terms == {"gui_r1_accuracy": 1.0, "gui_r1_format": 1.0} and r.total == pytest.approx(1.0)
    assert r1(ans("click", think=False), step(Action.click(540, 1200))).total == pytest.approx(0.8)


def test_action_name_needs_single_quotes(r1, lenient):
    text = '<think>p</think><answer>[{"action": "click", "point": [540, 1200], "input_text": "no input text"}]</answer>'
    assert read_gui_r1(text).action == "no action"
    assert r1(text, step(Action.click(540, 1200))).terms["gui_r1_accuracy"] == 0.0
    assert lenient(text, step(Action.click(540, 1200))).terms["accuracy"] == 1.0  # guienv's reading


def test_no_answer_tag_is_no_action(r1):
    text = "<think>p</think>[{'action': 'click', 'point': [540, 1200], 'input_text': 'no input text'}]"
    assert read_gui_r1(text) == read_gui_r1("") and read_gui_r1(text).point == (0, 0)
    assert r1(text, step(Action.click(540, 1200))).total == 0.0


@pytest.mark.parametrize("point", ["540.5, 1200", "-5, 1200"])
def test_points_are_non_negative_integers_else_the_origin(point):
    a = read_gui_r1(f"<answer>[{{'action': 'click', 'point': [{point}], 'input_text': 'no input text'}}]</answer>")
    assert a.point == (0, 0) and not a.point_found


def test_missing_point_falls_back_to_the_origin_and_can_hit(r1):
    text = "<think>p</think><answer>[{'action': 'click', 'input_text': 'no input text'}]</answer>"
    assert r1(text, step(Action.click(100, 50))).terms["gui_r1_accuracy"] == 1.0  # (0, 0) is within 140 px
    assert r1(text, step(Action.click(540, 1200))).terms["gui_r1_accuracy"] == 0.0


def test_radius_and_box_are_strict(r1, lenient):
    s = step(Action.click(540, 1200))
    assert r1(ans("click", (540, 1339)), s).terms["gui_r1_accuracy"] == 1.0
    assert r1(ans("click", (540, 1340)), s).terms["gui_r1_accuracy"] == 0.0  # exactly 140 px: a miss
    sample = GroundingSample("g", ImageRef(data=PNG), "x", (100, 100, 200, 150), 1080, 2400)
    assert gui_r1_truth(sample).gt_bbox == (100, 100, 200, 150)
    assert r1(ans("click", (150, 120)), sample).terms["gui_r1_accuracy"] == 1.0
    assert r1(ans("click", (200, 120)), sample).terms["gui_r1_accuracy"] == 0.0  # on the edge: outside


def test_text_rules(r1):
    assert gui_r1_f1("cat", "cats") == 1.0 and gui_r1_f1("[Cats]", "cat") == 1.0  # one token each: containment
    assert gui_r1_f1("hello there", "hello world") == 0.5
    assert gui_r1_f1("x y hello", "hello world") == pytest.approx(0.4)
    s = step(Action.type_text("hello world"))
    assert r1(ans("type", text="hello there"), s).terms["gui_r1_accuracy"] == 1.0
    assert r1(ans("type", text="x y hello"), s).terms["gui_r1_accuracy"] == 0.0
    scroll = step(Action.scroll("down"))
    assert gui_r1_truth(scroll).input_text == "down"
    assert r1(ans("scroll", text="DOWN"), scroll).terms["gui_r1_accuracy"] == 1.0
    assert r1(ans("scroll", text="up"), scroll).terms["gui_r1_accuracy"] == 0.0


def test_name_only_actions(r1):
    assert r1(ans("open_app", text="Some Other App"), step(Action.open_app("Chrome"))).terms["gui_r1_accuracy"] == 1.0
    assert r1(ans("long_press", (0, 0)), step(Action.long_press(540, 1200))).terms["gui_r1_accuracy"] == 1.0
    assert r1(ans("press_back"), step(Action.simple("navigate_back"))).terms["gui_r1_accuracy"] == 1.0
    assert r1(ans("CLICK"), step(Action.click(540, 1200))).terms["gui_r1_accuracy"] == 1.0  # names lower-cased


@pytest.mark.parametrize("text, ok", [
    (ans("click"), True),
    ("<think>p</think> \n <answer>[]</answer>", True),  # whitespace between, and an empty list
    (ans("click") + " done", False),  # nothing after
    ("so: " + ans("click"), False),  # nothing before
    ("<think>p</think><answer>{'action': 'click', 'point': [1, 2], 'input_text': 'x'}</answer>", False),  # not a list
    (ans("type"), False),  # type needs a text
    (ans("scroll", text="sideways"), False),
    (ans("click", ("1.5", 2)), False),  # integer points only
    ("<think>p</think><answer>[dict(action='click', point=[1, 2], input_text='x')]</answer>", False),  # no eval
])
def test_format_rule(text, ok):
    assert gui_r1_format_ok(text) is ok


def test_hostile_text_is_fast_and_never_raises(r1):
    s = step(Action.click(540, 1200))
    t0 = time.perf_counter()
    for text in ["<think>" * 5000 + "<answer>" + "{[1,1]" * 300 + "</answer>", "<answer>" + "{[1,1]" * 20000 + "</answer>",
                 "<think></think><answer>" + "[" * 5000 + "</answer>", None]:
        assert 0.0 <= r1(text if isinstance(text, str) else "", s).total <= 1.0
        assert gui_r1_format_ok(text) is False
    assert time.perf_counter() - t0 < 5


def test_presets():
    assert [t.name for t in PRESETS["gui-r1"].terms] == ["gui_r1_accuracy", "gui_r1_format"]
    assert [t.weight for t in PRESETS["gui-r1"].terms] == [0.8, 0.2]
    assert PRESETS["gui-r1-lenient"].terms[0].params == {"protocol": "gui-r1"}
