"""Decoding options (:mod:`agents.decoding`): a static KV cache gives the same greedy tokens as the
dynamic one, and its sampled log-probs agree with the teacher-forced ones, for the vision policy,
the text policy and the evaluation agent, on real tiny models saved and loaded back. The compiled
decode step is checked end to end by ``benchmarks/decode_speed.py --smoke`` (tests/agents/test_gpu_check.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.decoding import decoding_kwargs
from agents.policy import Policy
from agents.qwen import QwenAgent, QwenAgentConfig
from agents.text_policy import load_text_policy
from agents.tiny_model import build_tiny_model, build_tiny_text_model
from agents.train_prompts import grounding_prompt
from tasks.synthapp import SynthConfig, make_grounding_samples

MAX_PIXELS = 64 * 28 * 28
pytestmark = pytest.mark.slow


def _sharpen(model, factor=40.0):
    """Scale the decoder's matrices: a random-init tied-embedding model greedily repeats its last
    prompt token, and identical repeats would make the token comparisons below trivially equal."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and "embed" not in name and "visual" not in name:
                p.mul_(factor)
    return model


@pytest.fixture(scope="module")
def vl_path(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "vl")


@pytest.fixture(scope="module")
def vl_policy(vl_path):
    policy = Policy(QwenAgent(QwenAgentConfig(model=str(vl_path), max_pixels=MAX_PIXELS, dtype="float32", device="cpu",
                                              image_backend="pil")))
    _sharpen(policy.model)
    return policy


@pytest.fixture(scope="module")
def text_policy(tmp_path_factory):
    policy = load_text_policy(build_tiny_text_model(tmp_path_factory.mktemp("tiny") / "text"), dtype="float32", device="cpu")
    _sharpen(policy.model)
    return policy


def _vl_prompts(policy, n=3):
    return [policy.encode(grounding_prompt(s)) for s in make_grounding_samples(n, SynthConfig(width=224, height=392))]


def _text_prompts(policy):
    msgs = ["go to the kitchen", "take the apple from the table and put it in the fridge", "look"]
    return [policy.encode_messages([{"role": "user", "content": m}]) for m in msgs]


def test_decoding_kwargs_and_errors_name_the_field():
    assert decoding_kwargs() == {}
    static = decoding_kwargs("static")
    assert static["cache_implementation"] == "static" and static["disable_compile"] is True
    comp = decoding_kwargs("static", True)
    assert comp["compile_config"]._compile_all_devices is True and "disable_compile" not in comp
    with pytest.raises(ValueError, match=r"^generation\.cache: expected one of dynamic, static, got 'paged'"):
        decoding_kwargs("paged", prefix="generation.")
    with pytest.raises(ValueError, match=r"^compile: needs cache 'static'"):
        decoding_kwargs("dynamic", True)
    with pytest.raises(ValueError, match=r"^compile: expected true or false, got 'yes'"):
        decoding_kwargs("static", "yes")


@pytest.mark.parametrize("kind", ["vl", "text"])
def test_static_cache_greedy_is_token_identical_and_logprobs_agree(kind, request):
    policy = request.getfixturevalue(f"{kind}_policy")
    prompts = _vl_prompts(policy) if kind == "vl" else _text_prompts(policy)
    assert len({len(p.ids) for p in prompts}) > 1  # left padding is exercised
    try:
        greedy, lp = {}, {}
        for cache in ("dynamic", "static"):
            policy.configure_decoding(cache=cache)
            kw = policy._generation_kwargs(temperature=0.0, top_p=1.0, max_new_tokens=12, min_new_tokens=12)
            assert kw.get("cache_implementation") == (None if cache == "dynamic" else "static")
            greedy[cache] = policy.sample(prompts, 2, temperature=0.0, max_new_tokens=12, min_new_tokens=12)
            _, lp[cache] = policy.sample_logprobs(prompts, temperature=0.0, max_new_tokens=12, min_new_tokens=12)
        assert greedy["static"] == greedy["dynamic"]
        assert all(len(c) == 12 for c in greedy["static"])
        assert all(len(set(c)) > 3 for c in greedy["static"])  # varied completions: the comparison is not vacuous
        for a, b in zip(lp["static"], lp["dynamic"]):
            np.testing.assert_allclose(a, b, atol=1e-4)
        # sampled: the behaviour log-probs the static cache reports are the teacher-forced ones (top_p=1;
        # no min_new_tokens, which would renormalise without EOS)
        policy.configure_decoding(cache="static")
        torch.manual_seed(3)
        comps, blp = policy.sample_logprobs(prompts, temperature=1.0, max_new_tokens=10)
        tf, mask = policy.token_logprobs(policy.model, prompts, comps, temperature=1.0)
        for i, c in enumerate(comps):
            np.testing.assert_allclose(blp[i], tf[i, :len(c)].tolist(), atol=1e-4)
        # the same torch seed draws the same samples whichever cache holds the keys and values
        seeded = {}
        for cache in ("dynamic", "static"):
            policy.configure_decoding(cache=cache)
            seeded[cache] = policy.sample(prompts, 2, temperature=1.0, max_new_tokens=10, seeds=[1, 2, 3])
        assert seeded["static"] == seeded["dynamic"]
        assert len({tuple(c) for c in seeded["static"]}) > 1
    finally:
        policy.configure_decoding()
    assert policy.decoding == {}


def test_configure_decoding_rejects_bad_options(text_policy):
    with pytest.raises(ValueError, match=r"^generation\.compile: needs generation\.cache 'static'"):
        text_policy.configure_decoding(cache="dynamic", compile=True)
    with pytest.raises(ValueError, match=r"^generation\.cache: expected one of"):
        text_policy.configure_decoding(cache="sliding")
    assert text_policy.decoding == {}


def test_eval_agent_static_cache_is_token_identical(vl_path):
    rng = np.random.default_rng(0)
    obs = [{"screenshot": rng.integers(0, 256, (392, 224, 3), dtype=np.uint8), "instruction": f"click item {i}"}
           for i in range(2)]
    gens = {}
    for cache in ("dynamic", "static"):
        agent = QwenAgent(QwenAgentConfig(model=str(vl_path), max_pixels=MAX_PIXELS, dtype="float32", device="cpu",
                                          image_backend="pil", max_new_tokens=10, cache=cache,
                                          generate_kwargs={"min_new_tokens": 10}))
        _sharpen(agent.model)
        gens[cache] = agent.generate(obs)
    for a, b in zip(gens["dynamic"], gens["static"]):
        assert a.token_ids == b.token_ids and len(a.token_ids) == 10 and a.text == b.text
        assert len(set(a.token_ids)) > 3
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-4)
    with pytest.raises(ValueError, match=r"^compile: needs cache 'static'"):
        QwenAgent(QwenAgentConfig(model=str(vl_path), compile=True))
