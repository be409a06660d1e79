"""GiGPO: group-in-group policy optimisation (Feng et al., arXiv 2505.10978; repository
``langfengQ/verl-agent``, ``gigpo/core_gigpo.py``).

``A(step) = A_episode + omega * A_step`` where

* ``A_episode`` is the GRPO trajectory advantage of the step's trajectory (``R_i - mean``, or
  ``/ (std + eps)`` in ``mean_std_norm`` mode);
* ``A_step`` groups the steps of a task group by identical **anchor observation** (``identity``,
  ``obs`` by default, as verl-agent's ``build_step_group``) and compares discounted returns
  ``G_t = sum_k gamma^k r_{t+k}`` (``gamma = 0.95`` in the verl-agent scripts) with the anchor
  group's mean (std division in ``mean_std_norm`` mode). Anchor groups of one step get 0.

Each step row counts once in its anchor group (a trajectory that revisits an observation adds
several returns, as in verl-agent). Differences from verl-agent, on purpose: the episode statistics
use each trajectory once (verl-agent's default ``compute_mean_std_cross_all_data=True`` averages
over step rows, which weights long trajectories more), and a one-trajectory group gets episode
advantage 0 (verl-agent: mean 0, std 1). Padding duplicates never enter a statistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.step_batch import Identity, StepBatch, factorize, group_normalize, trajectory_advantages


@dataclass(frozen=True)
class GiGPOConfig:
    omega: float = 1.0
    gamma: float = 0.95
    normalize_std: bool = False  # verl-agent "mean_norm" (False) / "mean_std_norm" (True)
    eps: float = 1e-6
    identity: Identity = "obs"
    name: str = "gigpo"


def discounted_returns(batch: StepBatch, gamma: float) -> np.ndarray:
    """``G_t = r_t + gamma * G_{t+1}`` inside each trajectory (real rows; padding rows get the
    value of the step they duplicate). Vectorised over trajectories, one pass per time step."""
    real = ~batch.pad
    _, ti = np.unique(batch.traj, return_inverse=True)
    ti = ti.ravel()
    if np.any(batch.step < 0):
        raise ValueError("step indices must be >= 0")
    n_traj, length = int(ti.max(initial=-1)) + 1, int(batch.step.max(initial=-1)) + 1
    rewards = np.zeros((n_traj, length + 1))
    seen = np.zeros((n_traj, length), dtype=np.int64)
    np.add.at(seen, (ti[real], batch.step[real]), 1)
    if seen.max(initial=0) > 1:
        raise ValueError("a (trajectory, step) pair appears twice among the real rows; flag duplicates with pad=True")
    rewards[ti[real], batch.step[real]] = batch.reward[real]
    returns = np.zeros_like(rewards)
    for t in range(length - 1, -1, -1):
        returns[:, t] = rewards[:, t] + gamma * returns[:, t + 1]
    return returns[ti, batch.step]


def gigpo_advantages(batch: StepBatch, config: GiGPOConfig = GiGPOConfig()) -> np.ndarray:
    adv_traj, ti = trajectory_advantages(batch, config.normalize_std, config.eps)
    episode = adv_traj[ti]
    if config.omega == 0:
        return episode
    returns = discounted_returns(batch, config.gamma)
    anchor = factorize(batch.group, batch.state)
    real = ~batch.pad
    step_real = group_normalize(returns[real], anchor[real], config.normalize_std, config.eps)
    # Map every row (padding included) to its anchor group's statistics via a real row with the
    # same (anchor, return): padding rows duplicate real rows, so one always exists.
    step = np.empty(len(batch))
    step[real] = step_real
    if (~real).any():
        key_real = factorize(np.concatenate([anchor[real], anchor[~real]]),
                             np.concatenate([returns[real], returns[~real]]).view(np.int64))
        k_real, k_pad = key_real[: real.sum()], key_real[real.sum():]
        lookup = np.empty(int(key_real.max()) + 1)
        lookup[k_real] = step_real
        step[~real] = lookup[k_pad]
    return episode + config.omega * step
