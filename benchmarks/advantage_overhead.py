"""Advantage-computation overhead: 16 groups x 8 trajectories x 50 steps (6,400 steps).

Measured (median of repeats, CPU, this machine):

* each estimator on a ready :class:`agents.step_batch.StepBatch` (integer codes);
* the whole pipeline from :class:`agents.rollout.Group` records (hashing observation text into
  state identities, building the batch, estimating);

against a **reference training step**: forward + backward of the GRPO loss
(:func:`agents.grpo_loss.grpo_loss`) for a small causal transformer (2 layers, d_model 128, 4
heads, vocabulary 4,096) over the same 6,400 steps with ``--tokens`` completion tokens each,
prompt context of ``--context`` tokens per step, in micro-batches. This is a deliberately tiny
stand-in: a real VLM step on 6,400 steps costs orders of magnitude more, so the ratio printed is an
upper bound for real training. Target: overhead < 1% of the step.

    python benchmarks/advantage_overhead.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.advantages import GRPOAdvantageConfig, estimate  # noqa: E402
from agents.gigpo import GiGPOConfig  # noqa: E402
from agents.grpo_loss import GRPOLossConfig, grpo_loss  # noqa: E402
from agents.rollout import Group, RolloutStep, Trajectory, observation_key  # noqa: E402
from agents.salt import SALTConfig  # noqa: E402
from agents.step_batch import StepBatch  # noqa: E402

CONFIGS = {
    "GRPO": GRPOAdvantageConfig(),
    "SALT(obs)": SALTConfig(identity="obs"),
    "SALT(history)": SALTConfig(identity="history"),
    "GiGPO": GiGPOConfig(),
}


def make_groups(n_groups: int, G: int, T: int, rng: np.random.Generator) -> list[Group]:
    """Text observations (~600 characters, from a pool of 40 screens per task so paths re-merge),
    5 actions, sparse final reward."""
    groups = []
    for g in range(n_groups):
        screens = [f"task {g} screen {k}: " + "lorem ipsum dolor sit amet " * 22 for k in range(40)]
        trajs = []
        for j in range(G):
            obs_i = rng.integers(40, size=T + 1)
            obs_i[0] = 0
            steps = []
            for t in range(T):
                o, no = screens[obs_i[t]], screens[obs_i[t + 1]]
                k, nk = observation_key(o), observation_key(no)
                last = t == T - 1
                steps.append(RolloutStep(g, j, t, o, k, k, f"click[{rng.integers(5)}]",
                                        float(rng.random() < 0.3) if last else 0.0, last, False, True, nk, nk))
            trajs.append(Trajectory(g, j, steps, screens[obs_i[-1]]))
        groups.append(Group(g, trajs))
    return groups


def timeit(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


class TinyLM(torch.nn.Module):
    def __init__(self, vocab: int = 4096, d: int = 128, layers: int = 2, heads: int = 4):
        super().__init__()
        self.emb = torch.nn.Embedding(vocab, d)
        layer = torch.nn.TransformerEncoderLayer(d, heads, 4 * d, batch_first=True, dropout=0.0)
        self.body = torch.nn.TransformerEncoder(layer, layers)
        self.head = torch.nn.Linear(d, vocab)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        n = ids.shape[1]
        causal = torch.triu(torch.full((n, n), float("-inf")), 1)
        return self.head(self.body(self.emb(ids), mask=causal))


def reference_step(n_seq: int, tokens: int, context: int, micro: int, device: str) -> float:
    torch.manual_seed(0)
    model = TinyLM().to(device)
    ids = torch.randint(0, 4096, (n_seq, context + tokens), device=device)
    adv = torch.randn(n_seq, device=device)
    cfg = GRPOLossConfig(aggregation="constant", max_completion_length=tokens)

    def step():
        model.zero_grad(set_to_none=True)
        for i in range(0, n_seq, micro):
            x = ids[i:i + micro]
            logits = model(x[:, :-1])[:, context - 1:]
            logp = torch.log_softmax(logits.float(), -1).gather(-1, x[:, context:, None]).squeeze(-1)
            loss, _ = grpo_loss(logp, logp.detach(), adv[i:i + micro], torch.ones_like(logp), cfg)
            (loss * len(x) / n_seq).backward()
        if device == "cuda":
            torch.cuda.synchronize()

    return timeit(step, 2)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--groups", type=int, default=16)
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=32, help="completion tokens per step in the reference step")
    ap.add_argument("--context", type=int, default=32, help="prompt tokens per step in the reference step")
    ap.add_argument("--micro", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    groups = make_groups(args.groups, args.group_size, args.steps, rng)
    n = args.groups * args.group_size * args.steps
    print(f"# {args.groups} groups x {args.group_size} trajectories x {args.steps} steps = {n} steps; torch threads "
          f"{torch.get_num_threads()}, device {args.device}")
    ref = reference_step(n, args.tokens, args.context, args.micro, args.device)
    print(f"reference training step (tiny transformer, GRPO loss fwd+bwd, {n} x ({args.context}+{args.tokens}) "
          f"tokens): {ref * 1e3:.0f} ms")
    print("| estimator | on StepBatch (ms) | from Group records (ms) | % of reference step (full pipeline) |")
    print("|---|---|---|---|")
    for name, cfg in CONFIGS.items():
        batch = StepBatch.from_groups(groups, cfg.identity)
        t_batch = timeit(lambda b=batch, c=cfg: estimate(b, c), args.repeats)
        t_full = timeit(lambda c=cfg: estimate(groups, c), args.repeats)
        print(f"| {name} | {t_batch * 1e3:.2f} | {t_full * 1e3:.2f} | {100 * t_full / ref:.3f}% |")


if __name__ == "__main__":
    main()
