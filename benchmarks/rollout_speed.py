"""Multi-turn rollout throughput: lockstep batched generation against one trajectory at a time.

The rollout engine (:class:`agents.multiturn.RolloutEngine`) plays P tasks x G trajectories in
lockstep and samples every live trajectory's turn in ONE batched ``generate`` call, as verl-agent
does (repository ``langfengQ/verl-agent``, ``agent_system/multi_turn_rollout/rollout_loop.py``,
the GiGPO paper, Feng et al., arXiv 2505.10978, section 4). This measures what that buys against
playing the same trajectories one at a time:

* **batched**: ``RolloutEngine.run(tasks, G)`` with ``P * G`` slots (default 4 x 8 = 32 live
  trajectories);
* **sequential**: the same ``P * G`` (task, member) trajectories, each ``RolloutEngine.run([task], 1)``
  through the same engine class with a 1-slot pool: same policy, ``max_turns``, temperature,
  ``top_p`` and ``max_new_tokens``.

The two modes alternate (batched, sequential, batched, ...) ``--repeats`` times in one run, so
machine load hits both alike; reported per mode: env steps/s (steps actually taken, counted from
the rollout), completion tokens/s, and the time split generation / env / prompt of
:attr:`agents.multiturn.MultiTurnRollout.times`; the speed-up is the ratio of the medians, with
the per-repeat ratios' min and max as the spread, and the same ratio on this process's CPU time
(less sensitive to other jobs sharing the cores).

Two setups (both real: ``from_pretrained`` models, real envs):

* ``mdp-text``: the tiny random-init Qwen2 text policy (:func:`agents.tiny_model.build_tiny_text_model`)
  on ``guienv/MDP-v0`` rendered as text (template ``text``), a trap chain longer than the
  horizon, so every trajectory takes exactly ``max_turns`` steps (no early termination);
* ``synthapp-vl``: the tiny random-init Qwen2.5-VL (:func:`agents.tiny_model.build_tiny_model`)
  on SynthApp app tasks (template ``synthapp``, inline pool); episodes may end early (a
  ``finish`` action), so steps are counted.

    python benchmarks/rollout_speed.py                 # writes benchmarks/results/rollout_speed.json
    python benchmarks/rollout_speed.py --smoke --out /tmp/r.json   # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.env_pool import EnvSpec, make_pool  # noqa: E402
from agents.multiturn import EpisodeTask, MultiTurnConfig, MultiTurnRollout, RolloutEngine, rollout_stats  # noqa: E402
from guienv.history import HistoryConfig  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SYNTH = {"width": 224, "height": 392}
MAX_PIXELS = 16 * 28 * 28


def text_setup(work: Path, max_turns: int, model: str | None):
    from agents.text_policy import load_text_policy
    from agents.tiny_model import build_tiny_text_model

    pol = load_text_policy(model or build_tiny_text_model(work / "tiny-text"), device="cpu", dtype="float32")
    # a trap corridor longer than the horizon: the goal is out of reach, every episode runs max_turns steps
    spec = EnvSpec("guienv/MDP-v0", {"spec": "chain", "length": max_turns + 2, "n_actions": 3, "dead_end": "trap",
                                     "horizon": max_turns})
    return pol, spec, "text", lambda i: EpisodeTask(i, i, None, max_turns)


def vl_setup(work: Path, max_turns: int, model: str | None):
    from agents.policy import Policy
    from agents.qwen import QwenAgent, QwenAgentConfig
    from agents.tiny_model import build_tiny_model

    path = model or build_tiny_model(work / "tiny-vl")
    pol = Policy(QwenAgent(QwenAgentConfig(model=str(path), template="synthapp", max_pixels=MAX_PIXELS,
                                           dtype="float32", image_backend="pil", device="cpu")))
    spec = EnvSpec("guienv/SynthApp-v0", {"mode": "app", "config": SYNTH})
    k = max(1, max_turns // 2)
    return pol, spec, "synthapp", lambda i: EpisodeTask(i, i, {"index": i, "task_seed": 0, "steps": k}, k)


SETUPS = {"mdp-text": text_setup, "synthapp-vl": vl_setup}


def _measure(engine_of, tasks, G, batched: bool, sampling: dict) -> dict:
    """One pass over the P x G trajectories; returns counts and times."""
    t0, c0 = time.perf_counter(), time.process_time()
    if batched:
        ro = engine_of(len(tasks) * G).run(tasks, G, **sampling)
    else:
        engine = engine_of(1)
        parts = [engine.run([task], 1, **sampling) for task in tasks for _ in range(G)]
        ro = MultiTurnRollout.concat(parts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    st = rollout_stats(ro)
    if st["failed"]:
        raise RuntimeError(f"{int(st['failed'])} trajectories failed: {ro.failures}")
    return {"wall_s": wall, "cpu_s": cpu, "steps_per_cpu_s": st["turns"] / cpu, "steps": int(st["turns"]), "completion_tokens": int(st["completion_tokens"]),
            "steps_per_s": st["turns"] / wall, "tokens_per_s": st["completion_tokens"] / wall,
            "times": {k: round(v, 4) for k, v in ro.times.items()}}


def bench(name: str, args, work: Path) -> dict:
    model = args.text_model if name == "mdp-text" else args.vl_model
    pol, spec, template, task_of = SETUPS[name](work, args.max_turns, model)
    cfg = MultiTurnConfig(max_turns=args.max_turns, pool="inline", template=template,
                          history=HistoryConfig(observations=2, actions=4))
    tasks = [task_of(i) for i in range(args.tasks)]
    sampling = {"temperature": args.temperature, "top_p": args.top_p, "max_new_tokens": args.max_new_tokens}
    pools = {}

    def engine_of(size: int) -> RolloutEngine:
        if size not in pools:
            pools[size] = make_pool(spec, size, "inline")
        return RolloutEngine(pol, pools[size], cfg, template)

    settings = {"policy": type(pol).__name__, "model_params": sum(p.numel() for p in pol.model.parameters()),
                "env": spec.id, "env_kwargs": dict(spec.kwargs), "template": template, "tasks": args.tasks,
                "group_size": args.group_size, "live_trajectories": args.tasks * args.group_size,
                "max_turns": args.max_turns, "history": cfg.history.__dict__, **sampling, "pool": "inline",
                "batched": f"RolloutEngine.run(tasks, {args.group_size}) on a {args.tasks * args.group_size}-slot pool",
                "sequential": f"{args.tasks * args.group_size} x RolloutEngine.run([task], 1) on a 1-slot pool"}
    print(f"## {name}: {json.dumps(settings)}", flush=True)
    try:
        _measure(engine_of, tasks[:1], 1, True, sampling)  # warm-up: first generate call, lazy imports
        runs: dict[str, list[dict]] = {"batched": [], "sequential": []}
        for r in range(args.repeats):
            for mode in ("batched", "sequential"):
                torch.manual_seed(1000 * r + 7)
                res = _measure(engine_of, tasks, args.group_size, mode == "batched", sampling)
                runs[mode].append(res)
                print(f"  repeat {r} {mode:10s} {res['steps']} steps {res['completion_tokens']} tokens in "
                      f"{res['wall_s']:.2f} s ({res['cpu_s']:.2f} s CPU): {res['steps_per_s']:.1f} steps/s, "
                      f"times {res['times']}", flush=True)
    finally:
        for p in pools.values():
            p.close()
    out = {"settings": settings, "runs": runs}
    for mode, rs in runs.items():
        out[mode] = {"steps_per_s_median": statistics.median(x["steps_per_s"] for x in rs),
                     "tokens_per_s_median": statistics.median(x["tokens_per_s"] for x in rs),
                     "steps_median": statistics.median(x["steps"] for x in rs),
                     "time_split": {k: statistics.median(x["times"][k] / x["wall_s"] for x in rs)
                                    for k in rs[0]["times"]}}
    ratios = [b["steps_per_s"] / s["steps_per_s"] for b, s in zip(runs["batched"], runs["sequential"])]
    out["speedup_median"] = out["batched"]["steps_per_s_median"] / out["sequential"]["steps_per_s_median"]
    out["speedup_per_repeat"] = ratios
    out["speedup_median_of_ratios"] = statistics.median(ratios)
    # CPU time of this process (all its threads): less sensitive to other jobs on the machine than
    # wall time, though not immune (shared caches, oversubscribed cores)
    cpu_ratios = [b["steps_per_cpu_s"] / s["steps_per_cpu_s"] for b, s in zip(runs["batched"], runs["sequential"])]
    out["speedup_cpu_median"] = statistics.median(cpu_ratios)
    out["speedup_cpu_per_repeat"] = cpu_ratios
    out["speedup_min"], out["speedup_max"] = min(ratios), max(ratios)
    print(f"  => speed-up {out['speedup_median']:.2f}x wall (per repeat {min(ratios):.2f}..{max(ratios):.2f}), "
          f"{out['speedup_cpu_median']:.2f}x CPU time (per repeat {min(cpu_ratios):.2f}..{max(cpu_ratios):.2f})", flush=True)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setups", nargs="*", default=list(SETUPS), choices=list(SETUPS))
    ap.add_argument("--tasks", type=int, default=4, help="P")
    ap.add_argument("--group-size", type=int, default=8, help="G (P x G live trajectories)")
    ap.add_argument("--max-turns", type=int, default=6)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--text-model", help="a saved tiny text model folder (default: build one)")
    ap.add_argument("--vl-model", help="a saved tiny VL model folder (default: build one)")
    ap.add_argument("--smoke", action="store_true", help="2 x 2 trajectories, 2 turns, 1 repeat (seconds)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "rollout_speed.json"))
    args = ap.parse_args(argv)
    if args.smoke:
        args.tasks, args.group_size, args.max_turns, args.max_new_tokens, args.repeats = 2, 2, 2, 4, 1
    t0 = time.time()
    result = {"benchmark": "rollout_speed", "smoke": args.smoke,
              "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                          "python": platform.python_version(), "torch": torch.__version__},
              "setups": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.setups:
            result["setups"][name] = bench(name, args, Path(tmp))
    result["wall_s"] = time.time() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"# wrote {args.out} ({result['wall_s']:.0f} s)")
    return result


if __name__ == "__main__":
    main()
