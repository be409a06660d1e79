"""Learning proof of multi-turn RL: the tiny VL model on SynthApp app tasks (2-4 actions) on the CPU.

For every seed: one SFT warm-up on the app oracle's demonstrations (``guienv train`` with
``train.steps=0``), then RL runs that start from the warmed-up model, one per variant, each a
plain ``guienv train`` of ``configs/multiturn_synthapp.yaml`` with ``--set`` overrides:

* the estimator: GRPO (outcome advantage on every turn), SALT (obs identity), GiGPO;
* the curriculum: the staged trajectory-length curriculum against random order (with SALT).

Reported per variant: held-out success before training (the random-init model), after the warm-up
and after RL (mean, min-max over seeds), and RL's gain over the warm-up. Writes
``benchmarks/results/multiturn_synthapp.json`` and prints a Markdown table.

    python benchmarks/multiturn_synthapp.py                       # 3 seeds (the BENCHMARKS.md table)
    python benchmarks/multiturn_synthapp.py --seeds 1 --sft-steps 100 --rl-steps 2 --eval-size 8   # smoke
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "multiturn_synthapp.yaml"
VARIANTS = {
    "GRPO": ["multiturn.advantage={name: grpo}"],
    "SALT": ["multiturn.advantage={name: salt, identity: obs}"],
    "GiGPO": ["multiturn.advantage={name: gigpo}"],
    "SALT, random order": ["multiturn.advantage={name: salt, identity: obs}", "curriculum.mode=random"],
}


def run(out: Path, sets: list[str], log: Path) -> dict:
    cmd = [sys.executable, "-m", "guienv.run.train", "--config", str(CONFIG), "--out", str(out), "--no-resume"]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    with log.open("w") as f:
        subprocess.run(cmd, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, check=True)
    summary = json.loads((out / "eval.json").read_text())
    summary["wall_s"] = time.perf_counter() - t0
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1 (run seeds in parallel)")
    p.add_argument("--sft-steps", type=int, default=1500)
    p.add_argument("--rl-steps", type=int, default=40)
    p.add_argument("--train-size", type=int, default=256)
    p.add_argument("--eval-size", type=int, default=48)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS))
    p.add_argument("--rl-lr", type=float, default=3e-4)
    p.add_argument("--rl-set", action="append", default=[], metavar="KEY=VALUE", help="more overrides of the RL runs")
    p.add_argument("--reuse-warm", action="store_true", help="start from an earlier run's warm-up in --work")
    p.add_argument("--work", default=str(REPO / "runs" / "bench-multiturn"))
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "multiturn_synthapp.json"))
    a = p.parse_args(argv)
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    common = [f"data.train_size={a.train_size}", f"data.eval_size={a.eval_size}", "train.progress=false",
              "train.tensorboard=false"]
    results: dict = {"config": str(CONFIG.relative_to(REPO)), "sft_steps": a.sft_steps, "rl_steps": a.rl_steps,
                     "rl_lr": a.rl_lr, "rl_set": a.rl_set,
                     "train_size": a.train_size, "eval_size": a.eval_size, "seeds": {}}
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        sd = [f"train.seed={seed}", f"data.seed={seed}"]
        warm_dir = work / f"warm-{seed}"
        if a.reuse_warm and (warm_dir / "eval.json").exists():
            warm = {**json.loads((warm_dir / "eval.json").read_text()), "wall_s": float("nan")}
        else:
            warm = run(warm_dir, common + sd + [f"sft.steps={a.sft_steps}", "train.steps=0"], work / f"warm-{seed}.log")
        # RL starts from the warmed-up weights: the warm-up's final/ folder is an ordinary model folder.
        rec = {"before": warm["eval_before"]["success"], "after_sft": warm["eval_after"]["success"],
               "warm_wall_s": warm["wall_s"], "variants": {}}
        print(f"seed {seed}: before {rec['before']:.3f}, after the warm-up {rec['after_sft']:.3f} ({warm['wall_s']:.0f} s)",
              flush=True)
        for name in a.variants:
            tag = name.lower().replace(", ", "-").replace(" ", "-")
            out = work / f"{tag}-{seed}"
            s = run(out, common + sd + VARIANTS[name] + [f"model.path={warm_dir / 'final'}", "sft.steps=0",
                                                        f"train.steps={a.rl_steps}", f"grpo.lr={a.rl_lr}", "train.eval_before=false", *a.rl_set],
                    work / f"{tag}-{seed}.log")
            rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
            rec["variants"][name] = {"after": s["eval_after"]["success"], "wall_s": s["wall_s"],
                                     "train_success_first": rows[0]["success_rate"] if rows else None,
                                     "train_success_last": rows[-1]["success_rate"] if rows else None,
                                     "stages": max((r.get("stage", 0) for r in rows), default=0)}
            print(f"  {name}: after RL {s['eval_after']['success']:.3f} ({s['wall_s']:.0f} s)", flush=True)
        results["seeds"][seed] = rec
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(results, indent=2))
    print(table(results))
    return 0


def table(results: dict) -> str:
    seeds = list(results["seeds"].values())
    fmt = lambda xs: f"{sum(xs) / len(xs):.3f} ({min(xs):.3f}-{max(xs):.3f})"  # noqa: E731
    lines = ["| variant | before | after warm-up | after RL | RL gain over warm-up |", "|---|---|---|---|---|"]
    names = list(seeds[0]["variants"]) if seeds else []
    for name in names:
        after = [s["variants"][name]["after"] for s in seeds]
        gain = [s["variants"][name]["after"] - s["after_sft"] for s in seeds]
        lines.append(f"| {name} | {fmt([s['before'] for s in seeds])} | {fmt([s['after_sft'] for s in seeds])} | "
                     f"{fmt(after)} | {fmt(gain)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
