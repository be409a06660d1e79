"""Cross-check ``guienv score --benchmark screenspot`` against SeeClick's answer readers, run unmodified.

Usage (the peer file is not part of guienv and never needed by its tests)::

    git -C <SeeClick clone> show HEAD:pretrain/process_utils.py > /tmp/peer/process_utils.py
    PYTHONPATH=. python benchmarks/crosscheck_screenspot.py /tmp/peer/process_utils.py --samples 3000

SeeClick's evaluator (``pretrain/screenspot_test.py``) reads a Qwen-VL ``<box>(x1,y1),(x2,y2)</box>``
answer with ``extract_bbox`` (0-1000 grid, its centre is the click), anything else with
``pred_2_point`` (normalised point, or the centre of 4 numbers), and counts a hit when the point is
inside the normalised GT box (bounds inclusive). Its loop loads a model at import, so that one
comparison line is restated here; the answer readers are the peer's own functions. Data is
written with guienv's ScreenSpot writer and scored with :func:`rewards.scoring.score`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from guienv.io import encode_png
from guienv.types import GroundingSample, ImageRef
from rewards.scoring import score
from tasks.screenspot import load_screenspot, write_screenspot


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("peer")
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("seeclick_utils", args.peer)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    rng = np.random.default_rng(args.seed)
    sizes = [(1080, 2400), (1920, 1080), (2560, 1440)]
    pngs = {s: encode_png(np.zeros((s[1], s[0], 3), np.uint8)) for s in sizes}
    samples, outputs = [], []
    for i in range(args.samples):
        w, h = sizes[i % len(sizes)]
        x1, y1 = int(rng.integers(0, w - 200)), int(rng.integers(0, h - 100))
        box = (x1, y1, x1 + int(rng.integers(10, 200)), y1 + int(rng.integers(10, 100)))
        samples.append(GroundingSample(f"s{i}", ImageRef(data=pngs[(w, h)]), f"s{i}", box, w, h, data_type="text",
                                       platform="mobile", split="mobile", source="x"))
        cx, cy = (box[0] + box[2]) / 2 / w, (box[1] + box[3]) / 2 / h
        px, py = cx + rng.normal(0, 0.03), cy + rng.normal(0, 0.03)
        kind = ("point", "bare", "box", "four")[i % 4]
        if kind == "point":
            outputs.append((kind, f"({px:.2f},{py:.2f})", "normalized"))
        elif kind == "bare":
            outputs.append((kind, f"{px:.2f}, {py:.2f}", "normalized"))
        elif kind == "box":
            d = rng.integers(5, 40, 2)
            g = [int(px * 1000 - d[0]), int(py * 1000 - d[1]), int(px * 1000 + d[0]), int(py * 1000 + d[1])]
            outputs.append((kind, f"<box>({g[0]},{g[1]}),({g[2]},{g[3]})</box>", "grid1000"))
        else:
            outputs.append((kind, f"[{px - 0.01:.3f}, {py - 0.01:.3f}, {px + 0.01:.3f}, {py + 0.01:.3f}]", "normalized"))
    with tempfile.TemporaryDirectory() as tmp:
        root = write_screenspot(samples, Path(tmp) / "ss", version="v1")
        loaded = load_screenspot(root)
        pred = Path(tmp) / "pred.jsonl"
        pred.write_text("".join(json.dumps({"id": s.id, "text": t, "frame": f}) + "\n"
                                for s, (_, t, f) in zip(loaded, outputs)))
        score("screenspot", root, pred, out_dir=Path(tmp) / "out")
        ours = {r["id"]: bool(r["correct"]) for r in map(json.loads, (Path(tmp) / "out" / "verdicts.jsonl").read_text().splitlines())}
        agree, total = Counter(), Counter()
        for s, (kind, text, _) in zip(loaded, outputs):
            b = [s.box[0] / s.width, s.box[1] / s.height, s.box[2] / s.width, s.box[3] / s.height]
            try:
                if "box" in text:
                    pb = peer.extract_bbox(text)
                    p = [(pb[0][0] + pb[1][0]) / 2 / 1000, (pb[0][1] + pb[1][1]) / 2 / 1000]
                else:
                    p = peer.pred_2_point(text)
                ref = b[0] <= p[0] <= b[2] and b[1] <= p[1] <= b[3]
            except Exception:  # SeeClick counts a wrong format as a miss
                ref = False
            total[kind] += 1
            agree[kind] += ref == ours[s.id]
            if ref != ours[s.id]:
                # known: SeeClick's <box> pattern has no minus sign, so a negative grid coordinate is a wrong format
                total[f"{kind} differing, negative number: {'-' in text}"] += 1
    for kind in sorted(k for k in total if "differing" in k):
        print(f"  {kind}: {total.pop(kind)}")
    for kind in total:
        print(f"  {kind:6s} {total[kind]:5d} answers, verdicts agree {agree[kind] / total[kind]:.2%}")
    print(f"  all    {sum(total.values()):5d} answers, verdicts agree {sum(agree.values()) / sum(total.values()):.2%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
