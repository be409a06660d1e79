"""Learning comparison: GRPO vs GRPO+SALT vs GiGPO on long-horizon sparse-reward tabular MDPs.

A tabular softmax policy over observations (``theta[o, a]``) is trained with the GRPO clipped
surrogate of :mod:`agents.grpo_loss` (token-mean aggregation, one "token" per step: the action)
using advantages from :mod:`agents.advantages`. Each iteration samples ``groups x G`` episodes of
one task with the env's dynamics (the vectorised sampler of :mod:`guienv.envs.mdp`, identical to
``guienv/MDP-v0``'s transition rule), takes ``epochs`` Adam steps on them, and records the exact
success probability ``J`` of the current policy (backward induction, no evaluation noise).

Reported: iterations until ``J >= target`` (capped at ``iters``; a run that never gets there
counts as the cap and is listed as not reached), mean and standard deviation over seeds, and the
final ``J``.

    python benchmarks/multiturn_learning.py                 # the table in BENCHMARKS.md
    python benchmarks/multiturn_learning.py --seeds 3 --iters 100   # quick look
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.advantages import GRPOAdvantageConfig, estimate  # noqa: E402
from agents.gigpo import GiGPOConfig  # noqa: E402
from agents.grpo_loss import GRPOLossConfig, grpo_loss  # noqa: E402
from agents.salt import SALTConfig  # noqa: E402
from agents.step_batch import StepBatch  # noqa: E402
from guienv.envs.mdp import episodes_to_arrays, evaluate_policy, sample_episodes, softmax  # noqa: E402
from tasks import mdp_specs  # noqa: E402

TASKS = {
    # 7 binary decisions, a wrong one traps the agent until the horizon: random success 1/128
    "chain7-trap": lambda: mdp_specs.chain(length=7, n_actions=2, dead_end="trap", horizon=9),
    # 6 decisions among 3, a wrong one restarts the corridor (loops), horizon 14
    "chain6-restart": lambda: mdp_specs.chain(length=6, n_actions=3, dead_end="restart", horizon=14),
    # 5 decisions, the advancing action slips 30% of the time (stochastic), dead ends terminate
    "chain5-slip": lambda: mdp_specs.chain(length=5, n_actions=3, dead_end="terminal", slip=0.3, horizon=10),
}
METHODS = {
    "GRPO": GRPOAdvantageConfig(),
    "GRPO+SALT(obs)": SALTConfig(identity="obs"),
    "GRPO+SALT(history)": SALTConfig(identity="history"),
    "GiGPO": GiGPOConfig(),
}


def train(spec, cfg, seed: int, iters: int, groups: int, G: int, lr: float, epochs: int, target: float,
          policy: str = "obs"):
    m = spec.arrays()
    rng = np.random.default_rng(seed)
    shape = ((m.horizon,) if policy == "time" else ()) + (m.n_obs, len(spec.actions))
    theta = torch.zeros(shape, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([theta], lr=lr)
    loss_cfg = GRPOLossConfig(eps_low=0.2, aggregation="token-mean")
    reached = None
    J = evaluate_policy(m, softmax(theta.detach().numpy())).J
    for it in range(1, iters + 1):
        pi = softmax(theta.detach().numpy())
        ep = sample_episodes(m, pi, groups * G, rng)
        cols = episodes_to_arrays(m, ep, G, cfg.identity)
        batch = StepBatch.from_arrays(*(cols[k] for k in ("group", "traj", "step", "reward", "state", "action", "next_state")))
        adv = torch.as_tensor(estimate(batch, cfg))
        idx = (torch.as_tensor(cols["obs"]), torch.as_tensor(cols["action"]))
        if policy == "time":
            idx = (torch.as_tensor(cols["t"]),) + idx
        old = torch.log_softmax(theta.detach(), -1)[idx].unsqueeze(1)
        mask = torch.ones_like(old)
        for _ in range(epochs):
            logp = torch.log_softmax(theta, -1)[idx].unsqueeze(1)
            loss, _ = grpo_loss(logp, old, adv, mask, loss_cfg)
            opt.zero_grad()
            loss.backward()
            opt.step()
        J = evaluate_policy(m, softmax(theta.detach().numpy())).J
        if reached is None and J >= target:
            reached = it
            break
    return reached, J


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--iters", type=int, default=300)
    ap.add_argument("--groups", type=int, default=8, help="groups (tasks) per iteration")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--target", type=float, default=0.9, help="success probability to reach")
    ap.add_argument("--tasks", nargs="*", default=list(TASKS))
    ap.add_argument("--policies", nargs="*", default=["obs", "time"],
                    help="obs: theta[o, a] (memoryless); time: theta[t, o, a] (step-indexed, a stand-in for a "
                         "policy that sees its history, as an LLM agent does)")
    args = ap.parse_args(argv)
    print(f"# iterations to reach J >= {args.target} (cap {args.iters}); {args.groups} groups x {args.group_size} "
          f"trajectories per iteration, {args.epochs} Adam steps (lr {args.lr}), {args.seeds} seeds")
    print("| task | policy | method | iterations mean ± std | median | reached | final J mean |")
    print("|---|---|---|---|---|---|---|")
    t0 = time.time()
    runs = [(task, policy, name) for task in args.tasks for policy in args.policies for name in METHODS]
    for task, policy, name in runs:
        spec, cfg = TASKS[task](), METHODS[name]
        its, finals, ok = [], [], 0
        for s in range(args.seeds):
            reached, J = train(spec, cfg, 1000 * s + 17, args.iters, args.groups, args.group_size, args.lr,
                               args.epochs, args.target, policy)
            its.append(reached if reached is not None else args.iters)
            ok += reached is not None
            finals.append(J)
        its = np.array(its, dtype=float)
        print(f"| {task} | {policy} | {name} | {its.mean():.1f} ± {its.std(ddof=1) if len(its) > 1 else 0:.1f} | "
              f"{np.median(its):.0f} | {ok}/{args.seeds} | {np.mean(finals):.3f} |", flush=True)
    print(f"# {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
