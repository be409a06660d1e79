"""Coordinate frames of the grounding action space.

Every coordinate in guienv carries the frame it is expressed in (Qwen2.5-VL technical report, arXiv
2502.13923; QwenLM/Qwen2.5-VL ``qwen-vl-utils/src/qwen_vl_utils/vision_process.py``):

* ``pixel``      absolute pixels of the original screenshot (x right, y down, origin top-left).
* ``normalized`` fractions of the screenshot's width and height, in [0, 1].
* ``grid1000``   the 0-1000 grid emitted by Qwen2-VL, UI-TARS-1.0 and OS-Atlas prompts.
* ``resized``    absolute pixels of the image the model actually saw after Qwen2.5-VL's
                 ``smart_resize`` (sides multiples of 28, area within [min_pixels, max_pixels]).

A frame's unit is a rational multiple of a pixel (``units = pixels * num / den``, with integer
``num`` and ``den``), so a conversion is one exact integer product followed by a single float
multiply and divide: round trips agree to a few ulps (tests pin this).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from enum import Enum

# qwen-vl-utils defaults (QwenLM/Qwen2.5-VL, qwen-vl-utils/src/qwen_vl_utils/vision_process.py).
QWEN_FACTOR = 28
QWEN_MIN_PIXELS = 4 * 28 * 28
QWEN_MAX_PIXELS = 16384 * 28 * 28


class Frame(str, Enum):
    PIXEL = "pixel"
    NORMALIZED = "normalized"
    GRID1000 = "grid1000"
    RESIZED = "resized"


@functools.lru_cache(maxsize=1)
def _smart_resize_impl():
    # qwen-vl-utils imports torchvision at module level; CPU-only installs have no torchvision,
    # so fall back to transformers' PIL-backend copy of the same function.
    try:
        from qwen_vl_utils import smart_resize

        return smart_resize, "qwen_vl_utils"
    except ImportError:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        return smart_resize, "transformers"


def smart_resize(
    height: int,
    width: int,
    factor: int = QWEN_FACTOR,
    min_pixels: int = QWEN_MIN_PIXELS,
    max_pixels: int = QWEN_MAX_PIXELS,
) -> tuple[int, int]:
    """Qwen2.5-VL's resize rule; returns ``(resized_height, resized_width)``.

    Delegates to ``qwen_vl_utils.smart_resize`` (or transformers' identical PIL-backend copy when
    torchvision is missing). Raises ``ValueError`` for aspect ratios above 200 or empty images.
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"smart_resize needs a positive image size, got {width}x{height}")
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) must not exceed max_pixels ({max_pixels})")
    fn, _ = _smart_resize_impl()
    h, w = fn(height, width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    return int(h), int(w)


@dataclass(frozen=True)
class Resize:
    """Parameters of Qwen2.5-VL's smart resize (the ``resized`` frame)."""

    min_pixels: int = QWEN_MIN_PIXELS
    max_pixels: int = QWEN_MAX_PIXELS
    factor: int = QWEN_FACTOR

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The resized ``(width, height)`` of a ``width x height`` screenshot."""
        h, w = smart_resize(height, width, self.factor, self.min_pixels, self.max_pixels)
        return w, h


@dataclass(frozen=True)
class Screen:
    """A screenshot's size plus the resize rule that defines its ``resized`` frame."""

    width: int
    height: int
    resize: Resize = Resize()

    def __post_init__(self) -> None:
        if not (isinstance(self.width, int) and isinstance(self.height, int)):
            raise TypeError(f"Screen size must be integers, got {self.width!r} x {self.height!r}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"Screen size must be positive, got {self.width}x{self.height}")

    @functools.cached_property
    def resized(self) -> tuple[int, int]:
        """``(width, height)`` of the smart-resized image."""
        return self.resize.size(self.width, self.height)

    def units(self, frame: Frame | str) -> tuple[tuple[int, int], tuple[int, int]]:
        """Per-axis ``(num, den)``: one pixel is ``num / den`` units of ``frame``."""
        frame = Frame(frame)
        if frame is Frame.PIXEL:
            return (1, 1), (1, 1)
        if frame is Frame.NORMALIZED:
            return (1, self.width), (1, self.height)
        if frame is Frame.GRID1000:
            return (1000, self.width), (1000, self.height)
        rw, rh = self.resized
        return (rw, self.width), (rh, self.height)

    def extent(self, frame: Frame | str) -> tuple[float, float]:
        """Width and height of the screen measured in ``frame`` units."""
        return convert_point((self.width, self.height), Frame.PIXEL, frame, self)


def _convert(v: float, src: tuple[int, int], dst: tuple[int, int]) -> float:
    # v_src = px * n_s / d_s  ->  v_dst = v_src * (n_d * d_s) / (d_d * n_s)
    return float(v) * (dst[0] * src[1]) / (dst[1] * src[0])


def convert_point(
    point: tuple[float, float], src: Frame | str, dst: Frame | str, screen: Screen
) -> tuple[float, float]:
    """Convert an ``(x, y)`` point between frames of the same screenshot."""
    src, dst = Frame(src), Frame(dst)
    if src is dst:
        return float(point[0]), float(point[1])
    (sx, sy), (dx, dy) = screen.units(src), screen.units(dst)
    return _convert(point[0], sx, dx), _convert(point[1], sy, dy)


def convert_box(
    box: tuple[float, float, float, float], src: Frame | str, dst: Frame | str, screen: Screen
) -> tuple[float, float, float, float]:
    """Convert an ``(x1, y1, x2, y2)`` box between frames of the same screenshot."""
    x1, y1 = convert_point(box[:2], src, dst, screen)
    x2, y2 = convert_point(box[2:], src, dst, screen)
    return x1, y1, x2, y2


def xywh_to_xyxy(box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """ScreenSpot v1/v2 ``[x, y, w, h]`` -> ``[x1, y1, x2, y2]``."""
    x, y, w, h = (float(v) for v in box)
    return x, y, x + w, y + h


def is_finite(*values: float) -> bool:
    return all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)


# -- per-benchmark resize defaults of the published evaluations ---------------------------------
@dataclass(frozen=True)
class ReferenceResize:
    """The smart-resize settings a benchmark's published evaluation uses for a model family."""

    resize: Resize
    source: str  # repository and file the numbers come from


# ScreenSpot-Pro's Qwen2.5-VL evaluation (likaixin2000/ScreenSpot-Pro-GUI-Grounding,
# models/qwen2_5vl.py, Qwen2_5VLModel.ground_only_positive) resizes with the processor's
# min_pixels (3136) and max_pixels=99999999, i.e. no downscaling of its 5120x2880 screens; the
# qwen-vl-utils default (12845056) would shrink them. For ScreenSpot v1/v2 the same rule is used
# (every screenshot there is below 12845056 pixels, so it equals the qwen-vl-utils default).
_SCREENSPOT_PRO_QWEN25 = ReferenceResize(
    Resize(min_pixels=56 * 56, max_pixels=99_999_999),
    "likaixin2000/ScreenSpot-Pro-GUI-Grounding models/qwen2_5vl.py (min_pixels 3136, max_pixels 99999999)",
)
REFERENCE_RESIZE: dict[tuple[str, str], ReferenceResize] = {
    ("screenspot", "qwen2.5-vl"): _SCREENSPOT_PRO_QWEN25,
    ("screenspot-pro", "qwen2.5-vl"): _SCREENSPOT_PRO_QWEN25,
}


def reference_resize(benchmark: str, family: str = "qwen2.5-vl") -> ReferenceResize | None:
    """The published evaluation's resize settings for ``benchmark`` and model ``family``, or None
    when guienv knows none (callers keep their own defaults then). Only the ``resized`` frame
    (Qwen2.5-VL) depends on them: ``normalized``/``grid1000`` answers map back without a resize."""
    return REFERENCE_RESIZE.get((benchmark, family))


def resolve_pixels(benchmark: str, min_pixels: int | None = None, max_pixels: int | None = None,
                   family: str = "qwen2.5-vl") -> tuple[int, int, str]:
    """``(min_pixels, max_pixels, source)``: each bound left None takes the benchmark's published
    evaluation setting (:func:`reference_resize`), else qwen-vl-utils' default; ``source`` names
    where the bounds came from. ``guienv eval`` and ``guienv score`` resolve them the same way."""
    ref = reference_resize(benchmark, family)
    base = ref.resize if ref is not None else Resize()
    source = ref.source if ref is not None and min_pixels is None and max_pixels is None else "given or qwen-vl-utils default"
    return (base.min_pixels if min_pixels is None else min_pixels,
            base.max_pixels if max_pixels is None else max_pixels, source)
