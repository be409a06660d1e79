"""GRPO per-token loss maths: clipped surrogate, k3 KL, aggregation modes, sample weights.

Plain torch functions on ``(B, T)`` tensors (B sequences, T completion tokens, ``mask`` 1 on
real completion tokens). A multi-turn step is one sequence whose advantage comes from
:mod:`agents.advantages`.

* Importance ratio and clipped surrogate (PPO, Schulman et al. 2017, eq. 7; GRPO, Shao et al.
  2024, eq. 3)::

      rho_t = exp(logp_t - old_logp_t)
      l_t   = -min(rho_t * A, clip(rho_t, 1 - eps_low, 1 + eps_high) * A)

  ``eps_high > eps_low`` is DAPO's clip-higher (Yu et al. 2025). The gradient is zero where the
  clipped term is the minimum: ``A > 0`` and ``rho > 1 + eps_high``, or ``A < 0`` and
  ``rho < 1 - eps_low`` (the update already moved far enough in the advantage's direction).
* KL to a reference policy with the k3 estimator (Schulman 2020, "Approximating KL divergence";
  GRPO eq. 4)::

      kl_t = exp(ref_logp_t - logp_t) - (ref_logp_t - logp_t) - 1     (>= 0, unbiased for KL(pi||ref))

  added as ``beta * kl_t`` to each token's loss.
* Aggregation of per-token losses ``l_{i,t}`` with per-sample weights ``w_i`` (default 1):

  - ``token-mean`` (DAPO): ``sum_{i,t} w_i m_{i,t} l_{i,t} / sum_{i,t} m_{i,t}``;
  - ``sequence-mean`` (original GRPO eq. 3): ``(1/B) sum_i w_i (sum_t m_{i,t} l_{i,t} / |o_i|)``;
  - ``constant`` (Dr.GRPO, Liu et al. 2025; GUI-G1 arXiv 2505.15810):
    ``(1/B) sum_i w_i (sum_t m_{i,t} l_{i,t}) / L`` with ``L`` a constant, the max completion
    length, so a sequence's tokens are not up-weighted for being short (no length bias).

  Weights multiply the numerators only (a weight of 2 counts a sample twice as much in the
  numerator without changing the normaliser); GUI-G1's difficulty weights are ``w in [0.5, 1.5]``.
* Per-token weights ``token_weights`` (optional, detached) multiply the clipped surrogate before
  the KL term is added: the truncated importance-sampling correction of a generation engine that
  is not the trainer (:mod:`agents.engines`; TRL's ``vllm_importance_sampling_correction``,
  ``trl/trainer/grpo_trainer.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

Aggregation = Literal["token-mean", "sequence-mean", "constant"]


@dataclass(frozen=True)
class GRPOLossConfig:
    eps_low: float = 0.2
    eps_high: float | None = None  # None: same as eps_low (symmetric PPO clip)
    beta: float = 0.0  # KL coefficient (GUI-G1 uses no KL)
    aggregation: Aggregation = "token-mean"
    max_completion_length: int | None = None  # the constant L of "constant" (default: T)


def importance_ratio(logp: torch.Tensor, old_logp: torch.Tensor) -> torch.Tensor:
    """``rho = exp(logp - old_logp)`` (``old_logp`` is detached: it is data)."""
    return torch.exp(logp - old_logp.detach())


def clipped_surrogate(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor,
                      eps_low: float = 0.2, eps_high: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token PPO/GRPO loss ``-min(rho A, clip(rho) A)`` and a bool mask of tokens whose
    clipped term was selected (zero gradient). ``advantages`` is ``(B,)`` or ``(B, T)``."""
    eps_high = eps_low if eps_high is None else eps_high
    adv = advantages.detach()
    if adv.dim() == 1:
        adv = adv.unsqueeze(-1)
    adv = adv.expand_as(logp)
    rho = importance_ratio(logp, old_logp)
    unclipped = rho * adv
    clipped = torch.clamp(rho, 1.0 - eps_low, 1.0 + eps_high) * adv
    loss = -torch.minimum(unclipped, clipped)
    is_clipped = clipped < unclipped
    return loss, is_clipped


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-token k3 estimator of KL(pi || ref): ``exp(ref - logp) - (ref - logp) - 1``.

    Its gradient w.r.t. ``logp`` is ``1 - exp(ref - logp)`` (zero when the policies agree)."""
    d = ref_logp.detach() - logp
    return torch.exp(d) - d - 1.0


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, mode: Aggregation = "token-mean",
              weights: torch.Tensor | None = None, max_completion_length: int | None = None) -> torch.Tensor:
    """Reduce ``(B, T)`` per-token losses to a scalar (see the module docstring for the formulas)."""
    m = mask.to(per_token.dtype)
    w = torch.ones(per_token.shape[0], dtype=per_token.dtype, device=per_token.device) if weights is None \
        else weights.to(per_token.dtype).detach()
    if w.shape != (per_token.shape[0],):
        raise ValueError(f"weights must have shape ({per_token.shape[0]},), got {tuple(w.shape)}")
    per_seq = (per_token * m).sum(dim=-1)  # (B,)
    if mode == "token-mean":
        return (w * per_seq).sum() / m.sum().clamp(min=1.0)
    if mode == "sequence-mean":
        return (w * per_seq / m.sum(dim=-1).clamp(min=1.0)).mean()
    if mode == "constant":
        L = per_token.shape[-1] if max_completion_length is None else int(max_completion_length)
        if L <= 0:
            raise ValueError("max_completion_length must be positive")
        return (w * per_seq).sum() / (per_token.shape[0] * L)
    raise ValueError(f"unknown aggregation {mode!r}; use token-mean, sequence-mean or constant")


def grpo_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor,
              config: GRPOLossConfig = GRPOLossConfig(), ref_logp: torch.Tensor | None = None,
              weights: torch.Tensor | None = None, token_weights: torch.Tensor | None = None,
              ) -> tuple[torch.Tensor, dict[str, float]]:
    """The GRPO objective as a loss to minimise, plus diagnostics (clip fraction, mean KL,
    mean ratio over real tokens)."""
    if logp.shape != old_logp.shape or logp.shape != mask.shape:
        raise ValueError(f"logp {tuple(logp.shape)}, old_logp {tuple(old_logp.shape)} and mask {tuple(mask.shape)} must match")
    per_tok, is_clipped = clipped_surrogate(logp, old_logp, advantages, config.eps_low, config.eps_high)
    if token_weights is not None:
        if token_weights.shape != logp.shape:
            raise ValueError(f"token_weights {tuple(token_weights.shape)} must match logp {tuple(logp.shape)}")
        per_tok = per_tok * token_weights.detach().to(per_tok.dtype)
    kl = None
    if config.beta:
        if ref_logp is None:
            raise ValueError("beta > 0 needs ref_logp")
        kl = k3_kl(logp, ref_logp)
        per_tok = per_tok + config.beta * kl
    loss = aggregate(per_tok, mask, config.aggregation, weights, config.max_completion_length)
    m = mask.to(logp.dtype)
    n = m.sum().clamp(min=1.0)
    with torch.no_grad():
        stats = {
            "clip_frac": float((is_clipped.to(logp.dtype) * m).sum() / n),
            "ratio_mean": float((importance_ratio(logp, old_logp) * m).sum() / n),
            "kl_mean": float((kl * m).sum() / n) if kl is not None else 0.0,
        }
    return loss, stats
