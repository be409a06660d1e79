"""Writing grounding samples as a ScreenSpot v1/v2/Pro directory (annotation JSON plus image folder).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from guienv.types import GroundingSample
from tasks.screenspot.records import IMAGE_DIRS, SPLIT_PREFIX, SPLITS


# -- writers ----------------------------------------------------------------------------------
def _plain(v: float) -> float | int:
    """Integral coordinates as ints, like the released files."""
    v = float(v)
    return int(v) if v.is_integer() else v


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def image_ext(data: bytes) -> str:
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
            name = Path(str(given)).name if given else f"{prefix}{safe_name(sample.id)}{image_ext(ref.data)}"
        stem, ext = os.path.splitext(safe_name(name))
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
            rel = images.put(s, sub=f"{safe_name(name)}/")
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
            files.setdefault(f"annotations/{safe_name(name)}.json", []).append(rec)
        else:
            name = _screenspot_split(s, split)
            rel = images.put(s, prefix=f"{SPLIT_PREFIX[name]}_")
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
