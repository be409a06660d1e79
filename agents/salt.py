"""SALT: step-level advantage assignment through a trajectory graph (Li et al., arXiv 2510.20022).

For the G trajectories of one task:

1. trajectory advantages ``A_i`` as GRPO (``R_i - mean``, std division optional);
2. build a graph whose edges are transitions ``(s, a, s')``; identical transitions of different
   trajectories of the group merge into one edge;
3. a step's advantage is the mean of ``A_i`` over the trajectories ``i`` that pass through its
   edge: ``Â(e) = (1/|T(e)|) sum_{i in T(e)} A_i``. An edge of a single trajectory keeps that
   trajectory's advantage.

"The same state" is configurable (``identity``): ``obs`` merges by observation hash (two steps
with the same screen/text are one node whatever came before), ``history`` by the whole prefix
``o_0, a_0, ..., o_t`` (nodes are a prefix tree, edges merge only shared prefixes), ``state`` by
the env's own state key (an oracle, for analysis on synthetic MDPs).

``count="trajectories"`` counts a trajectory once per edge even when it loops through it several
times (the paper's "trajectories that pass through the edge"); ``count="occurrences"`` weights
each visit. With ``history`` identity a trajectory can't revisit an edge, so both agree.

Statistics use real rows only (padding duplicates are ignored, see :mod:`agents.step_batch`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from agents.step_batch import Identity, StepBatch, factorize, trajectory_advantages


@dataclass(frozen=True)
class SALTConfig:
    normalize_std: bool = False
    eps: float = 1e-6
    identity: Identity = "obs"
    count: Literal["trajectories", "occurrences"] = "trajectories"
    name: str = "salt"


def salt_advantages(batch: StepBatch, config: SALTConfig = SALTConfig()) -> np.ndarray:
    if config.count not in ("trajectories", "occurrences"):
        raise ValueError(f"count must be 'trajectories' or 'occurrences', got {config.count!r}")
    adv_traj, ti = trajectory_advantages(batch, config.normalize_std, config.eps)
    edge = factorize(batch.group, batch.state, batch.action, batch.next_state)
    real = ~batch.pad
    e, t = edge[real], ti[real]
    if config.count == "trajectories":
        # one (edge, trajectory) pair per trajectory through the edge
        m = len(adv_traj)
        pair = np.unique(e * m + t)
        e, t = pair // m, pair % m
    n_edges = int(edge.max(initial=-1)) + 1
    total = np.bincount(e, adv_traj[t], minlength=n_edges)
    count = np.bincount(e, minlength=n_edges)
    # every edge has at least one real row (padding only duplicates real rows)
    return total[edge] / count[edge]
