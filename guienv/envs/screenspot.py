"""``guienv/ScreenSpot-v0``: one-step GUI grounding over a ScreenSpot-family dataset.

Each episode is one sample: the observation is the screenshot and the instruction, the agent acts
once, and the reward is ScreenSpot's metric (SeeClick, Cheng et al., arXiv 2401.10935):
1 if the action's point (or the centre of its box) lies inside the ground-truth box, else 0.
Unparsable output is an ``invalid`` action and scores 0.

Actions may be an :class:`~guienv.actions.Action` in any frame, a sample of
:func:`guienv.actions.action_space` (normalized frame), guienv action JSON, or model text. Text is
read in ``text_frame`` (see :mod:`guienv.frames`): ``pixel`` for Qwen2.5-VL answering on the original
screenshot, ``resized`` for Qwen2.5-VL answering on its smart-resized input (``min_pixels`` /
``max_pixels`` define that frame), ``grid1000`` for Qwen2-VL / UI-TARS-1.0 / OS-Atlas,
``normalized`` for [0, 1] answers. Every prediction is converted to original pixels before the hit
test, and ``info["pred_point"]`` reports it there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from guienv.actions import ActionType, action_space
from guienv.envs.options import int_option, reset_options
from guienv.errors import DataError, EnvProtocolError
from guienv.frames import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, Frame, Resize, Screen
from guienv.geometry import point_in_box
from guienv.parsing import read_action
from guienv.spaces import AnyText, Screenshot
from guienv.types import GroundingSample
from tasks.screenspot import GroundingDataset, load_screenspot

# Action types whose target is a grounding answer (a point, or a box's centre).
_GROUNDING_TYPES = (ActionType.CLICK, ActionType.LONG_PRESS, ActionType.BOX)


class ScreenSpotEnv(gym.Env):
    """One-step grounding env over ``load_screenspot(data)`` or a sequence of samples."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 1}

    def __init__(
        self,
        data: str | os.PathLike | Sequence[GroundingSample],
        *,
        fmt: str = "auto",
        image_dir: str | os.PathLike | None = None,
        on_error: str = "raise",
        bbox_format: str = "auto",
        render_mode: str | None = None,
        text_frame: Frame | str = Frame.PIXEL,
        min_pixels: int = QWEN_MIN_PIXELS,
        max_pixels: int = QWEN_MAX_PIXELS,
    ):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']} or None, got {render_mode!r}")
        if isinstance(data, (str, os.PathLike)):
            self.dataset = load_screenspot(
                data, fmt=fmt, image_dir=image_dir, on_error=on_error, bbox_format=bbox_format
            )
        elif isinstance(data, GroundingDataset):
            self.dataset = data
        else:
            samples = list(data)
            bad = next((s for s in samples if not isinstance(s, GroundingSample)), None)
            if bad is not None:
                raise TypeError(f"data must hold GroundingSample records, got {type(bad).__name__}")
            self.dataset = GroundingDataset(samples=samples)
        if len(self.dataset) == 0:
            raise DataError(getattr(self.dataset, "path", None) or "<samples>", "no grounding samples to serve")
        self.render_mode = render_mode
        self.text_frame = Frame(text_frame)
        self.resize = Resize(min_pixels=min_pixels, max_pixels=max_pixels)
        self.observation_space = gym.spaces.Dict({"screenshot": Screenshot(), "instruction": AnyText()})
        self.action_space = action_space()
        self._sample: GroundingSample | None = None
        self._screen: Screen | None = None
        self._image: np.ndarray | None = None
        self._image_key: Any = None
        self._info: dict[str, Any] = {}
        self._pred: tuple[float, float] | None = None
        self._done = True

    # -- episode ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        n = len(self.dataset)
        index = int_option(reset_options(options), "index", 0, n)
        if index is None:
            index = int(self.np_random.integers(n))
        s = self.dataset[index]
        # Consecutive samples often share a screenshot (several instructions per screen): a hit
        # costs one memcpy instead of a decode. Observations never share memory (check_env).
        key = s.image.path if s.image.path is not None else id(s.image.data)
        if key == self._image_key and self._image is not None:
            screenshot = self._image.copy()
        else:
            screenshot = self._image = s.image.load()
            self._image_key = key
        self._image.setflags(write=False)  # the cached decode must not change under later resets
        h, w = self._image.shape[:2]
        if (w, h) != (s.width, s.height):
            raise DataError(s.image.where, f"decoded image is {w}x{h}, the record says {s.width}x{s.height}")
        self._sample, self._screen = s, Screen(s.width, s.height, self.resize)
        self._pred, self._done = None, False
        self._info = {
            "id": s.id,
            "index": index,
            "bbox": np.asarray(s.box, dtype=np.float64),
            "data_type": s.data_type,
            "platform": s.platform,
            "split": s.split,
            "source": s.source,
            "image_size": (s.width, s.height),
        }
        return {"screenshot": screenshot, "instruction": s.instruction}, self._fresh_info()

    def _fresh_info(self) -> dict[str, Any]:
        info = dict(self._info)
        info["bbox"] = info["bbox"].copy()  # 4 floats; each call returns its own array
        return info

    def step(self, action: Any):
        if self._sample is None or self._done:
            raise EnvProtocolError.step_without_episode(self)  # each episode is one step
        # Model text carries no frame: its numbers are in text_frame (guienv JSON's own wins).
        a = read_action(action, self._screen, self.text_frame)
        point = a.target if a.type in _GROUNDING_TYPES else None
        correct = point_in_box(point, self._sample.box)
        self._pred, self._done = point, True
        info = self._fresh_info()
        info.update(correct=correct, pred_point=point, action=a.to_dict())
        # The final observation is the same screen; a copy, since Gymnasium forbids returning
        # data that shares memory with the reset observation (one memcpy, no decode).
        obs = {"screenshot": self._image.copy(), "instruction": self._sample.instruction}
        return obs, 1.0 if correct else 0.0, True, False, info

    # -- rendering ----------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        """The screenshot with the ground-truth box (green) and the prediction (red) drawn."""
        if self.render_mode is None:
            gym.logger.warn("ScreenSpotEnv.render() called without render_mode='rgb_array'")
            return None
        if self._image is None:
            return None
        from PIL import Image, ImageDraw

        img = Image.fromarray(self._image)
        draw = ImageDraw.Draw(img)
        w, h = img.size
        line = max(2, min(w, h) // 300)
        draw.rectangle(self._sample.box, outline=(0, 200, 0), width=line)
        if self._pred is not None:
            x, y = self._pred
            r = max(4, min(w, h) // 100)
            draw.ellipse((x - r, y - r, x + r, y + r), outline=(230, 0, 0), width=line)
            draw.line((x - 2 * r, y, x + 2 * r, y), fill=(230, 0, 0), width=max(1, line // 2))
            draw.line((x, y - 2 * r, x, y + 2 * r), fill=(230, 0, 0), width=max(1, line // 2))
        return np.asarray(img)
