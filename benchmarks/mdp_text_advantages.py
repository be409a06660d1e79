"""Step-advantage estimators on a real language model's rollouts, against exact advantages.

A text policy (the tiny ``from_pretrained`` Qwen2 of :func:`agents.tiny_model.build_tiny_text_model`,
after a short SFT on ``<action>name</action>`` answers drawn from a per-observation mixture so its
distribution is valid-heavy but not deterministic) acts in ``guienv/MDP-v0`` rendered as text
(template ``text``) through the real :class:`agents.multiturn.RolloutEngine`. The prompt shows no
history (``history.observations = 0``, no invalid-action feedback), so it depends on the step index
``t`` and the observation ``o`` only, and the LM *is* a step-indexed tabular policy
``pi[t, o, a]`` of the kind :func:`guienv.envs.mdp.evaluate_policy` solves exactly (checked: every
prompt the engine builds is token-for-token one of the table's prompts).

**The policy table.** For every ``(t, o)`` the probability of action ``a`` is the teacher-forced
probability (:meth:`agents.policy.Policy.token_logprobs`, temperature 1, the sampling
distribution at ``top_p = 1``) that the completion *starts with* the tokens of
``<action>a</action>`` (whatever follows, the env reads the last tag: the same action unless a
second tag follows). The rest of the mass is "invalid", which in ``MDPEnv`` is a no-op (state
unchanged, reward 0, the step counts), i.e. an extra action with a self-loop in every state. What
this misses (a valid completion that does not start with the canonical tokens: a bare ``a0``, a
non-canonical tokenisation, a later tag overriding) is counted on the samples and reported
(``unmodelled_rate``); it is 0 or near it after the SFT.

**Exact advantages** of the effective MDP (the spec plus the no-op action) by backward induction
(:func:`guienv.envs.mdp.evaluate_policy`, finite horizon, undiscounted): for each sampled step at
``(t, s, a)`` (``a`` the effective action, the no-op included)

* step target ``A_t(s, a) = Q_t(s, a) - V_t(s)`` (what SALT and GiGPO aim at);
* trajectory target ``(1 - 1/G) (r_{<t} + Q_t(s, a) - J)``: the conditional mean of GRPO's
  ``R_i - mean_j R_j`` (Shao et al., arXiv 2402.03300, eq. 3, outcome supervision, no std
  division) given the step, the group mean including the trajectory itself (hence ``1 - 1/G``;
  the env is deterministic, so the group's shared seed does not correlate its members).

GRPO is unbiased for the trajectory target and SALT/GiGPO are compared on the step target; every
estimator is scored against both, with the least-squares slope and the correlation of the
estimate on the step target (a scale-free view: GiGPO adds an episode term to a step term,
Feng et al., arXiv 2505.10978, eq. 7, with ``gamma = 0.95`` discounting; SALT averages trajectory
advantages over a transition's trajectories, Li et al., arXiv 2510.20022, section 3).
Reported per estimator: bias (mean of estimate - target) and MSE over all sampled steps, mean and
spread over seeds.

    python benchmarks/mdp_text_advantages.py          # writes benchmarks/results/mdp_text_advantages.json
    python benchmarks/mdp_text_advantages.py --smoke --out /tmp/m.json   # seconds
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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.advantages import GRPOAdvantageConfig, estimate  # noqa: E402
from agents.env_pool import EnvSpec, make_pool  # noqa: E402
from agents.experts import Demonstration  # noqa: E402
from agents.gigpo import GiGPOConfig  # noqa: E402
from agents.multiturn import EpisodeTask, MultiTurnConfig, RolloutEngine  # noqa: E402
from agents.salt import SALTConfig  # noqa: E402
from agents.sft import DemoSFTTrainer, SFTConfig  # noqa: E402
from guienv.envs.mdp import evaluate_policy  # noqa: E402
from guienv.history import HistoryConfig  # noqa: E402
from tasks import mdp_specs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ESTIMATORS = {
    "GRPO": GRPOAdvantageConfig(),
    "SALT(obs)": SALTConfig(identity="obs"),
    "SALT(history)": SALTConfig(identity="history"),
    "GiGPO": GiGPOConfig(),
}
INVALID_ANSWER = "<action>wait</action>"  # SFT's invalid answer: not an action of the spec


def make_spec(length: int, horizon: int) -> mdp_specs.MDPSpec:
    # a 2-action trap chain: a1 traps the agent, a0 advances; deterministic
    return mdp_specs.chain(length=length, n_actions=2, dead_end="trap", horizon=horizon)


def with_noop(spec: mdp_specs.MDPSpec) -> mdp_specs.MDPSpec:
    """The spec plus an action no state lists: a self-loop with reward 0 (MDPEnv's invalid step)."""
    return mdp_specs.MDPSpec(spec.name, spec.actions + ("<invalid>",), spec.states, spec.start, spec.horizon,
                             spec.where)


def table_prompts(engine: RolloutEngine, spec: mdp_specs.MDPSpec) -> dict[tuple[int, int], object]:
    """The engine's prompt of every (step, observation): the text view History builds without history."""
    out = {}
    for t in range(spec.horizon):
        for oi, o in enumerate(spec.observations):
            view = {"observation": o, "task": spec.name, "admissible_commands": list(spec.actions), "history": [],
                    "step": t}
            out[(t, oi)] = engine.prompt(view)
    return out


def policy_table(pol, prompts: dict, spec: mdp_specs.MDPSpec) -> tuple[np.ndarray, list[list[int]]]:
    """``pi[t, o, a]`` over the spec's actions plus the no-op (last column), and each action's prefix ids."""
    prefixes = [pol.tokenizer(f"<action>{a}</action>", add_special_tokens=False)["input_ids"] for a in spec.actions]
    keys = list(prompts)
    rows_p = [prompts[k] for k in keys for _ in prefixes]
    rows_c = [p for _ in keys for p in prefixes]
    with torch.no_grad():
        logp, mask = pol.token_logprobs(pol.model, rows_p, rows_c, 1.0)
    mass = torch.exp((logp * mask).sum(1)).reshape(len(keys), len(prefixes)).double().numpy()
    pi = np.zeros((spec.horizon, len(spec.observations), len(spec.actions) + 1))
    for k, m in zip(keys, mass):
        pi[k[0], k[1], :-1] = m
        pi[k[0], k[1], -1] = max(0.0, 1.0 - m.sum())
    return pi, prefixes


def sft(pol, prompts: dict, spec: mdp_specs.MDPSpec, steps: int, seed: int, batch: int = 16, lr: float = 3e-3) -> dict:
    """A short SFT on answers drawn from a per-observation mixture of the actions and an invalid one."""
    rng = np.random.default_rng(seed)
    answers = [f"<action>{a}</action>" for a in spec.actions] + [INVALID_ANSWER]
    # around 55% advance, 25% trap, 20% invalid, varied per observation
    mix = rng.dirichlet(20.0 * np.array([0.55, 0.25, 0.2]), size=len(spec.observations))
    demos = []
    for (_t, oi), p in prompts.items():
        for _ in range(16):
            demos.append(Demonstration(p, answers[int(rng.choice(len(answers), p=mix[oi]))], oi))
    torch.manual_seed(seed)
    trainer = DemoSFTTrainer(pol, SFTConfig(batch_size=batch, micro_batch_size=batch), demos,
                             torch.optim.AdamW(pol.model.parameters(), lr=lr))
    row = {}
    for _ in range(steps):
        row = trainer.step(lambda n: [int(i) for i in rng.integers(0, len(demos), n)])
    pol.model.eval()
    return {"steps": steps, "batch": batch, "lr": lr, "final_loss": row.get("sft_loss"), "target_mixture": mix.round(3).tolist()}


def exact_targets(ro, spec, ex, prefixes, prompts, G: int) -> dict[str, np.ndarray]:
    """Per sampled step (group -> trajectory -> step order, as ``estimate`` flattens): the exact
    targets, and the checks (prompt in the table, action read from the prefix)."""
    sidx = {n: i for i, n in enumerate(spec.state_names)}
    aidx = {a: i for i, a in enumerate(spec.actions)}
    noop = len(spec.actions)
    by_ids = {tuple(p.ids.tolist()): k for k, p in prompts.items()}
    step_t, traj_t, cells, unmodelled = [], [], [], 0
    n = 0
    for grp, turns in zip(ro.groups, ro.turns):
        for traj, tt in zip(grp.trajectories, turns):
            past = 0.0
            for rec, turn in zip(traj.steps, tt):
                t = rec.step
                s = sidx[rec.state_key]
                key = by_ids.get(tuple(turn.prompt.ids.tolist()))
                if key is None or key[0] != t or spec.observations[key[1]] != spec.states[s].observation:
                    raise AssertionError(f"step {t}: the engine's prompt is not the table's prompt of ({t}, "
                                         f"{spec.states[s].observation!r})")
                a = aidx[rec.info["action"]] if rec.valid else noop
                comp = list(turn.completion)
                modelled = next((i for i, p in enumerate(prefixes) if comp[:len(p)] == p), noop)
                unmodelled += modelled != a
                cells.append((t * len(spec.states) + s) * (noop + 1) + a)
                step_t.append(ex.Q[t, s, a] - ex.V[t, s])
                traj_t.append((1 - 1 / G) * (past + ex.Q[t, s, a] - ex.J))
                past += rec.reward
                n += 1
    return {"step": np.array(step_t), "trajectory": np.array(traj_t), "cell": np.array(cells), "unmodelled": unmodelled,
            "n": n}


def score(est: np.ndarray, target: np.ndarray) -> dict[str, float]:
    d = est - target
    return {"bias": float(d.mean()), "mse": float((d ** 2).mean())}


def decompose(est: np.ndarray, target: np.ndarray, cell: np.ndarray) -> dict[str, float]:
    """MSE = squared bias per (t, s, a) cell, weighted by the cell's share of steps, + the rest
    (variance). The pooled bias of :func:`score` lets opposite biases of cells cancel; this does
    not (a cell seen n times carries var/n of noise in its bias term)."""
    d = est - target
    _, inv, counts = np.unique(cell, return_inverse=True, return_counts=True)
    means = np.bincount(inv, d) / counts
    bias2 = float((counts * means ** 2).sum() / len(d))
    mse = float((d ** 2).mean())
    return {"mse": mse, "cell_bias2": bias2, "variance": mse - bias2, "cells": int(len(counts))}


def run_seed(pol, engine, spec, aug, pi, prefixes, prompts, args, seed: int) -> dict:
    ex = evaluate_policy(aug, pi)
    torch.manual_seed(seed)
    tasks = [EpisodeTask(i, seed * 1000 + i, None, spec.horizon) for i in range(args.tasks)]
    ro = engine.run(tasks, args.group_size, temperature=1.0, top_p=1.0, max_new_tokens=args.max_new_tokens)
    if any(f is not None for fs in ro.failures for f in fs):
        raise RuntimeError(f"failed trajectories: {ro.failures}")
    tg = exact_targets(ro, spec, ex, prefixes, prompts, args.group_size)
    out = {"steps": tg["n"], "unmodelled_rate": tg["unmodelled"] / max(1, tg["n"]),
           "invalid_rate": float(np.mean([not s.valid for g in ro.groups for t in g.trajectories for s in t.steps])),
           "success_rate": float(np.mean([x for s in ro.successes for x in s])), "estimators": {}}
    for name, cfg in ESTIMATORS.items():
        a = estimate(ro.groups, cfg)
        row = {f"{k}_vs_step": v for k, v in score(a, tg["step"]).items()}
        row.update({f"{k}_vs_trajectory": v for k, v in score(a, tg["trajectory"]).items()})
        x = tg["step"]
        row["slope_on_step"] = float(np.dot(x - x.mean(), a - a.mean()) / max(1e-12, np.dot(x - x.mean(), x - x.mean())))
        row["corr_step"] = float(np.corrcoef(a, x)[0, 1]) if a.std() > 0 and x.std() > 0 else float("nan")
        out["estimators"][name] = row
        out.setdefault("_rows", {"step": tg["step"], "trajectory": tg["trajectory"], "cell": tg["cell"]})[name] = a
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--length", type=int, default=3, help="chain length (decisions to the goal)")
    ap.add_argument("--horizon", type=int, default=5)
    ap.add_argument("--sft-steps", type=int, default=60)
    ap.add_argument("--sft-batch", type=int, default=16)
    ap.add_argument("--sft-lr", type=float, default=3e-3)
    ap.add_argument("--tasks", type=int, default=16, help="groups per seed")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=12)
    ap.add_argument("--model", help="a saved tiny text model folder (default: build one; SFT runs on it in memory)")
    ap.add_argument("--smoke", action="store_true", help="tiny run (seconds)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "mdp_text_advantages.json"))
    args = ap.parse_args(argv)
    if args.smoke:
        (args.sft_steps, args.sft_batch, args.sft_lr, args.tasks, args.group_size, args.seeds,
         args.horizon) = 20, 16, 3e-3, 2, 4, 2, 3
    from agents.text_policy import load_text_policy
    from agents.tiny_model import build_tiny_text_model

    t0 = time.time()
    spec = make_spec(args.length, args.horizon)
    aug = with_noop(spec)
    env = EnvSpec("guienv/MDP-v0", {"spec": "chain", "length": args.length, "n_actions": 2, "dead_end": "trap",
                                    "horizon": args.horizon})
    cfg = MultiTurnConfig(max_turns=args.horizon, pool="inline", template="text",
                          history=HistoryConfig(observations=0, feedback=False))
    with tempfile.TemporaryDirectory() as tmp:
        pol = load_text_policy(args.model or build_tiny_text_model(Path(tmp) / "tiny-text"), device="cpu", dtype="float32")
    with make_pool(env, args.tasks * args.group_size, "inline") as pool:
        engine = RolloutEngine(pol, pool, cfg, "text")
        prompts = table_prompts(engine, spec)
        sft_info = sft(pol, prompts, spec, args.sft_steps, seed=0, batch=args.sft_batch, lr=args.sft_lr)
        pi, prefixes = policy_table(pol, prompts, spec)
        ex = evaluate_policy(aug, pi)
        print(f"# {spec.name}, horizon {spec.horizon}, actions {spec.actions} + no-op; SFT {args.sft_steps} steps "
              f"(loss {sft_info['final_loss']:.3f}); J = {ex.J:.4f}; pi[0, c0] = {pi[0, 0].round(3).tolist()}",
              flush=True)
        seeds = [run_seed(pol, engine, spec, aug, pi, prefixes, prompts, args, s) for s in range(args.seeds)]
    # cell-wise bias/variance split on all seeds' steps pooled (cells are visited too rarely per seed)
    pooled = {k: np.concatenate([s["_rows"][k] for s in seeds]) for k in seeds[0]["_rows"]}
    for s in seeds:
        del s["_rows"]
    decomposition = {name: {target: decompose(pooled[name], pooled[target], pooled["cell"])
                            for target in ("step", "trajectory")} for name in ESTIMATORS}
    summary = {}
    for name in ESTIMATORS:
        summary[name] = {}
        for k in seeds[0]["estimators"][name]:
            vals = [s["estimators"][name][k] for s in seeds]
            summary[name][k] = {"mean": float(np.nanmean(vals)), "std": float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else 0.0}
    result = {
        "benchmark": "mdp_text_advantages", "smoke": args.smoke,
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "torch": torch.__version__},
        "settings": {"spec": spec.name, "horizon": spec.horizon, "actions": list(spec.actions), "tasks": args.tasks,
                     "group_size": args.group_size, "seeds": args.seeds, "max_new_tokens": args.max_new_tokens,
                     "temperature": 1.0, "top_p": 1.0, "history": "observations=0, feedback=False", "sft": sft_info},
        "exact": {"J": ex.J, "pi": pi.round(4).tolist()},
        "steps_per_seed": statistics.fmean(s["steps"] for s in seeds),
        "unmodelled_rate": statistics.fmean(s["unmodelled_rate"] for s in seeds),
        "invalid_rate": statistics.fmean(s["invalid_rate"] for s in seeds),
        "success_rate": statistics.fmean(s["success_rate"] for s in seeds),
        "estimators": summary, "decomposition": decomposition, "per_seed": seeds, "wall_s": time.time() - t0,
    }
    print("| estimator | bias vs step A | MSE vs step A | bias vs traj. target | MSE vs traj. target | slope on step A | corr |")
    print("|---|---|---|---|---|---|---|")
    for name, r in summary.items():
        print(f"| {name} | {r['bias_vs_step']['mean']:+.4f} ± {r['bias_vs_step']['std']:.4f} | "
              f"{r['mse_vs_step']['mean']:.4f} | {r['bias_vs_trajectory']['mean']:+.4f} ± "
              f"{r['bias_vs_trajectory']['std']:.4f} | {r['mse_vs_trajectory']['mean']:.4f} | "
              f"{r['slope_on_step']['mean']:.3f} | {r['corr_step']['mean']:.3f} |")
    print("| estimator | target | MSE | cell bias^2 | variance |")
    print("|---|---|---|---|---|")
    for name, r in decomposition.items():
        for target, x in r.items():
            print(f"| {name} | {target} | {x['mse']:.4f} | {x['cell_bias2']:.4f} | {x['variance']:.4f} |")
    print(f"# unmodelled rate {result['unmodelled_rate']:.4f}, invalid rate {result['invalid_rate']:.3f}, "
          f"success {result['success_rate']:.3f}, {result['wall_s']:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"# wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
