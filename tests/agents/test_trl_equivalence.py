"""guienv's GRPO loss equals TRL's on identical inputs.

TRL (test-only dependency, ``pip install trl``) computes the loss in
``trl.trainer.grpo_trainer.GRPOTrainer._compute_loss``. That method is called here, unmodified, on a
``GRPOTrainer`` instance whose attributes are set from a real ``GRPOConfig`` exactly as TRL's
``__init__`` sets them, with a real ``accelerate.Accelerator`` for its metric reductions; only the
model forward (``_get_per_token_logps_and_entropies``) returns the test's log-probabilities, so
both sides see identical log-probs, old log-probs, reference log-probs and advantages.

Matching settings: TRL ``loss_type='grpo'`` = guienv ``sequence-mean``; ``'bnpo'`` = ``token-mean``;
``'dr_grpo'`` = ``constant`` with L = ``max_completion_length``; ``'dapo'`` (normalised by the
batch's token count) = ``token-mean`` in one process. TRL has no per-sample weights (weights 1). KL: the k3 estimator of the GRPO paper, i.e. TRL with
``use_bias_correction_kl=False`` (TRL's default since 1.x multiplies the per-token KL by the
importance ratio, DeepSeek-V3.2's unbiased variant, which guienv's loss does not implement).
"""

from __future__ import annotations

from collections import defaultdict

import pytest
import torch

trl = pytest.importorskip("trl")

from agents.grpo_loss import GRPOLossConfig, grpo_loss  # noqa: E402

PAIRS = [("grpo", "sequence-mean"), ("bnpo", "token-mean"), ("dr_grpo", "constant"), ("dapo", "token-mean")]


def _trl_trainer(loss_type: str, beta: float, eps: float, eps_high: float | None, max_len: int):
    from accelerate import Accelerator
    from trl import GRPOConfig
    from trl.trainer.grpo_trainer import GRPOTrainer

    args = GRPOConfig(output_dir="unused", loss_type=loss_type, beta=beta, epsilon=eps, epsilon_high=eps_high,
                      max_completion_length=max_len, report_to=[], use_cpu=True,
                      use_bias_correction_kl=False)  # TRL >= 1.x default multiplies the KL by the ratio
    t = object.__new__(GRPOTrainer)  # TRL's class, attributes as its __init__ derives them from args
    t.args = args
    t.loss_type = args.loss_type
    t.beta = args.beta
    t.epsilon_low = args.epsilon
    t.epsilon_high = args.epsilon_high if args.epsilon_high is not None else args.epsilon
    t.importance_sampling_level = args.importance_sampling_level
    t.off_policy_mask_threshold = args.off_policy_mask_threshold
    t.top_entropy_quantile = args.top_entropy_quantile
    t.max_completion_length = args.max_completion_length
    t.use_vllm = args.use_vllm
    t.vllm_importance_sampling_correction = args.vllm_importance_sampling_correction
    t.aux_loss_enabled = False
    t._entropy_bonus_enabled = False
    t.current_gradient_accumulation_steps = 1
    t._metrics = {"train": defaultdict(list), "eval": defaultdict(list)}
    t.accelerator = Accelerator(cpu=True)
    t.model = torch.nn.Linear(1, 1)  # only .training is read
    return t


def _inputs(seed: int, B: int = 6, T: int = 9):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = (torch.arange(T)[None, :] < lengths[:, None]).float()
    old = -torch.rand(B, T, generator=g) * 3
    logp = (old + 0.4 * torch.randn(B, T, generator=g)).clamp(max=-1e-3)  # ratios well outside [0.8, 1.2]
    ref = old + 0.3 * torch.randn(B, T, generator=g)
    adv = torch.randn(B, generator=g)
    return logp, old, ref, adv, mask


@pytest.mark.parametrize("loss_type,aggregation", PAIRS)
@pytest.mark.parametrize("beta,eps_high", [(0.0, None), (0.04, 0.28)])
def test_loss_and_gradient_equal_trl(loss_type, aggregation, beta, eps_high):
    from trl.trainer.grpo_trainer import GRPOTrainer

    max_len = 12  # larger than the batch's longest completion, as in training
    logp, old, ref, adv, mask = _inputs(hash((loss_type, beta)) % 1000)
    B, T = logp.shape
    t = _trl_trainer(loss_type, beta, 0.2, eps_high, max_len)
    x_trl = logp.clone().requires_grad_(True)
    t._get_per_token_logps_and_entropies = lambda *a, **k: (x_trl, torch.zeros_like(x_trl), None)
    inputs = {
        "prompt_ids": torch.ones(B, 3, dtype=torch.long), "prompt_mask": torch.ones(B, 3, dtype=torch.long),
        "completion_ids": torch.ones(B, T, dtype=torch.long), "completion_mask": mask.long(),
        "advantages": adv, "old_per_token_logps": old, "ref_per_token_logps": ref,
        "num_items_in_batch": mask.sum(),
    }
    loss_trl = GRPOTrainer._compute_loss(t, t.model, inputs)
    loss_trl.backward()

    x = logp.clone().requires_grad_(True)
    cfg = GRPOLossConfig(eps_low=0.2, eps_high=eps_high, beta=beta, aggregation=aggregation, max_completion_length=max_len)
    loss, stats = grpo_loss(x, old, adv, mask, cfg, ref_logp=ref if beta else None)
    loss.backward()

    assert float(loss.detach()) == pytest.approx(float(loss_trl.detach()), rel=1e-6, abs=1e-7)
    torch.testing.assert_close(x.grad, x_trl.grad, rtol=1e-5, atol=1e-7)
    assert x.grad.abs().sum() > 0
    # The clipping actually happened on both sides (so the comparison covers the clipped branch).
    assert stats["clip_frac"] > 0
    assert t._metrics["train"]["clip_ratio/region_mean"][-1] == pytest.approx(stats["clip_frac"], abs=1e-6)
    if beta:
        assert t._metrics["train"]["kl"][-1] == pytest.approx(stats["kl_mean"], rel=1e-5)


def test_trl_version_is_recorded():
    assert tuple(int(v) for v in trl.__version__.split(".")[:2]) >= (0, 20)
