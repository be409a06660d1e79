"""Readers and writers for the ScreenSpot family of GUI grounding benchmarks (REFERENCE.md section 7).

Formats (``fmt``), each read into :class:`~guienv.types.GroundingSample` records whose ``box`` is
``(x1, y1, x2, y2)`` in pixels of the original screenshot:

``v1``      SeeClick's ScreenSpot (Cheng et al., arXiv 2401.10935): ``screenspot_{mobile,desktop,web}.json``,
            records ``{img_filename, bbox: [x, y, w, h] pixels, instruction, data_type, data_source}``,
            images in ``screenspot_imgs/``. The split (mobile/desktop/web) comes from the file name.
``v2``      ScreenSpot-v2 (OS-Atlas, arXiv 2410.23218): ``screenspot_{desktop,mobile,web}_v2.json``, same
            records and box convention, images in ``screenspotv2_image/``.
``pro``     ScreenSpot-Pro (Li et al., 2025): ``annotations/<app>_<os>.json``, records ``{img_filename,
            bbox: [x1, y1, x2, y2] pixels, img_size: [w, h], instruction, instruction_cn, id,
            application, platform, ui_type, group}``; ``img_filename`` is relative to ``images/``
            (``"<app>_<os-ish>/<file>.png"``). The split is the annotation file's stem (the app).
``gui-g1``  the GUI-G1 repository's list (``data/*.json``): ``{img_filename, instruction,
            bbox_xyxy: [x1, y1, x2, y2] pixels, img_size: [w, h], data_type, platform}``, images next
            to the JSON file.
``parquet`` Hugging Face exports with the screenshot inline. Modelled on three public exports:
            ``rootsautomation/ScreenSpot`` (v1: ``file_name, bbox, instruction, data_type, data_source,
            image``; ``bbox`` is **normalized** xyxy, e.g. ``[0.9479, 0.1444, 0.9938, 0.2074]``),
            ``HongxinLi/ScreenSpot_v2`` (v2: ``image, bbox`` normalized xyxy, ``instruction,
            data_type, data_source``) and ``lmms-lab/ScreenSpot-Pro`` (Pro fields plus ``image``;
            ``bbox`` pixel xyxy, possibly as a JSON string, with ``img_size``). ``image`` is a struct
            ``{bytes, path}`` (the ``datasets`` Image feature), raw bytes, or a path string.

A path may be a single file or a directory holding any of these (the annotation files and the
image folder are found by their conventional names; ``image_dir`` overrides the image folder).

Box conventions are fixed by the JSON formats. For parquet, ``bbox_format="auto"`` uses the
``guienv`` schema metadata that :func:`write_screenspot_parquet` records, else decides per file:
normalized xyxy when every coordinate of every box lies in [0, 1], pixel xyxy otherwise. Pass
``bbox_format`` (``xyxy``, ``xyxy_norm``, ``xywh``) when a file does not follow that rule.

Sizes come from ``img_size`` (or ``image_width``/``image_height``) when present, else from the image
header, and are checked against the header when both exist: a mismatch is a :class:`DataError`
(no public ScreenSpot release we know of has one; a mismatch means the box is in another frame).

Every bad record raises :class:`~guienv.errors.DataError` naming the file, the record index and the
field; ``on_error="skip"`` instead collects ``(where, reason)`` pairs in ``GroundingDataset.skipped``
and logs their count. Images are only header-checked when loading (``verify_images=True`` decodes
them all); a screenshot that is truncated past its header fails with a ``DataError`` naming the file
and record when it is decoded.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import os
import re
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from guienv.errors import DataError
from guienv.frames import xywh_to_xyxy
from guienv.io import loads_json, read_json, resolve_inside
from guienv.types import GroundingSample, ImageRef

logger = logging.getLogger(__name__)

FORMATS = ("auto", "v1", "v2", "pro", "gui-g1", "parquet")
BBOX_FORMATS = ("auto", "xyxy", "xyxy_norm", "xywh")
SPLITS = ("mobile", "desktop", "web")
IMAGE_DIRS = {"v1": "screenspot_imgs", "v2": "screenspotv2_image", "pro": "images"}
# SeeClick's file-name prefixes and data sources per split (ScreenSpot v1/v2).
_PREFIX_SPLIT = {"mobile": "mobile", "pc": "desktop", "web": "web"}
_SPLIT_PREFIX = {v: k for k, v in _PREFIX_SPLIT.items()}
_SOURCE_SPLIT = {
    "ios": "mobile", "android": "mobile", "windows": "desktop", "macos": "desktop",
    "shop": "web", "forum": "web", "gitlab": "web", "tool": "web",
}
_V1_NAME = re.compile(r"^screenspot_(mobile|desktop|web)\.json$")
_V2_NAME = re.compile(r"^screenspot_(mobile|desktop|web)_v2\.json$")
_META_KEY = b"guienv"

Fmt = Literal["auto", "v1", "v2", "pro", "gui-g1", "parquet"]
OnError = Literal["raise", "skip"]


@dataclass
class GroundingDataset(Sequence):
    """Loaded grounding samples, plus what was skipped (``on_error="skip"``) and where from."""

    samples: list[GroundingSample]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    path: Path | None = None

    def __len__(self) -> int:
        return len(self.samples)

    @overload
    def __getitem__(self, i: int) -> GroundingSample: ...
    @overload
    def __getitem__(self, i: slice) -> list[GroundingSample]: ...
    def __getitem__(self, i):
        return self.samples[i]

    def __iter__(self) -> Iterator[GroundingSample]:
        return iter(self.samples)


# -- small validators -------------------------------------------------------------------------
class _Errors:
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


def _number(v: Any) -> float | None:
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
    nums = [_number(v) for v in value]
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
    return box


def _size(value: Any, err: Callable[[str], DataError]) -> tuple[int, int]:
    if isinstance(value, str):
        try:
            value = loads_json(value, "<img_size>")
        except ValueError:
            raise err(f"img_size must be [width, height], got the string {value[:80]!r}") from None
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise err(f"img_size must be [width, height], got {str(value)[:80]}")
    nums = [_number(v) for v in value]
    if any(v is None or v <= 0 or not v.is_integer() for v in nums):
        raise err(f"img_size must be two positive integers, got {list(value)!r}")
    return int(nums[0]), int(nums[1])


def _opt_str(rec: dict, *keys: str) -> str | None:
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


_SPECS = {
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


def _sample(
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
    file_name = _opt_str(rec, "img_filename", "file_name")
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
    platform = _opt_str(rec, "platform") or (split if split in SPLITS else None)
    sample_id = _opt_str(rec, "id") or f"{file.stem}-{index}"
    skip = {"instruction", box_key, "image", "img_size", "id", "platform", *spec.type_keys, *spec.source_keys}
    extra = {k: v for k, v in rec.items() if k not in skip and not isinstance(v, (bytes, dict))}
    return GroundingSample(
        id=sample_id,
        image=ref,
        instruction=instruction,
        box=box,
        width=size[0],
        height=size[1],
        data_type=_opt_str(rec, *spec.type_keys),
        platform=platform,
        split=split,
        source=_opt_str(rec, *spec.source_keys),
        extra=extra,
    )


# -- files ------------------------------------------------------------------------------------
def _read_json(file: Path) -> list:
    if not file.exists():
        raise DataError(file, "file not found")
    records = read_json(file)  # syntax, UTF-8 and nesting depth are DataErrors naming the file
    if not isinstance(records, list):
        raise DataError(file, f"expected a JSON list of records, got {type(records).__name__}")
    return records


def _sniff(records: list, file: Path) -> str:
    """The format of a JSON list whose file name is not a ScreenSpot name."""
    first = next((r for r in records if isinstance(r, dict)), None)
    if first is None:
        raise DataError(file, "no records to tell the format from; pass fmt=")
    if "bbox_xyxy" in first:
        return "gui-g1"
    if "img_size" in first and ("ui_type" in first or "application" in first):
        return "pro"
    if "data_source" in first and "bbox" in first:
        return "v2"  # v1 and v2 records are identical ([x, y, w, h] pixels)
    raise DataError(
        file, f"cannot tell which ScreenSpot format this is (fields {sorted(first)[:12]}); pass fmt="
    )


def _json_format(file: Path) -> str | None:
    if _V2_NAME.match(file.name):
        return "v2"
    if _V1_NAME.match(file.name):
        return "v1"
    if file.parent.name == "annotations":
        return "pro"
    return None


def _image_root(file: Path, fmt: str, image_dir: Path | None) -> Path:
    if image_dir is not None:
        return image_dir
    base = file.parent.parent if (fmt == "pro" and file.parent.name == "annotations") else file.parent
    conventional = IMAGE_DIRS.get(fmt)
    if conventional and (base / conventional).is_dir():
        return base / conventional
    return file.parent


def _load_json(file: Path, fmt: str, image_dir: Path | None, bbox_format: str, errors: _Errors, verify: bool):
    records = _read_json(file)
    if fmt == "auto":
        fmt = _json_format(file) or _sniff(records, file)
    spec = _SPECS[fmt]
    convention = spec.convention if bbox_format == "auto" else bbox_format
    split = None
    if fmt in ("v1", "v2"):
        m = _V2_NAME.match(file.name) or _V1_NAME.match(file.name)
        split = m.group(1) if m else None
    elif fmt == "pro":
        split = file.stem
    root = _image_root(file, fmt, image_dir)
    out = []
    for i, rec in enumerate(records):
        try:
            rec_split = split if split is not None or not isinstance(rec, dict) else _opt_str(rec, "split")
            out.append(_sample(rec, i, file, spec, root, convention, rec_split, verify))
        except DataError as exc:
            errors(exc)
    return out


def _parquet_convention(pf: Any, file: Path, bbox_format: str) -> str:
    if bbox_format != "auto":
        return bbox_format
    meta = pf.schema_arrow.metadata or {}
    if _META_KEY in meta:
        try:
            info = loads_json(meta[_META_KEY], file)
        except ValueError:
            info = None
        fmt = info.get("bbox_format") if isinstance(info, dict) else None
        if fmt in BBOX_FORMATS[1:]:
            return fmt
    boxes = pf.read(columns=["bbox"]).column("bbox").to_pylist()
    values = []
    for b in boxes:
        if isinstance(b, str):
            try:
                b = loads_json(b, file)
            except ValueError:
                continue
        if isinstance(b, (list, tuple)):
            values.extend(v for v in b if _number(v) is not None)
    # Normalized exports keep every coordinate in [0, 1]; a pixel export never does (boxes have area).
    return "xyxy_norm" if values and all(0.0 <= v <= 1.0 for v in values) else "xyxy"


def _load_parquet(file: Path, image_dir: Path | None, bbox_format: str, errors: _Errors, verify: bool):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = image_dir if image_dir is not None else file.parent
    out: list[GroundingSample] = []
    index = 0
    try:
        pf = pq.ParquetFile(file)
        names = set(pf.schema_arrow.names)
        missing = [c for c in ("instruction", "bbox") if c not in names]
        if missing:
            raise DataError(file, f"parquet file has no column {missing[0]!r} (columns: {sorted(names)})", field=missing[0])
        if not names & {"image", "img_filename", "file_name"}:
            raise DataError(file, "parquet file has no image column ('image', 'img_filename' or 'file_name')", field="image")
        convention = _parquet_convention(pf, file, bbox_format)
        spec = _SPECS["parquet"]
        for batch in pf.iter_batches(batch_size=64):
            for rec in batch.to_pylist():
                try:
                    out.append(_sample(rec, index, file, spec, root, convention, None, verify))
                except DataError as exc:
                    errors(exc)
                index += 1
    except FileNotFoundError:
        errors(DataError(file, "file not found"))
    except DataError as exc:  # file-level problems (missing columns); record errors arrive here only to raise
        errors(exc)
    except (pa.ArrowException, OSError) as exc:
        # A corrupt file: report the row reached so far, keep the rows already read.
        errors(DataError(file, f"cannot read parquet ({exc})", record=index if index else None))
    return out


def _discover(root: Path, fmt: str) -> list[tuple[Path, str]]:
    """Annotation files in a ScreenSpot directory, with their formats."""
    found: dict[str, list[Path]] = {
        "v1": sorted(p for p in root.glob("*.json") if _V1_NAME.match(p.name)),
        "v2": sorted(p for p in root.glob("*.json") if _V2_NAME.match(p.name)),
        "pro": sorted((root / "annotations").glob("*.json")),
        "parquet": sorted(p for p in root.rglob("*.parquet") if p.is_file()),
    }
    if fmt != "auto":
        if fmt == "gui-g1":
            return [(p, fmt) for p in sorted(root.glob("*.json"))]
        if not found.get(fmt):
            raise DataError(root, f"no {fmt} files found in this directory")
        return [(p, fmt) for p in found[fmt]]
    kinds = [k for k, v in found.items() if v]
    if len(kinds) > 1:
        raise DataError(root, f"directory holds several ScreenSpot formats ({', '.join(kinds)}); pass fmt=")
    if kinds:
        return [(p, kinds[0]) for p in found[kinds[0]]]
    others = sorted(root.glob("*.json"))
    if not others:
        raise DataError(root, "no ScreenSpot annotation files (.json or .parquet) found in this directory")
    return [(p, "auto") for p in others]


def load_screenspot(
    path: str | os.PathLike,
    *,
    image_dir: str | os.PathLike | None = None,
    fmt: Fmt = "auto",
    on_error: OnError = "raise",
    bbox_format: str = "auto",
    verify_images: bool = False,
) -> GroundingDataset:
    """Load a ScreenSpot v1/v2/Pro, GUI-G1 or parquet file, or a directory of them.

    ``fmt`` forces a format; ``bbox_format`` (``xyxy``, ``xyxy_norm``, ``xywh``) overrides the box
    convention; ``image_dir`` overrides where image paths are resolved (paths may not leave it);
    ``verify_images`` decodes every screenshot while loading instead of only reading its header.
    """
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if bbox_format not in BBOX_FORMATS:
        raise ValueError(f"bbox_format must be one of {BBOX_FORMATS}, got {bbox_format!r}")
    root = Path(path)
    img_dir = Path(image_dir) if image_dir is not None else None
    errors = _Errors(on_error)
    if root.is_dir():
        files = _discover(root, fmt)
    elif root.exists():
        files = [(root, "parquet" if fmt == "auto" and root.suffix == ".parquet" else fmt)]
    else:
        raise DataError(root, "file or directory not found")
    samples: list[GroundingSample] = []
    for file, f in files:
        if f == "parquet":
            samples += _load_parquet(file, img_dir, bbox_format, errors, verify_images)
        else:
            try:
                samples += _load_json(file, f, img_dir, bbox_format, errors, verify_images)
            except DataError as exc:  # file-level: unreadable JSON, unknown format
                errors(exc)
    if errors.skipped:
        logger.warning(
            "%s: skipped %d bad record(s) (on_error='skip'); first: %s: %s",
            root, len(errors.skipped), *errors.skipped[0],
        )
    return GroundingDataset(samples=samples, skipped=errors.skipped, path=root)


# -- writers ----------------------------------------------------------------------------------
def _plain(v: float) -> float | int:
    """Integral coordinates as ints, like the released files."""
    v = float(v)
    return int(v) if v.is_integer() else v


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def _image_ext(data: bytes) -> str:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = (img.format or "png").lower()
    except Exception:  # noqa: BLE001 - unknown bytes keep a neutral extension
        return ".png"
    return {"jpeg": ".jpg"}.get(fmt, f".{fmt}")


class _Images:
    """Copies each distinct screenshot once into ``folder``, under a unique file name."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.names: dict[tuple, str] = {}
        self.used: set[str] = set()

    def put(self, sample: GroundingSample, prefix: str = "", sub: str = "") -> str:
        ref = sample.image
        if ref.path is not None:
            key: tuple = ("path", str(Path(ref.path).resolve()))
        else:
            key = ("data", hashlib.sha1(ref.data).hexdigest())
        if key in self.names:
            return self.names[key]
        if ref.path is not None:
            name = Path(ref.path).name
        else:
            given = sample.extra.get("img_filename") or sample.extra.get("file_name")
            name = Path(str(given)).name if given else f"{prefix}{_safe(sample.id)}{_image_ext(ref.data)}"
        stem, ext = os.path.splitext(_safe(name))
        rel, n = f"{sub}{stem}{ext}", 0
        while rel in self.used:
            n += 1
            rel = f"{sub}{stem}-{n}{ext}"
        self.used.add(rel)
        dst = self.folder / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if ref.path is not None:
            shutil.copyfile(ref.path, dst)
        else:
            dst.write_bytes(ref.data)
        self.names[key] = rel
        return rel


