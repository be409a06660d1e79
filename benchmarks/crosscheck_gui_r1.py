"""Cross-check guienv's ``gui-r1`` preset against GUI-R1's own reward code, run unmodified.

Usage (the peer file is not part of guienv and never needed by its tests)::

    git -C <GUI-R1 clone> show HEAD:verl/utils/reward_score/r1gui.py > /tmp/peer/r1gui.py
    PYTHONPATH=. python benchmarks/crosscheck_gui_r1.py /tmp/peer/r1gui.py --targets 2000 --seed 0

Targets are AndroidControl-style steps (click, long_press, type, open_app, scroll, navigate_back,
wait) and grounding samples; their GUI-R1 ground truth JSON is :func:`rewards.gui_r1.gui_r1_truth`
(the mapping is guienv's: GUI-R1's data conversion is not public). Completions of many kinds are
scored by ``r1gui_compute_score`` and by ``CompositeReward("gui-r1")``; agreement per kind.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections import Counter

import numpy as np

from guienv.actions import Action
from guienv.types import GroundingSample, ImageRef, Step
from rewards.composite import CompositeReward
from rewards.gui_r1 import gui_r1_truth

IMG = ImageRef(data=b"", where="crosscheck")


def _targets(rng, n):
    out = []
    for i in range(n):
        w, h = 1080, 2400
        x, y = int(rng.integers(50, w - 50)), int(rng.integers(50, h - 50))
        k = i % 8
        if k == 0:
            out.append(GroundingSample(f"g{i}", IMG, "x", (x - 40, y - 20, x + 40, y + 20), w, h))
            continue
        act = [Action.click(x, y), Action.long_press(x, y), Action.type_text(str(rng.choice(["hello world", "shanghai mall", "cat"]))),
               Action.open_app(str(rng.choice(["Chrome", "Google Maps"]))), Action.scroll(str(rng.choice(["up", "down", "left", "right"]))),
               Action.simple("navigate_back"), Action.simple("wait")][k - 1]
        out.append(Step(image=IMG, width=w, height=h, action=act))
    return out


def _completions(rng, truth):
    g = truth.gt_bbox
    px, py = (int((g[0] + g[2]) / 2), int((g[1] + g[3]) / 2)) if len(g) == 4 else (int(g[0]), int(g[1])) if g else (-100, -100)
    text = truth.input_text
    near = (px + int(rng.integers(-150, 151)), py + int(rng.integers(-150, 151)))
    def a(action, point, t):
        return f"[{{'action': '{action}', 'point': [{point[0]}, {point[1]}], 'input_text': '{t}'}}]"
    right = a(truth.action, (px, py), text)
    return {
        "exact": f"<think>ok</think><answer>{right}</answer>",
        "near point": f"<think>ok</think> <answer>{a(truth.action, near, text)}</answer>",
        "negative point": f"<think>ok</think><answer>{a(truth.action, (-5, py), text)}</answer>",
        "float point": f"<think>ok</think><answer>[{{'action': '{truth.action}', 'point': [{px}.5, {py}], 'input_text': '{text}'}}]</answer>",
        "no think": f"<answer>{right}</answer>",
        "text after": f"<think>ok</think><answer>{right}</answer> done",
        "double quotes": f"<think>ok</think><answer>{json.dumps([{'action': truth.action, 'point': [px, py], 'input_text': text}])}</answer>",
        "no answer tag": f"<think>ok</think>{right}",
        "other action": f"<think>ok</think><answer>{a('press_home', (px, py), 'no input text')}</answer>",
        "partial text": f"<think>ok</think><answer>{a(truth.action, (px, py), text.split()[0] + ' x y')}</answer>",
        "default text": f"<think>ok</think><answer>{a(truth.action, (px, py), 'no input text')}</answer>",
        "upper case": f"<think>ok</think><answer>{a(truth.action.upper(), (px, py), text.upper())}</answer>",
        "two actions": f"<think>ok</think><answer>{right[:-1]}, {right[1:]}</answer>",
        "empty list": "<think>ok</think><answer>[]</answer>",
        "dict not list": f"<think>ok</think><answer>{right[1:-1]}</answer>",
        "newline in answer": f"<think>ok</think><answer>\n{right}\n</answer>",
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("peer")
    ap.add_argument("--targets", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default="gui-r1", help="guienv preset to compare (e.g. gui-r1-lenient)")
    args = ap.parse_args()
    spec = importlib.util.spec_from_file_location("r1gui_peer", args.peer)
    peer = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(peer)
    rng = np.random.default_rng(args.seed)
    reward = CompositeReward(args.preset)
    total, agree, refsum = Counter(), Counter(), Counter()
    for target in _targets(rng, args.targets):
        truth = gui_r1_truth(target)
        gt = json.dumps({"action": truth.action, "gt_bbox": list(truth.gt_bbox), "input_text": truth.input_text})
        for kind, text in _completions(rng, truth).items():
            ref = peer.r1gui_compute_score(text, gt)["overall"]
            ours = reward(text, target).total
            key = f"{kind} ({truth.action})"
            total[key] += 1
            agree[key] += abs(ref - ours) < 1e-12
            refsum[key] += ref
    for key in sorted(total):
        if agree[key] != total[key]:
            print(f"  DIFFER {key}: {agree[key]}/{total[key]}")
    by_kind, got = Counter(), Counter()
    for key in total:
        by_kind[key.split(" (")[0]] += total[key]
        got[key.split(" (")[0]] += refsum[key]
    for kind in by_kind:
        print(f"  {kind:18s} {by_kind[kind]:6d} completions, mean reference reward {got[kind] / by_kind[kind]:.3f}")
    print(f"  {sum(total.values())} completions ({len(total)} kind x action cells), agree "
          f"{sum(agree.values()) / sum(total.values()):.4%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
