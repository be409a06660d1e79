"""GRPO loss maths on hand-computed cases: aggregation modes, weights, clipping, k3 KL."""

from __future__ import annotations

import math

import pytest
import torch

from agents.grpo_loss import GRPOLossConfig, aggregate, clipped_surrogate, grpo_loss, importance_ratio, k3_kl


def _t(x, grad=False):
    return torch.tensor(x, dtype=torch.float64, requires_grad=grad)


# per-token losses of two sequences, the second one shorter (mask)
L = _t([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])
M = _t([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])


def test_token_mean_divides_by_all_real_tokens():
    assert aggregate(L, M, "token-mean").item() == pytest.approx((1 + 2 + 3 + 4 + 5) / 5)


def test_sequence_mean_averages_per_sequence_means():
    assert aggregate(L, M, "sequence-mean").item() == pytest.approx(((1 + 2 + 3) / 3 + (4 + 5) / 2) / 2)


def test_constant_normaliser_divides_by_batch_times_max_length():
    assert aggregate(L, M, "constant").item() == pytest.approx((6 + 9) / (2 * 3))
    assert aggregate(L, M, "constant", max_completion_length=10).item() == pytest.approx(15 / 20)


def test_padding_tokens_never_count():
    L2 = L.clone()
    L2[1, 2] = 1e6  # a padded position
    for mode in ("token-mean", "sequence-mean", "constant"):
        assert aggregate(L2, M, mode).item() == pytest.approx(aggregate(L, M, mode).item())


def test_sample_weights_scale_numerators_only():
    w = _t([2.0, 0.5])
    assert aggregate(L, M, "token-mean", weights=w).item() == pytest.approx((2 * 6 + 0.5 * 9) / 5)
    assert aggregate(L, M, "sequence-mean", weights=w).item() == pytest.approx((2 * 2 + 0.5 * 4.5) / 2)
    assert aggregate(L, M, "constant", weights=w).item() == pytest.approx((2 * 6 + 0.5 * 9) / 6)
    with pytest.raises(ValueError):
        aggregate(L, M, "token-mean", weights=_t([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError):
        aggregate(L, M, "nope")


def test_constant_normaliser_removes_length_bias_gradient():
    # d loss / d l_{i,t} is 1/(B L) for every real token under "constant", 1/(B |o_i|) under sequence-mean
    x = L.clone().requires_grad_(True)
    aggregate(x, M, "constant").backward()
    assert torch.allclose(x.grad, M / 6)
    x.grad = None
    aggregate(x, M, "sequence-mean").backward()
    assert torch.allclose(x.grad, _t([[1 / 6, 1 / 6, 1 / 6], [1 / 4, 1 / 4, 0.0]]))


def test_surrogate_value_inside_the_trust_region():
    logp, old = _t([[math.log(1.1)]], True), _t([[0.0]])
    loss, clipped = clipped_surrogate(logp, old, _t([2.0]))
    assert loss.item() == pytest.approx(-1.1 * 2.0)
    assert not clipped.any()
    loss.sum().backward()
    assert logp.grad.item() == pytest.approx(-1.1 * 2.0)  # d(-rho A)/dlogp = -rho A


@pytest.mark.parametrize(
    "ratio, adv, eps_low, eps_high, stops",
    [
        (1.5, 1.0, 0.2, None, True),  # A > 0, rho > 1 + eps: pushed far enough up -> no gradient
        (1.5, -1.0, 0.2, None, False),  # A < 0, rho > 1 + eps: still pulled down (unclipped is the min)
        (0.5, -1.0, 0.2, None, True),  # A < 0, rho < 1 - eps: pushed far enough down -> no gradient
        (0.5, 1.0, 0.2, None, False),  # A > 0, rho < 1 - eps: still pushed up
        (1.25, 1.0, 0.2, 0.28, False),  # clip-higher: 1.25 < 1 + 0.28 -> still learning
        (1.3, 1.0, 0.2, 0.28, True),
    ],
)
def test_clipping_stops_gradient_only_in_the_advantage_direction(ratio, adv, eps_low, eps_high, stops):
    logp, old = _t([[math.log(ratio)]], True), _t([[0.0]])
    loss, clipped = clipped_surrogate(logp, old, _t([adv]), eps_low, eps_high)
    loss.sum().backward()
    assert bool(clipped.item()) is stops
    if stops:
        assert logp.grad.item() == 0.0
        hi = 1 + (eps_low if eps_high is None else eps_high)
        assert loss.item() == pytest.approx(-(hi if adv > 0 else 1 - eps_low) * adv)
    else:
        # gradient of -rho A: descending it moves rho in the advantage's direction
        assert logp.grad.item() == pytest.approx(-ratio * adv)


def test_k3_kl_value_and_gradient():
    logp = _t([[math.log(0.5), math.log(0.2)]], True)
    ref = _t([[math.log(0.25), math.log(0.2)]])
    kl = k3_kl(logp, ref)
    r = 0.25 / 0.5
    assert kl[0, 0].item() == pytest.approx(r - math.log(r) - 1)
    assert kl[0, 1].item() == pytest.approx(0.0)
    kl.sum().backward()
    # d/dlogp [exp(ref - logp) - (ref - logp) - 1] = 1 - exp(ref - logp)
    assert logp.grad[0, 0].item() == pytest.approx(1 - r)
    assert logp.grad[0, 1].item() == pytest.approx(0.0)
    assert (k3_kl(_t([[0.1, -3.0]]), _t([[-2.0, 0.5]])) >= 0).all()


def test_k3_is_unbiased_for_kl_under_samples_from_pi():
    g = torch.Generator().manual_seed(0)
    p = torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    q = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    x = torch.multinomial(p, 200_000, replacement=True, generator=g)
    est = k3_kl(p.log()[x], q.log()[x]).mean().item()
    exact = (p * (p / q).log()).sum().item()
    assert est == pytest.approx(exact, abs=4 * k3_kl(p.log()[x], q.log()[x]).std().item() / math.sqrt(200_000))


def test_grpo_loss_combines_surrogate_kl_and_aggregation():
    logp = _t([[math.log(1.1), 0.0], [0.0, math.log(0.7)]], True)
    old = torch.zeros(2, 2, dtype=torch.float64)
    ref = _t([[0.0, 0.0], [0.0, 0.0]])
    mask = _t([[1.0, 1.0], [1.0, 1.0]])
    adv = _t([1.0, -1.0])
    cfg = GRPOLossConfig(beta=0.1, aggregation="token-mean")
    loss, stats = grpo_loss(logp, old, adv, mask, cfg, ref_logp=ref)
    surr = [-(1.1 * 1), -(1.0 * 1), -(1.0 * -1), -max(0.7, 0.8) * -1]  # rho=0.7 < 0.8, A<0: clipped term
    kl = [1 / 1.1 - math.log(1 / 1.1) - 1, 0, 0, 1 / 0.7 - math.log(1 / 0.7) - 1]
    assert loss.item() == pytest.approx(sum(s + 0.1 * k for s, k in zip(surr, kl)) / 4)
    assert stats["clip_frac"] == pytest.approx(0.25)
    assert importance_ratio(logp, old)[0, 0].item() == pytest.approx(1.1)
    with pytest.raises(ValueError):
        grpo_loss(logp, old, adv, mask, cfg)  # beta > 0 without a reference
