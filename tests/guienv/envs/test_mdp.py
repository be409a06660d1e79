"""guienv/MDP-v0, its specs, the exact solver, and measured facts about the estimators.

The estimator tests sample many groups (numpy sampler with the env's dynamics), average each
estimator's policy-gradient estimate, and compare with the exact gradient. Tolerances are z-scores
against the sample standard error of the mean over groups (10,000 groups): "agrees" means every
component within 5 SE (a few dozen components, so a false alarm has probability < 1e-4); "biased"
means some component off by more than 10 SE after the best rescaling (observed 20-120 SE)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import yaml
from gymnasium.utils.env_checker import check_env

from agents.advantages import GRPOAdvantageConfig, estimate
from agents.gigpo import GiGPOConfig
from agents.rollout import rollout_groups
from agents.salt import SALTConfig
from agents.step_batch import StepBatch
from guienv.envs.mdp import (
    MDPEnv,
    episodes_to_arrays,
    evaluate_policy,
    observation_advantages,
    policy_gradient,
    sample_episodes,
    score_function_gradients,
    softmax,
)
from guienv.errors import DataError
from tasks import mdp_specs
from tasks.mdp_specs import load_spec, load_specs, spec_to_dict

MDP_ID = "guienv/MDP-v0"
if MDP_ID not in gym.registry:
    gym.register(MDP_ID, entry_point="guienv.envs.mdp:MDPEnv")

YAML = """
name: diamond
horizon: 3
actions: [left, right]
start: s0
states:
  s0:
    obs: start
    transitions:
      left: [{to: a}]
      right: [{to: b, p: 0.75}, {to: a, p: 0.25}]
  a: {obs: hall, transitions: {left: [{to: goal, reward: 1}], right: [{to: s0}]}}
  b: {obs: hall, transitions: {right: [{to: goal, reward: 2}]}}
  goal: {terminal: true}
