"""Model-output parsers for the grounding action space.

``parse_action(text, frame=...)`` turns what a GUI model wrote into one :class:`~guienv.actions.Action`.
It never raises on the text: anything it cannot read becomes ``Action.invalid(reason)``.
``parse_action_detailed`` also reports which format matched and the extracted think/answer text.

Coordinates are labelled with the caller's ``frame`` (the caller knows the model family,
see :mod:`guienv.frames`: Qwen2.5-VL -> ``resized``, Qwen2-VL / UI-TARS-1.0 / OS-Atlas -> ``grid1000``,
absolute screenshot pixels -> ``pixel``); numbers are never rescaled here. Actions without
coordinates (type, open_app, back, finish, ...) keep the default pixel frame whatever ``frame`` is,
so they compare equal to the same action from any other source.

Wrappers (searched ASCII-case-insensitively):

* ``<think>...</think>`` (also ``<thinking>``, or a lone ``</think>`` when the template opened the
  block) is reasoning: it is returned as ``think`` and never searched for actions.
* ``<answer>...</answer>`` (R1-style GUI models) and ``<action>...</action>`` (verl-agent / ALFWorld):
  when present, only their content is searched (several blocks: in order). The content is returned
  as ``answer`` even when it is no GUI action (e.g. an ALFWorld command), so text envs can use it.
* UI-TARS ``Thought: ... Action: ...``: ``think`` is the thought; only the text after the last
  ``Action:`` is searched (and returned as ``answer``).

Formats (``ParseResult.format``):

* ``androidcontrol_json`` -- AndroidControl / AndroidWorld ``{"action_type": ...}``: ``click`` and
  ``long_press`` (``x``, ``y``), ``double_tap`` (-> click), ``scroll`` (``direction`` = the content
  direction, kept as ``scroll``; optional ``x``, ``y``), ``swipe`` (finger ``direction`` and/or
  ``x``, ``y``), ``input_text``/``type`` (``text``, optional ``x``, ``y``), ``open_app``
  (``app_name``), ``navigate_home``, ``navigate_back``, ``keyboard_enter``, ``wait``, ``status``
  (``goal_status`` complete/infeasible -> finish), ``answer`` (``text`` -> finish with the answer).
  An element ``index`` without coordinates is invalid (it needs the UI tree).
* ``qwen_mobile_use`` -- the argument object of Qwen2.5-VL's ``mobile_use``/``computer_use`` tools
  written bare (UI-S1 ``action_content``, UI-R1 / GUI-R1 lists): ``{"action": "click",
  "coordinate": [x, y]}``. See :func:`_from_action_dict` for every action name.
* ``tool_call`` -- ``{"name": "mobile_use" | "computer_use", "arguments": {...}}``, inside
  ``<tool_call>`` tags or not; ``arguments`` may itself be a JSON string, and an OpenAI
  ``tool_calls`` entry (``{"type": "function", "function": {...}}``) is unwrapped.
* ``gui_g1_bbox`` -- Qwen2.5-VL / GUI-G1 grounding ``[{"bbox_2d": [x1, y1, x2, y2]}]`` -> ``box``;
  ``{"point_2d": [x, y]}`` -> ``click``.
* ``guienv_json`` -- guienv's own action JSON (``Action.to_dict``); its ``frame`` field wins.
* ``uitars`` -- UI-TARS function calls: ``click``/``left_single``/``left_double``/``right_single``/
  ``long_press``/``type``/``scroll``/``drag``/``swipe``/``hotkey``/``press_home``/``press_back``/
  ``press_enter``/``open_app``/``wait``/``finished``/``call_user``, with positions given as
  ``'(x,y)'``, ``'<|box_start|>(x,y)<|box_end|>'``, ``'<point>x y</point>'`` or a 4-number box
  (its centre is used).
* ``coordinate_tag`` -- bare ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` (Qwen2-VL / OS-Atlas),
  ``<point>x y</point>`` or ``<bbox>x1 y1 x2 y2</bbox>``: 2 numbers -> click, 4 -> box.
* ``bare_box`` ``[x1, y1, x2, y2]`` -> box; ``bare_point`` ``[x, y]`` or ``(x, y)`` -> click.

Decisions (documented because published code differs):

* **Several candidates**: the first valid action in text order wins, except that bare number
  tuples (``bare_point``/``bare_box``) are only used when no structured form yields a valid action
  (prose like "the icon at (12, 40)" must not beat a JSON action written after it). Lists of
  actions give their first valid element.
* **Scroll directions** are the content direction of AndroidControl (arXiv 2406.03679;
  "scroll down" shows what is below; the finger moves up). UI-TARS' ``scroll(direction=...)`` is
  read the same way (its prompt: "Show more information on the `direction` side"), and so is
  the mouse wheel of ``computer_use`` (``pixels > 0`` scrolls up, ``< 0`` down; ``hscroll``:
  ``> 0`` right, ``< 0`` left, an assumption: Qwen documents no sign for it). ``swipe``/``drag``
  directions and point pairs are the **finger's** path.
* **Mouse/keyboard -> touch**: left/double/triple/middle clicks -> ``click``; right click ->
  ``long_press`` (the touch gesture that opens a context menu); ``key``/``hotkey`` and
  ``system_button`` map Enter/Return -> ``keyboard_enter``, Back -> ``navigate_back``, Home ->
  ``navigate_home``; other keys, key combinations, ``Menu``, ``mouse_move`` (a hover) and
  ``left_click_drag`` (starts at the unknown cursor position) are invalid with a reason.
  ``terminate`` success/failure -> ``finish`` complete/infeasible; ``answer`` -> ``finish`` with
  the answer; UI-TARS ``call_user()`` -> ``finish`` infeasible. Wait times are dropped (``wait``
  has no argument); long-press times (seconds) become ``duration_ms``.
* **Numbers**: booleans, NaN, +-inf, and magnitudes above ``MAX_COORD`` (1e9, far beyond any
  screen; keeps later frame conversions finite) make the action invalid. Negative coordinates
  are kept: they are off-screen points, which envs and rewards score as misses.
* **Boxes** must satisfy ``x1 <= x2`` and ``y1 <= y2``, like :class:`Action` and the GUI-G1 reward
  (an inverted box answer is invalid, not reordered). A box given where a point is expected
  (UI-TARS ``start_box``) stands for its centre, in either corner order.
* A format that was recognised but whose action is invalid is still named in ``format``
  (UI-S1's reward tells "parsable, wrong" from "unparsable"); ``format`` is ``None`` when nothing
  was recognised.

Hostile text: at most ``MAX_CHARS`` characters are read (the rest is dropped; ``truncated`` says
so, and so does the reason of an invalid result); brackets are matched by one linear scan (no
regular expression that can backtrack); at most ``MAX_CANDIDATES`` bracketed spans are tried and
spans nested deeper than ``MAX_DEPTH`` are skipped before ``json``/``ast`` see them;
``ast.literal_eval``/``ast.parse`` only read literals (nothing is evaluated or executed), and every
candidate is parsed inside a guard that turns any exception (``RecursionError``, ``MemoryError``,
...) into a skipped candidate.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from guienv.actions import Action, ActionType, from_space
from guienv.frames import Frame, Screen

__all__ = ["MAX_CHARS", "MAX_COORD", "ParseResult", "as_action", "parse_action", "parse_action_detailed", "read_action"]

MAX_CHARS = 65536  # characters of model output read at most
MAX_COORD = 1e9  # |coordinate| above this is junk, whatever the frame
MAX_CANDIDATES = 256  # bracketed spans / coordinate tags tried per searched region
MAX_DEPTH = 16  # bracket nesting depth handed to json / ast (actions need <= 4)
MAX_LIST = 32  # elements of a list of candidate actions looked at
MAX_ANSWER_BLOCKS = 16

# Decimal numbers; no nested quantifiers, so matching is linear in the input.
_NUM_RE = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
_KWARG_RE = re.compile(r"(?:^|,)\s*([A-Za-z_][A-Za-z_0-9]*)\s*=")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_OPEN = {"(": ")", "[": "]", "{": "}"}
_CLOSE = {")": "(", "]": "[", "}": "{"}
_VALUE_START = "[{(,:="  # a quote after one of these opens a string literal


@dataclass(frozen=True)
class ParseResult:
    """What :func:`parse_action_detailed` read from one model output."""

    action: Action
    format: str | None = None  # format that matched (see the module docstring); None: nothing recognised
    answer: str | None = None  # content of <answer>/<action> (or after UI-TARS' "Action:"), if any
    think: str | None = None  # content of <think> (or UI-TARS' "Thought:"), if any
    truncated: bool = False  # the output was longer than MAX_CHARS and was cut
    raw: str | None = None  # the piece of text the action (or the recognised attempt) came from


class _Bad(Exception):
    """A recognised action that cannot be built; the message is the reason."""


# -- numbers and coordinates ------------------------------------------------------------------
def _num(value: Any, what: str) -> float:
    if isinstance(value, bool) or value is None:
        raise _Bad(f"{what} must be a number, got {value!r}")
    if isinstance(value, str):
        s = value.strip()
        m = _NUM_RE.fullmatch(s) if len(s) <= 64 else None
        if m is None:
            raise _Bad(f"{what} must be a number, got {value[:40]!r}")
        value = s
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise _Bad(f"{what} must be a finite number, got {str(value)[:40]!r}") from exc
    if not math.isfinite(v):
        raise _Bad(f"{what} must be finite, got {v}")
    if abs(v) > MAX_COORD:
        raise _Bad(f"{what} is out of range (|{what}| > {MAX_COORD:g}), got {v:g}")
    return v


def _numbers(value: Any, what: str) -> list[float]:
    """A flat list of numbers from a list/tuple (one level of pairs allowed) or a string of numbers."""
    if isinstance(value, str):
        if len(value) > 512:
            raise _Bad(f"{what} string is too long")
        return [_num(m, what) for m in _NUM_RE.findall(value)]
    if isinstance(value, dict):
        if "x" in value and "y" in value:
            return [_num(value["x"], what), _num(value["y"], what)]
        raise _Bad(f"{what} must be numbers, got an object")
    if isinstance(value, (list, tuple)):
        if len(value) > 8:
            raise _Bad(f"{what} has {len(value)} elements")
        out: list[float] = []
        for v in value:
            if isinstance(v, (list, tuple)) and len(v) == 2:  # [[x1, y1], [x2, y2]]
                out.extend(_num(u, what) for u in v)
            else:
                out.append(_num(v, what))
        return out
    return [_num(value, what)]


def _point(value: Any, what: str = "coordinate") -> tuple[float, float]:
    """A point; four numbers are a box standing for its centre (UI-TARS ``start_box``)."""
    nums = _numbers(value, what)
    if len(nums) == 2:
        return nums[0], nums[1]
    if len(nums) == 4:
        return (nums[0] + nums[2]) / 2, (nums[1] + nums[3]) / 2
    raise _Bad(f"{what} needs 2 numbers (or a 4-number box), got {len(nums)}")


def _box(value: Any, what: str = "bbox") -> tuple[float, float, float, float]:
    nums = _numbers(value, what)
    if len(nums) != 4:
        raise _Bad(f"{what} needs 4 numbers (x1, y1, x2, y2), got {len(nums)}")
    x1, y1, x2, y2 = nums
    if x2 < x1 or y2 < y1:
        raise _Bad(f"{what} is inverted (needs x1 <= x2 and y1 <= y2), got {nums}")
    return x1, y1, x2, y2


def _text(value: Any, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # e.g. {"text": 42}
    raise _Bad(f"{what} must be a string, got {type(value).__name__}")


def _get(d: dict, *keys: str) -> Any:
    for k in keys:
        if k in d and d[k] is not None:
            return d[k]
    return None


def _mk(type_: ActionType, frame: Frame, **kw: Any) -> Action:
    """An action whose coordinates are in ``frame``; coordinate-free actions keep the default
    (pixel) frame so they compare equal to the same action from any other source."""
    has_xy = any(kw.get(k) is not None for k in ("point", "end", "box"))
    return _build(lambda: Action(type_, frame=frame if has_xy else Frame.PIXEL, **kw))


def _build(fn: Callable[[], Action]) -> Action:
    try:
        return fn()
    except (ValueError, TypeError, OverflowError, AttributeError) as exc:
        raise _Bad(str(exc)) from exc


# -- shared mappings --------------------------------------------------------------------------
_ENTER = {"enter", "return", "kp_enter", "66", "numpad_enter", "newline"}
_BACK = {"back", "4", "go_back"}
_HOME = {"home", "3", "go_home"}


def _key(name: Any) -> Action:
    """One key (adb keyevent name, xdotool/pyautogui name, or keycode) -> a no-argument action."""
    if isinstance(name, (list, tuple)):
        if len(name) != 1:
            raise _Bad(f"key combination {list(name)[:5]!r} has no counterpart in the action space")
        name = name[0]
    if not isinstance(name, (str, int)) or isinstance(name, bool):
        raise _Bad(f"key must be a key name, got {type(name).__name__}")
    k = str(name).strip().lower().replace(" ", "_")
    k = k.removeprefix("keycode_")
    if k in _ENTER:
        return Action.simple(ActionType.KEYBOARD_ENTER)
    if k in _BACK:
        return Action.simple(ActionType.NAVIGATE_BACK)
    if k in _HOME:
        return Action.simple(ActionType.NAVIGATE_HOME)
    raise _Bad(f"key {str(name)[:40]!r} has no counterpart in the action space (enter, back, home)")


def _hotkey(value: Any) -> Action:
    """UI-TARS ``hotkey(key='ctrl c')``: keys split by spaces or '+'."""
    keys = [k for k in re.split(r"[\s+]+", _text(value, "key").strip()) if k] if isinstance(value, str) else value
    return _key(keys)


_SUCCESS = {"success", "successful", "succeeded", "complete", "completed", "done", "finished", "true"}
_FAILURE = {"failure", "fail", "failed", "infeasible", "impossible", "incomplete", "false"}


def _finish_status(value: Any) -> str:
    if value is None:
        return "complete"
    s = str(value).strip().lower()
    if s in _SUCCESS:
        return "complete"
    if s in _FAILURE:
        return "infeasible"
    raise _Bad(f"unknown task status {str(value)[:40]!r}")


def _direction(value: Any) -> str:
    d = str(value).strip().lower() if isinstance(value, str) else None
    if d not in ("up", "down", "left", "right"):
        raise _Bad(f"direction must be up, down, left or right, got {str(value)[:40]!r}")
    return d


def _seconds_ms(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    v = _num(value, "time")
    if v < 0:
        raise _Bad(f"time must not be negative, got {v}")
    return v * 1000.0


def _optional_point(d: dict, *keys: str) -> tuple[float, float] | None:
    v = _get(d, *keys)
    return None if v is None else _point(v, keys[0])


# -- Qwen mobile_use / computer_use argument objects ------------------------------------------
_CLICKS = {
    "click",
    "left_click",
    "tap",
    "double_click",
    "triple_click",
    "middle_click",
    "double_tap",
    "left_single",
    "left_double",
}
_LONG = {"long_press", "right_click", "right_single", "longpress", "long_click"}
_SWIPES = {"swipe", "drag", "left_click_drag", "slide"}
_TYPES = {"type", "input_text", "input", "type_text", "write"}
_OPENS = {"open", "open_app", "awake", "launch", "launch_app"}
_SIMPLE = {
    "press_back": ActionType.NAVIGATE_BACK,
    "navigate_back": ActionType.NAVIGATE_BACK,
    "back": ActionType.NAVIGATE_BACK,
    "press_home": ActionType.NAVIGATE_HOME,
    "navigate_home": ActionType.NAVIGATE_HOME,
    "home": ActionType.NAVIGATE_HOME,
    "press_enter": ActionType.KEYBOARD_ENTER,
    "keyboard_enter": ActionType.KEYBOARD_ENTER,
    "enter": ActionType.KEYBOARD_ENTER,
    "wait": ActionType.WAIT,
}
_BUTTONS = {"back": ActionType.NAVIGATE_BACK, "home": ActionType.NAVIGATE_HOME, "enter": ActionType.KEYBOARD_ENTER}
_POINT_KEYS = ("coordinate", "point", "position", "start_coordinate", "coordinates")
_END_KEYS = ("coordinate2", "end_coordinate", "end_point", "end")
_TEXT_KEYS = ("text", "input_text", "content", "value")


def _from_action_dict(d: dict, frame: Frame) -> Action:
    """``{"action": name, ...}`` (Qwen2.5-VL ``mobile_use``/``computer_use`` arguments, UI-S1
    ``action_content``, UI-R1/GUI-R1 answers).

    click/left_click/double_click/triple_click/middle_click/tap -> click; long_press (+ ``time`` s) and
    right_click -> long_press; swipe/drag (``coordinate`` -> ``coordinate2`` finger path, or a finger
    ``direction`` with an optional ``coordinate``) -> swipe; scroll (``direction``, or wheel
    ``pixels``: > 0 up) and hscroll (``pixels``: > 0 right) -> scroll; type (``text``, optional
    ``coordinate``) -> type; open (``text``/``app_name``) -> open_app; system_button (Back, Home,
    Enter) and key (``text``/``keys``: one of enter, back, home) -> navigate_back / navigate_home /
    keyboard_enter; press_back/press_home/press_enter, wait; terminate (``status`` success/failure)
    -> finish; answer (``text``) -> finish with the answer; complete/impossible -> finish.
    """
    name = d.get("action")
    a = name.strip().lower().replace(" ", "_") if isinstance(name, str) else ""

    def pt() -> tuple[float, float] | None:
        return _optional_point(d, *_POINT_KEYS)

    if a in _CLICKS:
        p = pt()
        if p is None:
            raise _Bad(f"{a} needs a coordinate")
        return _mk(ActionType.CLICK, frame, point=p)
    if a in _LONG:
        p = pt()
        if p is None:
            raise _Bad(f"{a} needs a coordinate")
        dur = None if a in ("right_click", "right_single") else _seconds_ms(d.get("time"))
        return _mk(ActionType.LONG_PRESS, frame, point=p, duration_ms=dur)
    if a in _SWIPES:
        end = _optional_point(d, *_END_KEYS)
        if a == "left_click_drag" and "start_coordinate" not in d:
            raise _Bad("left_click_drag starts at the cursor position, which a stateless parser does not know")
        start = pt()
        direction = _direction(d["direction"]) if d.get("direction") is not None else None
        if start is not None and end is not None:
            return _mk(ActionType.SWIPE, frame, point=start, end=end, direction=direction)
        if direction is not None:
            return _mk(ActionType.SWIPE, frame, point=start, direction=direction)
        raise _Bad(f"{a} needs coordinate and coordinate2, or a direction")
    if a in ("scroll", "hscroll"):
        p = pt()
        if d.get("direction") is not None:
            direction = _direction(d["direction"])
        elif d.get("pixels") is not None:
            px = _num(d["pixels"], "pixels")
            if px == 0:
                raise _Bad(f"{a} by 0 pixels")
            direction = ("right" if px > 0 else "left") if a == "hscroll" else ("up" if px > 0 else "down")
        else:
            raise _Bad(f"{a} needs a direction or pixels")
        return _mk(ActionType.SCROLL, frame, direction=direction, point=p)
    if a in _TYPES:
        t = _get(d, *_TEXT_KEYS)
        if t is None:
            raise _Bad(f"{a} needs text")
        p = pt()
        return _mk(ActionType.TYPE, frame, text=_text(t, "text"), point=p)
    if a in _OPENS:
        t = _get(d, "text", "app_name", "app", "name")
        if t is None:
            raise _Bad(f"{a} needs an app name")
        return _build(lambda: Action.open_app(_text(t, "app name")))
    if a == "system_button":
        b = d.get("button")
        key = b.strip().lower() if isinstance(b, str) else None
        if key not in _BUTTONS:
            raise _Bad(f"system_button {str(b)[:40]!r} has no counterpart (Back, Home, Enter)")
        return Action.simple(_BUTTONS[key])
    if a in ("key", "hotkey", "press_key", "keyevent"):
        k = _get(d, "keys", "key", "text", "button")
        if k is None:
            raise _Bad(f"{a} needs a key")
        return _hotkey(k) if isinstance(k, str) and a == "hotkey" else _key(k)
    if a in _SIMPLE:
        return Action.simple(_SIMPLE[a])
    if a in ("terminate", "status", "stop"):
        return _build(lambda: Action.finish(_finish_status(_get(d, "status", "goal_status")), _answer(d)))
    if a == "answer":
        t = _get(d, *_TEXT_KEYS)
        return _build(lambda: Action.finish("complete", None if t is None else _text(t, "answer")))
    if a in ("complete", "finish", "finished", "done"):
        return _build(lambda: Action.finish("complete", _answer(d)))
    if a in ("impossible", "infeasible", "fail", "call_user"):
        return Action.finish("infeasible")
    if a in ("mouse_move", "hover"):
        raise _Bad(f"{a} (a hover) has no counterpart in the action space")
    raise _Bad(f"unknown action {str(name)[:40]!r}")


def _answer(d: dict) -> str | None:
    t = _get(d, "answer", "text", "content")
    return None if t is None or (isinstance(t, str) and not t.strip()) else _text(t, "answer")


# -- AndroidControl / AndroidWorld ------------------------------------------------------------
def _ac_point(d: dict) -> tuple[float, float] | None:
    if d.get("x") is not None or d.get("y") is not None:
        return _num(d.get("x"), "x"), _num(d.get("y"), "y")
    return _optional_point(d, "coordinate", "point")


def _from_androidcontrol(d: dict, frame: Frame) -> Action:
    """``{"action_type": ...}`` of AndroidControl's release and AndroidWorld's JSONAction."""
    name = d.get("action_type")
    a = name.strip().lower() if isinstance(name, str) else ""
    p = _ac_point(d)
    if a in ("click", "long_press", "double_tap", "tap"):
        if p is None:
            if d.get("index") is not None:
                raise _Bad(f"{a} by element index needs the UI tree; give x and y")
            raise _Bad(f"{a} needs x and y")
        t = ActionType.LONG_PRESS if a == "long_press" else ActionType.CLICK
        return _mk(t, frame, point=p)
    if a == "scroll":
        return _mk(ActionType.SCROLL, frame, direction=_direction(d.get("direction")), point=p)
    if a == "swipe":
        end = _optional_point(d, "end", "coordinate2", "end_coordinate")
        direction = _direction(d["direction"]) if d.get("direction") is not None else None
        if direction is None and (p is None or end is None):
            raise _Bad("swipe needs a direction or start and end points")
        return _mk(ActionType.SWIPE, frame, point=p, end=end, direction=direction)
    if a in ("input_text", "type"):
        t = d.get("text")
        if t is None:
            raise _Bad(f"{a} needs text")
        return _mk(ActionType.TYPE, frame, text=_text(t, "text"), point=p)
    if a == "open_app":
        t = _get(d, "app_name", "text")
        if t is None:
            raise _Bad("open_app needs app_name")
        return _build(lambda: Action.open_app(_text(t, "app_name")))
    if a in ("navigate_home", "navigate_back", "keyboard_enter", "wait"):
        return Action.simple(a)
    if a == "status":
        return _build(lambda: Action.finish(_finish_status(_get(d, "goal_status", "status")), _answer(d)))
    if a == "answer":
        t = d.get("text")
        return _build(lambda: Action.finish("complete", None if t is None else _text(t, "answer")))
    raise _Bad(f"unknown action_type {str(name)[:40]!r}")


# -- dispatch of parsed JSON / Python literals ------------------------------------------------
def _from_dict(d: dict, frame: Frame) -> tuple[Action, str] | None:
    """(action, format) for a recognised object; raises _Recognised when the object is a known
    format whose action is invalid; None when the object is no action at all."""
    try:
        if isinstance(d.get("function"), dict) and "arguments" in d["function"]:  # OpenAI tool_calls entry
            d = d["function"]
        if "name" in d and "arguments" in d:
            args = d["arguments"]
            if isinstance(args, str):
                try:
                    args = _loads(args)
                except ValueError as exc:
                    raise _Bad(f"tool call arguments are not an object: {exc}") from None
            if not isinstance(args, dict):
                raise _Bad("tool call arguments must be an object")
            return _from_action_dict(args, frame), "tool_call"
        if "action_type" in d:
            return _from_androidcontrol(d, frame), "androidcontrol_json"
        if isinstance(d.get("action"), str):
            return _from_action_dict(d, frame), "qwen_mobile_use"
        if isinstance(d.get("action"), dict):  # {"action": {...}} wrappers
            return _from_dict(d["action"], frame)
        if "bbox_2d" in d:
            return _build(lambda: Action.box_answer(_box(d["bbox_2d"], "bbox_2d"), frame=frame)), "gui_g1_bbox"
        if "point_2d" in d:
            return _build(lambda: Action(ActionType.CLICK, point=_point(d["point_2d"], "point_2d"), frame=frame)), "gui_g1_bbox"
        if isinstance(d.get("type"), str) and d["type"].strip().lower() in {t.value for t in ActionType}:
            data = {str(k): v for k, v in d.items()}
            if any(data.get(k) is not None for k in ("point", "end", "box")):
                data.setdefault("frame", frame.value)
            return _build(lambda: Action.from_dict(data)), "guienv_json"
    except _Bad as exc:
        raise _Recognised(_fmt_of(d), str(exc)) from None
    except KeyError as exc:
        raise _Recognised(_fmt_of(d), f"missing field {exc}") from None
    return None


def _fmt_of(d: dict) -> str:
    if "name" in d and "arguments" in d:
        return "tool_call"
    if "action_type" in d:
        return "androidcontrol_json"
    if "action" in d:
        return "qwen_mobile_use"
    if "bbox_2d" in d or "point_2d" in d:
        return "gui_g1_bbox"
    return "guienv_json"


class _Recognised(Exception):
    """A recognised format whose action is invalid."""

    def __init__(self, fmt: str, reason: str):
        super().__init__(reason)
        self.fmt, self.reason = fmt, reason


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _from_value(v: Any, frame: Frame, depth: int = 0) -> tuple[Action, str, bool] | None:
    """(action, format, bare) for a parsed literal; raises _Recognised; None if no action."""
    if isinstance(v, dict):
        got = _from_dict(v, frame)
        return None if got is None else (got[0], got[1], False)
    if isinstance(v, (list, tuple)):
        if len(v) in (2, 4) and all(_is_number(x) for x in v):
            try:
                if len(v) == 2:
                    return _build(lambda: Action(ActionType.CLICK, point=_point(v), frame=frame)), "bare_point", True
                return _build(lambda: Action.box_answer(_box(v, "box"), frame=frame)), "bare_box", True
            except _Bad as exc:
                raise _Recognised("bare_point" if len(v) == 2 else "bare_box", str(exc)) from None
        if depth >= 2:
            return None
        first_err: _Recognised | None = None
        for item in list(v)[:MAX_LIST]:
            if not isinstance(item, (dict, list, tuple)):
                continue
            try:
                got = _from_value(item, frame, depth + 1)
            except _Recognised as exc:
                first_err = first_err or exc
                continue
            if got is not None:
                return got
        if first_err is not None:
            raise first_err
    return None


def _loads(s: str) -> Any:
    """JSON, else a Python literal (single-quoted dicts, tuples). Raises ValueError on failure."""
    try:
        return json.loads(s)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(s)
    # Warning: invalid escapes in the text warn at compile time, and raise under ``-W error``.
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError, Warning) as exc:
        raise ValueError(f"not JSON or a Python literal: {type(exc).__name__}") from None


# -- UI-TARS function calls -------------------------------------------------------------------
def _call_kwargs(inner: str) -> tuple[list[Any], dict[str, Any]]:
    """Arguments of ``name(inner)``: ``ast.parse`` of literals only; falls back to a lenient split
    for contents with unescaped quotes (``type(content='don't')``)."""
    try:
        node = ast.parse(f"f({inner})", mode="eval").body
        if isinstance(node, ast.Call):
            args = [ast.literal_eval(a) for a in node.args]
            kwargs = {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg}
            return args, kwargs
    except (ValueError, SyntaxError, TypeError, RecursionError, MemoryError, Warning):
        pass
    kwargs: dict[str, Any] = {}
    marks = list(_KWARG_RE.finditer(inner))
    for i, m in enumerate(marks):
        stop = marks[i + 1].start() if i + 1 < len(marks) else len(inner)
        kwargs[m.group(1)] = _unquote(inner[m.end() : stop].strip())
    if not marks and inner.strip():
        return [_unquote(inner.strip())], {}
    return [], kwargs


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"":
        s = s[1:-1]
    elif s[:1] in ("'", '"'):
        s = s[1:]
    return s.replace("\\'", "'").replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")


_UITARS_NAMES = {
    "click", "left_single", "left_double", "double_click", "right_single", "right_click", "tap",
    "long_press", "type", "scroll", "drag", "swipe", "hotkey", "press", "key", "press_home",
    "press_back", "press_enter", "home", "back", "open_app", "wait", "finished", "finish",
    "call_user", "answer", "terminate",
}  # fmt: skip


def _from_uitars(name: str, inner: str, frame: Frame) -> Action:
    """UI-TARS action calls (UI-TARS-1.0/1.5 prompts). Positions may be ``'(x,y)'``,
    ``'<|box_start|>(x,y)<|box_end|>'``, ``'<point>x y</point>'`` or a 4-number box (its centre)."""
    args, kw = _call_kwargs(inner)
    n = name.lower()

    def pos(*keys: str) -> tuple[float, float] | None:
        v = _get(kw, *keys)
        if v is None and args and keys[0] in ("start_box", "box"):
            v = args[:2] if len(args) >= 2 and all(_is_number(a) for a in args[:2]) else args[0]
        if v is None and "x" in kw and "y" in kw and keys[0] in ("start_box", "box"):
            v = (kw["x"], kw["y"])
        return None if v is None else _point(v, keys[0])

    def start() -> tuple[float, float] | None:
        return pos("start_box", "point", "start_point", "box", "coordinate")

    def text(*keys: str) -> Any:  # a keyword argument, else the first positional one
        v = _get(kw, *keys)
        return v if v is not None else (args[0] if args else None)

    if n in ("click", "left_single", "left_double", "double_click", "tap"):
        p = start()
        if p is None:
            raise _Bad(f"{n} needs start_box or point")
        return _mk(ActionType.CLICK, frame, point=p)
    if n in ("right_single", "right_click", "long_press"):
        p = start()
        if p is None:
            raise _Bad(f"{n} needs start_box or point")
        return _mk(ActionType.LONG_PRESS, frame, point=p)
    if n == "type":
        t = text("content", "text")
        if t is None:
            raise _Bad("type needs content")
        return _build(lambda: Action.type_text(_text(t, "content")))
    if n in ("scroll", "drag", "swipe"):
        p = start()
        end = pos("end_box", "end_point")
        if p is not None and end is not None:  # a finger path (drag, or the old scroll(start_box, end_box))
            return _mk(ActionType.SWIPE, frame, point=p, end=end)
        d = _get(kw, "direction")
        if d is None:
            raise _Bad(f"{n} needs a direction or start and end boxes")
        t = ActionType.SCROLL if n == "scroll" else ActionType.SWIPE
        return _mk(t, frame, direction=_direction(d), point=p)
    if n in ("hotkey", "press", "key"):
        k = text("key", "keys", "keycode")
        if k is None:
            raise _Bad(f"{n} needs a key")
        return _hotkey(k)
    if n in ("press_home", "home"):
        return Action.simple(ActionType.NAVIGATE_HOME)
    if n in ("press_back", "back"):
        return Action.simple(ActionType.NAVIGATE_BACK)
    if n == "press_enter":
        return Action.simple(ActionType.KEYBOARD_ENTER)
    if n == "open_app":
        t = text("app_name", "app", "name", "content")
        if t is None:
            raise _Bad("open_app needs app_name")
        return _build(lambda: Action.open_app(_text(t, "app_name")))
    if n == "wait":
        return Action.simple(ActionType.WAIT)
    if n in ("finished", "finish", "answer"):
        t = text("content", "answer", "text")
        t = None if t is None or (isinstance(t, str) and not t.strip()) else _text(t, "content")
        return _build(lambda: Action.finish("complete", t))
    if n == "call_user":
        return Action.finish("infeasible")
    if n == "terminate":
        return _build(lambda: Action.finish(_finish_status(text("status")), None))
    raise _Bad(f"unknown UI-TARS action {name!r}")


# -- scanning ---------------------------------------------------------------------------------
def _spans(text: str) -> list[tuple[int, int, int]]:
    """Maximal balanced bracket spans ``(start, end, depth)`` in text order, found in one pass.

    Quotes are honoured only inside brackets and only where a value can start (after one of
    ``[{(,:=``), so apostrophes in prose do not swallow the text. A closer with no matching
    opener is ignored; one matching a deeper opener closes the unclosed ones in between. When an
    outer bracket never closes, the complete spans inside it are returned instead.
    """
    out: list[tuple[int, int, int]] = []
    stack: list[list[Any]] = []  # [opener, start, max depth below, complete child spans]
    counts = {"(": 0, "[": 0, "{": 0}
    quote = ""
    escape = False
    prev = ""
    for i, c in enumerate(text):
        if quote:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == quote:
                quote = ""
                prev = c
            continue
        if c in _OPEN:
            stack.append([c, i, 0, []])
            counts[c] += 1
        elif c in _CLOSE:
            want = _CLOSE[c]
            if counts[want]:
                below = 0
                while True:
                    opener, start, sub, _ = stack.pop()
                    counts[opener] -= 1
                    below = max(below, sub + 1)
                    if opener == want:
                        break
                span = (start, i + 1, below)
                if stack:
                    stack[-1][2] = max(stack[-1][2], below)
                    stack[-1][3].append(span)
                else:
                    out.append(span)
                    if len(out) >= MAX_CANDIDATES:
                        return out
        elif c in "'\"" and stack and prev in _VALUE_START:
            quote = c
        if not c.isspace():
            prev = c
    for entry in stack:  # unclosed outer brackets: keep the complete spans inside them
        out.extend(entry[3])
    out.sort()
    return out[:MAX_CANDIDATES]


_TAGS = (("<|box_start|>", "<|box_end|>"), ("<point>", "</point>"), ("<bbox>", "</bbox>"))


def _tag_spans(text: str, low: str) -> list[tuple[int, int, int, int]]:
    """Coordinate tags ``(start, end, content_start, content_end)``."""
    out = []
    for open_, close in _TAGS:
        pos = 0
        while len(out) < MAX_CANDIDATES:
            i = low.find(open_, pos)
            if i < 0:
                break
            j = low.find(close, i + len(open_))
            if j < 0:
                break
            out.append((i, j + len(close), i + len(open_), j))
            pos = j + len(close)
    return out


def _call_name(text: str, start: int) -> str:
    j = start
    while j > 0 and start - j < 40 and (text[j - 1].isalnum() or text[j - 1] == "_") and text[j - 1].isascii():
        j -= 1
    name = text[j:start]
    return name if name and not name[0].isdigit() else ""


@dataclass
class _Found:
    action: Action | None = None
    fmt: str | None = None
    raw: str | None = None


def _search(text: str, frame: Frame) -> tuple[_Found | None, _Found | None, str | None]:
    """(first valid structured action, first valid bare tuple, first reason) in ``text``."""
    low = text.translate(_ASCII_LOWER)
    spans = _spans(text)
    cands: list[tuple[int, int, str, Any]] = [(s, e, "span", d) for s, e, d in spans]
    for s, e, cs, ce in _tag_spans(text, low):
        if not any(a <= s and e <= b for a, b, _ in spans):  # tags inside a call/JSON are its own business
            cands.append((s, e, "tag", (cs, ce)))
    cands.sort(key=lambda c: (c[0], -c[1]))
    bare: _Found | None = None
    reason: str | None = None
    recognised: _Found | None = None
    for start, end, kind, extra in cands[:MAX_CANDIDATES]:
        raw = text[start:end]
        try:
            if kind == "tag":
                nums = _numbers(text[extra[0] : extra[1]], "tag")
                if len(nums) == 2:
                    act = _mk(ActionType.CLICK, frame, point=tuple(nums))
                elif len(nums) == 4:
                    act = _mk(ActionType.BOX, frame, box=_box(nums, "box"))
                else:
                    raise _Bad(f"a coordinate tag needs 2 numbers (a point) or 4 (a box), got {len(nums)}")
                return _Found(act, "coordinate_tag", raw), bare, reason
            if extra > MAX_DEPTH:
                reason = reason or f"bracket nesting deeper than {MAX_DEPTH} skipped"
                continue
            name = _call_name(text, start) if raw[0] == "(" else ""
            if name:
                if name.lower() not in _UITARS_NAMES:
                    continue
                raw = name + raw
                act = _from_uitars(name, raw[len(name) + 1 : -1], frame)
                return _Found(act, "uitars", raw), bare, reason
            try:
                value = _loads(raw)
            except ValueError:
                continue
            got = _from_value(value, frame)
            if got is None:
                continue
            act, fmt, is_bare = got
            if not is_bare:
                return _Found(act, fmt, raw), bare, reason
            if bare is None:
                bare = _Found(act, fmt, raw)
        except _Recognised as exc:
            reason = reason or f"{exc.fmt}: {exc.reason}"
            recognised = recognised or _Found(None, exc.fmt, raw)
        except _Bad as exc:
            fmt = "coordinate_tag" if kind == "tag" else "uitars"
            reason = reason or f"{fmt}: {exc}"
            recognised = recognised or _Found(None, fmt, raw)
        except Exception as exc:  # noqa: BLE001 - hostile text must never escape as an exception
            reason = reason or f"unreadable candidate ({type(exc).__name__})"
    return recognised, bare, reason


# -- wrappers ---------------------------------------------------------------------------------
def _blocks(text: str, low: str, tag: str) -> list[str]:
    out, pos = [], 0
    open_, close = f"<{tag}>", f"</{tag}>"
    while len(out) < MAX_ANSWER_BLOCKS:
        i = low.find(open_, pos)
        if i < 0:
            break
        j = low.find(close, i + len(open_))
        out.append(text[i + len(open_) : j if j >= 0 else len(text)])
        if j < 0:
            break
        pos = j + len(close)
    return out


def _split(text: str) -> tuple[str | None, list[str], str | None]:
    """(think, regions to search, where they come from: "tags", "uitars" or None)."""
    low = text.translate(_ASCII_LOWER)
    think = None
    outside = text
    for tag in ("think", "thinking"):
        i, j = low.find(f"<{tag}>"), low.find(f"</{tag}>")
        if i >= 0 and (j < 0 or j > i):
            if j >= 0:
                think = text[i + len(tag) + 2 : j]
                outside = text[:i] + "\n" + text[j + len(tag) + 3 :]
            else:  # unclosed: everything after it is reasoning
                think = text[i + len(tag) + 2 :]
                outside = text[:i]
            break
        if j >= 0:  # "</think>" alone: the chat template opened the block
            think = text[:j]
            outside = text[j + len(tag) + 3 :]
            break
    low = outside.translate(_ASCII_LOWER)
    blocks = _blocks(outside, low, "answer") or _blocks(outside, low, "action")
    if blocks:
        return think, blocks, "tags"
    k = outside.rfind("Action:")
    if k >= 0:  # UI-TARS "Thought: ...\nAction: ..."
        t = outside.find("Thought:")
        if think is None and 0 <= t < k:
            think = outside[t + len("Thought:") : k].strip()
        return think, [outside[k + len("Action:") :]], "uitars"
    return think, [outside], None


def parse_action_detailed(text: Any, *, frame: Frame | str = Frame.PIXEL) -> ParseResult:
    """Parse one model output; see the module docstring for formats and decisions.

    ``frame`` labels the coordinates found in the text (``ValueError`` for an unknown frame name:
    that is a caller bug, not model output). Never raises on ``text``, whatever its type."""
    frame = Frame(frame)
    if not isinstance(text, str):
        return ParseResult(Action.invalid(f"model output must be a string, got {type(text).__name__}"))
    truncated = len(text) > MAX_CHARS
    if truncated:
        text = text[:MAX_CHARS]
    note = f" (output truncated to its first {MAX_CHARS} characters)" if truncated else ""
    try:
        think, regions, source = _split(text)
        tagged = source == "tags"
        answer = regions[0] if tagged else (regions[0].strip() if source == "uitars" else None)
        first_reason: str | None = None
        first_miss: _Found | None = None
        for region in regions:  # the first region with a valid action wins
            found, bare, reason = _search(region, frame)
            hit = found if found is not None and found.action is not None else bare
            if hit is not None:
                if tagged:
                    answer = region
                return ParseResult(hit.action, hit.fmt, answer, think, truncated, hit.raw)
            first_reason = first_reason or reason
            first_miss = first_miss or found
        if first_reason is None:
            if tagged and not any(r.strip() for r in regions):
                first_reason = "empty <answer>/<action> block"
            elif not tagged and not regions[-1].strip() and think is not None:
                first_reason = "no action outside the <think> block"
            else:
                first_reason = "no action found in the model output"
        fmt, raw = (first_miss.fmt, first_miss.raw) if first_miss else (None, None)
        return ParseResult(Action.invalid(first_reason + note), fmt, answer, think, truncated, raw)
    except Exception as exc:  # noqa: BLE001 - last guard: parsing must never raise
        return ParseResult(Action.invalid(f"parser error {type(exc).__name__}: {exc}{note}"), truncated=truncated)


def parse_action(text: Any, *, frame: Frame | str = Frame.PIXEL) -> Action:
    """The action in a model output (``Action.invalid(reason)`` when there is none); never raises
    on ``text``. Coordinates are labelled with ``frame``. See :func:`parse_action_detailed`."""
    return parse_action_detailed(text, frame=frame).action


# -- the one text-to-action path --------------------------------------------------------------
def as_action(action: Any, *, frame: Frame | str = Frame.PIXEL) -> Action:
    """Accept what ``env.step`` may receive: an :class:`Action`, a sample of
    :func:`guienv.actions.action_space` (normalized frame), guienv action JSON (a dict with a string
    ``type``; its ``frame`` field wins), or raw model text (parsed with :func:`parse_action`, its
    coordinates labelled ``frame``). Never raises on ``action``: bad input becomes ``invalid``."""
    if isinstance(action, Action):
        return action
    if isinstance(action, str):
        return parse_action(action, frame=frame)
    if isinstance(action, Mapping):
        try:
            if isinstance(action.get("type"), str):
                return Action.from_dict(action)
            return from_space(action)
        except (KeyError, ValueError, TypeError, IndexError, OverflowError) as exc:
            return Action.invalid(f"bad action dict: {exc}")
    return Action.invalid(f"cannot interpret {type(action).__name__} as an action")


def read_action(output: Any, screen: Screen, frame: Frame | str = Frame.PIXEL) -> Action:
    """``output`` (model text, an :class:`Action`, action JSON or a space sample) as a **pixel**
    action on ``screen``; never raises on ``output``.

    Text is read with :func:`parse_action`, its coordinates labelled ``frame`` (the frame the model
    answers in; ``resized`` uses ``screen.resize``); other inputs carry their own frame (see
    :func:`as_action`). Any failure -- unreadable text, a conversion error (a frame the screen
    can't have, an overflow), non-finite pixels -- gives ``Action.invalid(reason)``. An unknown
    ``frame`` name is a caller bug and raises ``ValueError``."""
    frame = Frame(frame)
    action = as_action(output, frame=frame)
    if not action.is_valid or action.frame is Frame.PIXEL:
        return action
    try:
        # to_frame re-validates the converted action (finite numbers, ordered box)
        return action.to_frame(Frame.PIXEL, screen)
    except (ValueError, TypeError, ArithmeticError) as exc:  # ArithmeticError: overflow, division by zero
        return Action.invalid(f"cannot convert the {action.frame.value} action to pixels: {exc}")