def _screenspot_split(sample: GroundingSample, split: str | None) -> str:
    s = split or sample.split
    if s not in SPLITS and sample.platform in SPLITS:
        s = sample.platform
    if s not in SPLITS:
        raise ValueError(
            f"sample {sample.id!r}: ScreenSpot v1/v2 splits are {SPLITS}, got split={sample.split!r}, "
            f"platform={sample.platform!r}; pass split="
        )
    return s


def write_screenspot(
    samples: Iterable[GroundingSample],
    out_dir: str | os.PathLike,
    *,
    version: Literal["v1", "v2", "pro"] = "v2",
    split: str | None = None,
) -> Path:
    """Write samples as a ScreenSpot ``version`` directory (the layout :func:`load_screenspot` reads).

    ``v1``/``v2``: ``screenspot_<split>[_v2].json`` with ``[x, y, w, h]`` boxes and images in
    ``screenspot_imgs/`` or ``screenspotv2_image/``; the split is ``split`` or each sample's
    split/platform (mobile, desktop or web). ``pro``: ``annotations/<split>.json`` with
    ``[x1, y1, x2, y2]`` boxes and ``img_size``, images under ``images/<split>/``; the split is
    ``split``, the sample's split, or ``<source>_<platform>``. Returns ``out_dir``.
    """
    if version not in ("v1", "v2", "pro"):
        raise ValueError(f"version must be 'v1', 'v2' or 'pro', got {version!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = _Images(out / IMAGE_DIRS[version])
    files: dict[str, list[dict]] = {}
    for s in samples:
        x1, y1, x2, y2 = s.box
        if version == "pro":
            name = split or s.split or f"{s.source or 'app'}_{s.platform or 'unknown'}"
            rel = images.put(s, sub=f"{_safe(name)}/")
            rec = {
                "img_filename": rel,
                "bbox": [_plain(x1), _plain(y1), _plain(x2), _plain(y2)],
                "instruction": s.instruction,
                "instruction_cn": s.extra.get("instruction_cn"),
                "id": s.id,
                "application": s.source,
                "platform": s.platform,
                "img_size": [s.width, s.height],
                "ui_type": s.data_type,
                "group": s.extra.get("group"),
            }
            files.setdefault(f"annotations/{_safe(name)}.json", []).append(rec)
        else:
            name = _screenspot_split(s, split)
            rel = images.put(s, prefix=f"{_SPLIT_PREFIX[name]}_")
            rec = {
                "img_filename": rel,
                "bbox": [_plain(x1), _plain(y1), _plain(x2 - x1), _plain(y2 - y1)],
                "instruction": s.instruction,
                "data_type": s.data_type,
                "data_source": s.source,
            }
            suffix = "_v2" if version == "v2" else ""
            files.setdefault(f"screenspot_{name}{suffix}.json", []).append(rec)
    for rel, records in files.items():
        dst = out / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    return out


def write_screenspot_parquet(
    samples: Iterable[GroundingSample], path: str | os.PathLike, *, normalized: bool = False
) -> Path:
    """Write samples as a Hugging Face style parquet export (``rootsautomation/ScreenSpot`` columns).

    Columns: ``id, file_name, image {bytes, path}, instruction, bbox, img_size, data_type,
    data_source, platform, split``; ``bbox`` is xyxy, normalized to [0, 1] when ``normalized``. The
    box convention is also recorded in the schema metadata (key ``guienv``) for the reader.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            ("id", pa.string()),
            ("file_name", pa.string()),
            ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
            ("instruction", pa.string()),
            ("bbox", pa.list_(pa.float64())),
            ("img_size", pa.list_(pa.int64())),
            ("data_type", pa.string()),
            ("data_source", pa.string()),
            ("platform", pa.string()),
            ("split", pa.string()),
        ],
        metadata={_META_KEY: json.dumps({"bbox_format": "xyxy_norm" if normalized else "xyxy"}).encode()},
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)

    def row(s: GroundingSample) -> dict:
        if s.image.path is not None:
            data, name = Path(s.image.path).read_bytes(), Path(s.image.path).name
        else:
            data = s.image.data
            name = str(s.extra.get("file_name") or s.extra.get("img_filename") or f"{_safe(s.id)}{_image_ext(data)}")
        box = list(s.box)
        if normalized:
            box = [box[0] / s.width, box[1] / s.height, box[2] / s.width, box[3] / s.height]
        return {
            "id": s.id, "file_name": name, "image": {"bytes": data, "path": name},
            "instruction": s.instruction, "bbox": box, "img_size": [s.width, s.height],
            "data_type": s.data_type, "data_source": s.source, "platform": s.platform, "split": s.split,
        }

    with pq.ParquetWriter(out, schema) as writer:
        batch: list[dict] = []
        for s in samples:
            batch.append(row(s))
            if len(batch) == 64:  # bounded memory: screenshots are large
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return out

