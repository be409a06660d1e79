"""File helpers shared by the loaders: image decoding and paths that must stay inside a data root."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from guienv.errors import DataError

# Real screenshots reach 5120x2880 (ScreenSpot-Pro); Pillow's bomb check starts far above that.
_IMAGE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


def resolve_inside(root: str | os.PathLike, relative: str, *, where: str, field: str | None = None) -> Path:
    """``root / relative``, refusing paths that escape ``root`` (``..``, absolute paths, symlinks)."""
    root_p = Path(root).resolve()
    if not isinstance(relative, str) or not relative:
        raise DataError(where, f"image path must be a non-empty string, got {relative!r}", field=field)
    candidate = (root_p / relative).resolve()
    if not candidate.is_relative_to(root_p):
        raise DataError(where, f"image path {relative!r} escapes the data directory {root_p}", field=field)
    return candidate


def _open(src: str | os.PathLike | bytes, where: str) -> Image.Image:
    try:
        if isinstance(src, (bytes, bytearray, memoryview)):
            return Image.open(io.BytesIO(bytes(src)))
        return Image.open(src)
    except FileNotFoundError as exc:
        raise DataError(where, f"image file not found: {src}") from exc
    except _IMAGE_ERRORS as exc:
        raise DataError(where, f"cannot read image ({exc})") from exc


def decode_image(src: str | os.PathLike | bytes, where: str = "") -> np.ndarray:
    """Decode an image file or encoded bytes to an ``(H, W, 3)`` uint8 RGB array."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img = _open(src, where or str(src)[:200])
        try:
            with img:
                img.load()
                if img.mode != "RGB":
                    img = img.convert("RGB")
                return np.asarray(img, dtype=np.uint8)
        except (*_IMAGE_ERRORS, Image.DecompressionBombWarning) as exc:
            raise DataError(where or "<bytes>", f"cannot decode image ({exc})") from exc


def image_size(src: str | os.PathLike | bytes, where: str = "") -> tuple[int, int]:
    """``(width, height)`` read from the header only."""
    img = _open(src, where or str(src)[:200])
    with img:
        return img.size


def encode_png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()
