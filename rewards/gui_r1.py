"""GUI-R1's reward, rule for rule: ``0.8 * accuracy + 0.2 * format`` (the ``gui-r1`` preset).

Source: Luo et al., "GUI-R1: A Generalist R1-Style Vision-Language Action Model For GUI Agents",
arXiv 2504.10458; repository ``ritzz-ai/GUI-R1``, file ``verl/utils/reward_score/r1gui.py``
(``r1gui_accuracy_reward``, ``calculate_f1_score``, ``r1gui_compute_score``). The answer is read
by :func:`guienv.parsing.gui_r1.read_gui_r1` (its quirks are listed there). Accuracy:

* the predicted action name must equal the ground truth's (lower-cased), else 0;
* ``click``: with a 2-number ground truth (a point), right when the squared distance is below
  ``140**2`` (strict); with a 4-number one (a box), right when the point is *strictly* inside;
* ``type``, ``select``, ``scroll``: right when :func:`gui_r1_f1` of the texts is >= 0.5 (a scroll's
  text is its direction);
* every other action (``long_press``, ``open_app``, ``press_back``, ``wait``, ...): the name alone.

:func:`gui_r1_f1`: ``[`` and ``]`` removed, lower-cased, whitespace-split into token **sets**; when
both sides are one token, either containing the other scores 1; else the F1 of the sets.

Ground truth from guienv targets (:func:`gui_r1_truth`; GUI-R1's data-conversion code is not
public, so this mapping is guienv's): a :class:`~guienv.types.GroundingSample` is a ``click``
with its box; a :class:`~guienv.types.Step` maps ``click``/``long_press`` (the GT point),
``type``/``open_app`` (the text), ``scroll`` (AndroidControl's direction as recorded), ``swipe``
(``scroll`` with the content direction, the opposite of the finger's), ``navigate_back`` ->
``press_back``, ``navigate_home`` -> ``press_home``, ``keyboard_enter`` -> ``press_enter``,
``wait``, ``finish`` -> ``complete``. Points are compared in the target's pixel frame after
converting the prediction from the composite's frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from guienv.actions import OPPOSITE, ActionType
from guienv.parsing.gui_r1 import NO_TEXT, GuiR1Answer, gui_r1_format_ok, read_gui_r1
from guienv.types import GroundingSample, Step

RADIUS = 140  # pixels, compared squared and strictly
NAMES = {
    ActionType.CLICK: "click",
    ActionType.LONG_PRESS: "long_press",
    ActionType.TYPE: "type",
    ActionType.OPEN_APP: "open_app",
    ActionType.SCROLL: "scroll",
    ActionType.SWIPE: "scroll",
    ActionType.NAVIGATE_BACK: "press_back",
    ActionType.NAVIGATE_HOME: "press_home",
    ActionType.KEYBOARD_ENTER: "press_enter",
    ActionType.WAIT: "wait",
    ActionType.FINISH: "complete",
}


@dataclass(frozen=True)
class GuiR1Truth:
    """GUI-R1's ground truth: ``{"action", "gt_bbox", "input_text"}``."""

    action: str
    gt_bbox: tuple[float, ...] = ()
    input_text: str = NO_TEXT


def gui_r1_truth(target: Union[GroundingSample, Step]) -> GuiR1Truth:
    """The GUI-R1 ground truth of a guienv target (mapping in the module doc)."""
    if isinstance(target, GroundingSample):
        return GuiR1Truth("click", tuple(float(v) for v in target.box))
    gt = target.action
    name = NAMES.get(gt.type, gt.type.value)
    if gt.type in (ActionType.CLICK, ActionType.LONG_PRESS) and gt.point is not None:
        return GuiR1Truth(name, tuple(float(v) for v in gt.point))
    if gt.type in (ActionType.TYPE, ActionType.OPEN_APP):
        return GuiR1Truth(name, (), gt.text or "")
    if gt.type in (ActionType.SCROLL, ActionType.SWIPE) and gt.direction is not None:
        d = gt.direction if gt.type is ActionType.SCROLL else OPPOSITE[gt.direction]
        return GuiR1Truth(name, (), d)
    return GuiR1Truth(name)


def gui_r1_f1(predicted: str, truth: str) -> float:
    """GUI-R1's text score (see the module doc)."""
    p = set(predicted.replace("[", "").replace("]", "").lower().split())
    g = set(truth.replace("[", "").replace("]", "").lower().split())
    if len(p) == 1 and len(g) == 1:
        (a,), (b,) = p, g
        if a in b or b in a:
            return 1.0
    common = len(p & g)
    precision = common / len(p) if p else 0.0
    recall = common / len(g) if g else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def gui_r1_accuracy(answer: GuiR1Answer, truth: GuiR1Truth, point: tuple[float, float] | None = None) -> float:
    """1.0 or 0.0 by GUI-R1's accuracy rule. ``point`` (default ``answer.point``) is the predicted
    point already in the ground truth's frame."""
    if answer.action != truth.action.lower():
        return 0.0
    x, y = answer.point if point is None else point
    if truth.action.lower() == "click":
        g = truth.gt_bbox
        if len(g) == 2:
            return 1.0 if (x - g[0]) ** 2 + (y - g[1]) ** 2 < RADIUS**2 else 0.0
        if len(g) == 4:
            return 1.0 if g[0] < x < g[2] and g[1] < y < g[3] else 0.0
        return 0.0
    if truth.action.lower() in ("type", "select", "scroll"):
        return 1.0 if gui_r1_f1(answer.input_text, truth.input_text) >= 0.5 else 0.0
    return 1.0


def gui_r1_format(text: str) -> float:
    """GUI-R1's 0/1 format reward (:func:`guienv.parsing.gui_r1.gui_r1_format_ok`)."""
    return 1.0 if gui_r1_format_ok(text) else 0.0


def gui_r1_reward(text: str, target: Union[GroundingSample, Step]) -> float:
    """GUI-R1's ``0.8 * accuracy + 0.2 * format`` of a completion in the target's pixel frame."""
    return 0.8 * gui_r1_accuracy(read_gui_r1(text), gui_r1_truth(target)) + 0.2 * gui_r1_format(text)
