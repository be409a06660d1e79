"""``guienv/SynthApp-v0``: synthetic GUI screens rendered with Pillow, no device needed.

Two modes over the generator in :mod:`tasks.synthapp`:

* ``grounding``: ScreenSpot-style one-step grounding (SeeClick, arXiv 2401.10935). The observation
  is a generated screen and an instruction naming one control by its visible label or icon name;
  the agent acts once; reward 1 if the action's point (a box's centre) lies inside the target's box
  (:func:`guienv.geometry.point_in_box`).
* ``app``: a multi-screen app (tabs, list -> detail, toggles, a form, confirm dialogs). The goal
  needs exactly ``k`` actions; the screen follows the agent's actions; reward 1.0 when every goal
  predicate holds on the app state (the episode terminates), else 0; truncated after
  ``max_steps`` (default ``2k + 3``). Invalid actions (unparsable, off-screen, ``type`` with no
  focused field, types the app has no use for) are no-ops flagged ``info["invalid"]``.

Tasks are indexed: ``reset(options={"index": i})`` serves task ``i`` of dataset ``config.seed``
(the same screen ``make_grounding_samples(...)[i]`` holds), ``"task_seed"`` picks another dataset,
``"steps"`` overrides ``k``; without an index one is drawn from ``self.np_random``, so
``reset(seed=s)`` is deterministic.

``info`` always holds ``target_box`` (pixel ``(x1, y1, x2, y2)`` of the control the next correct
action touches, or None), ``oracle_action`` (that action as guienv action JSON, pixel frame: what
:class:`agents.baselines.OracleAgent` plays; ``finish`` when nothing is left to do, ``finish``
``infeasible`` if the agent deleted an item the goal needs), ``elements`` (number of UI elements on screen; the
list is ``env.unwrapped.elements()``), ``task`` (a description), ``steps_left``, ``invalid`` and
``success``. Model text is read in ``text_frame`` (the frame of its coordinates) through
:func:`guienv.parsing.read_action`, like :class:`guienv.envs.screenspot.ScreenSpotEnv`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from guienv.actions import Action, ActionType, action_space
from guienv.envs.options import int_option, reset_options
from guienv.errors import EnvProtocolError
from guienv.frames import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, Frame, Resize, Screen
from guienv.geometry import point_in_box
from guienv.parsing import read_action
from guienv.spaces import AnyText
from guienv.types import UIElement
from tasks.synthapp import AppState, AppTask, SynthConfig, SynthScreen, as_config, generate_screen, make_app_task

MODES = ("app", "grounding")
_GROUNDING_TYPES = (ActionType.CLICK, ActionType.LONG_PRESS, ActionType.BOX)
_OPTIONS = {"index", "task_seed", "steps"}


class SynthAppEnv(gym.Env):
    """Synthetic app screens: one-step grounding or ``k``-step app tasks (see module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(
        self,
        *,
        mode: str = "app",
        config: SynthConfig | Mapping[str, Any] | None = None,
        steps: int | None = None,
        max_steps: int | None = None,
        render_mode: str | None = None,
        text_frame: Frame | str = Frame.PIXEL,
        min_pixels: int = QWEN_MIN_PIXELS,
        max_pixels: int = QWEN_MAX_PIXELS,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.config = as_config(config)
        if steps is not None:
            self.config = dataclasses.replace(self.config, steps=int(steps))
        if max_steps is not None and (isinstance(max_steps, bool) or int(max_steps) < 1):
            raise ValueError(f"max_steps must be a positive integer, got {max_steps!r}")
        self.mode = mode
        self.max_steps_arg = None if max_steps is None else int(max_steps)
        self.render_mode = render_mode
        self.text_frame = Frame(text_frame)
        W, H = self.config.width, self.config.height
        self.screen = Screen(W, H, Resize(min_pixels=min_pixels, max_pixels=max_pixels))
        self.observation_space = gym.spaces.Dict(
            {"screenshot": gym.spaces.Box(0, 255, (H, W, 3), np.uint8), "instruction": AnyText()}
        )
        self.action_space = action_space()
        self.task: AppTask | None = None
        self.state: AppState | None = None
        self.sample: SynthScreen | None = None
        self.max_steps = 1
        self._t = 0
        self._done = True
        self._index = 0
        self._seed = self.config.seed
        self._last_point: tuple[float, float] | None = None

    # -- episode ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = reset_options(options, _OPTIONS)
        task_seed = int_option(options, "task_seed", 0)
        index = int_option(options, "index", 0)
        steps = int_option(options, "steps", 1, 33)
        if index is None:
            index = 0 if task_seed is not None else int(self.np_random.integers(2**31 - 1))
        self._seed = self.config.seed if task_seed is None else task_seed
        self._index = index
        self._t, self._done, self._last_point = 0, False, None
        if self.mode == "grounding":
            self.sample = generate_screen(self.config, self._seed, index)
            self.max_steps = 1
        else:
            self.task = make_app_task(self.config, self._seed, index, steps=steps)
            self.state = self.task.start.copy()
            self.max_steps = self.max_steps_arg or 2 * self.task.k + 3
        return self._obs(), self._info()

    def step(self, action: Any):
        if self._done:
            raise EnvProtocolError.step_without_episode(self)
        a = read_action(action, self.screen, self.text_frame)
        self._t += 1
        self._last_point = a.target
        if self.mode == "grounding":
            return self._step_grounding(a)
        return self._step_app(a)

    def _step_grounding(self, a: Action):
        assert self.sample is not None
        why = None
        point = a.target if a.type in _GROUNDING_TYPES else None
        if a.type is ActionType.INVALID:
            why = a.reason or "invalid action"
        elif point is None:
            why = f"grounding needs a click or a box, got {a.type.value}"
        elif not (0 <= point[0] <= self.screen.width and 0 <= point[1] <= self.screen.height):
            why = f"point ({point[0]:.1f}, {point[1]:.1f}) is outside the screen"
        hit = why is None and point_in_box(point, self.sample.box)
        self._done = True
        reward = 1.0 if hit else 0.0
        return self._obs(), reward, True, False, self._info(invalid=why is not None, reason=why, success=hit)

    def _step_app(self, a: Action):
        assert self.task is not None and self.state is not None
        self.state, why = self.task.app.apply(self.state, a)
        success = self.task.success(self.state)
        terminated = success or a.type is ActionType.FINISH
        truncated = not terminated and self._t >= self.max_steps
        self._done = terminated or truncated
        reward = 1.0 if success else 0.0
        return self._obs(), reward, terminated, truncated, self._info(invalid=why is not None, reason=why,
                                                                       success=success)

    # -- observation and info -----------------------------------------------------------------
    def _image(self) -> np.ndarray:
        if self.mode == "grounding":
            assert self.sample is not None
            return self.sample.image()
        assert self.task is not None and self.state is not None
        return self.task.app.render(self.state)

    def _instruction(self) -> str:
        if self.mode == "grounding":
            assert self.sample is not None
            return self.sample.instruction
        assert self.task is not None
        return self.task.instruction

    def _obs(self) -> dict[str, Any]:
        # cached renders are read-only and shared between steps: hand out a copy (one memcpy)
        return {"screenshot": self._image().copy(), "instruction": self._instruction()}

    def _oracle(self) -> tuple[Action, tuple[float, float, float, float] | None]:
        # Always an action (never None), so vector envs batch info["oracle_action"] consistently:
        # ``finish`` once there is nothing left to do (or the agent made the goal unreachable).
        if self.mode == "grounding":
            assert self.sample is not None
            if self._done:
                return Action.finish(), self.sample.box
            x1, y1, x2, y2 = self.sample.box
            return Action.click((x1 + x2) / 2, (y1 + y2) / 2), self.sample.box
        assert self.task is not None and self.state is not None
        if self.task.success(self.state):
            return Action.finish(), None
        move = self.task.app.oracle(self.state, self.task.goals)
        if move is None:
            return Action.finish("infeasible"), None
        return self.task.app.move_action(self.state, move)

    def _info(self, invalid: bool = False, reason: str | None = None, success: bool = False) -> dict[str, Any]:
        action, box = self._oracle()
        if self.mode == "grounding":
            assert self.sample is not None
            task = {"mode": "grounding", "instruction": self.sample.instruction, "kind": self.sample.kind,
                    "data_type": self.sample.data_type, "target": self.sample.target.name}
            n_el = len(self.sample.scene.all_widgets())
        else:
            assert self.task is not None and self.state is not None
            task = {"mode": "app", **self.task.describe()}
            ws, modal = self.task.app.view(self.state)
            n_el = len(ws) + len(modal)
        extra: dict[str, Any] = {"k": self.task.k} if self.mode == "app" and self.task else {}
        if self.mode == "grounding" and self.sample is not None:  # ScreenSpot-style grouping keys
            extra = {"data_type": self.sample.data_type, "platform": "synthetic",
                     "split": "desktop" if self.config.desktop else "mobile"}
        return {
            **extra,
            "target_box": box,
            "oracle_action": action.to_dict(),
            "elements": n_el,
            "task": task,
            "index": self._index,
            "task_seed": self._seed,
            "steps_left": max(0, self.max_steps - self._t),
            "invalid": invalid,
            "invalid_reason": reason,
            "success": success,
        }

    def elements(self) -> list[UIElement]:
        """Ground-truth UI elements of the current screen (pixel boxes)."""
        if self.mode == "grounding":
            return [] if self.sample is None else self.sample.elements()
        return [] if self.task is None or self.state is None else self.task.app.elements(self.state)

    # -- rendering ----------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        """The current screen (``(H, W, 3)`` uint8); None before the first reset."""
        if self.sample is None and self.task is None:
            return None
        return self._image().copy()
