"""One annotation record of any ScreenSpot-family format as a :class:`~guienv.types.GroundingSample`:
where each format keeps its fields, box conventions, and the checks every record passes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from guienv.errors import DataError
from guienv.frames import xywh_to_xyxy
from guienv.io import loads_json, resolve_inside
from guienv.types import GroundingSample, ImageRef

FORMATS = ("auto", "v1", "v2", "pro", "gui-g1", "parquet")
BBOX_FORMATS = ("auto", "xyxy", "xyxy_norm", "xywh")
SPLITS = ("mobile", "desktop", "web")
IMAGE_DIRS = {"v1": "screenspot_imgs", "v2": "screenspotv2_image", "pro": "images"}
# SeeClick's file-name prefixes and data sources per split (ScreenSpot v1/v2).
_PREFIX_SPLIT = {"mobile": "mobile", "pc": "desktop", "web": "web"}
SPLIT_PREFIX = {v: k for k, v in _PREFIX_SPLIT.items()}
_SOURCE_SPLIT = {
    "ios": "mobile", "android": "mobile", "windows": "desktop", "macos": "desktop",
    "shop": "web", "forum": "web", "gitlab": "web", "tool": "web",
}
V1_NAME = re.compile(r"^screenspot_(mobile|desktop|web)\.json$")
V2_NAME = re.compile(r"^screenspot_(mobile|desktop|web)_v2\.json$")
META_KEY = b"guienv"

Fmt = Literal["auto", "v1", "v2", "pro", "gui-g1", "parquet"]
OnError = Literal["raise", "skip"]




# -- small validators -------------------------------------------------------------------------
class RecordErrors:
    """Raises or collects record errors according to ``on_error``."""

    def __init__(self, on_error: str):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.skip = on_error == "skip"
        self.skipped: list[tuple[str, str]] = []

    def __call__(self, err: DataError) -> None:
        if not self.skip:
            raise err
        where = err.path
        if err.record is not None:
            where += f", record {err.record}"
        if err.field is not None:
            where += f", field {err.field!r}"
        self.skipped.append((where, err.detail))


def _rewrap(err: DataError, file: Path, record: Any, fld: str | None) -> DataError:
    """The same problem, re-addressed to the annotation file, record and field."""
    new = DataError(file, err.detail, record=record, field=err.field or fld)
    new.__cause__ = err
    return new


def finite_number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _bbox(value: Any, convention: str, size: tuple[int, int], err: Callable[[str], DataError]):
    if isinstance(value, str):  # some parquet exports store the list as JSON text
        try:
            value = loads_json(value, "<bbox>")
        except ValueError:
            raise err(f"bbox must be a list of 4 numbers, got the string {value[:80]!r}") from None
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise err(f"bbox must be a list of 4 numbers, got {str(value)[:80]}")
    nums = [finite_number(v) for v in value]
    if any(v is None for v in nums):
        raise err(f"bbox values must be finite numbers, got {list(value)!r}")
    if convention == "xywh":
        if nums[2] < 0 or nums[3] < 0:
            raise err(f"bbox [x, y, w, h] has a negative width or height: {nums}")
        box = xywh_to_xyxy(nums)
    else:
        box = tuple(nums)
        if box[2] < box[0] or box[3] < box[1]:
            raise err(f"bbox [x1, y1, x2, y2] has negative area (x2 < x1 or y2 < y1): {nums}")
        if convention == "xyxy_norm":
            if not all(0.0 <= v <= 1.0 for v in box):
                raise err(f"normalized bbox values must lie in [0, 1], got {nums}")
            w, h = size
            box = (box[0] * w, box[1] * h, box[2] * w, box[3] * h)
    # Checked after the conversion: x + w of two finite huge numbers can be inf.
    if not all(math.isfinite(v) for v in box):
        raise err(f"bbox must be finite after conversion to [x1, y1, x2, y2], got {nums} -> {list(box)}")
    w, h = size
    if box[0] > w or box[1] > h or box[2] < 0 or box[3] < 0:
        raise err(f"bbox {[_num(v) for v in box]} lies entirely outside the image (0, 0, {w}, {h})")
    return box


def _num(v: float) -> float | int:
    return int(v) if v.is_integer() else v


def _size(value: Any, err: Callable[[str], DataError]) -> tuple[int, int]:
    if isinstance(value, str):
        try:
            value = loads_json(value, "<img_size>")
        except ValueError:
            raise err(f"img_size must be [width, height], got the string {value[:80]!r}") from None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise err(f"img_size must be [width, height], got {str(value)[:80]}")
    nums = [finite_number(v) for v in value]
    if any(v is None or v <= 0 or not v.is_integer() for v in nums):
        raise err(f"img_size must be two positive integers, got {list(value)!r}")
    return int(nums[0]), int(nums[1])


def opt_str(rec: dict, *keys: str) -> str | None:
    for k in keys:
        v = rec.get(k)
        if v is not None:
            return str(v)
    return None


# -- one record -------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    """Where a format keeps each field."""

    fmt: str
    box_key: str
    convention: str
    type_keys: tuple[str, ...]
    source_keys: tuple[str, ...]


SPECS = {
    "v1": _Spec("v1", "bbox", "xywh", ("data_type",), ("data_source",)),
    "v2": _Spec("v2", "bbox", "xywh", ("data_type",), ("data_source",)),
    "pro": _Spec("pro", "bbox", "xyxy", ("ui_type", "data_type"), ("application", "data_source")),
    "gui-g1": _Spec("gui-g1", "bbox_xyxy", "xyxy", ("data_type", "ui_type"), ("data_source", "application")),
    "parquet": _Spec("parquet", "bbox", "auto", ("data_type", "ui_type"), ("data_source", "application")),
}


def _split_of(rec: dict, file_name: str | None) -> str | None:
    """A ScreenSpot split for a parquet row: its column, its file-name prefix, its data source."""
    if rec.get("split") is not None:
        return str(rec["split"])
    if file_name:
        prefix = Path(file_name).name.split("_", 1)[0]
        if prefix in _PREFIX_SPLIT and "_" in Path(file_name).name:
            return _PREFIX_SPLIT[prefix]
    if rec.get("application") is not None and rec.get("platform") is not None:
        return f"{rec['application']}_{rec['platform']}"  # ScreenSpot-Pro's annotation-file stem
    src = rec.get("data_source")
    return _SOURCE_SPLIT.get(src.lower()) if isinstance(src, str) else None


def parse_record(
    rec: Any,
    index: int,
    file: Path,
    spec: _Spec,
    image_root: Path,
    convention: str,
    split: str | None,
    verify: bool,
) -> GroundingSample:
    def err(msg: str, fld: str | None = None) -> DataError:
        return DataError(file, msg, record=index, field=fld)

    if not isinstance(rec, dict):
        raise err(f"record must be a JSON object, got {type(rec).__name__}")
    instruction = rec.get("instruction")
    if instruction is None:
        raise err("missing field", "instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise err(f"instruction must be a non-empty string, got {str(instruction)[:80]!r}", "instruction")
    box_key = spec.box_key
    if box_key not in rec and spec.fmt == "gui-g1" and "bbox" in rec:
        box_key = "bbox"
    if rec.get(box_key) is None:
        raise err("missing field", box_key)

    # The screenshot: a file under image_root, or bytes inline (parquet).
    where = f"{file}, record {index}"
    file_name = opt_str(rec, "img_filename", "file_name")
    img_field = "img_filename" if "img_filename" in rec else "file_name"
    data: bytes | None = None
    if spec.fmt == "parquet" and "image" in rec:
        img = rec["image"]
        img_field = "image"
        if isinstance(img, dict):
            data = img.get("bytes")
            if data is None and img.get("path"):
                file_name = str(img["path"])
        elif isinstance(img, (bytes, bytearray, memoryview)):
            data = bytes(img)
        elif isinstance(img, str):
            file_name = img
        if data is None and not file_name:
            raise err("image has neither bytes nor a path", "image")
    elif file_name is None:
        raise err("missing field", "img_filename")
    try:
        if data is not None:
            ref = ImageRef(data=bytes(data), where=where)
        else:
            path = resolve_inside(image_root, file_name, where=str(file), field=img_field)
            ref = ImageRef(path=path, where=where)
        header = ref.size()
        if verify:
            ref.load()
    except DataError as exc:
        raise _rewrap(exc, file, index, img_field) from exc

    if rec.get("img_size") is not None:
        size = _size(rec["img_size"], lambda m: err(m, "img_size"))
        size_field = "img_size"
    elif rec.get("image_width") is not None and rec.get("image_height") is not None:
        size = _size([rec["image_width"], rec["image_height"]], lambda m: err(m, "image_width"))
        size_field = "image_width"
    else:
        size, size_field = header, None
    if size != header:
        raise err(f"{size_field} {list(size)} does not match the image's {header[0]}x{header[1]} pixels", size_field)

    box = _bbox(rec[box_key], convention, size, lambda m: err(m, box_key))
    if spec.fmt == "parquet":
        split = _split_of(rec, file_name)
    platform = opt_str(rec, "platform") or (split if split in SPLITS else None)
    sample_id = opt_str(rec, "id") or f"{file.stem}-{index}"
    skip = {"instruction", box_key, "image", "img_size", "id", "platform", *spec.type_keys, *spec.source_keys}
    extra = {k: v for k, v in rec.items() if k not in skip and not isinstance(v, (bytes, dict))}
    return GroundingSample(
        id=sample_id,
        image=ref,
        instruction=instruction,
        box=box,
        width=size[0],
        height=size[1],
        data_type=opt_str(rec, *spec.type_keys),
        platform=platform,
        split=split,
        source=opt_str(rec, *spec.source_keys),
        extra=extra,
    )
