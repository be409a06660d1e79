"""Knobs of the synthetic screen and app generator (:class:`SynthConfig`) and per-task seeding.

Difficulty follows ScreenSpot-Pro's measure of target size (box area / screen area; Li et al.,
"ScreenSpot-Pro: GUI Grounding for Professional High-Resolution Computer Use", arXiv 2504.07981).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from guienv.config import load_config, load_yaml

TARGET_KINDS = ("button", "icon", "field", "toggle", "row", "tab", "dialog")

@dataclass(frozen=True)
class SynthConfig:
    """Knobs of the synthetic screen and app generator (loadable from a dict or YAML).

    ``target_size``: range of the target's relative size, box area / screen area (every control
    on a screen is sized from it). ``distractors``: controls on a grounding screen besides the
    target (same kind first, then other kinds); in app mode, the extra rows/toggles/fields/buttons
    per screen. ``steps``: actions an app task needs (``k``). ``themes``: ``light``/``dark``.
    ``font_paths``: extra TrueType files (Pillow's embedded font is always available).
    ``font_range``: smallest and largest font size in pixels. ``clutter``: static blocks (text,
    images) a grounding screen may add. ``kinds``: target kinds grounding samples draw from.
    """

    width: int = 320
    height: int = 568
    target_size: tuple[float, float] = (0.004, 0.03)
    distractors: int = 4
    steps: int = 2
    themes: tuple[str, ...] = ("light", "dark")
    kinds: tuple[str, ...] = TARGET_KINDS
    font_paths: tuple[str, ...] = ()
    font_range: tuple[int, int] = (9, 26)
    clutter: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        for name in ("target_size", "themes", "kinds", "font_paths", "font_range"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ValueError(f"SynthConfig.{name} must be a sequence, got {value!r}")
            set_(name, tuple(value))
        for name in ("width", "height", "distractors", "steps", "clutter", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"SynthConfig.{name} must be an integer, got {v!r}")
            set_(name, int(v))
        if not (64 <= self.width <= 8192 and 64 <= self.height <= 8192):
            raise ValueError(f"SynthConfig width/height must be in [64, 8192], got {self.width}x{self.height}")
        if self.distractors < 0 or self.clutter < 0 or self.seed < 0:
            raise ValueError("SynthConfig.distractors, clutter and seed must be >= 0")
        if not 1 <= self.steps <= 32:
            raise ValueError(f"SynthConfig.steps must be in [1, 32], got {self.steps}")
        if len(self.target_size) != 2:
            raise ValueError(f"SynthConfig.target_size must be (low, high), got {self.target_size!r}")
        lo, hi = (float(v) for v in self.target_size)
        set_("target_size", (lo, hi))
        if not (0 < lo <= hi <= 0.25):
            raise ValueError(f"SynthConfig.target_size must satisfy 0 < low <= high <= 0.25, got {self.target_size}")
        if lo * self.width * self.height < 100:
            raise ValueError(
                f"SynthConfig.target_size low {lo} gives targets under 10x10 px on a "
                f"{self.width}x{self.height} screen; raise it to at least {100 / (self.width * self.height):.2g}"
            )
        bad = [k for k in self.kinds if k not in TARGET_KINDS]
        if bad or not self.kinds:
            raise ValueError(f"SynthConfig.kinds must be a non-empty subset of {TARGET_KINDS}, got {self.kinds!r}")
        bad = [t for t in self.themes if t not in ("light", "dark")]
        if bad or not self.themes:
            raise ValueError(f"SynthConfig.themes must be a non-empty subset of ('light', 'dark'), got {self.themes!r}")
        fmin, fmax = (int(v) for v in self.font_range)
        if not 6 <= fmin <= fmax <= 96:
            raise ValueError(f"SynthConfig.font_range must satisfy 6 <= min <= max <= 96, got {self.font_range}")
        set_("font_range", (fmin, fmax))
        missing = [p for p in self.font_paths if not os.path.isfile(p)]
        if missing:
            raise ValueError(f"SynthConfig.font_paths: no such font file(s) {missing}")

    @property
    def desktop(self) -> bool:
        """Landscape screens get desktop chrome (window bar, side navigation)."""
        return self.width > self.height

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "<SynthConfig>") -> SynthConfig:
        """Checked by :func:`guienv.config.load_config` (unknown keys and bad types are DataErrors)."""
        return load_config(cls, data, where)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: tuple[str, ...] = ()) -> SynthConfig:
        return load_yaml(cls, path, overrides)

    @classmethod
    def desktop_preset(cls, **overrides: Any) -> SynthConfig:
        """A 1280x800 desktop screen with desktop-sized targets (0.05%-0.4% of the screen)."""
        base = dict(width=1280, height=800, target_size=(0.0006, 0.004), font_range=(10, 22))
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def as_config(config: SynthConfig | Mapping[str, Any] | None) -> SynthConfig:
    if config is None:
        return SynthConfig()
    if isinstance(config, SynthConfig):
        return config
    if isinstance(config, Mapping):
        return SynthConfig.from_dict(config)
    raise TypeError(f"config must be a SynthConfig, a dict or None, got {type(config).__name__}")


def task_rng(salt: int, seed: int, index: int) -> np.random.Generator:
    """The generator of task ``index`` of dataset ``seed`` (independent of every other task)."""
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    return np.random.default_rng([salt, int(seed), int(index)])
