"""The generation-engine seam without vLLM: ``generation:`` config validation (through the train
YAML loader too), the transformers engine leaving the policy's own sampling untouched, and the
truncated importance-sampling weights in the real GRPO update on a tiny text policy's multi-turn
rollout of the MDP text env."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agents.engines import EngineConfig, TransformersEngine, make_engine, tis_weights
from agents.env_pool import EnvSpec, make_pool
from agents.grpo import GRPOTrainerConfig, Rollout
from agents.grpo_loss import GRPOLossConfig, grpo_loss
from agents.multiturn import EpisodeTask, MultiTurnConfig, RolloutEngine
from agents.multiturn_trainer import MultiTurnTrainer, turn_rows
from agents.text_policy import load_text_policy
from agents.tiny_model import build_tiny_text_model
from guienv.errors import DataError
from guienv.run.train_config import TrainConfig


# -- configuration --------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs,key", [
    ({"engine": "sglang"}, "engine"),
    ({"cache": "paged"}, "cache"),
    ({"compile": "yes"}, "compile"),
    ({"importance_correction": "is"}, "importance_correction"),
    ({"tis_cap": 0.0}, "tis_cap"),
    ({"tis_cap": -1}, "tis_cap"),
    ({"engine": "vllm", "vllm": {"model": "x"}}, "vllm"),
    ({"engine": "vllm", "vllm": {"seed": 3}}, "vllm"),
    ({"vllm": {"max_model_len": 512}}, "vllm"),  # vllm options with the transformers engine
    ({"engine": "vllm", "vllm": [1, 2]}, "vllm"),
])
def test_bad_engine_settings_name_the_field(kwargs, key):
    with pytest.raises(ValueError, match=key):
        EngineConfig(**kwargs)


def test_generation_block_loads_from_the_train_yaml_and_errors_name_the_key(tmp_path):
    cfg = TrainConfig.from_dict({"generation": {"engine": "vllm", "importance_correction": "tis", "tis_cap": 3,
                                                "vllm": {"max_model_len": 1024, "gpu_memory_utilization": 0.3}}})
    assert cfg.generation == EngineConfig("vllm", "dynamic", False, "tis", 3.0, {"max_model_len": 1024,
                                                                                 "gpu_memory_utilization": 0.3})
    assert TrainConfig.from_dict({}).generation == EngineConfig()
    path = tmp_path / "t.yaml"
    path.write_text("generation: {engine: transformers}\n")
    with pytest.raises(DataError, match=r"generation\.engine"):
        TrainConfig.from_yaml(path, ["generation.engine=tgi"])
    with pytest.raises(DataError, match=r"generation\.tis_cap"):
        TrainConfig.from_yaml(path, ["generation.tis_cap=-2"])
    with pytest.raises(DataError, match="generation"):
        TrainConfig.from_yaml(path, ["generation.enigne=vllm"])


def test_the_example_vllm_config_loads():
    from pathlib import Path

    cfg = TrainConfig.from_yaml(Path(__file__).resolve().parents[2] / "configs" / "multiturn_alfworld_vllm.yaml")
    assert cfg.generation.engine == "vllm" and cfg.model.kind == "text"


# -- the transformers engine -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def text_policy(tmp_path_factory):
    path = build_tiny_text_model(tmp_path_factory.mktemp("tiny") / "text")
    return load_text_policy(str(path), device="cpu", dtype="float32")


def test_transformers_engine_leaves_the_policy_sampling_unchanged(text_policy):
    pol = text_policy
    enc = [pol.encode_messages([{"role": "user", "content": f"task {i}"}]) for i in range(2)]
    torch.manual_seed(5)
    before = pol.sample(enc, 3, temperature=1.0, max_new_tokens=6)
    engine = make_engine(EngineConfig(), pol)
    assert isinstance(engine, TransformersEngine) and pol.engine is None and engine.syncs == 0
    torch.manual_seed(5)
    assert engine.sample(enc, 3, temperature=1.0, max_new_tokens=6) == before
    torch.manual_seed(5)
    assert pol.sample(enc, 3, temperature=1.0, max_new_tokens=6) == before
    engine.sync(pol.model)  # nothing to copy: generation runs on the trained weights
    assert engine.syncs == 0


def test_transformers_engine_hands_its_decoding_options_to_the_policy(text_policy):
    try:
        make_engine(EngineConfig(cache="static"), text_policy)
        assert text_policy.decoding == {"cache_implementation": "static", "disable_compile": True}
        assert text_policy.engine is None  # the transformers engine is the policy's own generate
        with pytest.raises(ValueError, match="generation.compile"):
            make_engine(EngineConfig(cache="dynamic", compile=True), text_policy)
    finally:
        text_policy.configure_decoding()
    assert text_policy.decoding == {}


# -- truncated importance sampling -----------------------------------------------------------------
def test_tis_weights_are_one_when_engine_and_trainer_agree_and_capped_otherwise():
    old = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -4.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    assert torch.equal(tis_weights(old, old.clone(), mask, 2.0), torch.ones_like(old))
    w = tis_weights(old, old - torch.tensor([[0.1, 5.0, -0.2], [0.0, 3.0, 9.0]]), mask, 2.0)
    assert torch.allclose(w[0], torch.tensor([np.exp(0.1), 2.0, np.exp(-0.2)], dtype=torch.float32))
    assert torch.allclose(w[1], torch.tensor([1.0, 2.0, 1.0]))  # padding: weight 1


def test_token_weights_of_one_leave_the_loss_unchanged_and_scale_the_surrogate():
    g = torch.Generator().manual_seed(0)
    logp = -torch.rand(3, 4, generator=g)
    old = logp + 0.05 * torch.randn(3, 4, generator=g)
    adv, mask = torch.tensor([1.0, -0.5, 2.0]), torch.ones(3, 4)
    cfg = GRPOLossConfig(aggregation="token-mean")
    base, _ = grpo_loss(logp, old, adv, mask, cfg)
    same, _ = grpo_loss(logp, old, adv, mask, cfg, token_weights=torch.ones(3, 4))
    double, _ = grpo_loss(logp, old, adv, mask, cfg, token_weights=torch.full((3, 4), 2.0))
    assert torch.equal(base, same) and torch.allclose(double, 2 * base)
    with pytest.raises(ValueError, match="token_weights"):
        grpo_loss(logp, old, adv, mask, cfg, token_weights=torch.ones(3))


def test_rollout_select_and_concat_keep_the_engine_logprobs():
    ro = Rollout([0, 1], [None, None], [[1], [2], [3], [4]], [None] * 4, np.zeros(4), np.ones(4), 2, [],
                 sample_logprobs=[[-1.0], [-2.0], [-3.0], [-4.0]])
    assert ro.select([1]).sample_logprobs == [[-3.0], [-4.0]]
    assert Rollout.concat([ro.select([1]), ro.select([0])]).sample_logprobs == [[-3.0], [-4.0], [-1.0], [-2.0]]
    plain = Rollout([0], [None], [[1], [2]], [None] * 2, np.zeros(2), np.ones(2), 2, [])
    assert Rollout.concat([ro, plain]).sample_logprobs is None


@pytest.fixture(scope="module")
def mdp_rollout(text_policy):
    """A real multi-turn rollout of the tiny text policy in the MDP text env, as GRPO rows."""
    pol = text_policy
    cfg = MultiTurnConfig(max_turns=2, pool="inline")
    pool = make_pool(EnvSpec("guienv/MDP-v0", {}), 4, "inline")
    engine = RolloutEngine(pol, pool, cfg, "text")
    torch.manual_seed(0)
    ro = engine.run([EpisodeTask(0, 1), EpisodeTask(1, 2)], 2, temperature=1.0, max_new_tokens=6)
    pool.close()
    rows = turn_rows(ro, np.linspace(-1.0, 1.0, sum(len(t) for g in ro.turns for t in g)))
    return rows, cfg


def _update(pol, rows, cfg, generation):
    model = copy.deepcopy(pol.model)
    saved, pol.model = pol.model, model
    try:
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        trainer = MultiTurnTrainer(pol, GRPOTrainerConfig(group_size=2, micro_batch_size=3, temperature=1.0,
                                                          max_new_tokens=6, aggregation="token-mean", max_grad_norm=None),
                                   cfg, None, [], opt, generation=generation)
        stats = trainer.update_trainer.update(rows)
        return stats, torch.cat([p.detach().flatten() for p in model.parameters()])
    finally:
        pol.model = saved


def test_tis_in_the_update_is_a_no_op_when_the_sampler_is_the_trainer(text_policy, mdp_rollout):
    rows, cfg = mdp_rollout
    assert rows.sample_logprobs is not None and all(len(lp) == len(c) for lp, c in zip(rows.sample_logprobs, rows.completions))
    plain, p_plain = _update(text_policy, rows, cfg, EngineConfig())
    # The behaviour log-probs replaced by the trainer's own teacher-forced ones: every weight is exactly 1.
    with torch.no_grad():
        own = []
        for r in range(len(rows.completions)):
            lp, _ = text_policy.token_logprobs(text_policy.model, [rows.prompt_of(r)], [rows.completions[r]], 1.0)
            own.append(lp[0].tolist())
    agree = copy.copy(rows)
    agree.sample_logprobs = own
    tis, p_tis = _update(text_policy, agree, cfg, EngineConfig(importance_correction="tis"))
    assert tis["tis_weight_mean"] == pytest.approx(1.0, abs=1e-5) and tis["tis_capped_frac"] == 0.0
    assert tis["loss"] == pytest.approx(plain["loss"], rel=1e-4, abs=1e-6)
    assert torch.allclose(p_tis, p_plain, atol=1e-6)
    # A sampler far less likely than the trainer on every token: the weights hit the cap.
    off = copy.copy(rows)
    off.sample_logprobs = [[x - 5.0 for x in lp] for lp in own]
    capped, p_capped = _update(text_policy, off, cfg, EngineConfig(importance_correction="tis", tis_cap=1.5))
    assert capped["tis_weight_mean"] == pytest.approx(1.5) and capped["tis_capped_frac"] == 1.0
    assert capped["loss"] == pytest.approx(1.5 * plain["loss"], rel=1e-4, abs=1e-6)
    assert not torch.allclose(p_capped, p_plain)


def test_eval_engine_applies_only_to_local_policy_agents(text_policy):
    from agents.baselines import OracleAgent
    from agents.policy_agent import PolicyAgent
    from guienv.run.evaluate import use_engine

    with pytest.raises(DataError, match="--engine"):
        use_engine(OracleAgent(), "vllm", None)
    assert use_engine(OracleAgent(), "transformers", None) is None
    agent = PolicyAgent(text_policy, "text")
    engine = use_engine(agent, "transformers", None)
    assert isinstance(engine, TransformersEngine) and text_policy.engine is None
