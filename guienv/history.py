"""The agent's view of a multi-step episode: the current observation plus a bounded history.

One builder for every place that prompts a policy turn by turn: ``guienv eval`` (through
:class:`guienv.envs.history.HistoryWrapper`) and the multi-turn trainer build each step's prompt
from :meth:`History.view` with :func:`guienv.prompts.observation_messages`, so a policy sees the
same prompt in training and evaluation.

Two kinds of env:

- **Screen envs** (dict observations with ``"screenshot"``: SynthApp app mode, MiniWoB++, Appium):
  the view is the observation's fields plus ``history``, the last ``actions`` actions as
  :func:`guienv.prompts.history_text` writes them (numbered guienv action JSON, each in the
  policy's ``frame`` of its own screen), ``previous_screenshots`` (the last ``screens`` screens,
  oldest first; only with ``screens > 0``) and ``feedback``.
- **Text envs** (string observations: ALFWorld, WebShop, the MDP env): the view is
  ``{"observation", "task", "admissible_commands", "history", "step"}`` with ``history`` the last
  ``observations`` ``(observation, action)`` pairs, as verl-agent's prompts keep them (repository
  ``langfengQ/verl-agent``, ``agent_system/environments/prompts/alfworld.py``, ``history_length``):
  a bounded history keeps the input length bounded on long horizons.

``feedback`` ("Your last action was invalid: <reason>.") is present only after an invalid action
(``info["invalid"]``) with ``HistoryConfig.feedback`` on.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from guienv.actions import Action
from guienv.frames import Frame, Resize, Screen
from guienv.parsing import read_action
from guienv.prompts import history_text

__all__ = ["History", "HistoryConfig", "feedback_text"]

_MAX_REASON = 300  # characters of an invalid-action reason shown to the model (hostile text)
_MAX_ACTION = 200  # characters of a text action kept in the history (ALFWorld's own command limit)


@dataclass(frozen=True)
class HistoryConfig:
    """How much of an episode's past a turn's prompt shows."""

    screens: int = 0  # previous screenshots shown as extra images (last k)
    actions: int = 8  # screen envs: last m actions as numbered text lines (0: none)
    observations: int = 2  # text envs: last m (observation, action) pairs (verl-agent's history_length)
    feedback: bool = True  # tell the model when its last action was invalid (info["invalid_reason"])

    def __post_init__(self) -> None:
        for name in ("screens", "actions", "observations"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"HistoryConfig.{name} must be a non-negative integer, got {v!r}")


def _clip(text: str, n: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def feedback_text(info: Mapping[str, Any], text_env: bool = False) -> str | None:
    """``"Your last action was invalid: <reason>."`` when ``info`` flags the step invalid, else
    None. The reason is ``info["invalid_reason"]`` (SynthApp), the flag itself when it is text
    (the Appium envs), or for text envs whether a command could be read at all."""
    flag = info.get("invalid")
    if not flag:
        return None
    reason = info.get("invalid_reason")
    if not isinstance(reason, str) or not reason.strip():
        reason = flag if isinstance(flag, str) and flag.strip() else None
    if reason is None and text_env:
        cmd = info.get("action")
        reason = (f"{_clip(cmd, 80)!r} is not one of the admissible actions" if isinstance(cmd, str) and cmd
                  else "no action could be read from it")
    if reason is None:
        return "Your last action was invalid."
    return f"Your last action was invalid: {_clip(reason, _MAX_REASON).rstrip('.')}."


def _action_text(action: Any, info: Mapping[str, Any]) -> str:
    """A text env's action as the history shows it: the command the env read (``info["action"]``,
    as ALFWorld's and the MDP env's own histories), else the text the env received."""
    cmd = info.get("action")
    if isinstance(cmd, str) and cmd:
        return _clip(cmd, _MAX_ACTION)
    if isinstance(action, Action):
        return _clip(action.text or action.type.value, _MAX_ACTION)
    return _clip(str(action), _MAX_ACTION)


class History:
    """The bounded history of one episode and the view a policy acts on (module docstring).

    ``frame`` and ``resize`` are the policy's coordinate frame and smart-resize bounds: model text
    is read in them (:func:`guienv.parsing.read_action`) and the history lines are written in them.
    Call :meth:`reset` with the env's reset output, :meth:`record` after every step, and
    :meth:`view` for the prompt of the current step."""

    def __init__(self, config: HistoryConfig = HistoryConfig(), frame: Frame | str = Frame.PIXEL,
                 resize: Resize | None = None):
        self.config = config
        self.frame = Frame(frame)
        self.resize = resize if resize is not None else Resize()
        self._obs: Any = None
        self._info: Mapping[str, Any] = {}
        self._t = 0
        self._text = False
        self._actions: deque[tuple[Action, Screen]] = deque(maxlen=config.actions)
        self._screens: deque[np.ndarray] = deque(maxlen=config.screens)
        self._pairs: deque[tuple[str, str]] = deque(maxlen=config.observations)

    @property
    def step(self) -> int:
        """Steps recorded since :meth:`reset`."""
        return self._t

    def reset(self, observation: Any, info: Mapping[str, Any]) -> None:
        """Start an episode at the env's first ``observation`` and ``info``."""
        if isinstance(observation, str):
            self._text = True
        elif isinstance(observation, Mapping) and "screenshot" in observation:
            self._text = False
        else:
            raise TypeError("History needs a text observation (str) or a screen observation (a dict with "
                            f"'screenshot'), got {type(observation).__name__}")
        self._obs, self._info, self._t = observation, dict(info or {}), 0
        self._actions.clear()
        self._screens.clear()
        self._pairs.clear()

    def record(self, action: Any, observation: Any, info: Mapping[str, Any]) -> None:
        """Add one step: ``action`` as the env received it (model text, an :class:`Action`, action
        JSON), then the env's next ``observation`` and ``info``. Never raises on ``action``: an
        unreadable one is kept as an ``invalid`` history line."""
        if self._obs is None:
            raise RuntimeError("History.record before History.reset")
        info = dict(info or {})
        if self._text:
            if self.config.observations:
                self._pairs.append((str(self._obs), _action_text(action, info)))
        else:
            shot = np.asarray(self._obs["screenshot"])
            screen = Screen(int(shot.shape[1]), int(shot.shape[0]), self.resize)
            if self.config.actions:
                try:
                    acted = read_action(action, screen, self.frame)
                except Exception as exc:  # noqa: BLE001 - model output must never crash the history
                    acted = Action.invalid(f"unreadable action: {type(exc).__name__}")
                self._actions.append((acted, screen))
            if self.config.screens:
                self._screens.append(shot.copy())  # envs may reuse their frame buffer
        self._obs, self._info = observation, info
        self._t += 1

    def view(self) -> dict[str, Any]:
        """The agent's view of the current step (module docstring)."""
        if self._obs is None:
            raise RuntimeError("History.view before History.reset")
        if self._text:
            out: dict[str, Any] = {
                "observation": self._obs,
                "task": self._info.get("task"),
                "admissible_commands": list(self._info.get("admissible_commands") or []),
                "history": list(self._pairs),
                "step": self._t,
            }
        else:
            out = dict(self._obs)
            out["history"] = history_text([a for a, _ in self._actions], [s for _, s in self._actions], self.frame)
            if self.config.screens:
                out["previous_screenshots"] = tuple(self._screens)
        fb = feedback_text(self._info, self._text) if self.config.feedback else None
        if fb is not None:
            out["feedback"] = fb
        return out
