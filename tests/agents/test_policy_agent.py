"""PolicyAgent and TextAgent: trainable policies as agents, on the project's tiny models and real envs."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.policy import Policy
from agents.policy_agent import PolicyAgent, TextAgent, TextAgentConfig
from agents.protocol import Agent
from agents.qwen import QwenAgent, QwenAgentConfig
from agents.text_policy import load_text_policy
from agents.tiny_model import TinyTextModelConfig, build_tiny_model, build_tiny_text_model
from guienv.actions import Action
from guienv.prompts import TEMPLATES

MAX_PIXELS = 64 * 28 * 28


@pytest.fixture(scope="module")
def vl_path(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen25vl")


@pytest.fixture(scope="module")
def text_path(tmp_path_factory):
    # a wider init: varied completions, so prompts mixed up in a batch would show
    return build_tiny_text_model(tmp_path_factory.mktemp("tiny") / "qwen2", TinyTextModelConfig(initializer_range=0.2))


@pytest.fixture
def text_template(monkeypatch):
    """A text-only template (the text envs' own templates live in guienv.prompts elsewhere)."""
    def view(obs):
        return [{"role": "user", "content": f"{obs['observation']}\nActions: {', '.join(obs['admissible_commands'])}"}]

    monkeypatch.setitem(TEMPLATES, "test-text", view)
    return "test-text"


def _synthapp_obs(n=2):
    env = gym.make("guienv/SynthApp-v0")
    out = []
    for seed in range(n):
        obs, info = env.reset(seed=seed)
        out.append((obs, info))
    env.close()
    return out


def test_vl_policy_agent_prompts_and_acts_like_the_qwen_agent(vl_path):
    qwen = QwenAgent(QwenAgentConfig(model=str(vl_path), template="synthapp", max_new_tokens=8, max_pixels=MAX_PIXELS,
                                     dtype="float32", device="cpu"))
    agent = PolicyAgent(Policy(QwenAgent(QwenAgentConfig(model=str(vl_path), max_pixels=MAX_PIXELS, dtype="float32",
                                                         device="cpu"))), "synthapp", max_new_tokens=8)
    assert isinstance(agent, Agent) and agent.frame == qwen.frame
    steps = _synthapp_obs(2)
    observations = [o for o, _ in steps]
    for obs in observations:
        assert agent.prompt(obs) == qwen.prompt(obs)
        enc = agent.encode(obs)
        batch = qwen.inputs([obs])
        assert enc.ids.tolist() == batch["input_ids"][0].tolist()
        assert np.array_equal(enc.grid.numpy(), batch["image_grid_thw"].numpy())
    mine, theirs = agent.generate(observations), qwen.generate(observations)
    for a, b in zip(mine, theirs):
        assert a.token_ids == b.token_ids and a.text == b.text
        assert a.action.to_dict() == b.action.to_dict()
        # the policy suppresses vision tokens (QwenAgent does not): the same token's probability
        # is renormalised over fewer tokens, so it can only rise
        assert all(x >= y - 1e-5 for x, y in zip(a.logprobs, b.logprobs)) and len(a.logprobs) == len(b.logprobs)
        assert isinstance(a.action, Action) and a.frame == qwen.frame
    acts = agent.act_batch(observations, [i for _, i in steps])
    assert [x.to_dict() for x in acts] == [g.action.to_dict() for g in mine]
    with pytest.raises(ValueError, match="infos"):
        agent.act_batch(observations, [])


def test_text_agent_acts_in_the_mdp_env_with_its_text(text_path, text_template):
    agent = TextAgent(TextAgentConfig(model=str(text_path), template=text_template, max_new_tokens=6, device="cpu",
                                      dtype="float32"))
    assert isinstance(agent, Agent) and agent.frame is None and agent.policy.is_vision is False
    env = gym.make("guienv/MDP-v0")
    obs, info = env.reset(seed=0)
    view = {"observation": obs, "admissible_commands": info["admissible_commands"]}
    gens = agent.generate([view])
    text = gens[0].text
    assert gens[0].action == text == agent.policy.decode(gens[0].token_ids)
    assert len(gens[0].logprobs) == len(gens[0].token_ids) > 0
    assert agent.act(view, info) == text  # greedy: the same text again
    obs2, reward, terminated, truncated, info2 = env.step(agent.act(view, info))
    assert info2["invalid"] is (env.unwrapped.read_command(text) is None)
    env.close()


def test_text_agent_batches_prompts_of_different_lengths(text_path, text_template):
    agent = PolicyAgent(load_text_policy(text_path, dtype="float32", device="cpu"), text_template, max_new_tokens=8)
    views = [{"observation": "You are in the middle of a room.", "admissible_commands": ["look"]},
             {"observation": "You arrive at fridge 1. The fridge 1 is closed. On the countertop 2 you see an apple 1.",
              "admissible_commands": ["open fridge 1", "go to countertop 2", "look", "inventory"]}]
    batched = agent.act_batch(views, [{}, {}])
    assert batched == [agent.act(v, {}) for v in views]
    assert len(set(batched)) == 2


def test_text_policy_rejects_image_prompts(text_path):
    agent = PolicyAgent(load_text_policy(text_path, dtype="float32", device="cpu"), "synthapp")
    obs, _ = _synthapp_obs(1)[0]
    with pytest.raises(ValueError, match="takes no images"):
        agent.generate([obs])


def test_bad_settings_are_rejected(text_path):
    pol = load_text_policy(text_path, dtype="float32", device="cpu")
    with pytest.raises(ValueError, match="max_new_tokens"):
        PolicyAgent(pol, "text", max_new_tokens=0)
    with pytest.raises(ValueError, match="temperature"):
        PolicyAgent(pol, "text", temperature=-1.0)
    with pytest.raises(ValueError, match="model is required"):
        TextAgent(TextAgentConfig())
    assert PolicyAgent(pol, "text").generate([]) == []
