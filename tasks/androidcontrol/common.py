"""Helpers every AndroidControl format shares: option types, screenshot files and step records.

AndroidControl (Li et al., "On the Effects of Data Scale on UI Control Agents", arXiv 2406.03679;
``google-research/google-research: android_control/README.md``).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any, Literal

from guienv.actions import Action, Box4
from guienv.errors import DataError
from guienv.io import image_size, png_bytes, resolve_inside
from guienv.types import ImageRef, Step

OnError = Literal["raise", "skip"]
CandidateMode = Literal["interactive", "all", "leaf"]


def png_of(ref: ImageRef) -> bytes:
    """The screenshot as PNG bytes (what the release and the conversions store)."""
    return png_bytes(ref.data if ref.data is not None else ref.path, ref.where)


def write_image(ref: ImageRef, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(png_of(ref))


def where_reason(e: DataError) -> tuple[str, str]:
    where = e.path
    if e.record is not None:
        where += f", record {e.record}"
    if e.field is not None:
        where += f", field {e.field!r}"
    return where, e.detail


def resolve_image(root: Path, ref: Any, where: str, field_name: str) -> Path:
    if not isinstance(ref, str) or not ref:
        raise DataError(where, f"screenshot path must be a non-empty string, got {ref!r}", field=field_name)
    p = PurePosixPath(ref.replace("\\", "/"))
    if not p.is_absolute():
        return resolve_inside(root, str(p), where=where, field=field_name)
    parts = p.parts[1:]
    for k in range(len(parts)):
        cand = resolve_inside(root, str(PurePosixPath(*parts[k:])), where=where, field=field_name)
        if cand.is_file():
            return cand
    raise DataError(where, f"absolute screenshot path {ref!r}: none of its trailing parts is a file under "
                    f"image_root {root}", field=field_name)


def file_step(
    image_path: Path, action: Action, raw: dict, instruction: str | None, candidates: tuple[Box4, ...], where: str
) -> Step:
    w, h = image_size(image_path, where)
    return Step(image=ImageRef(path=image_path, where=where), width=w, height=h, action=action,
                raw_action=raw, instruction=instruction, candidates=candidates)
