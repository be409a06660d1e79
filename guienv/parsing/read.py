"""The one path from what a model or a caller gives an env (text, an Action, action JSON, a space
sample) to a pixel-frame :class:`~guienv.actions.Action` on a screen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from guienv.actions import Action, from_space
from guienv.frames import Frame, Screen
from guienv.parsing.text import parse_action


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
