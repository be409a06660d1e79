"""InfiGUI-R1's AndroidControl step matching (protocol ``infigui``), rule for rule.

Reproduces ``Reallm-Labs/InfiGUI-R1: eval/android_control/evaluate_android_control.py``
(``evaluate_android_control_action``), the evaluator behind the published InfiGUI-R1 and
Qwen2.5-VL AndroidControl numbers, including its quirks. Inputs are what that script reads: the
model's ``mobile_use`` argument object (:func:`guienv.parsing.infigui.parse_infigui_call`, or
:func:`args_from_action` for a guienv action) and the step's UI-S1 ``check_options``
(:func:`check_options`). Rules:

* Coordinates: the prediction is divided by the *resized* image size the model saw, the ground
  truth by the original size; click distances are then scaled back by the resized size.
* ``click``/``long_press``: same action name, then the point inside any candidate box enlarged
  1.2x about its centre (inclusive), else within ``0.04 * max(rw, rh)`` of the GT point.
* ``open``: ``open`` with either lowercased, stripped text containing the other (an empty or blank
  name is contained in any name: right); or a ``click`` judged against the candidate boxes with the
  first box's centre as the point; without candidate boxes a click is a type miss.
* ``type``: the same containment rule. ``system_button``: the button names equal after
  lowercasing and stripping (so ``Menu`` is a type match and a wrong button). ``wait``: the name.
* ``swipe``: the finger direction of ``coordinate -> coordinate2`` on the *normalised* frame
  (``|dx/rw| > |dy/rh|`` -> horizontal, else vertical; ``dy > 0`` -> down, else up, so a zero-length
  swipe is "up") compared with ``check_options.direction`` **as stored**. That field holds
  AndroidControl's scroll direction, i.e. where the content moves, so a prediction reproducing the
  ground-truth finger path is scored wrong on vertical scrolls (see ``qwen-content-direction`` in
  :mod:`rewards.action_match` for guienv's corrected reading).
* Only the action names above (and ``key``/``terminate``, never a GT type in AndroidControl) exist;
  other names (``tap``, ``open_app``, ``scroll``...) are type misses.
* Where the script raises (a missing or malformed field it reads, a swipe without both points, a
  non-object argument, an unreadable call), the step counts as wrong: no type match, no match.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from guienv.actions import Action, ActionType
from guienv.frames import Frame, Resize, Screen
from guienv.types import Step
from tasks.androidcontrol.ui_s1 import ui_s1_step_record

INFIGUI_ENLARGE = 1.2
INFIGUI_DISTANCE = 0.04
# android_control.py's default max_pixels (its smart_resize of the screenshot the model sees).
INFIGUI_MAX_PIXELS = 6400 * 28 * 28


CRASH = "reference evaluator fails: {} (counted wrong)"


class _Crash(Exception):
    """Where the reference script raises: the step is counted wrong."""


def check_options(step: Step) -> Mapping[str, Any]:
    """The step's UI-S1 ``check_options``: as recorded for UI-S1 data, else UI-S1's conversion."""
    raw = step.raw_action
    if isinstance(raw, Mapping) and "action_content" in raw and isinstance(raw.get("check_options"), Mapping):
        return raw["check_options"]
    return ui_s1_step_record(step, "")["check_options"]


def args_from_action(action: Action, screen: Screen) -> dict[str, Any] | None:
    """A guienv action as the ``mobile_use`` arguments it stands for, coordinates in the
    ``resized`` frame of ``screen``; ``None`` for an invalid action. A scroll (a direction without
    a finger path) becomes a ``swipe`` without coordinates, which the reference cannot score."""
    if not action.is_valid:
        return None
    a = action.to_frame(Frame.RESIZED, screen) if action.point is not None or action.end is not None else action
    t = a.type
    if t in (ActionType.CLICK, ActionType.LONG_PRESS):
        return {"action": t.value, "coordinate": list(a.point)}
    if t is ActionType.SWIPE:
        return {"action": "swipe", "coordinate": list(a.point), "coordinate2": list(a.end)}
    if t is ActionType.SCROLL:
        return {"action": "swipe"}
    if t is ActionType.TYPE:
        return {"action": "type", "text": a.text}
    if t is ActionType.OPEN_APP:
        return {"action": "open", "text": a.text}
    buttons = {ActionType.NAVIGATE_BACK: "Back", ActionType.NAVIGATE_HOME: "Home", ActionType.KEYBOARD_ENTER: "Enter"}
    if t in buttons:
        return {"action": "system_button", "button": buttons[t]}
    if t is ActionType.WAIT:
        return {"action": "wait"}
    if t is ActionType.FINISH:
        return {"action": "terminate", "status": "success" if a.status == "complete" else "failure"}
    return {"action": t.value}


# -- the reference's field reads (each raises _Crash where the script would raise) ---------------
def _get(obj: Any, key: str) -> Any:
    if not isinstance(obj, Mapping):
        raise _Crash(f"arguments are a {type(obj).__name__}, not an object")
    if key not in obj:
        raise _Crash(f"no {key!r}")
    return obj[key]


def _div(v: Any, d: float) -> float:
    if not isinstance(v, (int, float)):  # bool is an int, as in Python's division
        raise _Crash(f"coordinate {v!r} is not a number")
    try:
        return v / d
    except OverflowError as exc:
        raise _Crash(f"coordinate {v!r} overflows") from exc


def _indexed(v: Any, n: int, what: str) -> list:
    if not isinstance(v, list) or len(v) < n:
        raise _Crash(f"{what} {v!r} has fewer than {n} values")
    return v


def _normalise(obj: Any, w: float, h: float) -> Any:
    """``norm_coordinate``: divide candidate_bbox, coordinate, coordinate2 by (w, h) where present."""
    if isinstance(obj, (list, str)):
        return obj  # the script's `in` tests work on these; reading a field then fails
    if not isinstance(obj, Mapping):
        raise _Crash(f"arguments are a {type(obj).__name__}, not an object")
    out = dict(obj)
    if "candidate_bbox" in out:
        boxes = out["candidate_bbox"]
        if not isinstance(boxes, list):
            raise _Crash("candidate_bbox is not a list")
        out["candidate_bbox"] = [[_div(b[0], w), _div(b[1], h), _div(b[2], w), _div(b[3], h)]
                                 for b in (_indexed(b, 4, "box") for b in boxes)]
    for key in ("coordinate", "coordinate2"):
        if key in out:
            c = _indexed(out[key], 2, key)
            out[key] = [_div(c[0], w), _div(c[1], h)]
    return out


def _lower(v: Any, what: str) -> str:
    if not isinstance(v, str):
        raise _Crash(f"{what} {v!r} is not a string")
    return v.lower().strip()


def _contains(pred: Any, gt: Any) -> bool:
    a, b = _lower(pred, "text"), _lower(gt, "GT text")
    return a in b or b in a


def _enlarged(box: list[float]) -> tuple[float, float, float, float]:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) * INFIGUI_ENLARGE / 2, (box[3] - box[1]) * INFIGUI_ENLARGE / 2
    return cx - hw, cy - hh, cx + hw, cy + hh


def _click(click: list[float], boxes: list, gt_point: Any, rw: int, rh: int) -> bool:
    for x1, y1, x2, y2 in (_enlarged(b) for b in boxes):
        if x1 <= click[0] <= x2 and y1 <= click[1] <= y2:
            return True
    if gt_point is None:
        return False
    dx, dy = (gt_point[0] - click[0]) * rw, (gt_point[1] - click[1]) * rh
    return math.sqrt(dx ** 2 + dy ** 2) <= INFIGUI_DISTANCE * max(rw, rh)


def _direction(start: Any, end: Any) -> str:
    for p in (start, end):
        if not isinstance(p, list) or len(p) != 2:  # the script unpacks `x, y = point`
            raise _Crash(f"swipe point {p!r} is not [x, y]")
    dx, dy = end[0] - start[0], end[1] - start[1]
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def _judge(pred: Any, gt: Mapping[str, Any], rw: int, rh: int) -> tuple[bool, bool, str]:
    kind = _get(gt, "action")
    name = _get(pred, "action")
    miss = f"type {name!r} != {kind!r}"
    if kind == "wait":
        return (True, True, "") if name == "wait" else (False, False, miss)
    if kind == "system_button":
        if name != "system_button":
            return False, False, miss
        ok = _lower(_get(gt, "button"), "GT button") == _lower(_get(pred, "button"), "button")
        return True, ok, "" if ok else "button differs"
    if kind == "type":
        if name != "type":
            return False, False, miss
        ok = _contains(_get(pred, "text"), _get(gt, "text"))
        return True, ok, "" if ok else "text differs"
    if kind == "open":
        if name == "open":
            ok = _contains(_get(pred, "text"), _get(gt, "text"))
            return True, ok, "" if ok else "text differs"
        if name == "click":
            boxes = gt.get("candidate_bbox", [])
            if not boxes:
                return False, False, "click for open without candidate boxes"
            b = boxes[0]
            ok = _click(_get(pred, "coordinate"), boxes, [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2], rw, rh)
            return True, ok, "" if ok else "click misses the app icon"
        return False, False, miss
    if kind == "swipe":
        if name != "swipe":
            return False, False, miss
        d = _direction(_get(pred, "coordinate"), _get(pred, "coordinate2"))
        want = _get(gt, "direction")
        return True, d == want, "" if d == want else f"finger direction {d} != check_options direction {want}"
    if kind in ("long_press", "click"):
        if name != kind:
            return False, False, miss
        ok = _click(_get(pred, "coordinate"), _get(gt, "candidate_bbox"), _get(gt, "coordinate"), rw, rh)
        return True, ok, "" if ok else "point misses the target"
    raise _Crash(f"GT action {kind!r} is not scored by the reference")


def judge_infigui(args: Any, step: Step, frame: Frame | str = Frame.RESIZED, resize: Resize | None = None) -> tuple[bool, bool, str]:
    """``(type_match, exact_match, reason)`` of a ``mobile_use`` argument object (coordinates in
    ``frame``; the reference's is ``resized``) against ``step``, as InfiGUI-R1's evaluator decides.
    ``resize`` is the smart resize the model's image went through (default: the reference's
    ``max_pixels``). ``args=None`` stands for text the reference cannot read (a wrong step)."""
    screen = Screen(step.width, step.height, resize or Resize(max_pixels=INFIGUI_MAX_PIXELS))
    rw, rh = screen.resized
    if args is None:
        return False, False, CRASH.format("unreadable call")
    # Divisor taking the prediction's frame to the normalised one (the reference: resized).
    w, h = {Frame.RESIZED: (rw, rh), Frame.PIXEL: (step.width, step.height),
            Frame.GRID1000: (1000, 1000), Frame.NORMALIZED: (1, 1)}[Frame(frame)]
    try:
        pred = _normalise(args, w, h)
        gt = _normalise(check_options(step), step.width, step.height)
        return _judge(pred, gt, rw, rh)
    except (_Crash, ValueError) as exc:
        return False, False, CRASH.format(exc)
