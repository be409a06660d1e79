"""Every agent satisfies :class:`agents.protocol.Agent` with exactly its signatures and acts on
real SynthApp observations in a batch (the tiny Qwen2.5-VL built here, the API agent against a real
HTTP server on 127.0.0.1, the baselines)."""

from __future__ import annotations

import inspect

import gymnasium as gym
import pytest
from chat_server import ChatServer, reply

import guienv  # noqa: F401  registers the env ids
from agents import Agent
from agents.api import ApiAgent, ApiAgentConfig
from agents.baselines import AGENTS, MeanClickAgent, OracleAgent, RandomAgent
from agents.protocol import check_infos
from agents.qwen import QwenAgent, QwenAgentConfig
from agents.tiny_model import build_tiny_model
from guienv.actions import Action

AGENT_CLASSES = [OracleAgent, RandomAgent, MeanClickAgent, QwenAgent, ApiAgent]


def _params(fn) -> list[str]:
    return [p.name for p in inspect.signature(fn).parameters.values()]


@pytest.mark.parametrize("cls", AGENT_CLASSES, ids=lambda c: c.__name__)
def test_every_agent_class_has_exactly_the_protocol_signatures(cls):
    for name in ("act", "act_batch"):
        assert _params(getattr(cls, name)) == _params(getattr(Agent, name)), f"{cls.__name__}.{name}"
        # no defaults: a caller always passes the infos
        assert all(p.default is inspect.Parameter.empty for p in inspect.signature(getattr(cls, name)).parameters.values())


def test_baseline_registry_holds_only_protocol_agents():
    assert set(AGENTS.values()) <= set(AGENT_CLASSES)


@pytest.fixture(scope="module")
def batch():
    """Observations and infos of three SynthApp grounding envs, reset with different seeds."""
    env = gym.make("guienv/SynthApp-v0", mode="grounding")
    pairs = [env.reset(seed=s) for s in range(3)]
    yield env, [o for o, _ in pairs], [i for _, i in pairs]
    env.close()


def _check_actions(actions, n):
    assert len(actions) == n and all(isinstance(a, Action) for a in actions)


@pytest.mark.parametrize("make", [OracleAgent, lambda: RandomAgent(seed=0), MeanClickAgent], ids=["oracle", "random", "mean-click"])
def test_baselines_act_batch_on_real_observations(make, batch):
    env, obs, infos = batch
    agent = make()
    assert isinstance(agent, Agent)
    actions = agent.act_batch(obs, infos)
    _check_actions(actions, len(obs))
    if isinstance(agent, OracleAgent):  # the oracle's clicks hit: the infos reached act()
        for s, a in enumerate(actions):
            env.reset(seed=s)
            assert env.step(a)[1] == 1.0


def test_qwen_agent_act_batch_on_real_observations(tmp_path, batch):
    _, obs, infos = batch
    tiny = build_tiny_model(tmp_path / "qwen25vl")
    agent = QwenAgent(QwenAgentConfig(model=str(tiny), max_new_tokens=4, max_pixels=64 * 28 * 28, dtype="float32"))
    assert isinstance(agent, Agent)
    _check_actions(agent.act_batch(obs, infos), len(obs))
    with pytest.raises(ValueError, match="3 observations but 2 infos"):
        agent.act_batch(obs, infos[:2])


def test_api_agent_act_batch_on_real_observations(batch):
    _, obs, infos = batch
    srv = ChatServer(lambda body, n, headers: reply('{"action": "click", "coordinate": [12, 34]}'))
    try:
        agent = ApiAgent(ApiAgentConfig(base_url=srv.base_url, model="served-vlm", frame="pixel", timeout_s=2.0))
        assert isinstance(agent, Agent)
        with agent:
            actions = agent.act_batch(obs, infos)
        _check_actions(actions, len(obs))
        assert [a.point for a in actions] == [(12.0, 34.0)] * len(obs)
        assert srv.count == len(obs)
    finally:
        srv.close()


def test_check_infos_rejects_a_length_mismatch():
    assert check_infos([1, 2], ({}, {})) == [{}, {}]
    with pytest.raises(ValueError, match="2 observations but 1 infos"):
        check_infos([1, 2], [{}])
