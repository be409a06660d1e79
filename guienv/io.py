"""File helpers shared by every layer: JSON/JSONL records, image decoding and encoding, and paths
that must stay inside a data root. Bad input is a :class:`~guienv.errors.DataError` naming the file
and the record (line), never a bare ``json``/``UnicodeDecodeError``/``RecursionError``."""

from __future__ import annotations

import io
import json
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, UnidentifiedImageError

from guienv.errors import DataError

# Real screenshots reach 5120x2880 (ScreenSpot-Pro); Pillow's bomb check starts far above that.
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
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


def png_bytes(src: str | os.PathLike | bytes, where: str = "") -> bytes:
    """PNG bytes of an image file or encoded image: PNG passes through unchanged, any other
    format is decoded (with the decompression-bomb check) and re-encoded."""
    if isinstance(src, (bytes, bytearray, memoryview)):
        data = bytes(src)
    else:
        try:
            data = Path(src).read_bytes()
        except FileNotFoundError as exc:
            raise DataError(where or src, f"image file not found: {src}") from exc
        except OSError as exc:
            raise DataError(where or src, f"cannot read image ({exc.strerror or exc})") from exc
    if data.startswith(PNG_MAGIC):
        return data
    return encode_png(decode_image(data, where))


def encode_png(image: np.ndarray | Image.Image) -> bytes:
    """PNG bytes of an ``(H, W, 3)`` uint8 array or a PIL image."""
    buf = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))).save(buf, format="PNG")
    return buf.getvalue()


# -- JSON and JSONL ---------------------------------------------------------------------------------
def loads_json(text: str | bytes, where: Any, record: Any = None, field: str | None = None) -> Any:
    """``json.loads`` whose failures (syntax, invalid UTF-8, nesting too deep) name the source."""
    try:
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8")
        return json.loads(text)
    except UnicodeDecodeError as exc:
        raise DataError(where, f"not UTF-8 text ({exc.reason} at byte {exc.start})", record=record, field=field) from None
    except json.JSONDecodeError as exc:
        raise DataError(where, f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", record=record, field=field) from None
    except RecursionError:
        raise DataError(where, "JSON nested too deeply", record=record, field=field) from None


def read_json(path: str | os.PathLike) -> Any:
    """The JSON value in the file at ``path``."""
    p = Path(path)
    if p.is_dir():
        raise DataError(path, "is a directory, not a JSON file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror or exc})") from exc
    return loads_json(data, path)


def iter_jsonl(
    path: str | os.PathLike, *, objects: bool = True, errors: Literal["raise", "yield"] = "raise"
) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for every non-blank line of a JSONL file (numbers start at 1).

    With ``objects`` each value must be a JSON object. A bad line (invalid UTF-8 or JSON, nested
    too deeply, not an object) raises a DataError naming the file and line; with
    ``errors="yield"`` it is yielded as ``(line number, DataError)`` instead, so a loader that
    skips bad records goes on with the next line (a generator that raised cannot)."""
    p = Path(path)
    if p.is_dir():
        raise DataError(path, "is a directory, not a JSONL file")
    try:
        fh = p.open("rb")
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror or exc})") from exc
    with fh:
        for no, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                value = loads_json(raw, path, record=f"line {no}")
                if objects and not isinstance(value, dict):
                    raise DataError(path, f"each line must be a JSON object, got {type(value).__name__}", record=f"line {no}")
            except DataError as exc:
                if errors == "raise":
                    raise
                value = exc
            yield no, value


def read_jsonl(path: str | os.PathLike, *, drop_cut_tail: bool = False) -> tuple[list[dict[str, Any]], bool]:
    """The objects of a JSONL file and whether it is clean (ends with a newline, nothing dropped).

    ``drop_cut_tail``: for files this package appends to (evaluation results): a last line with no
    newline after it that does not parse is what an interrupted write leaves; it is dropped with a
    warning (its work runs again) instead of raising. A missing file is ``([], True)``."""
    p = Path(path)
    if not p.exists():
        return [], True
    try:
        data = p.read_bytes()
    except IsADirectoryError:
        raise DataError(path, "is a directory, not a JSONL file") from None
    except OSError as exc:
        raise DataError(path, f"cannot read ({exc.strerror or exc})") from exc
    lines = data.split(b"\n")
    clean = data == b"" or data.endswith(b"\n")  # else the next append would join two lines
    out: list[dict[str, Any]] = []
    for no, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            value = loads_json(raw, path, record=f"line {no}")
        except DataError:
            if drop_cut_tail and no == len(lines):  # no newline after it: the write was interrupted
                warnings.warn(f"{path}: dropping the unfinished last line {no} (an interrupted run); it is run again", stacklevel=2)
                clean = False
                continue
            raise
        if not isinstance(value, dict):
            raise DataError(path, f"each line must be a JSON object, got {type(value).__name__}", record=f"line {no}")
        out.append(value)
    return out, clean


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping[str, Any]], *, atomic: bool = True) -> int:
    """Write ``rows`` one JSON object a line (UTF-8, non-ASCII kept); with ``atomic`` through a
    temporary file renamed over ``path``, so readers never see half a file. Returns the row count."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp") if atomic else p
    n = 0
    with tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    if atomic:
        tmp.replace(p)
    return n
