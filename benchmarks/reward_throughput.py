"""Throughput of the GUI-G1 grounding reward: batched numpy / torch vs a scalar Python loop.

One process, one thread (BLAS/torch threads pinned to 1), random pixel boxes on random screen
sizes with a share of degenerate, off-screen and unparsable predictions. Prints pairs per second.

    python benchmarks/reward_throughput.py [--pairs 1000000] [--scalar-pairs 50000] [--repeat 3]

Target (project brief): 1M box pairs well under 1 s on one core (batched numpy).
"""

from __future__ import annotations

import argparse
import os
import time

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

from rewards.grounding import gui_g1_reward, gui_g1_rewards, gui_g1_rewards_torch  # noqa: E402


def make_pairs(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = rng.integers(320, 5120, n).astype(np.float64)
    h = rng.integers(320, 2880, n).astype(np.float64)

    def boxes(lo: float, hi: float) -> np.ndarray:
        xs = np.sort(rng.uniform(lo, hi, (n, 2)), axis=1) * w[:, None]
        ys = np.sort(rng.uniform(lo, hi, (n, 2)), axis=1) * h[:, None]
        return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)

    gt, pred = boxes(0.0, 1.0), boxes(-0.2, 1.2)
    k = n // 20
    pred[:k] = gt[:k] + rng.normal(0, 5, (k, 4))  # near the target
    pred[k : 2 * k, 2] = pred[k : 2 * k, 0]  # degenerate
    pred[2 * k : 2 * k + k // 5] = np.nan  # unparsable
    return pred, gt, np.stack([w, h], axis=1)


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--scalar-pairs", type=int, default=50_000, help="pairs for the (slow) scalar loop")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    pred, gt, sizes = make_pairs(args.pairs)
    rows = []

    t = best_of(lambda: gui_g1_rewards(pred, gt, sizes), args.repeat)
    rows.append(("numpy batched (float64)", args.pairs, t))

    try:
        import torch

        torch.set_num_threads(1)
        for dtype in (torch.float64, torch.float32):
            tp, tg, ts = (torch.as_tensor(a, dtype=dtype) for a in (pred, gt, sizes))
            t = best_of(lambda tp=tp, tg=tg, ts=ts: gui_g1_rewards_torch(tp, tg, ts), args.repeat)
            rows.append((f"torch CPU batched ({str(dtype).split('.')[-1]})", args.pairs, t))
    except ImportError:
        pass

    m = min(args.scalar_pairs, args.pairs)
    sp, sg, ss = pred[:m].tolist(), gt[:m].tolist(), sizes[:m].tolist()

    def scalar() -> None:
        for p, g, (w, h) in zip(sp, sg, ss):
            gui_g1_reward(p, g, w, h)

    t = best_of(scalar, 1)
    rows.append(("scalar Python loop", m, t))

    # sanity: the batched and scalar rewards agree on the measured subset
    b = gui_g1_rewards(pred[:1000], gt[:1000], sizes[:1000]).total
    s = np.array([gui_g1_reward(p, g, w, h).total for p, g, (w, h) in zip(sp[:1000], sg[:1000], ss[:1000])])
    assert np.allclose(b, s, atol=1e-12), "batched and scalar rewards disagree"

    base = rows[-1][1] / rows[-1][2]
    print(f"GUI-G1 reward throughput, one process, one thread ({args.pairs:,} pairs; best of {args.repeat})")
    print(f"{'implementation':<28} {'pairs':>10} {'seconds':>9} {'pairs/s':>14} {'vs scalar':>10}")
    for name, n, sec in rows:
        rate = n / sec
        print(f"{name:<28} {n:>10,} {sec:>9.3f} {rate:>14,.0f} {rate / base:>9.0f}x")
    one_m = args.pairs / rows[0][2]
    print(f"numpy: 1M pairs in {1e6 / one_m:.3f} s")


if __name__ == "__main__":
    main()
