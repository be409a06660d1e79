"""The ``gui-g1`` preset reproduces GUI-G1's reward code rule for rule (issue 13, items 8-10).

Rules written from the public source (Yuqi-Zhou/GUI-G1,
``src/open-r1-multimodal/src/open_r1/grpo_rec.py`` and ``trainer/grpo_trainer.py``); no peer code
is needed here (the cross-check against the unmodified file is ``benchmarks/crosscheck_gui_g1.py``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from guienv.parsing import read_gui_g1_box
from guienv.types import GroundingSample, ImageRef
from rewards.composite import PRESETS, CompositeConfig, CompositeReward
from rewards.grounding import box_iou, gui_g1_reward, gui_g1_rewards
from rewards.trl import composite_reward_func

GT = (100.0, 200.0, 180.0, 240.0)
SAMPLE = GroundingSample("s", ImageRef(path="unused.png"), "the icon", GT, 1000, 800)
BOX = [110, 205, 170, 236]
FULL = gui_g1_reward(BOX, GT, 1000, 800, iou_convention="reference").total
LIST = json.dumps([{"bbox_2d": BOX}])


@pytest.fixture(scope="module")
def strict():
    return CompositeReward("gui-g1")


@pytest.fixture(scope="module")
def lenient():
    return CompositeReward("gui-g1-lenient")


# -- rule 1: a line that is exactly ```json opens the block; nothing else is unwrapped ---------
@pytest.mark.parametrize("text", [
    LIST,
    f"```json\n{LIST}\n```",
    f"I see it.\n```json\n{LIST}\n```\nthat's all",
    f"```json\n{LIST}",  # unclosed fence: the rest of the text
])
def test_read_forms(strict, text):
    assert read_gui_g1_box(text) == tuple(float(v) for v in BOX)
    assert strict(text, SAMPLE).total == pytest.approx(FULL) and FULL > 1.0


@pytest.mark.parametrize("text", [
    f"<think>the icon is top left</think>{LIST}",  # <think> then a list
    f"<answer>{LIST}</answer>",  # answer tags
    f"```\n{LIST}\n```",  # unlabelled fence
    f"```JSON\n{LIST}\n```",  # case matters
    f"```json \n{LIST}\n```",  # the fence line must be exact
    f"The box is {LIST}",  # prose
])
def test_wrapped_answers_score_zero_strict_but_not_lenient(strict, lenient, text):
    assert read_gui_g1_box(text) is None
    assert strict(text, SAMPLE).total == 0.0
    assert lenient(text, SAMPLE).total > 1.0  # the lenient parser finds the box


# -- rule 2: a Python literal, not JSON ------------------------------------------------------------
def test_json_true_null_is_no_python_literal(strict, lenient):
    text = json.dumps([{"bbox_2d": BOX, "visible": True, "label": None}])
    assert "true" in text and "null" in text
    assert strict(text, SAMPLE).total == 0.0
    assert lenient(text, SAMPLE).total == pytest.approx(gui_g1_reward(BOX, GT, 1000, 800).total)
    py = str([{"bbox_2d": BOX, "visible": True, "label": None}])  # the Python spelling reads
    assert strict(py, SAMPLE).total == pytest.approx(FULL)
    assert strict(str(({"bbox_2d": tuple(BOX)},)), SAMPLE).total == pytest.approx(FULL)  # tuples too


# -- rule 3: only value[0]["bbox_2d"], its first four entries -------------------------------------
@pytest.mark.parametrize("value, readable", [
    ([{"bbox_2d": BOX + [9, 9]}], True),  # longer list: first four
    ([{"bbox_2d": BOX[:3]}], False),
    ([{"label": "x"}, {"bbox_2d": BOX}], False),  # only the first element counts
    ({"bbox_2d": BOX}, False),  # a dict, not a list
    ([{"bbox_2d": [str(v) for v in BOX]}], False),
    ([{"point_2d": BOX[:2]}], False),  # no point answers in GUI-G1's reward
    ({0: {"bbox_2d": BOX}}, True),  # indexing by 0 works on a dict keyed 0, as in the reference
])
def test_first_element_bbox_only(strict, value, readable):
    text = str(value)
    assert (read_gui_g1_box(text) is not None) is readable
    assert strict(text, SAMPLE).total == (pytest.approx(FULL) if readable else 0.0)


def test_hostile_text_never_raises():
    for text in [None, 7, "", "[" * 10_000 + "]" * 10_000, "9" * 10_000, "```json\n" * 1000, "a" * 200_000]:
        assert read_gui_g1_box(text) is None


# -- item 9: inverted boxes (a documented difference) and the 1-px IoU rounding ----------------------
def test_inverted_boxes_score_zero_by_design(strict):
    inverted = [BOX[2], BOX[3], BOX[0], BOX[1]]
    assert read_gui_g1_box(str([{"bbox_2d": inverted}])) == tuple(float(v) for v in inverted)  # it is read ...
    assert strict(str([{"bbox_2d": inverted}]), SAMPLE).total == 0.0  # ... and scored 0 (GUI-G1 scores it)
    assert gui_g1_reward(inverted, GT, 1000, 800).total == 0.0


def _reference_iou(p, g):
    """GUI-G1's IoU rule, written from its description: right/bottom edges minus 1, strict test,
    +1 back on the lengths, continuous union."""
    ix1, iy1 = max(p[0], g[0]), max(p[1], g[1])
    ix2, iy2 = min(p[2] - 1, g[2] - 1), min(p[3] - 1, g[3] - 1)
    inter = (ix2 - ix1 + 1) * (iy2 - iy1 + 1) if ix1 < ix2 and iy1 < iy2 else 0
    return inter / ((p[2] - p[0]) * (p[3] - p[1]) + (g[2] - g[0]) * (g[3] - g[1]) - inter)


def test_reference_iou_rounds_one_pixel_overlaps_like_gui_g1():
    pred, gt = (0.1, 0.1, 1.1, 1.1), (0.1, 0.1, 5.0, 5.0)
    # in floats (1.1 - 1) - 0.1 > 0 holds while 1.1 - 0.1 > 1 does not: the overlap counts
    assert (1.1 - 1) - 0.1 > 0 and not (1.1 - 0.1 > 1)
    assert box_iou(pred, gt, "reference") == _reference_iou(pred, gt) > 0
    b = gui_g1_rewards(np.array([pred]), np.array([gt]), (10, 10), iou_convention="reference")
    assert b.iou[0] == _reference_iou(pred, gt)
    rng = np.random.default_rng(0)  # and on many near-1-px pairs, to the last bit
    for _ in range(2000):
        g = tuple(float(v) for v in np.round(rng.uniform(0, 50, 2), 1)) * 2
        g = (g[0], g[1], g[0] + float(rng.integers(1, 4)) + 0.1, g[1] + float(rng.integers(1, 4)) + 0.1)
        p = (g[0] + float(rng.integers(-2, 3)) * 0.1, g[1], g[2] + float(rng.integers(-2, 3)), g[3])
        if p[2] >= p[0]:
            assert box_iou(p, g, "reference") == _reference_iou(p, g)


# -- preset wiring ----------------------------------------------------------------------------------
def test_preset_settings_and_the_parser_option():
    g1 = PRESETS["gui-g1"]
    assert g1.parser == "gui-g1" and g1.terms[0].params == {"iou_convention": "reference"}
    assert PRESETS["gui-g1-lenient"].parser == "lenient"
    cfg = CompositeConfig.from_yaml("parser: gui-g1\nterms:\n  - {name: gui_g1}\n")
    assert CompositeReward(cfg)(f"<answer>{LIST}</answer>", SAMPLE).total == 0.0
    with pytest.raises(ValueError, match="unknown parser"):
        CompositeConfig(terms=[], parser="strictest")


def test_trl_adapter_uses_the_strict_preset():
    fn = composite_reward_func("gui-g1")
    rows = {"bbox": [list(GT)] * 2, "image_size": [[1000, 800]] * 2}
    got = fn(prompts=["p", "p"], completions=[LIST, f"<answer>{LIST}</answer>"], **rows)
    assert got[0] == pytest.approx(FULL) and got[1] == 0.0


# -- item 10: the constant normaliser is GUI-G1's 64 --------------------------------------------------
def test_constant_normaliser_defaults_to_gui_g1s_64():
    torch = pytest.importorskip("torch")
    from agents.grpo import GRPOTrainerConfig
    from agents.grpo_loss import aggregate

    cfg = GRPOTrainerConfig()
    assert cfg.aggregation == "constant" and cfg.max_new_tokens == 64 and cfg.max_completion_length is None
    per_token, mask = torch.ones(2, 128), torch.ones(2, 128)
    mask[1, 10:] = 0
    # GUI-G1: sum of the sequence's token losses / 64, mean over sequences (even with 128-token completions)
    assert aggregate(per_token, mask, "constant", max_completion_length=64).item() == pytest.approx((128 + 10) / 64 / 2)


def test_trl_grounding_func_strict_parser_matches_the_preset(strict):
    from rewards.trl import grounding_reward_func

    fn = grounding_reward_func(parser="gui-g1", iou_convention="reference")
    texts = [LIST, f"```json\n{LIST}\n```", f"<answer>{LIST}</answer>", str([{"bbox_2d": [170, 236, 110, 205]}])]
    got = fn(completions=texts, bbox=[list(GT)] * 4, image_size=[[1000, 800]] * 4)
    assert got == pytest.approx([strict(t, SAMPLE).total for t in texts]) and got[2] == got[3] == 0.0
    lenient_fn = grounding_reward_func()
    assert lenient_fn(completions=texts[2:3], bbox=[list(GT)], image_size=[[1000, 800]])[0] > 1.0
    with pytest.raises(ValueError, match="parser"):
        grounding_reward_func(parser="json")
