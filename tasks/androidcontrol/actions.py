"""AndroidControl's action JSON (``{"action_type": ...}``) to and from pixel-frame actions.

AndroidControl (Li et al., "On the Effects of Data Scale on UI Control Agents", arXiv 2406.03679;
``google-research/google-research: android_control/README.md``).

Actions map to :class:`guienv.actions.Action` in the pixel frame: ``click``/``long_press`` (x, y),
``scroll`` -> ``ActionType.SCROLL`` keeping AndroidControl's direction, which is the direction the
**content** moves ("scroll down" = finger moves up), ``open_app`` (app_name), ``input_text``
(text), ``type`` (x, y, text: click then type; kept as a ``type`` action with a point),
``navigate_home``, ``navigate_back``, ``wait`` and ``keyboard_enter``. The JSON is kept verbatim
in ``Step.raw_action``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from guienv.actions import OPPOSITE, Action, ActionType


# -- actions --------------------------------------------------------------------------------------
def _number(raw: Mapping[str, Any], key: str) -> float:
    v = raw.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{key!r} must be a finite number, got {v!r}")
    return float(v)


def string_field(raw: Mapping[str, Any], key: str) -> str:
    v = raw.get(key)
    if not isinstance(v, str):
        raise ValueError(f"{key!r} must be a string, got {v!r}")
    return v


def action_from_androidcontrol(raw: Mapping[str, Any]) -> Action:
    """An AndroidControl action JSON object as a pixel-frame :class:`Action`; ``ValueError`` if it
    is not one."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"an action is a JSON object, got {type(raw).__name__}")
    t = raw.get("action_type")
    if t in ("click", "long_press"):
        return Action(ActionType(t), point=(_number(raw, "x"), _number(raw, "y")))
    if t == "scroll":
        return Action.scroll(string_field(raw, "direction"))
    if t == "open_app":
        return Action.open_app(string_field(raw, "app_name"))
    if t == "input_text":
        return Action.type_text(string_field(raw, "text"))
    if t == "type":
        return Action.type_text(string_field(raw, "text"), point=(_number(raw, "x"), _number(raw, "y")))
    if t in ("navigate_home", "navigate_back", "wait", "keyboard_enter"):
        return Action.simple(t)
    raise ValueError(f"unknown action_type {t!r}")


def json_number(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def action_to_androidcontrol(action: Action) -> dict[str, Any]:
    """The AndroidControl action JSON of a pixel-frame ``action`` (inverse of
    :func:`action_from_androidcontrol`). A finger ``swipe`` becomes a ``scroll`` in the opposite
    (content) direction; actions AndroidControl has no form for raise ``ValueError``."""
    if action.frame.value != "pixel" and action.point is not None:
        raise ValueError(f"convert the action to the pixel frame first (got {action.frame.value})")
    t = action.type
    if t in (ActionType.CLICK, ActionType.LONG_PRESS):
        x, y = action.point
        return {"action_type": t.value, "x": json_number(x), "y": json_number(y)}
    if t is ActionType.SCROLL:
        return {"action_type": "scroll", "direction": action.direction}
    if t is ActionType.SWIPE:
        return {"action_type": "scroll", "direction": OPPOSITE[action.swipe_direction()]}
    if t is ActionType.OPEN_APP:
        return {"action_type": "open_app", "app_name": action.text}
    if t is ActionType.TYPE:
        if action.point is not None:
            x, y = action.point
            return {"action_type": "type", "text": action.text, "x": json_number(x), "y": json_number(y)}
        return {"action_type": "input_text", "text": action.text}
    if t in (ActionType.NAVIGATE_HOME, ActionType.NAVIGATE_BACK, ActionType.WAIT, ActionType.KEYBOARD_ENTER):
        return {"action_type": t.value}
    raise ValueError(f"AndroidControl has no {t.value} action")
