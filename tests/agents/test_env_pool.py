"""agents.env_pool: the same episodes through every pool kind as through the env itself,
concurrent steps, faults as error results (real envs, real worker processes, a real Ray cluster)."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import guienv  # noqa: F401  (registers the guienv/ ids)
from agents.env_pool import EnvPool, EnvResult, EnvSpec, make_pool
from guienv.errors import MissingDependency

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # spawned workers inherit sys.path; pool_test_envs must import there
import pool_test_envs  # noqa: E402

FAULT = EnvSpec(f"{pool_test_envs.__name__}:{pool_test_envs.FAULT_ID}")
SYNTH = EnvSpec("guienv/SynthApp-v0", {"mode": "app"})
TASKS = [(11, 0), (12, 1), (13, 2)]  # (seed, task index) per slot


def same(a, b) -> bool:
    """Deep equality over dicts, sequences, numpy arrays and scalars."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def direct_episodes(max_steps: int = 4) -> list[list[EnvResult]]:
    """The oracle's episodes on the env itself: the reference the pools must reproduce."""
    out = []
    for seed, index in TASKS:
        env = gym.make("guienv/SynthApp-v0", mode="app")
        obs, info = env.reset(seed=seed, options={"index": index})
        episode = [EnvResult(obs, info=info)]
        for _ in range(max_steps):
            obs, r, te, tr, info = env.step(episode[-1].info["oracle_action"])
            episode.append(EnvResult(obs, float(r), te, tr, info))
            if te or tr:
                break
        env.close()
        out.append(episode)
    return out


def pool_episodes(pool: EnvPool, max_steps: int = 4) -> list[list[EnvResult]]:
    """The same episodes through ``pool``, all slots stepped in lockstep until each is done."""
    first = pool.reset([(slot, seed, {"index": index}) for slot, (seed, index) in enumerate(TASKS)])
    episodes = [[r] for r in first]
    for _ in range(max_steps):
        live = [s for s, ep in enumerate(episodes) if not (ep[-1].terminated or ep[-1].truncated)]
        if not live:
            break
        for slot, res in zip(live, pool.step([(s, episodes[s][-1].info["oracle_action"]) for s in live])):
            episodes[slot].append(res)
    return episodes


def assert_same_episodes(got, want):
    assert len(got) == len(want)
    for slot, (g_ep, w_ep) in enumerate(zip(got, want)):
        assert len(g_ep) == len(w_ep), f"slot {slot}: {len(g_ep)} results, want {len(w_ep)}"
        for t, (g, w) in enumerate(zip(g_ep, w_ep)):
            assert g.ok, f"slot {slot} call {t}: {g.error}"
            assert same(g.observation, w.observation), f"slot {slot} call {t}: observation differs"
            assert (g.reward, g.terminated, g.truncated) == (w.reward, w.terminated, w.truncated)
            assert same(g.info, w.info), f"slot {slot} call {t}: info differs: {g.info} != {w.info}"
    assert any(ep[-1].reward == 1.0 and ep[-1].terminated for ep in want)  # the oracle solves something


@pytest.fixture(scope="module")
def reference():
    return direct_episodes()


@pytest.mark.parametrize("kind", ["inline", "process"])
def test_synthapp_episodes_match_the_env(kind, reference):
    with make_pool(SYNTH, len(TASKS), kind, step_timeout_s=120) as pool:
        assert pool.size == len(TASKS)
        assert_same_episodes(pool_episodes(pool), reference)
        assert pool.stats == {"errors": 0, "restarts": 0, "timeouts": 0}


def test_process_slots_step_in_parallel_and_a_killed_worker_is_reported():
    with make_pool(EnvSpec(FAULT.id, {"sleep_s": 0.5}), 4, "process", step_timeout_s=60) as pool:
        resets = pool.reset([(s, s, None) for s in range(4)])  # workers are up after this
        assert all(r.ok for r in resets)
        assert len({r.info["pid"] for r in resets} | {os.getpid()}) == 5  # one process per slot
        start = time.monotonic()
        res = pool.step([(s, s) for s in range(4)])
        elapsed = time.monotonic() - start
        assert [r.reward for r in res] == [0.0, 1.0, 2.0, 3.0] and all(r.ok for r in res)
        assert elapsed < 1.5, f"4 steps of 0.5 s took {elapsed:.2f} s: not concurrent"

        os.kill(resets[0].info["pid"], signal.SIGKILL)  # a worker lost between calls (the OOM killer)
        res = pool.step([(0, 1), (1, 1)])
        assert res[0].error == "worker died (exit code -9)" and res[1].ok
        assert pool.stats == {"errors": 1, "restarts": 0, "timeouts": 0}
        assert pool.reset([(0, 0, None)])[0].ok and pool.step([(0, 2)])[0].reward == 2.0


