"""``guienv/AndroidControl-v0``: step along recorded AndroidControl trajectories.

AndroidControl (Li et al., "On the Effects of Data Scale on UI Control Agents", arXiv 2406.03679;
data and format: repository ``google-research/google-research``, ``android_control/README.md``) is
an offline benchmark:
each step shows the recorded screen, the agent proposes an action, and the action is judged
against the recorded one by ``rewards.action_match.match_step`` under a named ``protocol``
(results are only comparable within one protocol). The episode then moves to the next *recorded*
screen whatever the agent did (teacher forcing), or ends at the first wrong step when
``stop_on_error=True``.

Observation (``Dict``): ``screenshot`` (H x W x 3 uint8, any size), ``goal``, ``instruction``
(the step instruction in ``mode="low"``, ``""`` in ``mode="high"``: the published low/high
settings) and ``history``: earlier actions as :func:`guienv.prompts.history_text` writes them
(numbered lines ``"1. {guienv action JSON}"``, coordinates in ``text_frame`` of their own screens);
the recorded actions (``history="gt"``, the usual offline setting) or the agent's own
(``history="agent"``). With ``history_images = k > 0`` it also holds ``previous_screenshots``: the
recorded screens of the up to k steps before, oldest first (a tuple of arrays).

``text_frame`` is the frame of coordinates in text, as in every guienv env: the frame the policy
answers in (``resized`` for Qwen2.5-VL, with ``min_pixels``/``max_pixels`` its pixel bounds;
``grid1000`` for Qwen2-VL), for the model text the env reads and the history text it writes.
``guienv eval`` sets it (and the bounds) from the agent, and training writes histories the same way
(``agents.train_prompts.episode_prompts``), so a model trained with ``guienv train`` is evaluated
on the prompt it was trained on.

Actions may be an :class:`~guienv.actions.Action` in any frame, a space sample, guienv action JSON
or model text; model text is read in ``text_frame`` (through :func:`guienv.parsing.read_action`),
the frame the history is written in.

Reward: 1.0 when the step's verdict is ``exact_match`` (type and arguments right), else 0.0.

``info`` describes the step the observation shows (what the agent acts on next): ``episode_id``,
``step_index``, ``num_steps``, ``gt_action`` (its ground truth, guienv action JSON, pixel frame;
this is what ``agents.baselines.OracleAgent`` reads), ``candidates`` (xyxy pixel boxes),
``split``, ``subsplit``, ``image_size`` ``(w, h)``. After a step it also holds the verdict of the
judged step: ``judged_step``, ``type_match``, ``exact_match``, ``grounding``, ``reason``; and
when the episode ends ``episode_success`` (every step matched) and ``steps_correct``. At the end
the observation stays on the last judged screen.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image, ImageDraw

from guienv.actions import Action, ActionType, action_space
from guienv.envs.options import int_option, reset_options
from guienv.errors import EnvProtocolError, ResetOptionError
from guienv.frames import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, Frame, Resize, Screen
from guienv.parsing import read_action
from guienv.prompts import history_text
from guienv.spaces import AnyText, Screenshot
from guienv.types import Episode, Step
from rewards.action_match import PROTOCOLS, StepVerdict, match_step
from tasks.androidcontrol import EpisodeDataset, load_androidcontrol

MODES = ("low", "high")
HISTORIES = ("gt", "agent")


class AndroidControlEnv(gym.Env):
    """Offline AndroidControl episodes as a Gymnasium env (see the module docstring).

    ``data``: an :class:`~tasks.androidcontrol.EpisodeDataset` or list of episodes, or what
    :func:`~tasks.androidcontrol.load_androidcontrol` takes (shards, a directory, a glob, a UI-S1
    JSONL or UI-R1 JSON file); ``splits``, ``subsplits``, ``split``, ``subsplit``, ``image_root``,
    ``on_error`` and ``lazy`` are passed to it. Episodes are picked with
    ``reset(options={"index": i})`` (or ``{"episode_id": id}``), else with ``self.np_random``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(
        self,
        data: Any,
        *,
        mode: str = "low",
        protocol: str = "plain",
        stop_on_error: bool = False,
        history: str = "gt",
        render_mode: str | None = None,
        text_frame: str = "pixel",
        min_pixels: int = QWEN_MIN_PIXELS,
        max_pixels: int = QWEN_MAX_PIXELS,
        history_images: int = 0,
        splits: str | os.PathLike | None = None,
        subsplits: str | os.PathLike | None = None,
        split: str | None = None,
        subsplit: str | None = None,
        image_root: str | os.PathLike | None = None,
        on_error: str = "raise",
        lazy: bool = True,
        max_text_length: int = 1 << 20,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if history not in HISTORIES:
            raise ValueError(f"history must be one of {HISTORIES}, got {history!r}")
        if protocol not in PROTOCOLS:
            raise ValueError(f"unknown matching protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        self.mode, self.protocol, self.history_source = mode, protocol, history
        self.stop_on_error = bool(stop_on_error)
        self.render_mode = render_mode
        self.text_frame = Frame(text_frame)
        self.resize = Resize(min_pixels=min_pixels, max_pixels=max_pixels)  # defines the resized text frame
        if isinstance(history_images, bool) or not isinstance(history_images, int) or history_images < 0:
            raise ValueError(f"history_images must be a non-negative integer, got {history_images!r}")
        self.history_images = history_images
        self._owns_dataset = False
        if isinstance(data, EpisodeDataset) or (
            isinstance(data, Sequence) and not isinstance(data, str) and data and all(isinstance(e, Episode) for e in data)
        ):
            self.dataset: Sequence[Episode] = data
        else:
            self.dataset = load_androidcontrol(
                data, splits=splits, subsplits=subsplits, split=split, subsplit=subsplit,
                image_root=image_root, on_error=on_error, with_elements=False, lazy=lazy,  # type: ignore[arg-type]
            )
            self._owns_dataset = True
        if len(self.dataset) == 0:
            raise ValueError("AndroidControlEnv needs at least one episode (is the split filter too narrow?)")
        self.observation_space = spaces.Dict(
            {
                "screenshot": Screenshot(),
                "goal": AnyText(max_text_length),
                "instruction": AnyText(max_text_length),
                "history": AnyText(max_text_length),
                **({"previous_screenshots": spaces.Sequence(Screenshot())} if history_images else {}),
            }
        )
        self.action_space = action_space()
        self._episode: Episode | None = None
        self._t = 0
        self._done = True
        self._frame: np.ndarray | None = None
        self._history: list[tuple[Action, Step]] = []  # acted-on actions (pixel frame) and their steps
        self._previous: list[np.ndarray] = []  # decoded screens of the steps before the current one
        self._results: list[bool] = []
        self._last: tuple[int, Action, StepVerdict] | None = None

    # -- helpers ----------------------------------------------------------------------------------
    @property
    def episode(self) -> Episode | None:
        return self._episode

    @property
    def current_step(self) -> Step:
        if self._episode is None:
            raise EnvProtocolError("call reset() first")
        return self._episode.steps[self._t]

    def _obs(self) -> dict[str, Any]:
        step = self.current_step
        if self._frame is None:
            self._frame = step.image.load()
        return {
            # a fresh array each call: callers may keep or modify what they were given
            "screenshot": self._frame.copy(),
            "goal": self._episode.goal,
            "instruction": (step.instruction or "") if self.mode == "low" else "",
            "history": history_text([a for a, _ in self._history],
                                    [Screen(st.width, st.height, self.resize) for _, st in self._history], self.text_frame),
            **({"previous_screenshots": tuple(f.copy() for f in self._previous)}
               if self.history_images else {}),
        }

    def _info(self) -> dict[str, Any]:
        ep, step = self._episode, self.current_step
        return {
            "episode_id": ep.id,
            "step_index": self._t,
            "num_steps": len(ep.steps),
            "gt_action": step.action.to_dict(),
            "candidates": [list(b) for b in step.candidates],
            "split": ep.split,
            "subsplit": ep.subsplit,
            "image_size": (step.width, step.height),
        }

    # -- Gymnasium API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = reset_options(options)
        index = int_option(options, "index", 0, len(self.dataset))
        if index is None and "episode_id" in options:
            if not isinstance(self.dataset, EpisodeDataset):
                raise ResetOptionError("options={'episode_id': ...} needs an EpisodeDataset")
            index = self.dataset.index_of(options["episode_id"])
        if index is None:
            index = int(self.np_random.integers(len(self.dataset)))
        episode = self.dataset[index]
        if not episode.steps:
            raise ValueError(f"episode {episode.id} has no steps")
        self._episode, self._t, self._done = episode, 0, False
        self._frame, self._history, self._previous, self._results, self._last = None, [], [], [], None
        return self._obs(), self._info()

    def step(self, action: Any):
        if self._episode is None or self._done:
            raise EnvProtocolError.step_without_episode(self)
        step = self.current_step
        # model text is read in text_frame, the frame the history is written in
        pred = read_action(action, Screen(step.width, step.height, self.resize), self.text_frame)
        verdict = match_step(pred, step, self.protocol)
        judged = self._t
        self._results.append(bool(verdict.exact_match))
        self._last = (judged, pred, verdict)
        self._history.append((step.action if self.history_source == "gt" else pred, step))
        last_step = judged == len(self._episode.steps) - 1
        terminated = last_step or (self.stop_on_error and not verdict.exact_match)
        if not terminated:
            if self.history_images:
                self._previous = [*self._previous, self._frame][-self.history_images:]
            self._t += 1
            self._frame = None
        self._done = terminated
        info = self._info()
        info.update(
            judged_step=judged,
            type_match=bool(verdict.type_match),
            exact_match=bool(verdict.exact_match),
            grounding=verdict.grounding,
            reason=verdict.reason,
        )
        if terminated:
            info["steps_correct"] = sum(self._results)
            info["episode_success"] = len(self._results) == len(self._episode.steps) and all(self._results)
        reward = 1.0 if verdict.exact_match else 0.0
        return self._obs(), reward, terminated, False, info

    def render(self) -> np.ndarray | None:
        """The last judged screen with the ground truth (green: candidate boxes, point, scroll
        arrow) and the prediction (red); before any step, the current screen."""
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='rgb_array'")
            return None
        if self._episode is None:
            return None
        if self._last is None:
            return self._obs()["screenshot"]
        index, pred, verdict = self._last
        step = self._episode.steps[index]
        img = Image.fromarray(step.image.load())
        draw = ImageDraw.Draw(img)
        lw = max(2, min(step.width, step.height) // 150)
        for box in step.candidates:
            draw.rectangle(box, outline=(0, 200, 0), width=lw)
        _draw_action(draw, step.action, step, (0, 200, 0), lw)
        if pred.is_valid:
            _draw_action(draw, pred, step, (230, 0, 0), lw)
        label = f"GT {step.action.type.value} | pred {pred.type.value} | {'OK' if verdict.exact_match else 'wrong'}"
        draw.rectangle((0, 0, step.width, 6 * lw + 12), fill=(0, 0, 0))
        draw.text((4, 4), label, fill=(255, 255, 255))
        return np.asarray(img, dtype=np.uint8)

    def close(self) -> None:
        if self._owns_dataset and isinstance(self.dataset, EpisodeDataset):
            self.dataset.close()
        super().close()


def _draw_action(draw: ImageDraw.ImageDraw, action: Action, step: Step, color: tuple[int, int, int], lw: int) -> None:
    """A point as a ring, a swipe as a line to a dot, a scroll (content direction) as an arrow
    from the screen centre."""
    r = 4 * lw
    if action.type is ActionType.SWIPE and action.point is not None and action.end is not None:
        draw.line((*action.point, *action.end), fill=color, width=lw)
        ex, ey = action.end
        draw.ellipse((ex - r / 2, ey - r / 2, ex + r / 2, ey + r / 2), fill=color)
    elif action.type is ActionType.SCROLL:
        cx, cy = action.point if action.point is not None else (step.width / 2, step.height / 2)
        dx = {"left": -1, "right": 1}.get(action.direction, 0) * step.width / 4
        dy = {"up": -1, "down": 1}.get(action.direction, 0) * step.height / 4
        draw.line((cx, cy, cx + dx, cy + dy), fill=color, width=lw)
        draw.ellipse((cx + dx - r / 2, cy + dy - r / 2, cx + dx + r / 2, cy + dy + r / 2), fill=color)
    elif action.point is not None:
        x, y = action.point
        draw.ellipse((x - r, y - r, x + r, y + r), outline=color, width=lw)
