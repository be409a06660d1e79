"""Cross-check guienv's ``gui-g1`` preset against GUI-G1's own reward functions, run unmodified.

Usage (the peer file is not part of guienv and never needed by its tests)::

    git -C <GUI-G1 clone> show HEAD:src/open-r1-multimodal/src/open_r1/grpo_rec.py > /tmp/peer/grpo_rec.py
    PYTHONPATH=. python benchmarks/crosscheck_gui_g1.py /tmp/peer/grpo_rec.py --pairs 100000 --seed 0

``grpo_rec.py`` imports a training stack (flash attention, its own trainer) that the reward
functions do not use; those names are stubbed before the file is imported as is. Prints the
agreement of every term on random box pairs and of the total on generated completion strings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import types
from collections import Counter

import numpy as np

from guienv.types import GroundingSample, ImageRef
from rewards.composite import CompositeReward
from rewards.grounding import gui_g1_rewards


def load_peer(path: str):
    import transformers.models.qwen2_5_vl.modeling_qwen2_5_vl as m

    for name in ("Qwen2_5_VLVisionFlashAttention2", "apply_rotary_pos_emb_flashatt", "flash_attn_varlen_func"):
        if not hasattr(m, name):
            setattr(m, name, type(name, (), {}))
    pkg, trainer = types.ModuleType("open_r1"), types.ModuleType("open_r1.trainer")
    trainer.Qwen2VLGRPOTrainer = trainer.GRPOConfig = object
    pkg.trainer = trainer
    sys.modules.setdefault("open_r1", pkg)
    sys.modules.setdefault("open_r1.trainer", trainer)
    spec = importlib.util.spec_from_file_location("grpo_rec_peer", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Img:
    def __init__(self, w: int, h: int):
        self.width, self.height = w, h


def peer_terms(mod, texts, sols, sizes):
    comps = [[{"content": t}] for t in texts]
    imgs = [_Img(w, h) for w, h in sizes]
    hit = np.array(mod.hit_reward(comps, sols))
    iou = np.array(mod.iou_reward(comps, sols)) / 0.25
    box = np.array(mod.box_reward(comps, sols, image=imgs)) / 0.125
    return hit, iou, box


def random_pairs(rng, n):
    w = rng.integers(200, 3000, n)
    h = rng.integers(200, 3000, n)
    def boxes(small):
        x1 = rng.uniform(0, w * 0.9)
        y1 = rng.uniform(0, h * 0.9)
        bw = np.where(small, rng.integers(0, 4, n), rng.uniform(1, w * 0.3))
        bh = np.where(small, rng.integers(0, 4, n), rng.uniform(1, h * 0.3))
        return np.stack([x1, y1, x1 + bw, y1 + bh], 1)
    gt = np.round(boxes(rng.random(n) < 0.1))
    pred = boxes(rng.random(n) < 0.1)
    # a third integer boxes near the GT (1-px overlaps), a few inverted ones
    near = rng.random(n) < 0.33
    pred[near] = gt[near] + rng.integers(-3, 4, (near.sum(), 4))
    ints = rng.random(n) < 0.5
    pred[ints] = np.round(pred[ints])
    inv = rng.random(n) < 0.02
    pred[inv] = pred[inv][:, [2, 3, 0, 1]]
    return pred, gt, np.stack([w, h], 1)


def completions(rng, box):
    b = [int(v) for v in box]
    j = json.dumps([{"bbox_2d": b}])
    return {
        "bare-json": j,
        "python-literal": str([{"bbox_2d": b, "label": "x"}]),
        "json-fence": f"```json\n{j}\n```",
        "json-fence-prose": f"Here it is:\n```json\n{j}\n```\nDone.",
        "fence-unlabelled": f"```\n{j}\n```",
        "fence-trailing-space": f"```json \n{j}\n```",
        "answer-tags": f"<answer>{j}</answer>",
        "think-then-list": f"<think>the icon</think>{j}",
        "json-true-null": json.dumps([{"bbox_2d": b, "visible": True, "label": None}]),
        "tuple": str(({"bbox_2d": tuple(b)},)),
        "long-list": json.dumps([{"bbox_2d": b + [7]}]),
        "short-list": json.dumps([{"bbox_2d": b[:3]}]),
        "dict-not-list": json.dumps({"bbox_2d": b}),
        "second-element": json.dumps([{"label": "x"}, {"bbox_2d": b}]),
        "strings": json.dumps([{"bbox_2d": [str(v) for v in b]}]),
        "floats": json.dumps([{"bbox_2d": [v + 0.5 for v in b]}]),
        "point": json.dumps([{"point_2d": b[:2]}]),
        "prose": f"The box is {j}",
        "empty": "",
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("peer")
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--strings", type=int, default=2_000, help="GT samples, each with every completion kind")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    mod = load_peer(args.peer)
    rng = np.random.default_rng(args.seed)

    pred, gt, sizes = random_pairs(rng, args.pairs)
    texts = [json.dumps([{"bbox_2d": [float(v) for v in p]}]) for p in pred]
    ph, pi, pb = peer_terms(mod, texts, gt.tolist(), sizes.tolist())
    g = gui_g1_rewards(pred, gt, sizes, iou_convention="reference")
    inv = (pred[:, 2] < pred[:, 0]) | (pred[:, 3] < pred[:, 1])
    span = np.concatenate([sizes, sizes], 1)
    far = (np.abs(gt - pred) >= span).any(1) & ~inv  # a closeness term <= 0: guienv clamps R_box to 0
    ok = ~inv & ~far
    print(f"box pairs: {args.pairs} ({int(inv.sum())} inverted and {int(far.sum())} with an edge an image "
          "side or more off, compared apart: guienv scores those 0 by design)")
    for name, a, b in (("hit", ph, g.hit), ("iou", pi, g.iou), ("box", pb, g.box)):
        d = np.abs(a[ok] - b[ok])
        print(f"  {name}: max |diff| {d.max():.3g}, agree (1e-12) {np.mean(d < 1e-12):.4%}")
    print(f"  far edges: hit and iou agree {np.mean((ph == g.hit)[far] & (np.abs(pi - g.iou) < 1e-12)[far]):.2%}, "
          f"box agrees {np.mean(np.abs(pb - g.box)[far] < 1e-12):.2%}")
    print(f"  inverted: total agrees on {np.mean(np.abs((ph + .25 * pi + .125 * pb)[inv] - g.total[inv]) < 1e-12):.2%}")

    reward = CompositeReward("gui-g1")
    kinds: Counter = Counter()
    agree: Counter = Counter()
    scored: Counter = Counter()
    for k in range(args.strings):
        w, h = int(rng.integers(300, 3000)), int(rng.integers(300, 3000))
        x1, y1 = float(rng.integers(0, w - 100)), float(rng.integers(0, h - 100))
        box = (x1, y1, x1 + float(rng.integers(5, 100)), y1 + float(rng.integers(5, 100)))
        guess = np.array(box) + rng.integers(-20, 21, 4)
        guess[2:] = np.maximum(guess[2:], guess[:2])
        sample = GroundingSample(f"s{k}", ImageRef(path="none.png"), "x", box, w, h)
        cases = completions(rng, guess)
        hs, ious, bs = peer_terms(mod, list(cases.values()), [list(box)] * len(cases), [(w, h)] * len(cases))
        for (kind, text), th, ti, tb in zip(cases.items(), hs, ious, bs):
            ref = th + 0.25 * ti + 0.125 * tb
            ours = reward(text, sample).total
            kinds[kind] += 1
            agree[kind] += abs(ref - ours) < 1e-12
            scored[kind] += ref > 0
    print(f"completion strings: {sum(kinds.values())} ({args.strings} samples x {len(kinds)} kinds)")
    for kind in kinds:
        print(f"  {kind:22s} agree {agree[kind] / kinds[kind]:.2%}  (reference scores >0 on {scored[kind] / kinds[kind]:.0%})")
    print(f"  all kinds: agree {sum(agree.values()) / sum(kinds.values()):.4%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