"""


# -- specs ---------------------------------------------------------------------------------
def test_yaml_spec_loads_with_aliasing_and_defaults(tmp_path):
    p = tmp_path / "diamond.yaml"
    p.write_text(YAML)
    spec = load_spec(p)
    assert spec.observations == ("start", "hall", "goal")
    m = spec.arrays()
    assert m.n_obs == 3 and m.obs_of.tolist() == [0, 1, 1, 2]
    assert m.P[0, 1, 2] == 0.75 and m.P[0, 1, 1] == 0.25
    assert m.P[2, 0, 2] == 1.0 and m.R[2, 0, 2] == 0.0  # b has no "left": stays, reward 0
    assert m.R[2, 1, 3] == 2.0
    # round trip through the writer
    q = tmp_path / "again.yaml"
    q.write_text(yaml.safe_dump({"specs": [spec_to_dict(spec), spec_to_dict(mdp_specs.tree(2))]}, sort_keys=False))
    again = load_specs(q)
    np.testing.assert_array_equal(again[0].arrays().P, m.P)
    np.testing.assert_array_equal(again[1].arrays().R, mdp_specs.tree(2).arrays().R)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["states"]["s0"]["transitions"]["right"].__setitem__(0, {"to": "b", "p": 0.5}), "transitions"),
    (lambda d: d["states"]["a"]["transitions"]["left"].__setitem__(0, {"to": "nowhere"}), "transitions"),
    (lambda d: d.pop("horizon"), "horizon"),
    (lambda d: d.__setitem__("start", "ghost"), "start"),
    (lambda d: d["states"]["a"].__setitem__("colour", "red"), None),
])
def test_bad_specs_name_file_and_field(tmp_path, mutate, field):
    d = yaml.safe_load(YAML)
    mutate(d)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(DataError) as err:
        load_spec(p)
    assert str(p) in str(err.value)
    if field:
        assert err.value.field == field


def test_builders():
    t = mdp_specs.tree(depth=3, branching=2, goal_leaf=5)
    m = t.arrays()
    assert m.terminal.sum() == 8 and m.R.sum() == 1.0
    c = mdp_specs.chain(length=4, n_actions=3, dead_end="trap", aliased=True)
    assert c.observations == ("corridor", "goal", "trap")
    assert mdp_specs.chain(4, dead_end="terminal").arrays().terminal.sum() == 2
    r = mdp_specs.remerge(2)
    assert r.arrays().P[:, :, r.state_names.index("j1")].sum() == 4  # four edges re-merge at j1
    s = mdp_specs.stochastic(0.3)
    assert s.arrays().P[0, 0, 1] == pytest.approx(0.7)
    with pytest.raises(ValueError):
        mdp_specs.build("maze")


# -- exact solution ------------------------------------------------------------------------
def test_backward_induction_by_hand_on_aliased_corridor():
    spec = mdp_specs.aliased_corridor()
    m = spec.arrays()
    p, q = 0.7, 0.4  # pi(left | start), pi(left | hall)
    pi = np.array([[p, 1 - p], [q, 1 - q], [0.5, 0.5], [0.5, 0.5]])  # obs: start, hall, win, lose
    ex = evaluate_policy(m, pi)
    x1, x2 = spec.state_names.index("x1"), spec.state_names.index("x2")
    assert ex.Q[1, x1].tolist() == [1.0, 0.0] and ex.Q[1, x2].tolist() == [0.0, 1.0]
    assert ex.V[1, x1] == pytest.approx(q) and ex.V[1, x2] == pytest.approx(1 - q)
    assert ex.Q[0, 0].tolist() == pytest.approx([q, 1 - q])
    assert ex.J == pytest.approx(p * q + (1 - p) * (1 - q))
    assert ex.A[0, 0, 0] == pytest.approx(q - ex.J)
    # dJ/dlogit(hall, left) = pi(l|hall) * [d(x1) A(x1, left) + d(x2) A(x2, left)]
    g = policy_gradient(m, np.log(pi))
    assert g[1, 0] == pytest.approx(q * (p * (1 - q) + (1 - p) * (0 - (1 - q))))
    # observation-averaged advantage mixes the two hidden states
    a_obs, w = observation_advantages(m, pi)
    assert w[1, 1] == pytest.approx(1.0)
    assert a_obs[1, 1, 0] == pytest.approx(p * (1 - q) + (1 - p) * (-(1 - q)))


@pytest.mark.parametrize("spec", [mdp_specs.stochastic(), mdp_specs.chain(4, 2, dead_end="restart", aliased=True, horizon=7),
                                  mdp_specs.remerge(2)], ids=lambda s: s.name)
@pytest.mark.parametrize("timed", [False, True])
def test_exact_gradient_matches_finite_differences(spec, timed):
    m = spec.arrays()
    rng = np.random.default_rng(0)
    shape = ((m.horizon,) if timed else ()) + (m.n_obs, len(spec.actions))
    th = rng.normal(size=shape)
    g = policy_gradient(m, th)
    fd = np.zeros_like(th)
    for idx in np.ndindex(th.shape):
        e = np.zeros_like(th)
        e[idx] = 1e-6
        fd[idx] = (evaluate_policy(m, softmax(th + e)).J - evaluate_policy(m, softmax(th - e)).J) / 2e-6
    np.testing.assert_allclose(g, fd, atol=1e-8)


# -- the env -------------------------------------------------------------------------------
def test_env_api_and_checker():
    env = gym.make(MDP_ID, spec=mdp_specs.aliased_corridor(), render_mode="rgb_array")
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert obs == "start" and info["state"] == "start" and info["admissible_commands"] == ["left", "right"]
    obs, r, term, trunc, info = env.step("<think>go</think><action> LEFT </action>")
    assert obs == "hall" and info["state"] == "x1" and not info["invalid"] and r == 0.0
    obs, r, term, trunc, info = env.step("jump")  # invalid: no-op, the step counts
    assert info["invalid"] and info["state"] == "x1" and trunc and not term
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    env.reset(seed=1)
    obs, r, term, trunc, info = env.step(1)
    obs, r, term, trunc, info = env.step(1)
    assert r == 1.0 and term and info["state"] == "win"
    for junk in (None, 7, -1, "", "<action></action>", "x" * 50000, {"type": "click"}, 1.5):
        env.reset(seed=0)
        assert env.step(junk)[4]["invalid"]


def test_env_reset_is_deterministic_and_picks_tasks(tmp_path):
    p = tmp_path / "d.yaml"
    p.write_text(YAML)
    env = MDPEnv(specs=[str(p), mdp_specs.aliased_corridor()])
    assert env.reset(options={"index": 1})[1]["task"] == "aliased-corridor"
    a = [env.reset(seed=s)[1]["task"] for s in range(6)]
    assert a == [env.reset(seed=s)[1]["task"] for s in range(6)]
    with pytest.raises(IndexError):
        env.reset(options={"index": 5})
    with pytest.raises(ValueError):
        MDPEnv(specs=[mdp_specs.tree(2), mdp_specs.aliased_corridor()])  # different action lists
    assert MDPEnv("chain", length=3).spec_.name == "chain-3-trap"


def test_env_dynamics_match_the_exact_solution():
    spec = mdp_specs.stochastic(slip=0.3)
    m = spec.arrays()
    pi = np.array([[0.8, 0.2], [0.6, 0.4], [0.9, 0.1], [0.5, 0.5], [0.5, 0.5]])
    rng = np.random.default_rng(0)

    def policy(obs):
        return spec.actions[rng.choice(2, p=pi[spec.observations.index(obs)])]

    env = gym.make(MDP_ID, spec=spec)
    groups = rollout_groups(env, policy, 8, seeds=list(range(0, 800, 8)), seed_mode="per_trajectory")
    returns = np.concatenate([g.returns for g in groups])
    J = evaluate_policy(m, pi).J
    assert abs(returns.mean() - J) < 4 * returns.std() / np.sqrt(len(returns))


# -- estimators against exact quantities ---------------------------------------------------
G, N_GROUPS = 8, 10_000
CASES = {
    "remerge": mdp_specs.remerge(2),
    "stochastic": mdp_specs.stochastic(0.3),  # "wait" in s0 is a self-loop
    "aliased-restart": mdp_specs.chain(4, 2, aliased=True, dead_end="restart", horizon=8),
    "slip-deadend": mdp_specs.chain(3, 2, slip=0.5, horizon=6, dead_end="terminal"),
}


def _grads(case: str, timed: bool, configs: dict, seed: int = 0):
    spec = CASES[case]
    m = spec.arrays()
    shape = ((m.horizon,) if timed else ()) + (m.n_obs, len(spec.actions))
    th = np.random.default_rng(5).normal(size=shape) * 0.5
    ep = sample_episodes(m, softmax(th), N_GROUPS * G, np.random.default_rng(seed))
    out = {}
    for name, cfg in configs.items():
        cols = episodes_to_arrays(m, ep, G, cfg.identity)
        batch = StepBatch.from_arrays(*(cols[k] for k in ("group", "traj", "step", "reward", "state", "action", "next_state")))
        adv = estimate(batch, cfg)
        out[name] = (score_function_gradients(cols, adv, th, G).reshape(N_GROUPS, -1), adv, cols)
    return policy_gradient(m, th).ravel(), evaluate_policy(m, softmax(th)), out


def _z_vs(grads: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.abs(grads.mean(0) - target) / (grads.std(0) / np.sqrt(len(grads)) + 1e-15)


def _direction_z(grads: np.ndarray, exact: np.ndarray) -> tuple[float, float]:
    """(max z of the component orthogonal to the exact gradient, scale along it)."""
    u = exact / np.linalg.norm(exact)
    orth = grads - np.outer(grads @ u, u)
    return float(_z_vs(orth, np.zeros_like(u)).max()), float(grads.mean(0) @ u / np.linalg.norm(exact))


@pytest.mark.slow
@pytest.mark.parametrize("case, timed", [("remerge", False), ("stochastic", True), ("aliased-restart", False),
                                         ("slip-deadend", True)])
def test_grpo_gradient_is_reinforce_with_baseline_scaled_by_g_minus_1_over_g(case, timed):
    """E[(1/G) sum_i (R_i - mean_j R_j) grad log pi(tau_i)] = (G-1)/G grad J: the group mean contains
    R_i itself, so GRPO is REINFORCE with a leave-one-in baseline, unbiased in direction."""
    exact, _, out = _grads(case, timed, {"grpo": GRPOAdvantageConfig()})
    assert _z_vs(out["grpo"][0], exact * (G - 1) / G).max() < 5


@pytest.mark.slow
def test_salt_history_identity_gives_exactly_the_grpo_gradient():
    """Trajectories sharing a history-prefix edge share (history, action), hence grad log pi: the edge
    average redistributes advantage inside the edge without changing the per-group gradient sum."""
    exact, _, out = _grads("stochastic", True, {"grpo": GRPOAdvantageConfig(), "salt": SALTConfig(identity="history")})
    np.testing.assert_allclose(out["salt"][0], out["grpo"][0], atol=1e-10)
    # ...while the per-step advantages themselves differ
    assert not np.allclose(out["salt"][1], out["grpo"][1])


@pytest.mark.slow
def test_salt_observation_identity_is_unbiased_only_for_memoryless_policies_without_loops():
    cfgs = {"grpo": GRPOAdvantageConfig(), "traj": SALTConfig(identity="obs"), "occ": SALTConfig(identity="obs", count="occurrences")}
    # stationary policy on observations, counting every visit: identical to GRPO, group by group
    exact, _, out = _grads("stochastic", False, cfgs)
    np.testing.assert_allclose(out["occ"][0], out["grpo"][0], atol=1e-10)
    # counting each trajectory once per edge re-weights self-loops ("wait" in s0): biased direction
    z, _ = _direction_z(out["traj"][0], exact)
    assert z > 10
    # a horizon-indexed policy: merged steps from different times have different grad log pi -> biased
    exact, _, out = _grads("aliased-restart", True, cfgs)
    for name in ("traj", "occ"):
        z, _ = _direction_z(out[name][0], exact)
        assert z > 20
    assert _direction_z(out["grpo"][0], exact)[0] < 5


@pytest.mark.slow
def test_gigpo_gradient_measured_bias():
    """GiGPO's anchor-group step term (discounted returns, own return in the anchor mean) adds a
    component that is not along grad J when transitions are stochastic and dead ends end episodes
    early; it also enlarges the step (about 1.5-1.8x GRPO's scale on these tasks)."""
    cfgs = {"gigpo": GiGPOConfig(), "gigpo_g1": GiGPOConfig(gamma=1.0)}
    exact, _, out = _grads("slip-deadend", False, cfgs)
    for name in cfgs:
        z, scale = _direction_z(out[name][0], exact)
        assert z > 10 and scale > 1.3
    # on remerge (one stochastic step at the end) it stays along grad J within sampling error
    exact, _, out = _grads("remerge", False, {"gigpo": GiGPOConfig()})
    z, scale = _direction_z(out["gigpo"][0], exact)
    assert z < 5 and 1.5 < scale < 2.0


@pytest.mark.slow
def test_per_step_advantages_against_exact_a():
    """GRPO's step advantage estimates (G-1)/G (Q_t(s,a) - J), not A_t(s,a) = Q_t - V_t (sparse final
    reward, so R_i is the return from any step); SALT's edge averaging lowers the MSE against A."""
    cfgs = {"grpo": GRPOAdvantageConfig(), "salt": SALTConfig(identity="obs"), "salt_h": SALTConfig(identity="history"),
            "gigpo": GiGPOConfig()}
    _, ex, out = _grads("remerge", False, cfgs)
    adv, cols = out["grpo"][1], out["grpo"][2]
    cell = np.stack([cols["t"], cols["true_state"], cols["action"]], 1)
    keys, inv = np.unique(cell, axis=0, return_inverse=True)
    inv = inv.ravel()
    cnt = np.bincount(inv)
    mean = np.bincount(inv, adv) / cnt
    sd = np.sqrt(np.bincount(inv, adv ** 2) / cnt - mean ** 2)
    t, s, a = keys.T
    target = (G - 1) / G * (ex.Q[t, s, a] - ex.J)
    ok = cnt > 200
    assert (np.abs(mean - target)[ok] / (sd[ok] / np.sqrt(cnt[ok]))).max() < 5
    assert np.abs(mean - ex.A[t, s, a])[ok].max() > 0.1  # it is not A_t(s, a)
    mse = {k: np.mean((v[1] - ex.A[cols["t"], cols["true_state"], cols["action"]]) ** 2) for k, v in out.items()}
    assert mse["salt"] < mse["salt_h"] < mse["grpo"] < mse["gigpo"]
