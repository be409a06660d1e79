"""The grounding action space: one typed action model every env, agent and reward speaks.

An :class:`Action` is immutable and carries the coordinate :class:`~guienv.frames.Frame` of its
``point``/``end``/``box``. Conventions (coordinate frames: Qwen2.5-VL technical report, arXiv
2502.13923; scroll as the content direction: AndroidControl, Li et al. 2024, arXiv 2406.03679;
finger swipes: Appium UiAutomator2 driver ``mobile: swipeGesture``):

* ``click``/``long_press``: ``point``.
* ``swipe``: the **finger** path ``point -> end`` (optionally only ``direction``, the finger's).
* ``scroll``: ``direction`` is the direction the **content** moves (AndroidControl's convention:
  "scroll down" reveals what is below, so the finger moves up); ``point`` optionally anchors it.
  :func:`scroll_to_swipe` turns it into the finger swipe a device executes.
* ``type``: ``text`` (optionally a ``point`` to focus first); ``open_app``: ``text`` = app name.
* ``navigate_back``, ``navigate_home``, ``keyboard_enter``, ``wait``: no arguments.
* ``finish``: ``status`` (``complete`` or ``infeasible``) and optional ``text`` (the answer).
* ``box``: a ``box`` answer ``(x1, y1, x2, y2)`` for one-step grounding tasks.
* ``invalid``: what a parser returns for text it could not read; ``reason`` says why.

The Gymnasium view of the space (:func:`action_space`) uses the normalized frame so one space fits
screenshots of any size; envs also accept :class:`Action` objects in any frame.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any

import numpy as np
from gymnasium import spaces

from guienv.frames import Frame, Screen, convert_box, convert_point


class ActionType(str, Enum):
    CLICK = "click"
    LONG_PRESS = "long_press"
    SWIPE = "swipe"
    SCROLL = "scroll"
    TYPE = "type"
    OPEN_APP = "open_app"
    NAVIGATE_BACK = "navigate_back"
    NAVIGATE_HOME = "navigate_home"
    KEYBOARD_ENTER = "keyboard_enter"
    WAIT = "wait"
    FINISH = "finish"
    BOX = "box"
    INVALID = "invalid"


DIRECTIONS = ("up", "down", "left", "right")
OPPOSITE = {"up": "down", "down": "up", "left": "right", "right": "left"}
FINISH_STATUSES = ("complete", "infeasible")
POINTER_TYPES = (ActionType.CLICK, ActionType.LONG_PRESS)
# Order of the Discrete "type" component of the Gymnasium space (INVALID is not an agent choice).
SPACE_TYPES = tuple(t for t in ActionType if t is not ActionType.INVALID)

Point = tuple[float, float]
Box4 = tuple[float, float, float, float]

# Error messages show offending values shortened and depth-limited: a value built by hostile code
# (a list nested 10,000 deep) must give a clear ValueError, not a RecursionError from repr().
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 4, 80, 80, 8, 8


def _shown(value: Any) -> str:
    return _REPR.repr(value)


def _point(value: Any, name: str) -> Point | None:
    if value is None:
        return None
    try:
        if isinstance(value, (str, bytes)):  # "12" would unpack to (1.0, 2.0)
            raise TypeError(type(value).__name__)
        x, y = (float(v) for v in value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"{name} must be two numbers, got {_shown(value)}") from exc
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"{name} must be finite, got {_shown(value)}")
    return x, y


def _box(value: Any) -> Box4 | None:
    if value is None:
        return None
    try:
        if isinstance(value, (str, bytes)):
            raise TypeError(type(value).__name__)
        x1, y1, x2, y2 = (float(v) for v in value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ValueError(f"box must be four numbers, got {_shown(value)}") from exc
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise ValueError(f"box must be finite, got {_shown(value)}")
    if x2 < x1 or y2 < y1:
        raise ValueError(f"box must be (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2, got {_shown(value)}")
    return x1, y1, x2, y2


@dataclass(frozen=True)
class Action:
    """One GUI action. Construct through the class methods (``Action.click(x, y)``) or directly;
    ``__post_init__`` validates and normalises the fields, raising ``ValueError`` when they don't
    fit the type (parsers catch this and return :meth:`Action.invalid`)."""

    type: ActionType
    point: Point | None = None
    end: Point | None = None
    box: Box4 | None = None
    direction: str | None = None
    text: str | None = None
    status: str | None = None
    duration_ms: float | None = None
    frame: Frame = Frame.PIXEL
    reason: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "type", ActionType(self.type))
        set_(self, "frame", Frame(self.frame))
        set_(self, "point", _point(self.point, "point"))
        set_(self, "end", _point(self.end, "end"))
        set_(self, "box", _box(self.box))
        if self.type is ActionType.INVALID and not self.reason:  # every invalid action says why
            set_(self, "reason", "invalid action (no reason given)")
        if self.direction is not None:
            if not isinstance(self.direction, str):
                raise ValueError(f"direction must be a string, got {type(self.direction).__name__}")
            d = self.direction.strip().lower()
            if d not in DIRECTIONS:
                raise ValueError(f"direction must be one of {DIRECTIONS}, got {_shown(self.direction)}")
            set_(self, "direction", d)
        if self.text is not None and not isinstance(self.text, str):
            raise ValueError(f"text must be a string, got {type(self.text).__name__}")
        if self.duration_ms is not None:
            try:
                d = float(self.duration_ms)
            except (TypeError, ValueError, OverflowError) as exc:
                raise ValueError(f"duration_ms must be a number, got {_shown(self.duration_ms)}") from exc
            if not (math.isfinite(d) and d >= 0):
                raise ValueError(f"duration_ms must be a finite non-negative number, got {d}")
            set_(self, "duration_ms", d)
        t = self.type
        if t in POINTER_TYPES and self.point is None:
            raise ValueError(f"{t.value} needs a point")
        if t is ActionType.SWIPE and not (
            (self.point is not None and self.end is not None) or self.direction is not None
        ):
            raise ValueError("swipe needs a start and end point or a direction")
        if t is ActionType.SCROLL and self.direction is None:
            raise ValueError("scroll needs a direction (the direction the content moves)")
        if t in (ActionType.TYPE, ActionType.OPEN_APP) and self.text is None:
            raise ValueError(f"{t.value} needs text")
        if t is ActionType.OPEN_APP and not self.text.strip():
            raise ValueError("open_app needs a non-empty app name")
        if t is ActionType.BOX and self.box is None:
            raise ValueError("box needs a box (x1, y1, x2, y2)")
        if self.status is not None and not isinstance(self.status, str):
            raise ValueError(f"status must be a string, got {type(self.status).__name__}")
        if t is ActionType.FINISH:
            status = (self.status or "complete").strip().lower()
            if status not in FINISH_STATUSES:
                raise ValueError(f"finish status must be one of {FINISH_STATUSES}, got {_shown(self.status)}")
            set_(self, "status", status)

    # -- constructors -------------------------------------------------------------------------
    @classmethod
    def click(cls, x: float, y: float, frame: Frame | str = Frame.PIXEL) -> Action:
        return cls(ActionType.CLICK, point=(x, y), frame=frame)

    @classmethod
    def long_press(cls, x: float, y: float, frame: Frame | str = Frame.PIXEL, duration_ms: float | None = None) -> Action:
        return cls(ActionType.LONG_PRESS, point=(x, y), frame=frame, duration_ms=duration_ms)

    @classmethod
    def swipe(cls, start: Point, end: Point, frame: Frame | str = Frame.PIXEL, duration_ms: float | None = None) -> Action:
        return cls(ActionType.SWIPE, point=start, end=end, frame=frame, duration_ms=duration_ms)

    @classmethod
    def scroll(cls, direction: str, point: Point | None = None, frame: Frame | str = Frame.PIXEL) -> Action:
        return cls(ActionType.SCROLL, direction=direction, point=point, frame=frame)

    @classmethod
    def type_text(cls, text: str, point: Point | None = None, frame: Frame | str = Frame.PIXEL) -> Action:
        return cls(ActionType.TYPE, text=text, point=point, frame=frame)

    @classmethod
    def open_app(cls, name: str) -> Action:
        return cls(ActionType.OPEN_APP, text=name)

    @classmethod
    def simple(cls, type_: ActionType | str) -> Action:
        """``navigate_back``, ``navigate_home``, ``keyboard_enter`` or ``wait``."""
        return cls(ActionType(type_))

    @classmethod
    def finish(cls, status: str = "complete", answer: str | None = None) -> Action:
        return cls(ActionType.FINISH, status=status, text=answer)

    @classmethod
    def box_answer(cls, box: Box4, frame: Frame | str = Frame.PIXEL) -> Action:
        return cls(ActionType.BOX, box=box, frame=frame)

    @classmethod
    def invalid(cls, reason: str) -> Action:
        return cls(ActionType.INVALID, reason=str(reason)[:500])

    # -- geometry -----------------------------------------------------------------------------
    @property
    def is_valid(self) -> bool:
        return self.type is not ActionType.INVALID

    @property
    def target(self) -> Point | None:
        """Where the action lands: its point, else the centre of its box."""
        if self.point is not None:
            return self.point
        if self.box is not None:
            x1, y1, x2, y2 = self.box
            return (x1 + x2) / 2, (y1 + y2) / 2
        return None

    def to_frame(self, frame: Frame | str, screen: Screen) -> Action:
        """The same action with its coordinates in ``frame`` of ``screen``."""
        frame = Frame(frame)
        if frame is self.frame:
            return self
        conv = lambda p: None if p is None else convert_point(p, self.frame, frame, screen)  # noqa: E731
        box = None if self.box is None else convert_box(self.box, self.frame, frame, screen)
        return replace(self, point=conv(self.point), end=conv(self.end), box=box, frame=frame)

    def swipe_direction(self) -> str | None:
        """Finger direction of a swipe (dominant axis of ``end - point``), or its ``direction``."""
        if self.type is not ActionType.SWIPE:
            return None
        if self.point is None or self.end is None:
            return self.direction
        dx, dy = self.end[0] - self.point[0], self.end[1] - self.point[1]
        if dx == 0 and dy == 0:
            return self.direction
        if abs(dx) > abs(dy):
            return "right" if dx > 0 else "left"
        return "down" if dy > 0 else "up"

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """guienv action JSON: ``{"type": ..., <non-empty fields>, "frame": ...}``."""
        out: dict[str, Any] = {"type": self.type.value}
        for k, v in asdict(self).items():
            if k in ("type", "frame") or v is None:
                continue
            out[k] = list(v) if isinstance(v, tuple) else v
        # The frame goes with coordinates, and with any non-default frame so from_dict restores it.
        if any(out.get(k) is not None for k in ("point", "end", "box")) or self.frame is not Frame.PIXEL:
            out["frame"] = self.frame.value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Action:
        """Inverse of :meth:`to_dict`. Raises ``ValueError``/``KeyError`` on bad input."""
        if not isinstance(data, Mapping):
            raise ValueError(f"action must be a JSON object, got {type(data).__name__}")
        if "type" not in data:
            raise KeyError("action JSON needs a 'type' field")
        known = {"type", "point", "end", "box", "direction", "text", "status", "duration_ms", "frame", "reason"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown action fields {sorted(unknown)}")
        kwargs = dict(data)
        kwargs.setdefault("frame", Frame.PIXEL.value)
        return cls(**kwargs)


def scroll_to_swipe(action: Action, screen: Screen, fraction: float = 0.5) -> Action:
    """The finger swipe (pixel frame) that performs a ``scroll`` (content-direction) action.

    Scrolling content *down* means the finger moves *up*. The swipe is centred on the action's
    point (or the screen centre) and spans ``fraction`` of the screen along the scroll axis.
    """
    if action.type is not ActionType.SCROLL:
        raise ValueError(f"scroll_to_swipe needs a scroll action, got {action.type.value}")
    if action.point is not None:
        cx, cy = convert_point(action.point, action.frame, Frame.PIXEL, screen)
    else:
        cx, cy = screen.width / 2, screen.height / 2
    half_w, half_h = fraction * screen.width / 2, fraction * screen.height / 2
    finger = OPPOSITE[action.direction]
    dx = {"left": -1, "right": 1}.get(finger, 0)
    dy = {"up": -1, "down": 1}.get(finger, 0)
    clamp = lambda v, hi: min(max(v, 0.0), hi - 1.0)  # noqa: E731
    start = (clamp(cx - dx * half_w, screen.width), clamp(cy - dy * half_h, screen.height))
    end = (clamp(cx + dx * half_w, screen.width), clamp(cy + dy * half_h, screen.height))
    return Action.swipe(start, end, frame=Frame.PIXEL)


# -- Gymnasium view ---------------------------------------------------------------------------
TEXT_CHARSET = frozenset(chr(c) for c in range(32, 127))


def action_space(max_text_length: int = 256) -> spaces.Dict:
    """The grounding action space as a Gymnasium ``Dict`` (coordinates in the normalized frame).

    Components a type does not use are ignored. Decode a sample with :func:`from_space`."""
    unit = lambda n: spaces.Box(0.0, 1.0, shape=(n,), dtype=np.float32)  # noqa: E731
    return spaces.Dict(
        {
            "type": spaces.Discrete(len(SPACE_TYPES)),
            "point": unit(2),
            "end": unit(2),
            "box": unit(4),
            "direction": spaces.Discrete(len(DIRECTIONS)),
            "text": spaces.Text(max_text_length, min_length=0, charset=TEXT_CHARSET),
            "status": spaces.Discrete(len(FINISH_STATUSES)),
        }
    )


def from_space(sample: Mapping[str, Any]) -> Action:
    """Decode a sample of :func:`action_space` into a normalized-frame :class:`Action`."""
    t = SPACE_TYPES[int(sample["type"])]
    point = tuple(float(v) for v in sample["point"])
    end = tuple(float(v) for v in sample["end"])
    b = [float(v) for v in sample["box"]]
    box = (min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3]))
    direction = DIRECTIONS[int(sample["direction"])]
    text = str(sample["text"])
    f = Frame.NORMALIZED
    if t in POINTER_TYPES:
        return Action(t, point=point, frame=f)
    if t is ActionType.SWIPE:
        return Action.swipe(point, end, frame=f)
    if t is ActionType.SCROLL:
        return Action.scroll(direction, frame=f)
    if t is ActionType.TYPE:
        return Action.type_text(text)
    if t is ActionType.OPEN_APP:
        return Action.open_app(text) if text.strip() else Action.invalid("open_app with an empty app name")
    if t is ActionType.FINISH:
        return Action.finish(FINISH_STATUSES[int(sample["status"])], text or None)
    if t is ActionType.BOX:
        return Action.box_answer(box, frame=f)
    return Action.simple(t)


def to_space(action: Action, screen: Screen, max_text_length: int = 256) -> dict[str, Any]:
    """Encode ``action`` as a sample of :func:`action_space` (unused components zeroed)."""
    if not action.is_valid:
        raise ValueError(f"an invalid action has no place in the action space ({action.reason})")
    a = action.to_frame(Frame.NORMALIZED, screen)
    clip = lambda v, n: np.clip(np.asarray(v if v is not None else [0.0] * n, dtype=np.float32), 0, 1)  # noqa: E731
    direction = a.direction or (a.swipe_direction() if a.type is ActionType.SWIPE else None)
    text = "".join(c for c in (a.text or "") if c in TEXT_CHARSET)[:max_text_length]
    return {
        "type": SPACE_TYPES.index(a.type),
        "point": clip(a.point, 2),
        "end": clip(a.end, 2),
        "box": clip(a.box, 4),
        "direction": DIRECTIONS.index(direction) if direction else 0,
        "text": text,
        "status": FINISH_STATUSES.index(a.status) if a.status else 0,
    }
