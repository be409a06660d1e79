"""The action formats GUI models write (Qwen2.5-VL ``mobile_use``/``computer_use`` argument
objects and tool calls, AndroidControl / AndroidWorld JSON, GUI-G1 ``bbox_2d`` lists, guienv's own
action JSON, UI-TARS function calls), each turned into one :class:`~guienv.actions.Action`.
See :mod:`guienv.parsing` for the formats and the decisions taken."""

from __future__ import annotations

import ast
import json
from typing import Any

from guienv.actions import Action, ActionType
from guienv.frames import Frame
from guienv.parsing.values import (
    _KWARG_RE,
    MAX_LIST,
    _Bad,
    _box,
    _build,
    _direction,
    _finish_status,
    _get,
    _hotkey,
    _key,
    _mk,
    _num,
    _optional_point,
    _point,
    _seconds_ms,
    _text,
)

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
