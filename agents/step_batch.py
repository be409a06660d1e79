"""A flat batch of multi-turn steps and the group statistics every advantage estimator shares.

One row per step of every trajectory of every group (:class:`StepBatch`). ``traj`` ids are unique
over the batch; ``state``/``action``/``next_state`` are integer codes where equal codes mean "the
same" (what "the same state" means is chosen when building: observation hash, history prefix or the
env's own state key, as SALT, arXiv 2510.20022, section 3, leaves it to the implementation).

Padding: trainers pad a batch to a multiple of the world size by duplicating rows (verl-agent
duplicates random rows, repository ``langfengQ/verl-agent``). Rows flagged ``pad=True`` get the
advantage of the step they duplicate but never enter a group statistic.

All statistics are vectorised with ``np.unique``/``np.bincount``; nothing loops over steps in Python
except building a :class:`StepBatch` from :class:`~agents.rollout.Group` records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np

from agents.rollout import Group

Identity = Literal["obs", "history", "state"]


def factorize(*cols: np.ndarray) -> np.ndarray:
    """Dense integer codes ``0..K-1`` for the distinct tuples of equal-length integer columns."""
    if not cols:
        raise ValueError("factorize needs at least one column")
    code = np.unique(np.asarray(cols[0]), return_inverse=True)[1].astype(np.int64).ravel()
    for c in cols[1:]:
        c = np.unique(np.asarray(c), return_inverse=True)[1].astype(np.int64).ravel()
        code = np.unique(code * (int(c.max(initial=0)) + 1) + c, return_inverse=True)[1].astype(np.int64).ravel()
    return code


@dataclass(frozen=True)
class StepBatch:
    """One row per step. ``traj`` ids are unique across groups; ``state``/``next_state``/``action``
    are integer codes where equal codes mean "the same" (the identity chosen when building)."""

    group: np.ndarray  # (N,) int
    traj: np.ndarray  # (N,) int, unique over the whole batch
    step: np.ndarray  # (N,) int, step index inside the trajectory
    reward: np.ndarray  # (N,) float, env reward of that step
    state: np.ndarray  # (N,) int, identity of the state before the action
    action: np.ndarray  # (N,) int
    next_state: np.ndarray  # (N,) int, identity after the action
    pad: np.ndarray  # (N,) bool, True for padding duplicates

    def __post_init__(self) -> None:
        n = len(self.group)
        for f in fields(self):
            v = np.asarray(getattr(self, f.name))
            if v.ndim != 1 or len(v) != n:
                raise ValueError(f"StepBatch.{f.name} must be 1-D of length {n}, got shape {v.shape}")
            object.__setattr__(self, f.name, v)

    def __len__(self) -> int:
        return len(self.group)

    @classmethod
    def from_arrays(cls, group, traj, step, reward, state, action, next_state, pad=None) -> StepBatch:
        n = len(group)
        pad = np.zeros(n, dtype=bool) if pad is None else np.asarray(pad, dtype=bool)
        return cls(np.asarray(group, np.int64), np.asarray(traj, np.int64), np.asarray(step, np.int64),
                   np.asarray(reward, np.float64), np.asarray(state, np.int64), np.asarray(action, np.int64),
                   np.asarray(next_state, np.int64), pad)

    @classmethod
    def from_groups(cls, groups: Sequence[Group], identity: Identity = "obs") -> StepBatch:
        """Flatten groups (group -> trajectory -> step order). ``identity`` chooses what "the same
        state" means: ``obs`` (hash of the observation), ``history`` (hash of the whole prefix
        ``o_0, a_0, ..., o_t``), or ``state`` (the env's own state key, an oracle for analysis)."""
        if identity not in ("obs", "history", "state"):
            raise ValueError(f"identity must be 'obs', 'history' or 'state', got {identity!r}")
        codes: dict[Any, int] = {}
        acodes: dict[str, int] = {}

        def code(k: Any) -> int:
            return codes.setdefault(k, len(codes))

        g_, tr_, st_, r_, s_, a_, ns_ = [], [], [], [], [], [], []
        tid = 0
        for grp in groups:
            for traj in grp.trajectories:
                hist: Any = None
                for rec in traj.steps:
                    a = acodes.setdefault(rec.action_text, len(acodes))
                    if identity == "obs":
                        s, ns = code(rec.obs_key), code(rec.next_obs_key)
                    elif identity == "state":
                        s, ns = code(rec.state_key), code(rec.next_state_key)
                    else:
                        if hist is None:
                            hist = code(("h", rec.obs_key))
                        s = hist
                        # History identity: (prefix code, action, next obs) names the next prefix.
                        hist = ns = code(("h", s, a, rec.next_obs_key))
                    g_.append(grp.group_id)
                    tr_.append(tid)
                    st_.append(rec.step)
                    r_.append(rec.reward)
                    s_.append(s)
                    a_.append(a)
                    ns_.append(ns)
                tid += 1
        return cls.from_arrays(g_, tr_, st_, r_, s_, a_, ns_)

    def with_padding(self, rows: np.ndarray) -> StepBatch:
        """This batch plus duplicates of ``rows`` flagged as padding (what a trainer does to reach
        a multiple of the world size)."""
        rows = np.asarray(rows, dtype=np.int64)
        cat = lambda a, pad=None: np.concatenate([a, a[rows] if pad is None else pad])  # noqa: E731
        return StepBatch(cat(self.group), cat(self.traj), cat(self.step), cat(self.reward), cat(self.state),
                         cat(self.action), cat(self.next_state), cat(self.pad, np.ones(len(rows), dtype=bool)))


# -- shared statistics ---------------------------------------------------------------------
def group_normalize(values: np.ndarray, keys: np.ndarray, normalize_std: bool, eps: float) -> np.ndarray:
    """``v - mean_k`` (or ``/ (std_k + eps)``, ddof=1) within each key; singletons get 0."""
    values = np.asarray(values, dtype=np.float64)
    k = np.unique(keys, return_inverse=True)[1].ravel()
    cnt = np.bincount(k)
    mean = np.bincount(k, values) / cnt
    dev = values - mean[k]
    out = dev
    if normalize_std:
        var = np.bincount(k, dev * dev) / np.maximum(cnt - 1, 1)
        out = dev / (np.sqrt(var)[k] + eps)
    return np.where(cnt[k] > 1, out, 0.0)


def trajectory_advantages(batch: StepBatch, normalize_std: bool = False, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """GRPO trajectory advantages. Returns ``(adv_per_traj, traj_index_per_row)`` where
    ``traj_index_per_row`` maps each row to its position in ``adv_per_traj``. Returns and group
    statistics use real rows only."""
    real = ~batch.pad
    tid, ti = np.unique(batch.traj, return_inverse=True)
    ti = ti.ravel()
    ret = np.bincount(ti[real], batch.reward[real], minlength=len(tid))
    grp = np.empty(len(tid), dtype=np.int64)
    grp[ti] = batch.group
    return group_normalize(ret, grp, normalize_std, eps), ti


def split_by_trajectory(values: np.ndarray, groups: Sequence[Group]) -> list[list[np.ndarray]]:
    """Reshape per-row values of ``StepBatch.from_groups(groups)`` into ``[group][traj] -> (T,)``."""
    out, i = [], 0
    for g in groups:
        per = []
        for t in g.trajectories:
            per.append(np.asarray(values[i:i + len(t.steps)]))
            i += len(t.steps)
        out.append(per)
    if i != len(values):
        raise ValueError(f"{len(values)} values for {i} steps")
    return out
