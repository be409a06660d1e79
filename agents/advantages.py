"""Step-level advantages for multi-turn agents behind one interface, and the GRPO estimator.

Every estimator maps a flat batch of steps (:class:`~agents.step_batch.StepBatch`, one row per step
of every trajectory of every group) to one advantage per row::

    adv = estimate(groups_or_batch, GRPOAdvantageConfig())   # np.ndarray, one value per step
    adv = estimate(groups, SALTConfig(identity="history"))
    adv = estimate(groups, GiGPOConfig(omega=1.0, gamma=0.95))

Estimators:

* **GRPO** (Shao et al. 2024, "DeepSeekMath", arXiv 2402.03300, eq. 3 with outcome supervision): the
  trajectory advantage ``A_i = R_i - mean_j R_j`` (optionally ``/ (std_j R_j + eps)``, std with
  ddof=1 as ``torch.std``) over the G trajectories of a group, given to every step of trajectory i.
  ``R_i`` is the sum of the env rewards of trajectory i (the outcome reward for sparse tasks).
  A group of one trajectory has no baseline: its advantage is 0 (verl's GRPO uses mean 0, std 1
  there, i.e. ``A = R``; we keep the plain formula).
* **SALT** (:mod:`agents.salt`, Li et al., arXiv 2510.20022) and **GiGPO** (:mod:`agents.gigpo`,
  Feng et al., arXiv 2505.10978; repository ``langfengQ/verl-agent``, ``gigpo/core_gigpo.py``).

Padding rows (``pad=True``) get the advantage of the step they duplicate but never enter a group
statistic: verl-agent pads by duplicating random rows, which would otherwise bias the group means
(see :mod:`agents.step_batch`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from agents.gigpo import GiGPOConfig, gigpo_advantages
from agents.rollout import Group
from agents.salt import SALTConfig, salt_advantages
from agents.step_batch import Identity, StepBatch, trajectory_advantages
from guienv.config import load_config


# -- GRPO ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GRPOAdvantageConfig:
    """GRPO trajectory advantage. ``normalize_std=False`` is GUI-G1/Dr.GRPO's choice (and
    verl-agent's ``mean_norm``); ``True`` divides by the group std (ddof=1) + ``eps``."""

    normalize_std: bool = False
    eps: float = 1e-6
    name: str = "grpo"
    identity: Identity = "obs"  # unused by GRPO; kept so every config builds a batch the same way


def grpo_advantages(batch: StepBatch, config: GRPOAdvantageConfig = GRPOAdvantageConfig()) -> np.ndarray:
    adv, ti = trajectory_advantages(batch, config.normalize_std, config.eps)
    return adv[ti]


# -- the interface -------------------------------------------------------------------------
def _registry() -> dict[str, tuple[type, Any]]:
    return {
        "grpo": (GRPOAdvantageConfig, grpo_advantages),
        "salt": (SALTConfig, salt_advantages),
        "gigpo": (GiGPOConfig, gigpo_advantages),
    }


def make_config(name: str, where: str = "<advantage config>", **kwargs: Any) -> Any:
    """A config by estimator name (``grpo``, ``salt``, ``gigpo``), e.g. from YAML; keys and values
    are checked by :func:`guienv.config.load_config` (errors name ``where``)."""
    reg = _registry()
    if name not in reg:
        raise ValueError(f"unknown advantage estimator {name!r}; known: {sorted(reg)}")
    return load_config(reg[name][0], kwargs, where, prefix=name)


def estimate(data: Union[StepBatch, Sequence[Group], Group], config: Any = GRPOAdvantageConfig()) -> np.ndarray:
    """Per-step advantages for ``data`` (a :class:`StepBatch`, or groups flattened in group ->
    trajectory -> step order with ``config.identity``) with the estimator ``config.name``."""
    reg = _registry()
    if config.name not in reg:
        raise ValueError(f"unknown advantage estimator {config.name!r}; known: {sorted(reg)}")
    if isinstance(data, Group):
        data = [data]
    batch = data if isinstance(data, StepBatch) else StepBatch.from_groups(data, config.identity)
    return reg[config.name][1](batch, config)
