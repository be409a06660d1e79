"""SALT on hand-built trajectory graphs, expected advantages computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from agents.advantages import GRPOAdvantageConfig, estimate
from agents.rollout import Group, RolloutStep, Trajectory, observation_key
from agents.salt import SALTConfig
from agents.step_batch import StepBatch, split_by_trajectory


def traj(gid: int, tid: int, path: list[str], reward: float) -> Trajectory:
    """``path = [o0, a0, o1, a1, o2, ...]``; the whole reward is paid on the last step."""
    obs, acts = path[0::2], path[1::2]
    steps = []
    for t, a in enumerate(acts):
        k, nk = observation_key(obs[t]), observation_key(obs[t + 1])
        steps.append(RolloutStep(gid, tid, t, obs[t], k, k, a, reward if t == len(acts) - 1 else 0.0,
                                t == len(acts) - 1, False, True, nk, nk))
    return Trajectory(gid, tid, steps, obs[-1])


def group(paths: list[tuple[list[str], float]], gid: int = 0) -> Group:
    return Group(gid, [traj(gid, i, p, r) for i, (p, r) in enumerate(paths)])


def salt(groups, **kw) -> list[list[np.ndarray]]:
    groups = groups if isinstance(groups, list) else [groups]
    return split_by_trajectory(estimate(groups, SALTConfig(**kw)), groups)


def test_shared_prefix_averages_and_singletons_keep_their_own():
    g = group([
        (["o0", "a", "o1", "b", "W"], 1.0),
        (["o0", "a", "o1", "c", "L"], 0.0),
        (["o0", "d", "o2", "b", "L"], 0.0),
    ])
    # R = (1, 0, 0), mean 1/3: A = (2/3, -1/3, -1/3)
    # (o0,a,o1) is shared by trajectories 0 and 1: (2/3 - 1/3) / 2 = 1/6; every other edge is a singleton
    adv = salt(g)[0]
    np.testing.assert_allclose(adv[0], [1 / 6, 2 / 3])
    np.testing.assert_allclose(adv[1], [1 / 6, -1 / 3])
    np.testing.assert_allclose(adv[2], [-1 / 3, -1 / 3])
    # history identity gives the same here: the shared edge is a shared prefix
    for a, b in zip(salt(g, identity="history")[0], adv):
        np.testing.assert_allclose(a, b)
    # GRPO for contrast: every step carries its trajectory's advantage
    grpo = split_by_trajectory(estimate([g], GRPOAdvantageConfig()), [g])[0]
    np.testing.assert_allclose(grpo[0], [2 / 3, 2 / 3])


def test_remerging_paths_merge_by_observation_not_by_history():
    g = group([
        (["s", "up", "x", "go", "j", "win", "W"], 1.0),
        (["s", "down", "y", "go", "j", "win", "W"], 1.0),
        (["s", "down", "y", "go", "j", "lose", "L"], 0.0),
        (["s", "up", "x", "stop", "L"], 0.0),
    ])
    # R = (1, 1, 0, 0), A = (.5, .5, -.5, -.5)
    a = salt(g, identity="obs")[0]
    # (s,up,x): t0,t3 -> 0; (x,go,j): t0 -> .5; (j,win,W): t0,t1 -> .5 (re-merged after different prefixes)
    # (s,down,y): t1,t2 -> 0; (y,go,j): t1,t2 -> 0; (j,lose,L): t2 -> -.5; (x,stop,L): t3 -> -.5
    np.testing.assert_allclose(a[0], [0.0, 0.5, 0.5])
    np.testing.assert_allclose(a[1], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(a[2], [0.0, 0.0, -0.5])
    np.testing.assert_allclose(a[3], [0.0, -0.5])
    h = salt(g, identity="history")[0]
    # with history identity (j,win,W) after "s up x go" and after "s down y go" are different edges
    np.testing.assert_allclose(h[0], [0.0, 0.5, 0.5])
    np.testing.assert_allclose(h[1], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(h[2], [0.0, 0.0, -0.5])


def test_identical_observation_different_history():
    g = group([
        (["o0", "a", "s", "x", "t", "y", "W"], 1.0),
        (["o0", "b", "s", "x", "t", "y", "W2"], 0.0),
    ])
    # A = (.5, -.5). (s,x,t) is one edge by observation, two by history
    obs = salt(g, identity="obs")[0]
    np.testing.assert_allclose(obs[0], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(obs[1], [-0.5, 0.0, -0.5])
    hist = salt(g, identity="history")[0]
    np.testing.assert_allclose(hist[0], [0.5, 0.5, 0.5])
    np.testing.assert_allclose(hist[1], [-0.5, -0.5, -0.5])


def test_different_next_state_is_a_different_edge():
    g = group([(["o0", "a", "o1"], 1.0), (["o0", "a", "o2"], 0.0), (["o0", "a", "o1"], 0.0)])
    # A = (2/3, -1/3, -1/3); (o0,a,o1) holds t0 and t2: 1/6; (o0,a,o2) is t1's alone
    adv = salt(g)[0]
    np.testing.assert_allclose([adv[0][0], adv[1][0], adv[2][0]], [1 / 6, -1 / 3, 1 / 6])


def test_loops_count_trajectories_once_or_every_visit():
    g = group([
        (["o0", "w", "o0", "w", "o0", "g", "W"], 1.0),
        (["o0", "w", "o0", "q", "L"], 0.0),
    ])
    # A = (.5, -.5); (o0,w,o0) visited twice by t0 and once by t1
    per_traj = salt(g, count="trajectories")[0]
    np.testing.assert_allclose(per_traj[0], [0.0, 0.0, 0.5])
    np.testing.assert_allclose(per_traj[1], [0.0, -0.5])
    per_visit = salt(g, count="occurrences")[0]
    np.testing.assert_allclose(per_visit[0], [1 / 6, 1 / 6, 0.5])
    np.testing.assert_allclose(per_visit[1], [1 / 6, -0.5])
    with pytest.raises(ValueError):
        salt(g, count="edges")


def test_groups_never_merge_with_each_other():
    g0 = group([(["o0", "a", "o1"], 1.0), (["o0", "a", "o1"], 0.0)], gid=0)
    g1 = group([(["o0", "a", "o1"], 1.0), (["o0", "b", "o1"], 0.0)], gid=1)
    adv = salt([g0, g1])
    np.testing.assert_allclose([adv[0][0][0], adv[0][1][0]], [0.0, 0.0])  # merged inside group 0
    np.testing.assert_allclose([adv[1][0][0], adv[1][1][0]], [0.5, -0.5])  # not merged with group 0


def test_std_normalised_trajectory_advantages_are_averaged():
    g = group([
        (["o0", "a", "o1", "b", "W"], 1.0),
        (["o0", "a", "o1", "c", "L"], 0.0),
        (["o0", "d", "o2", "b", "L"], 0.0),
    ])
    std = np.std([1.0, 0.0, 0.0], ddof=1)
    A = (np.array([1.0, 0.0, 0.0]) - 1 / 3) / (std + 1e-6)
    adv = salt(g, normalize_std=True)[0]
    np.testing.assert_allclose(adv[0], [(A[0] + A[1]) / 2, A[0]])
    np.testing.assert_allclose(adv[2], [A[2], A[2]])


def test_padding_duplicates_are_ignored():
    g = group([
        (["o0", "a", "o1", "b", "W"], 1.0),
        (["o0", "a", "o1", "c", "L"], 0.0),
        (["o0", "d", "o2", "b", "L"], 0.0),
    ])
    batch = StepBatch.from_groups([g])
    base = estimate(batch, SALTConfig())
    rows = np.array([0, 0, 1, 4])  # duplicate the winner's first step twice, and more
    padded = batch.with_padding(rows)
    out = estimate(padded, SALTConfig())
    np.testing.assert_allclose(out[: len(batch)], base)
    np.testing.assert_allclose(out[len(batch):], base[rows])
    # the same rows *not* flagged as padding would change the statistics (what the flag prevents)
    naive = StepBatch(padded.group, padded.traj, padded.step, padded.reward, padded.state, padded.action,
                      padded.next_state, np.zeros(len(padded), dtype=bool))
    assert not np.allclose(estimate(naive, SALTConfig())[: len(batch)], base)
