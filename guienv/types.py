"""Typed records that loaders produce and envs, agents and rewards consume.

Coordinates are always in the **pixel** frame of the original screenshot, boxes ``(x1, y1, x2, y2)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guienv.actions import Action, Box4
from guienv.io import decode_image, image_size


@dataclass(frozen=True)
class ImageRef:
    """A screenshot that is decoded only when needed: a file path or encoded bytes (PNG/JPEG).

    ``where`` names the file and record for error messages.
    """

    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    where: str = ""

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("ImageRef needs exactly one of path or data")

    def load(self) -> np.ndarray:
        """Decode to an ``(H, W, 3)`` uint8 RGB array; raises :class:`guienv.errors.DataError`."""
        return decode_image(self.path if self.path is not None else self.data, self.where)

    def size(self) -> tuple[int, int]:
        """``(width, height)`` from the image header, without decoding the pixels."""
        return image_size(self.path if self.path is not None else self.data, self.where)


@dataclass(frozen=True)
class GroundingSample:
    """One ScreenSpot-style grounding sample: find ``instruction``'s target ``box`` on ``image``."""

    id: str
    image: ImageRef
    instruction: str
    box: Box4
    width: int
    height: int
    data_type: str | None = None  # "text" | "icon"
    platform: str | None = None  # mobile | desktop | web | windows | macos | linux ...
    split: str | None = None  # the file's split (ScreenSpot: mobile/desktop/web; Pro: the app)
    source: str | None = None  # data_source / application
    extra: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class UIElement:
    """An on-screen element (accessibility node or DOM element)."""

    box: Box4
    text: str | None = None
    content_description: str | None = None
    resource_id: str | None = None
    class_name: str | None = None
    clickable: bool = False
    editable: bool = False
    scrollable: bool = False
    checkable: bool = False
    checked: bool = False
    visible: bool = True


@dataclass(frozen=True)
class Step:
    """One recorded step of a trajectory: the screen before the action and the action taken."""

    image: ImageRef
    width: int
    height: int
    action: Action  # ground truth, pixel frame
    raw_action: dict[str, Any] = field(default_factory=dict, compare=False)
    instruction: str | None = None  # low-level step instruction
    candidates: tuple[Box4, ...] = ()  # element boxes that contain the GT point
    elements: tuple[UIElement, ...] = ()


@dataclass(frozen=True)
class Episode:
    """A recorded trajectory (AndroidControl episode)."""

    id: str
    goal: str
    steps: tuple[Step, ...]
    split: str | None = None  # train | validation | test
    subsplit: str | None = None  # IDD | app_unseen | task_unseen | category_unseen
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
