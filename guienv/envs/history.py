"""``HistoryWrapper``: an env whose observations are :meth:`guienv.history.History.view`.

``guienv eval`` wraps the multi-step benchmarks in it (in the agent's coordinate frame and resize
bounds), and the multi-turn trainer builds its turn prompts from the same
:class:`~guienv.history.History`, so both prompt a policy identically. Actions pass through
unchanged; the view adds the bounded history, previous screenshots and invalid-action feedback
(see :mod:`guienv.history`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from guienv.frames import Frame, Resize
from guienv.history import History, HistoryConfig

__all__ = ["HistoryWrapper"]


class HistoryWrapper(gym.Wrapper):
    """Observations become the :class:`~guienv.history.History` view of the episode so far;
    ``info`` and actions are the env's own. ``self.history`` is the episode's history."""

    def __init__(self, env: gym.Env, config: HistoryConfig | None = None, frame: Frame | str = Frame.PIXEL,
                 resize: Resize | None = None):
        super().__init__(env)
        self.history = History(config if config is not None else HistoryConfig(), frame, resize)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.history.reset(obs, info)
        return self.history.view(), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.history.record(action, obs, info)
        return self.history.view(), reward, terminated, truncated, info
