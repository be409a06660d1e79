"""Hugging Face parquet exports with the screenshot inline (``rootsautomation/ScreenSpot``,
``HongxinLi/ScreenSpot_v2``, ``lmms-lab/ScreenSpot-Pro``): reading, box-convention detection, writing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from guienv.errors import DataError
from guienv.io import loads_json
from guienv.types import GroundingSample
from tasks.screenspot.records import BBOX_FORMATS, META_KEY, SPECS, RecordErrors, finite_number, parse_record
from tasks.screenspot.writers import image_ext, safe_name


def _parquet_convention(pf: Any, file: Path, bbox_format: str) -> str:
    if bbox_format != "auto":
        return bbox_format
    meta = pf.schema_arrow.metadata or {}
    if META_KEY in meta:
        try:
            info = loads_json(meta[META_KEY], file)
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
            values.extend(v for v in b if finite_number(v) is not None)
    # Normalized exports keep every coordinate in [0, 1]; a pixel export never does (boxes have area).
    return "xyxy_norm" if values and all(0.0 <= v <= 1.0 for v in values) else "xyxy"


def load_parquet_file(file: Path, image_dir: Path | None, bbox_format: str, errors: RecordErrors, verify: bool):
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = image_dir if image_dir is not None else file.parent
    out: list[GroundingSample] = []
    index = 0
    try:
        # Page CRCs are checked where the writer stored them (guienv always does); files without them
        # read as before.
        pf = pq.ParquetFile(file, page_checksum_verification=True)
        names = set(pf.schema_arrow.names)
        missing = [c for c in ("instruction", "bbox") if c not in names]
        if missing:
            raise DataError(file, f"parquet file has no column {missing[0]!r} (columns: {sorted(names)})", field=missing[0])
        if not names & {"image", "img_filename", "file_name"}:
            raise DataError(file, "parquet file has no image column ('image', 'img_filename' or 'file_name')", field="image")
        convention = _parquet_convention(pf, file, bbox_format)
        spec = SPECS["parquet"]
        for batch in pf.iter_batches(batch_size=64):
            for rec in batch.to_pylist():
                try:
                    out.append(parse_record(rec, index, file, spec, root, convention, None, verify))
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




def write_screenspot_parquet(
    samples: Iterable[GroundingSample], path: str | os.PathLike, *, normalized: bool = False
) -> Path:
    """Write samples as a Hugging Face style parquet export (``rootsautomation/ScreenSpot`` columns).

    Columns: ``id, file_name, image {bytes, path}, instruction, bbox, img_size, data_type,
    data_source, platform, split``; ``bbox`` is xyxy, normalized to [0, 1] when ``normalized``. The
    box convention is also recorded in the schema metadata (key ``guienv``) for the reader. Every
    page carries a CRC32 checksum, which :func:`load_screenspot` verifies.
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
        metadata={META_KEY: json.dumps({"bbox_format": "xyxy_norm" if normalized else "xyxy"}).encode()},
    )
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)

    def row(s: GroundingSample) -> dict:
        if s.image.path is not None:
            data, name = Path(s.image.path).read_bytes(), Path(s.image.path).name
        else:
            data = s.image.data
            name = str(s.extra.get("file_name") or s.extra.get("img_filename") or f"{safe_name(s.id)}{image_ext(data)}")
        box = list(s.box)
        if normalized:
            box = [box[0] / s.width, box[1] / s.height, box[2] / s.width, box[3] / s.height]
        return {
            "id": s.id, "file_name": name, "image": {"bytes": data, "path": name},
            "instruction": s.instruction, "bbox": box, "img_size": [s.width, s.height],
            "data_type": s.data_type, "data_source": s.source, "platform": s.platform, "split": s.split,
        }

    # Page checksums: a flipped byte in a page is then a read error, not a silently changed value.
    with pq.ParquetWriter(out, schema, write_page_checksum=True) as writer:
        batch: list[dict] = []
        for s in samples:
            batch.append(row(s))
            if len(batch) == 64:  # bounded memory: screenshots are large
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                batch = []
        if batch:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
    return out
