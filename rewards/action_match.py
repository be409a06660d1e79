"""Step-level action matching for recorded trajectories (AndroidControl style).

``match_step(pred, step, protocol)`` compares a predicted :class:`~guienv.actions.Action` with the
ground-truth :class:`~guienv.types.Step` and returns a :class:`StepVerdict` (``type_match``,
``exact_match``, ``grounding`` for pointer steps). Published AndroidControl numbers are only
comparable within one protocol, so each is named after the evaluation script it follows:

``plain``
    guienv's simple default: type match, pointer inside a candidate element box (or within 4% of
    the screen's larger side of the GT point), text equal ignoring case and surrounding space,
    directions equal.

``infigui``
    InfiGUI-R1's evaluator reproduced rule for rule (``Reallm-Labs/InfiGUI-R1:
    eval/android_control/evaluate_android_control.py``, the script behind published InfiGUI-R1 and
    Qwen2.5-VL AndroidControl numbers), quirks included: see :mod:`rewards.infigui`. Model text is
    read with the reference's own extraction (:func:`guienv.parsing.infigui.parse_infigui_call`,
    done by ``guienv score``); a guienv action is judged as the ``mobile_use`` call it stands for
    (:func:`rewards.infigui.args_from_action`).

``qwen-content-direction`` (alias ``qwen``)
    guienv's corrected reading of the same evaluator. Same 1.2x enlarged boxes, ``0.04 * max(W,
    H)`` radius, containment rule for type/open and open-by-click as ``infigui``; the
    differences, on purpose:

    1. swipe/scroll: the prediction's *finger* direction is compared with the GT *finger*
       direction (the opposite of AndroidControl's content ``direction``), so replaying the
       ground truth scores right; ``infigui`` compares the finger direction with the stored
       content direction as is.
    2. the dominant axis of a swipe is decided on pixels (ties vertical), ``infigui`` on the
       normalised frame (``|dx/W| > |dy/H|``); they differ when ``W/H < |dx|/|dy| < 1``.
    3. a zero-length swipe has no direction (wrong); ``infigui`` calls it "up".
    4. predictions go through guienv's lenient parser (:func:`guienv.parsing.parse_action`): it
       accepts ``tap``, ``open_app``, ``scroll``, ``key`` "back", swipes given only a direction,
       and maps them to guienv actions; ``infigui`` scores those names as type misses and a swipe
       without both points as wrong. The lenient parser rejects an empty or blank ``type``/
       ``open`` text (an invalid action: wrong), where ``infigui`` counts an empty ``open`` name
       right (it is contained in any name).
    5. ``system_button`` "Menu" is unreadable to the lenient parser (wrong); ``infigui`` makes it
       a type match with a wrong button.
    6. distances are scaled by the image size of the prediction's frame: the resized size for
       ``resized`` predictions, the original screen size otherwise (``--frame pixel``);
       ``infigui`` always scales by the resized size.

    ``qwen`` names this protocol, as it did before ``infigui`` existed, so numbers published
    with ``--protocol qwen`` keep their meaning; use ``infigui`` to compare with published
    InfiGUI-R1 / Qwen2.5-VL numbers.

``os-atlas`` (alias ``aitw``)
    OS-Atlas' AndroidControl script (``OS-Copilot/OS-Atlas:
    eval/eval_scripts/android_control/evaluation_unify.py``, SeeClick's "AITW 14%" rule). Types
    as OS-Atlas names them (CLICK, LONG_PRESS, SCROLL, TYPE, OPEN_APP, NAVIGATE_HOME,
    NAVIGATE_BACK, WAIT, ENTER). click/long_press: the points on the 0-1000 grid within 140
    (inclusive) of each other. TYPE/OPEN_APP: exact text, or token F1 > 0.5 (lowercased
    whitespace tokens as sets). SCROLL: the direction string. Others: the type. Deviations from
    the script, on purpose: the script takes F1 over only the first whitespace token of the
    action string (``TYPE [hello world]`` -> ``[hello``) and reads integer coordinates with a
    ``\\d+`` regex; guienv uses the whole text and real-valued coordinates.

``gui-r1``
    GUI-R1's accuracy rule (Luo et al., arXiv 2504.10458): type must match; a click is right inside a
    GT candidate box (not enlarged) or within 140 px of the GT point; text by token F1 >= 0.5;
    scroll by direction; others by type.

Scroll convention. AndroidControl's ``scroll`` direction is where the **content** moves: "scroll
down" pairs with the instruction "swipe up" and a finger moving from bottom to top. guienv keeps
that meaning in ``Action.scroll`` and keeps finger paths in ``Action.swipe``. Each protocol
compares in one convention: ``qwen-content-direction`` and ``gui-r1`` compare *finger* directions (a predicted
finger swipe up matches GT scroll down; a predicted ``scroll`` is converted to its finger
direction first), ``os-atlas`` compares *content* directions (its ``SCROLL [DOWN]`` means
AndroidControl's scroll down; a predicted finger swipe is converted to the opposite content
direction), and ``plain`` needs the same type (a swipe for a GT scroll is a type miss) and
compares like with like. Note that the UI-S1 JSONL conversion of AndroidControl stores the content
direction in ``check_options.direction`` next to finger coordinates in ``action_content`` (e.g.
episode 16426: finger (540, 1800) -> (540, 600), ``direction: "down"``); the InfiGUI scorer
compares a predicted finger direction with that field directly, which marks a vertical
ground-truth swipe itself wrong. ``infigui`` reproduces that; ``qwen-content-direction`` does not.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from guienv.actions import OPPOSITE, Action, ActionType, Box4, Point
from guienv.frames import Frame, Resize, Screen
from guienv.geometry import point_in_box
from guienv.types import Step
from rewards.infigui import INFIGUI_MAX_PIXELS, args_from_action, judge_infigui


@dataclass(frozen=True)
class StepVerdict:
    type_match: bool
    exact_match: bool
    grounding: bool | None = None  # pointer actions only: did the point hit?
    reason: str = ""
    gt_type: str = ""  # guienv ActionType value of the ground truth (filled by match_step)
    pred_type: str = ""  # guienv ActionType value of the prediction


def _plain(pred: Action, gt: Action, step: Step) -> StepVerdict:
    if pred.type is not gt.type:
        return StepVerdict(False, False, None, f"type {pred.type.value} != {gt.type.value}")
    t = gt.type
    if t in (ActionType.CLICK, ActionType.LONG_PRESS):
        p = pred.target
        hit = any(point_in_box(p, b) for b in step.candidates)
        if not hit and p is not None and gt.point is not None:
            hit = math.dist(p, gt.point) <= 0.04 * max(step.width, step.height)
        return StepVerdict(True, hit, hit, "" if hit else "point misses the target")
    if t in (ActionType.TYPE, ActionType.OPEN_APP):
        ok = (pred.text or "").strip().lower() == (gt.text or "").strip().lower()
        return StepVerdict(True, ok, None, "" if ok else "text differs")
    if t is ActionType.SCROLL:
        ok = pred.direction == gt.direction
        return StepVerdict(True, ok, None, "" if ok else "direction differs")
    if t is ActionType.SWIPE:
        ok = pred.swipe_direction() == gt.swipe_direction()
        return StepVerdict(True, ok, None, "" if ok else "direction differs")
    return StepVerdict(True, True, None, "")


# -- shared pieces ----------------------------------------------------------------------------
POINTER = (ActionType.CLICK, ActionType.LONG_PRESS)


def finger_direction(action: Action) -> str | None:
    """Direction the finger moves: a swipe's own, or the opposite of a scroll's content direction."""
    if action.type is ActionType.SWIPE:
        return action.swipe_direction()
    if action.type is ActionType.SCROLL and action.direction:
        return OPPOSITE[action.direction]
    return None


def content_direction(action: Action) -> str | None:
    """Direction the content moves (AndroidControl's scroll direction)."""
    if action.type is ActionType.SCROLL:
        return action.direction
    f = finger_direction(action)
    return OPPOSITE[f] if f else None


def text_contains(pred: str | None, gt: str | None) -> bool:
    """InfiGUI's ``check_text``: lowercased, stripped, either string contains the other."""
    a, b = (pred or "").strip().lower(), (gt or "").strip().lower()
    return a in b or b in a


def token_f1(pred: str | None, gt: str | None) -> float:
    """Token F1 over lowercased whitespace tokens taken as sets (OS-Atlas' ``calculate_f1_score``)."""
    p, g = set((pred or "").lower().split()), set((gt or "").lower().split())
    common = len(p & g)
    if not common:
        return 0.0
    precision, recall = common / len(p), common / len(g)
    return 2 * precision * recall / (precision + recall)


def enlarge_box(box: Box4, factor: float) -> Box4:
    """``box`` scaled by ``factor`` about its centre."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) * factor / 2, (box[3] - box[1]) * factor / 2
    return cx - hw, cy - hh, cx + hw, cy + hh


# -- qwen-content-direction -----------------------------------------------------------------------------
QWEN_ENLARGE = 1.2
QWEN_DISTANCE = 0.04
_QWEN_FAMILY = {
    ActionType.CLICK: "click",
    ActionType.LONG_PRESS: "long_press",
    ActionType.SWIPE: "swipe",
    ActionType.SCROLL: "swipe",
    ActionType.TYPE: "type",
    ActionType.OPEN_APP: "open",
    ActionType.NAVIGATE_BACK: "system_button",
    ActionType.NAVIGATE_HOME: "system_button",
    ActionType.KEYBOARD_ENTER: "system_button",
    ActionType.WAIT: "wait",
    ActionType.FINISH: "terminate",
    ActionType.BOX: "box",
}


def _qwen_click(p: Point | None, candidates: tuple[Box4, ...], gt_point: Point | None, step: Step, scale: tuple[float, float]) -> bool:
    if p is None:
        return False
    if any(point_in_box(p, enlarge_box(b, QWEN_ENLARGE)) for b in candidates):
        return True
    if gt_point is None:
        return False
    # Offset on the normalized frame, scaled by the (resized) image size, as the reference does.
    sw, sh = scale
    dx = (gt_point[0] - p[0]) / step.width * sw
    dy = (gt_point[1] - p[1]) / step.height * sh
    return math.hypot(dx, dy) <= QWEN_DISTANCE * max(sw, sh)


def _qwen_content_direction(pred: Action, gt: Action, step: Step, resize: Resize | None = None) -> StepVerdict:
    scale = Screen(step.width, step.height, resize).resized if resize is not None else (step.width, step.height)
    pf, gf = _QWEN_FAMILY.get(pred.type), _QWEN_FAMILY.get(gt.type)
    if gt.type is ActionType.OPEN_APP and pred.type is ActionType.CLICK:
        if not step.candidates:
            return StepVerdict(False, False, None, "click for open_app without candidate boxes")
        c = step.candidates[0]
        ok = _qwen_click(pred.target, step.candidates, ((c[0] + c[2]) / 2, (c[1] + c[3]) / 2), step, scale)
        return StepVerdict(True, ok, None, "" if ok else "click misses the app icon")
    if pf != gf:
        return StepVerdict(False, False, None, f"type {pf or pred.type.value} != {gf}")
    t = gt.type
    if t in POINTER:
        hit = _qwen_click(pred.target, step.candidates, gt.point, step, scale)
        return StepVerdict(True, hit, hit, "" if hit else "point misses the target")
    if t in (ActionType.TYPE, ActionType.OPEN_APP):
        ok = text_contains(pred.text, gt.text)
        return StepVerdict(True, ok, None, "" if ok else "text differs")
    if t in (ActionType.SCROLL, ActionType.SWIPE):
        p, g = finger_direction(pred), finger_direction(gt)
        ok = p is not None and p == g
        return StepVerdict(True, ok, None, "" if ok else f"finger direction {p} != {g}")
    if gf == "system_button":
        ok = pred.type is gt.type
        return StepVerdict(True, ok, None, "" if ok else f"button {pred.type.value} != {gt.type.value}")
    if t is ActionType.FINISH:
        ok = pred.status == gt.status
        return StepVerdict(True, ok, None, "" if ok else "status differs")
    if t is ActionType.WAIT:
        return StepVerdict(True, True, None, "")
    ok = pred == gt
    return StepVerdict(True, ok, None, "" if ok else "arguments differ")


# -- os-atlas -----------------------------------------------------------------------------------
OS_ATLAS_RADIUS = 140.0  # 0.14 * 1000 on the 0-1000 grid
_ATLAS_TYPE = {
    ActionType.CLICK: "CLICK",
    ActionType.LONG_PRESS: "LONG_PRESS",
    ActionType.SWIPE: "SCROLL",
    ActionType.SCROLL: "SCROLL",
    ActionType.TYPE: "TYPE",
    ActionType.OPEN_APP: "OPEN_APP",
    ActionType.NAVIGATE_BACK: "NAVIGATE_BACK",
    ActionType.NAVIGATE_HOME: "NAVIGATE_HOME",
    ActionType.KEYBOARD_ENTER: "ENTER",
    ActionType.WAIT: "WAIT",
    ActionType.FINISH: "COMPLETE",
    ActionType.BOX: "BOX",
}


def _os_atlas(pred: Action, gt: Action, step: Step) -> StepVerdict:
    pt, gtt = _ATLAS_TYPE.get(pred.type), _ATLAS_TYPE.get(gt.type)
    if pt != gtt:
        return StepVerdict(False, False, None, f"type {pt or pred.type.value} != {gtt}")
    t = gt.type
    if t in POINTER:
        screen = Screen(step.width, step.height)
        pg = pred.to_frame(Frame.GRID1000, screen).target
        gg = gt.to_frame(Frame.GRID1000, screen).target
        hit = pg is not None and gg is not None and math.dist(pg, gg) <= OS_ATLAS_RADIUS
        return StepVerdict(True, hit, hit, "" if hit else "point farther than 140 on the 0-1000 grid")
    if t in (ActionType.TYPE, ActionType.OPEN_APP):
        ok = pred.text == gt.text or token_f1(pred.text, gt.text) > 0.5
        return StepVerdict(True, ok, None, "" if ok else "text differs (token F1 <= 0.5)")
    if t in (ActionType.SCROLL, ActionType.SWIPE):
        p, g = content_direction(pred), content_direction(gt)
        ok = p is not None and p == g
        return StepVerdict(True, ok, None, "" if ok else f"scroll direction {p} != {g}")
    if t is ActionType.FINISH:
        ok = pred.status == gt.status
        return StepVerdict(True, ok, None, "" if ok else "status differs")
    return StepVerdict(True, True, None, "")


# -- gui-r1 -------------------------------------------------------------------------------------
GUI_R1_RADIUS_PX = 140.0


def _gui_r1(pred: Action, gt: Action, step: Step) -> StepVerdict:
    same = pred.type is gt.type or {pred.type, gt.type} == {ActionType.SCROLL, ActionType.SWIPE}
    if not same:
        return StepVerdict(False, False, None, f"type {pred.type.value} != {gt.type.value}")
    t = gt.type
    if t in POINTER:
        p = pred.target
        hit = any(point_in_box(p, b) for b in step.candidates)
        if not hit and p is not None and gt.point is not None:
            hit = math.dist(p, gt.point) <= GUI_R1_RADIUS_PX
        return StepVerdict(True, hit, hit, "" if hit else "point misses the target")
    if t in (ActionType.TYPE, ActionType.OPEN_APP):
        ok = token_f1(pred.text, gt.text) >= 0.5
        return StepVerdict(True, ok, None, "" if ok else "text differs (token F1 < 0.5)")
    if t in (ActionType.SCROLL, ActionType.SWIPE):
        p, g = finger_direction(pred), finger_direction(gt)
        ok = p is not None and p == g
        return StepVerdict(True, ok, None, "" if ok else f"finger direction {p} != {g}")
    if t is ActionType.FINISH:
        ok = pred.status == gt.status
        return StepVerdict(True, ok, None, "" if ok else "status differs")
    return StepVerdict(True, True, None, "")


# -- infigui ------------------------------------------------------------------------------------
def match_infigui(args: Any, step: Step, frame: Frame | str = Frame.RESIZED, resize: Resize | None = None) -> StepVerdict:
    """Judge a ``mobile_use`` argument object (what
    :func:`guienv.parsing.infigui.parse_infigui_call` returns; ``None`` for unreadable text) under
    ``infigui``; coordinates in ``frame``, ``resize`` the model's smart resize (see
    :func:`rewards.infigui.judge_infigui`)."""
    type_ok, exact, reason = judge_infigui(args, step, frame, resize)
    grounding = exact if type_ok and step.action.type in POINTER else None
    pred_type = str(args.get("action")) if isinstance(args, Mapping) else ""
    return StepVerdict(type_ok, exact, grounding, reason, step.action.type.value, pred_type)


def _infigui(pred: Action, gt: Action, step: Step, resize: Resize | None = None) -> StepVerdict:
    screen = Screen(step.width, step.height, resize or Resize(max_pixels=INFIGUI_MAX_PIXELS))
    return match_infigui(args_from_action(pred, screen), step, Frame.RESIZED, resize)


PROTOCOLS: dict[str, Callable[..., StepVerdict]] = {
    "plain": _plain,
    "qwen-content-direction": _qwen_content_direction,
    "qwen": _qwen_content_direction,
    "infigui": _infigui,
    "os-atlas": _os_atlas,
    "aitw": _os_atlas,
    "gui-r1": _gui_r1,
}
# Alternative names -> the protocol they stand for (printed with results, see protocol_name).
ALIASES = {"qwen": "qwen-content-direction", "aitw": "os-atlas"}
_TAKES_RESIZE = (_qwen_content_direction, _infigui)


def protocol_name(protocol: str) -> str:
    """``protocol`` as printed with results: ``"qwen (= qwen-content-direction)"`` for an alias."""
    return f"{protocol} (= {ALIASES[protocol]})" if protocol in ALIASES else protocol


def match_step(pred: Action, step: Step, protocol: str = "plain", *, resize: Resize | None = None) -> StepVerdict:
    """Judge ``pred`` against ``step.action``. ``pred`` may be in any frame of the step's screen
    (``resize`` defines its ``resized`` frame and, for ``qwen-content-direction`` and ``infigui``,
    the size distances are scaled by; ``infigui`` defaults to its reference's ``max_pixels``)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown matching protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
    gt = step.action
    if not pred.is_valid:
        return StepVerdict(False, False, None, f"invalid action: {pred.reason}", gt.type.value, pred.type.value)
    pred = pred.to_frame(Frame.PIXEL, Screen(step.width, step.height, resize or Resize()))
    fn = PROTOCOLS[protocol]
    verdict = fn(pred, gt, step, resize) if fn in _TAKES_RESIZE else fn(pred, gt, step)
    return replace(verdict, gt_type=gt.type.value, pred_type=pred.type.value)
