"""Learning results and ablations of ``guienv train`` on the embedded default (CPU, minutes per run).

Every run is a plain ``guienv train --config configs/train_default.yaml --out DIR --set ...``
subprocess; the table is read back from each run's ``eval.json`` and ``metrics.jsonl``.

Groups (``--groups``, comma-separated):

* ``demo``: the README's main job as is (SFT warm-up then GRPO), ``--seeds`` seeds.
* ``sft``: what makes the tiny model learn where targets are (SFT only, ``train.steps=0``): the
  default; GUI-G1's original image-first prompt order (``model.template=gui-g1``); Qwen2.5-VL's
  M-RoPE theta 1e6 with equal sections (``model.tiny`` = TinyModelConfig defaults).
* ``grpo``: GRPO from one shared SFT warm-up (run once into ``OUT/warmup``), crossed:
  CRAFT-GUI staged curriculum vs random order, GUI-G1 reward vs hit-only (the centre-in-box term
  alone, which leaves the box size free: GUI-G1's reward-hacking case) vs IoU-only, ``--seeds``
  seeds each. Reported: held-out accuracy before (= the warm-up's) and after, and the predicted
  box size relative to the ground truth in the first and last 20% of GRPO steps.

    python benchmarks/train_ablations.py --out runs/ablations --groups sft,grpo --seeds 3 --jobs 2
    python benchmarks/train_ablations.py --out runs/ablations --table      # re-print from the runs

Runs that already have ``eval.json`` are not run again (delete the folder to redo one).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "train_default.yaml"
QUIET = ["--set", "train.progress=false", "--set", "train.tensorboard=false"]


@dataclass
class Run:
    name: str
    group: str
    out: Path
    sets: list[str] = field(default_factory=list)
    seed: int = 0

    def argv(self) -> list[str]:
        a = [sys.executable, "-m", "guienv.run.cli", "train", "--config", str(CONFIG), "--out", str(self.out), "--no-resume"]
        for s in self.sets:
            a += ["--set", s]
        return a + QUIET


def plan(out: Path, groups: list[str], seeds: int, grpo_steps: int) -> tuple[Run | None, list[Run]]:
    runs: list[Run] = []
    warm = None
    seeded = lambda s: [f"train.seed={s}", f"grpo.seed={s}", f"curriculum.seed={s}"]  # noqa: E731
    if "demo" in groups:
        for s in range(seeds):
            runs.append(Run(f"demo seed {s}", "demo", out / f"demo-s{s}", seeded(s) + [f"model.tiny.seed={s}"], s))
    if "sft" in groups:
        sft_only = ["train.steps=0"]
        for s in range(seeds):
            base = sft_only + [f"train.seed={s}", f"model.tiny.seed={s}"]
            runs.append(Run(f"default (text first, theta 10, sections 2/3/3) seed {s}", "sft", out / f"sft-default-s{s}", base, s))
            runs.append(Run(f"image first (gui-g1) seed {s}", "sft", out / f"sft-imagefirst-s{s}", base + ["model.template=gui-g1"], s))
            runs.append(Run(f"theta 1e6, equal sections seed {s}", "sft", out / f"sft-theta1e6-s{s}",
                            base + [f"model.tiny={{seed: {s}}}"], s))
    if "grpo" in groups:
        warm = Run("SFT warm-up", "warmup", out / "warmup", ["train.steps=0"])
        start = [f"model.path={warm.out / 'final'}", "sft.steps=0", f"train.steps={grpo_steps}"]
        rewards = {"gui-g1": [], "hit-only": ["reward.composite={terms: [{name: hit}]}"],
                   "iou-only": ["reward.composite={terms: [{name: iou}]}"]}
        for s in range(seeds):
            for cur in ("staged", "random"):
                for rname, rset in rewards.items():
                    if cur == "random" and rname != "gui-g1":
                        continue  # the curriculum comparison uses the default reward
                    runs.append(Run(f"{cur}, {rname}, seed {s}", "grpo", out / f"grpo-{cur}-{rname}-s{s}",
                                    start + seeded(s) + [f"curriculum.mode={cur}"] + rset, s))
    return warm, runs


def execute(run: Run, threads: int) -> None:
    if (run.out / "eval.json").exists():
        return
    run.out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    with open(run.out / "stdout.log", "w") as f:
        p = subprocess.run(run.argv(), cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT)
    if p.returncode:
        raise RuntimeError(f"{run.name}: guienv train exited {p.returncode}; see {run.out / 'stdout.log'}")


def summarize(run: Run) -> dict:
    ev = json.loads((run.out / "eval.json").read_text())
    rows = [json.loads(x) for x in (run.out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    grpo = [r for r in rows if r.get("phase") == "grpo"]
    size = [r.get("box_size_vs_gt", float("nan")) for r in grpo]
    k = max(1, len(size) // 5)
    first = float(np.nanmean(size[:k])) if size else float("nan")
    last = float(np.nanmean(size[-k:])) if size else float("nan")
    sft = ev.get("eval_after_sft") or {}
    before = (ev.get("eval_before") or {}).get("accuracy", float("nan"))
    return dict(name=run.name, group=run.group, seed=run.seed, before=before,
                after_sft=sft.get("accuracy", float("nan")), after=ev["eval_after"]["accuracy"],
                area_after=ev["eval_after"].get("box_area_ratio", float("nan")),
                size_first=first, size_last=last, prior=ev.get("mean_click_accuracy"),
                time_s=sum(r.get("step_time", 0.0) for r in rows))


def table(results: list[dict]) -> str:
    lines = ["| group | run | held-out acc. before | after SFT | after | box size / GT (first 20% -> last 20% of GRPO) | train s |",
             "|---|---|---|---|---|---|---|"]
    f = lambda v: "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"  # noqa: E731
    for r in results:
        size = f"{f(r['size_first'])} -> {f(r['size_last'])}" if not np.isnan(r["size_first"]) else "-"
        lines.append(f"| {r['group']} | {r['name']} | {f(r['before'])} | {f(r['after_sft'])} | {f(r['after'])} | {size} | {r['time_s']:.0f} |")
    groups: dict[str, list[dict]] = {}
    for r in results:
        groups.setdefault(r["name"].rsplit(" seed", 1)[0].rstrip(","), []).append(r)
    lines += ["", "| variant | seeds | held-out accuracy after, mean (min-max) | box size / GT at the end, mean |", "|---|---|---|---|"]
    for name, rs in groups.items():
        a = [r["after"] for r in rs]
        lines.append(f"| {name} | {len(rs)} | {np.mean(a):.3f} ({min(a):.3f}-{max(a):.3f}) | {f(float(np.nanmean([r['size_last'] for r in rs])) if any(not np.isnan(r['size_last']) for r in rs) else float('nan'))} |")
    prior = next((r["prior"] for r in results if r.get("prior") is not None), None)
    if prior is not None:
        lines.append(f"\nAlways clicking the training targets' mean centre: {prior:.3f} held-out accuracy.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/ablations")
    ap.add_argument("--groups", default="demo,sft,grpo")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--grpo-steps", type=int, default=300)
    ap.add_argument("--jobs", type=int, default=1, help="runs at once (each gets cpu_count/jobs threads)")
    ap.add_argument("--table", action="store_true", help="only print the table of finished runs")
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    warm, runs = plan(out, [g.strip() for g in args.groups.split(",")], args.seeds, args.grpo_steps)
    threads = max(1, (os.cpu_count() or 1) // max(1, args.jobs))
    if not args.table:
        if warm is not None:
            print(f"running {warm.name} -> {warm.out}", flush=True)
            execute(warm, os.cpu_count() or 1)
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for run, _ in zip(runs, pool.map(lambda r: execute(r, threads), runs)):
                print(f"done: {run.name}", flush=True)
    done = [r for r in ([warm] if warm else []) + runs if (r.out / "eval.json").exists()]
    results = [summarize(r) for r in done]
    print(table(results))
    (out / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
