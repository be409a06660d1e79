"""Numbers, coordinates and key names inside model output, checked before an Action is built
(limits that keep hostile text cheap, the shared key/direction/finish mappings)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

from guienv.actions import Action, ActionType
from guienv.frames import Frame

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
