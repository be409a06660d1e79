"""GRPO and GiGPO advantages (hand-computed), the estimator interface, padding, and rollouts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from agents.advantages import GRPOAdvantageConfig, estimate, make_config
from agents.gigpo import GiGPOConfig, discounted_returns
from agents.rollout import Group, RolloutStep, Trajectory, observation_key, rollout_group, rollout_groups, rollout_vector
from agents.salt import SALTConfig
from agents.step_batch import StepBatch, split_by_trajectory
from guienv.errors import DataError
from tasks import mdp_specs

MDP_ID = "guienv/MDP-v0"
if MDP_ID not in gym.registry:  # the same entry point guienv.registration gets
    gym.register(MDP_ID, entry_point="guienv.envs.mdp:MDPEnv")


def traj(gid, tid, path, rewards):
    obs, acts = path[0::2], path[1::2]
    steps = []
    for t, a in enumerate(acts):
        k, nk = observation_key(obs[t]), observation_key(obs[t + 1])
        steps.append(RolloutStep(gid, tid, t, obs[t], k, k, a, rewards[t], t == len(acts) - 1, False, True, nk, nk))
    return Trajectory(gid, tid, steps, obs[-1])


# -- GRPO ----------------------------------------------------------------------------------
def test_grpo_trajectory_advantage_on_every_step():
    g = Group(0, [traj(0, 0, ["a", "x", "b", "y", "c"], [0, 1]), traj(0, 1, ["a", "x", "d"], [0]),
                  traj(0, 2, ["a", "z", "e"], [0]), traj(0, 3, ["a", "x", "b", "x", "f"], [0.5, 0.5])])
    # R = (1, 0, 0, 1), mean 0.5
    adv = split_by_trajectory(estimate([g], GRPOAdvantageConfig()), [g])[0]
    np.testing.assert_allclose(adv[0], [0.5, 0.5])
    np.testing.assert_allclose(adv[1], [-0.5])
    np.testing.assert_allclose(adv[3], [0.5, 0.5])
    std = np.std([1, 0, 0, 1], ddof=1)
    adv = split_by_trajectory(estimate([g], GRPOAdvantageConfig(normalize_std=True)), [g])[0]
    np.testing.assert_allclose(adv[2], [-0.5 / (std + 1e-6)])


def test_grpo_degenerate_groups():
    one = Group(0, [traj(0, 0, ["a", "x", "b"], [1.0])])
    same = Group(1, [traj(1, 0, ["a", "x", "b"], [1.0]), traj(1, 1, ["a", "y", "b"], [1.0])])
    for cfg in (GRPOAdvantageConfig(), GRPOAdvantageConfig(normalize_std=True)):
        np.testing.assert_array_equal(estimate([one, same], cfg), 0.0)


# -- GiGPO ---------------------------------------------------------------------------------
def test_gigpo_episode_plus_anchor_step_advantage():
    gamma = 0.5
    g = Group(0, [
        traj(0, 0, ["s", "a", "m", "b", "W"], [0, 1]),
        traj(0, 1, ["s", "c", "m", "d", "L"], [0, 0]),
        traj(0, 2, ["s", "a", "q", "b", "L"], [0, 0]),
    ])
    # returns: t0: (0.5, 1), t1: (0, 0), t2: (0, 0); R = (1, 0, 0), episode A = (2/3, -1/3, -1/3)
    # anchor "s": {0.5, 0, 0} mean 1/6; anchor "m": {1, 0} mean 0.5; anchor "q": singleton -> 0
    adv = split_by_trajectory(estimate([g], GiGPOConfig(gamma=gamma, omega=1.0)), [g])[0]
    np.testing.assert_allclose(adv[0], [2 / 3 + (0.5 - 1 / 6), 2 / 3 + 0.5])
    np.testing.assert_allclose(adv[1], [-1 / 3 - 1 / 6, -1 / 3 - 0.5])
    np.testing.assert_allclose(adv[2], [-1 / 3 - 1 / 6, -1 / 3 + 0.0])
    # omega scales the step term
    half = split_by_trajectory(estimate([g], GiGPOConfig(gamma=gamma, omega=0.5)), [g])[0]
    np.testing.assert_allclose(half[0], [2 / 3 + 0.5 * (0.5 - 1 / 6), 2 / 3 + 0.5 * 0.5])
    # mean_std_norm: both terms divided by their group std (ddof=1)
    std = split_by_trajectory(estimate([g], GiGPOConfig(gamma=gamma, normalize_std=True)), [g])[0]
    ep = (1 - 1 / 3) / (np.std([1, 0, 0], ddof=1) + 1e-6)
    st = (1 - 0.5) / (np.std([1, 0], ddof=1) + 1e-6)
    assert std[0][1] == pytest.approx(ep + st)


def test_discounted_returns_default_gamma():
    g = Group(0, [traj(0, 0, ["a", "x", "b", "x", "c", "x", "d"], [0, 0, 1])])
    b = StepBatch.from_groups([g])
    np.testing.assert_allclose(discounted_returns(b, 0.95), [0.95 ** 2, 0.95, 1.0])
    assert GiGPOConfig().gamma == 0.95 and GiGPOConfig().omega == 1.0


# -- padding -------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [GRPOAdvantageConfig(), GRPOAdvantageConfig(normalize_std=True), SALTConfig(), GiGPOConfig(),
                                 GiGPOConfig(normalize_std=True)], ids=lambda c: f"{c.name}-{c.normalize_std}")
def test_padding_duplicates_do_not_change_advantages(cfg):
    env = gym.make(MDP_ID, spec=mdp_specs.remerge(2))
    rng = np.random.default_rng(0)
    groups = rollout_groups(env, lambda obs: int(rng.integers(2)), 6, seeds=[1, 2, 3], seed_mode="per_trajectory")
    batch = StepBatch.from_groups(groups, cfg.identity)
    base = estimate(batch, cfg)
    rows = rng.integers(len(batch), size=len(batch) // 2)
    padded = batch.with_padding(rows)
    out = estimate(padded, cfg)
    np.testing.assert_allclose(out[: len(batch)], base, atol=1e-12)
    np.testing.assert_allclose(out[len(batch):], base[rows], atol=1e-12)
    naive = StepBatch(padded.group, padded.traj, padded.step, padded.reward, padded.state, padded.action,
                      padded.next_state, np.zeros(len(padded), dtype=bool))
    if cfg.name != "gigpo":  # GiGPO refuses unflagged duplicate (trajectory, step) rows
        assert not np.allclose(estimate(naive, cfg)[: len(batch)], base)
    else:
        with pytest.raises(ValueError, match="pad=True"):
            estimate(naive, cfg)


# -- interface -----------------------------------------------------------------------------
def test_interface_dispatches_by_name():
    g = Group(0, [traj(0, 0, ["a", "x", "b"], [1.0]), traj(0, 1, ["a", "x", "c"], [0.0])])
    assert isinstance(make_config("salt", identity="history"), SALTConfig)
    for name in ("grpo", "salt", "gigpo"):
        out = estimate(g, make_config(name))
        assert out.shape == (2,)
    with pytest.raises(ValueError):
        make_config("ppo")
    with pytest.raises(DataError, match="salt.count"):  # checked by guienv.config.load_config
        make_config("salt", where="run.yaml", count=3)
    with pytest.raises(DataError, match="unknown key 'gigpo.omgea'"):
        make_config("gigpo", omgea=1.0)
    with pytest.raises(ValueError):
        StepBatch.from_groups([g], identity="pixels")
    with pytest.raises(ValueError):
        split_by_trajectory(np.zeros(3), [g])


# -- rollouts ------------------------------------------------------------------------------
class ActPolicy:
    def __init__(self):
        self.seen = []

    def act(self, obs, info):
        self.seen.append(info["t"])
        return "<think>advance</think><action>a0</action>"


def test_rollout_group_records_every_step():
    env = gym.make(MDP_ID, spec=mdp_specs.chain(length=3, n_actions=2))
    pol = ActPolicy()
    g = rollout_group(env, pol, 4, group_id=7, seed=5)
    assert len(g.trajectories) == 4 and g.group_id == 7
    for j, t in enumerate(g.trajectories):
        assert [s.step for s in t.steps] == [0, 1, 2] and t.traj_id == j
        assert t.total_reward == 1.0 and t.steps[-1].terminated and t.done
        assert all(s.valid for s in t.steps) and all(s.group_id == 7 for s in t.steps)
        assert t.steps[0].state_key == "c0" and t.steps[0].next_state_key == "c1"  # env's state identity
        assert t.steps[0].obs_key == observation_key("c0")
        assert t.steps[1].obs_key == t.steps[0].next_obs_key
    assert pol.seen[:3] == [0, 1, 2]


def test_rollout_flags_invalid_actions_and_max_steps():
    env = gym.make(MDP_ID, spec=mdp_specs.chain(length=5, n_actions=2))
    g = rollout_group(env, lambda obs: "fly away", 2, seed=0, max_steps=3)
    for t in g.trajectories:
        assert len(t) == 3 and not any(s.valid for s in t.steps)
        assert t.steps[-1].truncated and not t.steps[-1].terminated


def test_seed_modes():
    env = gym.make(MDP_ID, spec=mdp_specs.stochastic(slip=0.5))
    same = rollout_group(env, lambda o: "go", 8, seed=3, seed_mode="same")
    # common random numbers: same actions -> same transitions
    assert len({tuple(s.next_state_key for s in t.steps) for t in same.trajectories}) == 1
    per = rollout_group(env, lambda o: "go", 8, seed=3, seed_mode="per_trajectory")
    assert len({tuple(s.next_state_key for s in t.steps) for t in per.trajectories}) > 1
    with pytest.raises(ValueError):
        rollout_group(env, lambda o: "go", 2, seed_mode="sometimes")


@pytest.mark.slow
def test_rollout_through_async_vector_env():
    spec = mdp_specs.remerge(2)
    envs = gym.vector.AsyncVectorEnv([lambda: gym.make(MDP_ID, spec=spec) for _ in range(4)], shared_memory=False)
    try:
        rng = np.random.default_rng(0)
        groups = rollout_vector(envs, lambda obs: ["up", "down"][int(rng.integers(2))], 2, seeds=[10, 11])
    finally:
        envs.close()
    assert [g.seed for g in groups] == [10, 11]
    for g in groups:
        for t in g.trajectories:
            assert len(t) == 4  # j0 -> u0|d0 -> j1 -> u1|d1 -> win|lose
            assert t.steps[-1].terminated and t.total_reward in (0.0, 1.0)
            assert t.steps[0].observation == "j0" and t.steps[0].info["t"] == 1
    adv = estimate(groups, SALTConfig())
    assert adv.shape == (sum(len(t) for g in groups for t in g.trajectories),)
    with pytest.raises(ValueError):
        rollout_vector(envs, lambda o: "up", 3, seeds=[1])
