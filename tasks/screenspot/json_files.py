"""The JSON annotation files: ScreenSpot v1/v2 (SeeClick, arXiv 2401.10935; OS-Atlas, arXiv 2410.23218),
ScreenSpot-Pro (arXiv 2504.07981) and GUI-G1 (arXiv 2505.15810) lists; the format is told from the file name
or the first record.
"""

from __future__ import annotations

from pathlib import Path

from guienv.errors import DataError
from guienv.io import read_json
from tasks.screenspot.records import IMAGE_DIRS, SPECS, V1_NAME, V2_NAME, RecordErrors, opt_str, parse_record


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
    if V2_NAME.match(file.name):
        return "v2"
    if V1_NAME.match(file.name):
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


def load_json_file(file: Path, fmt: str, image_dir: Path | None, bbox_format: str, errors: RecordErrors, verify: bool):
    records = _read_json(file)
    if fmt == "auto":
        fmt = _json_format(file) or _sniff(records, file)
    spec = SPECS[fmt]
    convention = spec.convention if bbox_format == "auto" else bbox_format
    split = None
    if fmt in ("v1", "v2"):
        m = V2_NAME.match(file.name) or V1_NAME.match(file.name)
        split = m.group(1) if m else None
    elif fmt == "pro":
        split = file.stem
    root = _image_root(file, fmt, image_dir)
    out = []
    for i, rec in enumerate(records):
        try:
            rec_split = split if split is not None or not isinstance(rec, dict) else opt_str(rec, "split")
            out.append(parse_record(rec, i, file, spec, root, convention, rec_split, verify))
        except DataError as exc:
            errors(exc)
    return out
