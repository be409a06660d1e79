"""The metrics of a training run: ``metrics.jsonl`` and TensorBoard scalars (rank 0), and
``curves.png`` drawn from them."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from guienv.io import read_jsonl, write_jsonl

__all__ = ["PLOT_KEYS", "MetricsLog", "clean_value", "plot_curves"]


def clean_value(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (np.floating, np.integer)):
        return clean_value(v.item())
    return v


class MetricsLog:
    """``metrics.jsonl`` + TensorBoard on rank 0. Resuming at ``step`` drops rows after it."""

    def __init__(self, out: Path, resume_step: int, tensorboard: bool, enabled: bool):
        self.enabled = enabled
        self.path = out / "metrics.jsonl"
        self.tb = None
        if not enabled:
            return
        if self.path.exists():
            # A crash can cut the last row short; rows after the resumed checkpoint are redone.
            rows, _ = read_jsonl(self.path, drop_cut_tail=True)
            write_jsonl(self.path, [r for r in rows if r.get("step", 0) <= resume_step])
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:  # the tensorboard package is missing: metrics.jsonl still has everything
                import warnings

                warnings.warn(f"TensorBoard logging off ({exc}); pip install tensorboard", stacklevel=2)
            else:
                self.tb = SummaryWriter(str(out / "tb"), purge_step=resume_step + 1 if resume_step else None)

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {k: clean_value(v) for k, v in row.items()}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step":
                    self.tb.add_scalar(f"{row.get('phase', 'train')}/{k}", v, row["step"])
            self.tb.flush()

    def rows(self) -> list[dict[str, Any]]:
        return read_jsonl(self.path)[0]

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


PLOT_KEYS = ("reward", "accuracy", "kl", "clip_frac", "completion_len", "zero_var_frac", "stage", "box_size_vs_gt",
             "sft_loss", "eval_accuracy")


def plot_curves(rows: Sequence[Mapping[str, Any]], path: Path, keys: Sequence[str] = PLOT_KEYS) -> Path | None:
    """A PNG grid of line charts (one panel per metric present in ``rows``), drawn with Pillow."""
    from PIL import Image, ImageDraw

    series = []
    for k in keys:
        pts = [(r["step"], float(r[k])) for r in rows if isinstance(r.get(k), (int, float)) and math.isfinite(float(r[k]))]
        if pts:
            series.append((k, pts))
    if not series:
        return None
    pw, ph, cols = 360, 220, 3
    nrows = (len(series) + cols - 1) // cols
    img = Image.new("RGB", (pw * cols, ph * nrows), "white")
    d = ImageDraw.Draw(img)
    for i, (name, pts) in enumerate(series):
        ox, oy = (i % cols) * pw, (i // cols) * ph
        x0, y0, x1, y1 = ox + 52, oy + 24, ox + pw - 12, oy + ph - 28
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        lo, hi = min(ys), max(ys)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        sx0, sx1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
        d.rectangle((x0, y0, x1, y1), outline=(160, 160, 160))
        d.text((ox + 8, oy + 6), name, fill="black")
        for frac in (0.0, 0.5, 1.0):
            y = y1 - frac * (y1 - y0)
            d.line((x0 - 4, y, x0, y), fill=(120, 120, 120))
            d.text((ox + 4, y - 6), f"{lo + frac * (hi - lo):.3g}", fill=(80, 80, 80))
        d.text((x0, y1 + 6), f"{sx0}", fill=(80, 80, 80))
        d.text((x1 - 30, y1 + 6), f"{sx1}", fill=(80, 80, 80))
        xy = [(x0 + (x - sx0) / (sx1 - sx0) * (x1 - x0), y1 - (y - lo) / (hi - lo) * (y1 - y0)) for x, y in pts]
        if len(xy) > 60:  # noisy per-step series: faint raw line, moving average on top
            d.line(xy, fill=(190, 210, 235), width=1)
            k = max(2, len(xy) // 30)
            avg = np.convolve(ys, np.ones(k) / k, mode="valid")
            xy = [(xy[j + k - 1][0], y1 - (v - lo) / (hi - lo) * (y1 - y0)) for j, v in enumerate(avg)]
        if len(xy) > 1:
            d.line(xy, fill=(31, 119, 180), width=2)
        for p in xy if len(xy) < 40 else xy[-1:]:
            d.ellipse((p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2), fill=(31, 119, 180))
    img.save(path)
    return path