def test_process_faults_break_only_their_slot():
    pool = make_pool(FAULT, 4, "process", step_timeout_s=3.0)
    try:
        faults = [{"fault": "raise", "at": 2}, {"fault": "exit", "at": 2}, {"fault": "hang", "at": 2}, None]
        first = pool.reset([(s, 100 + s, faults[s]) for s in range(4)])
        assert all(r.ok for r in first)
        assert all(r.ok for r in pool.step([(s, 1) for s in range(4)]))
        res = pool.step([(s, 1) for s in range(4)])
        assert res[0].error == "RuntimeError: session lost at step 2"
        assert res[1].error == "worker died (exit code 3)"
        assert res[2].error == "step timed out after 3 s"
        assert res[3].ok and same(res[3].observation, np.array([first[3].observation[0], 2]))
        assert not any(r.ok for r in res[:3]) and all(r.reward == 0.0 for r in res[:3])
        assert pool.stats == {"errors": 3, "restarts": 0, "timeouts": 1}

        start = time.monotonic()
        again = pool.step([(s, 1) for s in (2, 3, 0)])  # broken slots answer at once
        assert time.monotonic() - start < 1.0
        assert [r.ok for r in again] == [False, True, False]
        assert "slot 2 is broken (step timed out after 3 s)" in again[0].error
        assert "RuntimeError: session lost" in again[2].error
        assert pool.stats["errors"] == 3

        fresh = pool.reset([(s, 100 + s, None) for s in range(3)])
        assert all(r.ok for r in fresh), [r.error for r in fresh]
        assert fresh[1].info["pid"] != first[1].info["pid"]  # a new worker for the dead one
        assert [same(f.observation, r.observation) for f, r in zip(fresh, first)] == [True] * 3  # same seed, same start
        assert all(r.ok and r.info["t"] == 1 for r in pool.step([(s, 1) for s in range(3)]))
        assert pool.stats == {"errors": 3, "restarts": 3, "timeouts": 1}
    finally:
        start = time.monotonic()
        pool.close()
        assert time.monotonic() - start < 10


def test_inline_fault_and_bad_requests():
    with make_pool(FAULT, 2, "inline") as pool:
        pool.reset([(0, 1, {"fault": "raise", "at": 1}), (1, 2, None)])
        res = pool.step([(1, 4), (0, 4)])
        assert res[0].ok and res[0].reward == 4.0
        assert res[1].error == "RuntimeError: session lost at step 1"
        assert pool.step([(0, 1)])[0].error.startswith("slot 0 is broken")
        assert pool.reset([(0, 1, None)])[0].ok and pool.stats == {"errors": 1, "restarts": 1, "timeouts": 0}
        bad_reset = pool.reset([(1, 0, {"fault": "nope"})])[0]  # the env's own reset error is data too
        assert bad_reset.error == "ValueError: unknown fault 'nope'"
        for bad in ([(2, 0)], [(0, 0), (0, 1)], [(True, 0)], [(0,)]):
            with pytest.raises(ValueError, match="request"):
                pool.step(bad)
        with pytest.raises(TypeError, match="seed"):
            pool.reset([(0, "7", None)])
    with pytest.raises(RuntimeError, match="closed"):
        pool.step([(0, 1)])


def test_make_pool_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        make_pool(FAULT, 1, "threads")
    with pytest.raises(ValueError, match="size"):
        make_pool(FAULT, 0, "inline")
    with pytest.raises(gym.error.Error):
        make_pool(EnvSpec("guienv/NoSuchEnv-v0"), 1, "process")
    # a spec whose env can't be made: every slot reports why, nothing raises
    with make_pool(EnvSpec("guienv/SynthApp-v0", {"mode": "nope"}), 2, "process", step_timeout_s=60) as pool:
        res = pool.reset([(0, None, None), (1, None, None)])
        assert all("making guienv/SynthApp-v0 failed: ValueError: mode must be one of" in r.error for r in res)


def test_ray_kind_without_ray_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees where it isn't installed
    with pytest.raises(MissingDependency, match=r"pip install 'guienv\[ray\]'"):
        make_pool(FAULT, 1, "ray")


@pytest.mark.slow
def test_ray_pool_matches_the_env_and_reports_dead_actors(reference):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()  # this test's own local cluster, with the paths below
    # Ray workers don't inherit sys.path: give them this checkout and pool_test_envs.
    paths = [str(HERE), str(HERE.parents[1])] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}})
    try:
        with make_pool(SYNTH, len(TASKS), "ray", ray_num_cpus=0.5, step_timeout_s=120) as pool:
            assert_same_episodes(pool_episodes(pool), reference)
        with make_pool(FAULT, 3, "ray", ray_num_cpus=0.5, step_timeout_s=3.0) as pool:
            faults = [{"fault": "exit", "at": 1}, {"fault": "raise", "at": 1}, {"fault": "hang", "at": 1}]
            first = pool.reset([(s, 5 + s, faults[s]) for s in range(3)])
            assert all(r.ok for r in first), [r.error for r in first]
            res = pool.step([(s, 1) for s in range(3)])
            assert res[0].error.startswith("actor died (") and "ActorDiedError" in res[0].error
            assert res[1].error == "RuntimeError: session lost at step 1"
            assert res[2].error == "step timed out after 3 s"
            assert pool.stats == {"errors": 3, "restarts": 0, "timeouts": 1}
            assert pool.step([(0, 1)])[0].error.startswith("slot 0 is broken (actor died")
            fresh = pool.reset([(s, 5 + s, None) for s in range(3)])
            assert all(r.ok for r in fresh) and fresh[0].info["pid"] != first[0].info["pid"]
            assert all(r.ok and r.info["t"] == 1 for r in pool.step([(s, 1) for s in range(3)]))
            assert pool.stats == {"errors": 3, "restarts": 3, "timeouts": 1}
    finally:
        ray.shutdown()
