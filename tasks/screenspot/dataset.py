""":class:`GroundingDataset` and :func:`load_screenspot`, the one loader for every ScreenSpot-family format
(a file or a directory; formats found by their conventional names).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import overload

from guienv.errors import DataError
from guienv.types import GroundingSample
from tasks.screenspot.json_files import load_json_file
from tasks.screenspot.parquet import load_parquet_file
from tasks.screenspot.records import BBOX_FORMATS, FORMATS, V1_NAME, V2_NAME, Fmt, OnError, RecordErrors

logger = logging.getLogger(__name__)


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




def _discover(root: Path, fmt: str) -> list[tuple[Path, str]]:
    """Annotation files in a ScreenSpot directory, with their formats."""
    # Only files: a directory named like an annotation file (a backup, an unpacked archive) is not one.
    jsons = sorted(p for p in root.glob("*.json") if p.is_file())
    found: dict[str, list[Path]] = {
        "v1": [p for p in jsons if V1_NAME.match(p.name)],
        "v2": [p for p in jsons if V2_NAME.match(p.name)],
        "pro": sorted(p for p in (root / "annotations").glob("*.json") if p.is_file()),
        "parquet": sorted(p for p in root.rglob("*.parquet") if p.is_file()),
    }
    if fmt != "auto":
        if fmt == "gui-g1":
            return [(p, fmt) for p in jsons]
        if not found.get(fmt):
            raise DataError(root, f"no {fmt} files found in this directory")
        return [(p, fmt) for p in found[fmt]]
    kinds = [k for k, v in found.items() if v]
    if len(kinds) > 1:
        raise DataError(root, f"directory holds several ScreenSpot formats ({', '.join(kinds)}); pass fmt=")
    if kinds:
        return [(p, kinds[0]) for p in found[kinds[0]]]
    others = jsons
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
    errors = RecordErrors(on_error)
    if root.is_dir():
        files = _discover(root, fmt)
    elif root.exists():
        files = [(root, "parquet" if fmt == "auto" and root.suffix == ".parquet" else fmt)]
    else:
        raise DataError(root, "file or directory not found")
    samples: list[GroundingSample] = []
    for file, f in files:
        if f == "parquet":
            samples += load_parquet_file(file, img_dir, bbox_format, errors, verify_images)
        else:
            try:
                samples += load_json_file(file, f, img_dir, bbox_format, errors, verify_images)
            except DataError as exc:  # file-level: unreadable JSON, unknown format
                errors(exc)
    if errors.skipped:
        logger.warning(
            "%s: skipped %d bad record(s) (on_error='skip'); first: %s: %s",
            root, len(errors.skipped), *errors.skipped[0],
        )
    return GroundingDataset(samples=samples, skipped=errors.skipped, path=root)
