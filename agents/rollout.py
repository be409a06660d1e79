"""Multi-turn group rollouts: G trajectories of the same task through any guienv env.

Group-based RL (GRPO, SALT, GiGPO) compares trajectories that start from the same task. A
:class:`Group` holds G :class:`Trajectory` records of one task (same reset ``options`` and, by
default, the same ``seed``); every step is a :class:`RolloutStep` with what the advantage
estimators need: the state identity before and after the action, the action text, the env reward,
termination flags, action validity, and group/trajectory/step indices.

A policy is an :class:`~agents.protocol.Agent` (``act(obs, info)``, e.g. the agents in
:mod:`agents.baselines`) or a plain callable ``policy(obs) -> action``. Actions may be
text, an :class:`~guienv.actions.Action`, or whatever the env's ``step`` accepts; the record keeps
``action_text`` (text as given, or the action's JSON).

Seeding: with ``seed_mode="same"`` every trajectory of a group resets with the same seed, so env
randomness is shared (common random numbers: identical histories get identical transitions).
``seed_mode="per_trajectory"`` resets trajectory ``j`` with ``seed + j`` and fixes the task with
``options`` instead (e.g. ``{"index": i}``), which gives independent transitions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from guienv.actions import Action


@dataclass(frozen=True)
class RolloutStep:
    """One step ``(o_t, a_t, r_t, o_{t+1})`` of one trajectory."""

    group_id: int
    traj_id: int  # index of the trajectory inside its group
    step: int
    observation: Any = field(repr=False)
    obs_key: str  # stable hash of the observation before the action
    state_key: str  # env's state identity (info["state_key"] or info["state"]) else obs_key
    action_text: str
    reward: float
    terminated: bool
    truncated: bool
    valid: bool
    next_obs_key: str  # hash of the observation after the action
    next_state_key: str
    info: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


@dataclass
class Trajectory:
    group_id: int
    traj_id: int
    steps: list[RolloutStep] = field(default_factory=list)
    final_observation: Any = field(default=None, repr=False)

    @property
    def total_reward(self) -> float:
        return float(sum(s.reward for s in self.steps))

    def __len__(self) -> int:
        return len(self.steps)

    @property
    def done(self) -> bool:
        return bool(self.steps) and (self.steps[-1].terminated or self.steps[-1].truncated)


@dataclass
class Group:
    """G trajectories of one task."""

    group_id: int
    trajectories: list[Trajectory]
    seed: int | None = None
    options: Mapping[str, Any] | None = None

    @property
    def returns(self) -> np.ndarray:
        return np.array([t.total_reward for t in self.trajectories])


# -- helpers -------------------------------------------------------------------------------
def observation_key(obs: Any) -> str:
    """A stable content hash of an observation (text, array, dict, list...), independent of the
    process (unlike ``hash()``), so identical observations get identical keys across workers."""
    h = hashlib.blake2b(digest_size=12)
    _feed(h, obs)
    return h.hexdigest()


def _feed(h: hashlib._Hash, obs: Any) -> None:
    if isinstance(obs, str):
        h.update(b"s")
        h.update(obs.encode("utf-8", "surrogatepass"))
    elif isinstance(obs, (bytes, bytearray)):
        h.update(b"b")
        h.update(bytes(obs))
    elif isinstance(obs, np.ndarray):
        h.update(f"a{obs.dtype.str}{obs.shape}".encode())
        h.update(np.ascontiguousarray(obs).tobytes())
    elif isinstance(obs, Mapping):
        h.update(b"{")
        for k in sorted(obs, key=str):
            _feed(h, str(k))
            _feed(h, obs[k])
        h.update(b"}")
    elif isinstance(obs, (list, tuple)):
        h.update(b"[")
        for v in obs:
            _feed(h, v)
        h.update(b"]")
    else:
        h.update(repr(obs).encode("utf-8", "surrogatepass"))


def action_text(action: Any) -> str:
    if isinstance(action, str):
        return action
    if isinstance(action, Action):
        return json.dumps(action.to_dict(), sort_keys=True)
    if isinstance(action, (np.integer, int)):
        return str(int(action))
    if isinstance(action, Mapping):
        try:
            return json.dumps(action, sort_keys=True, default=lambda o: np.asarray(o).tolist())
        except (TypeError, ValueError):
            return repr(action)
    return repr(action)


def state_key(info: Mapping[str, Any], obs_key: str) -> str:
    """The env's own state identity (``info["state_key"]`` or ``info["state"]``), else ``obs_key``."""
    for k in ("state_key", "state"):
        if k in info and info[k] is not None:
            return str(info[k])
    return obs_key


def step_valid(info: Mapping[str, Any]) -> bool:
    """Whether the env accepted the action (``info["invalid"]`` / ``info["action_valid"]``; default yes)."""
    if "invalid" in info:
        return not bool(info["invalid"])
    if "action_valid" in info:
        return bool(info["action_valid"])
    return True


def as_policy(policy: Any) -> Callable[[Any, Mapping[str, Any]], Any]:
    """Normalise a policy to ``f(obs, info) -> action``: an agent's ``act``, or ``policy(obs)``."""
    if callable(getattr(policy, "act", None)):
        return policy.act
    if not callable(policy):
        raise TypeError(f"a policy must be callable or have act(), got {type(policy).__name__}")
    return lambda o, i: policy(o)


# -- single env ----------------------------------------------------------------------------
def rollout_trajectory(env: Any, policy: Any, *, group_id: int = 0, traj_id: int = 0, seed: int | None = None,
                       options: Mapping[str, Any] | None = None, max_steps: int | None = None) -> Trajectory:
    """Run one episode of ``env`` (a Gymnasium env) with ``policy`` until it terminates, truncates,
    or ``max_steps`` steps have been taken (the last step is then marked truncated)."""
    act = as_policy(policy)
    obs, info = env.reset(seed=seed, options=dict(options) if options else None)
    traj = Trajectory(group_id, traj_id)
    key = observation_key(obs)
    skey = state_key(info, key)
    t = 0
    while True:
        action = act(obs, info)
        nobs, reward, terminated, truncated, ninfo = env.step(action)
        t += 1
        if max_steps is not None and t >= max_steps and not terminated:
            truncated = True
        nkey = observation_key(nobs)
        nskey = state_key(ninfo, nkey)
        traj.steps.append(RolloutStep(group_id, traj_id, t - 1, obs, key, skey, action_text(action), float(reward),
                                     bool(terminated), bool(truncated), step_valid(ninfo), nkey, nskey, dict(ninfo)))
        obs, info, key, skey = nobs, ninfo, nkey, nskey
        if terminated or truncated:
            break
    traj.final_observation = obs
    return traj


def rollout_group(env: Any, policy: Any, group_size: int, *, group_id: int = 0, seed: int | None = None,
                  options: Mapping[str, Any] | None = None, seed_mode: str = "same",
                  max_steps: int | None = None) -> Group:
    """G trajectories of one task, one after another on ``env`` (see the module docstring for
    ``seed_mode``)."""
    if group_size < 1:
        raise ValueError("group_size must be >= 1")
    if seed_mode not in ("same", "per_trajectory"):
        raise ValueError(f"seed_mode must be 'same' or 'per_trajectory', got {seed_mode!r}")
    trajs = []
    for j in range(group_size):
        s = seed if (seed is None or seed_mode == "same") else seed + j
        trajs.append(rollout_trajectory(env, policy, group_id=group_id, traj_id=j, seed=s, options=options,
                                        max_steps=max_steps))
    return Group(group_id, trajs, seed, options)


def rollout_groups(env: Any, policy: Any, group_size: int, seeds: Sequence[int | None], *,
                   options: Sequence[Mapping[str, Any] | None] | None = None, seed_mode: str = "same",
                   max_steps: int | None = None) -> list[Group]:
    """One group per entry of ``seeds`` (and ``options``), group ids 0, 1, ..."""
    options = list(options) if options is not None else [None] * len(seeds)
    if len(options) != len(seeds):
        raise ValueError("seeds and options must have the same length")
    return [rollout_group(env, policy, group_size, group_id=g, seed=s, options=o, seed_mode=seed_mode,
                          max_steps=max_steps) for g, (s, o) in enumerate(zip(seeds, options))]


# -- vector env ----------------------------------------------------------------------------
def _info_at(infos: Mapping[str, Any], i: int) -> dict[str, Any]:
    """Env ``i``'s entries of a Gymnasium vector-env info dict (``key``/``_key`` mask pairs)."""
    out = {}
    for k, v in infos.items():
        if k.startswith("_"):
            continue
        mask = infos.get("_" + k)
        if mask is not None and not mask[i]:
            continue
        if isinstance(v, Mapping):
            out[k] = _info_at(v, i)
        else:
            try:
                out[k] = v[i]
            except (TypeError, IndexError, KeyError):
                out[k] = v
    return out


def rollout_vector(envs: Any, policy: Any, group_size: int, seeds: Sequence[int], *,
                   options: Mapping[str, Any] | None = None, max_steps: int | None = None,
                   seed_mode: str = "same") -> list[Group]:
    """Groups through a ``gymnasium.vector.VectorEnv`` of ``len(seeds) * group_size`` envs: env
    ``g * group_size + j`` runs trajectory ``j`` of group ``g`` (reset with ``seeds[g]``, or
    ``seeds[g] + j`` when ``seed_mode="per_trajectory"``). ``options`` go to every sub-env.

    Works with the default next-step autoreset: a finished sub-env is not recorded any more (its
    further actions are ignored by the vector env's reset step)."""
    n = envs.num_envs
    if n != len(seeds) * group_size:
        raise ValueError(f"vector env has {n} envs, need len(seeds) * group_size = {len(seeds) * group_size}")
    act = as_policy(policy)
    env_seeds = [int(seeds[i // group_size]) + (i % group_size if seed_mode == "per_trajectory" else 0) for i in range(n)]
    obs, infos = envs.reset(seed=env_seeds, options=dict(options) if options else None)
    trajs = [Trajectory(i // group_size, i % group_size) for i in range(n)]
    cur = [(obs[i], _info_at(infos, i)) for i in range(n)]
    keys = [observation_key(o) for o, _ in cur]
    skeys = [state_key(inf, k) for (o, inf), k in zip(cur, keys)]
    done = [False] * n
    last_action: list[Any] = [None] * n
    t = 0
    while not all(done):
        actions = []
        for i in range(n):
            if done[i]:
                actions.append(last_action[i])
            else:
                last_action[i] = act(*cur[i])
                actions.append(last_action[i])
        nobs, rewards, terms, truncs, ninfos = envs.step(_stack_actions(actions, envs))
        t += 1
        for i in range(n):
            if done[i]:
                continue
            ninfo = _info_at(ninfos, i)
            trunc = bool(truncs[i]) or (max_steps is not None and t >= max_steps and not terms[i])
            nkey = observation_key(nobs[i])
            nskey = state_key(ninfo, nkey)
            traj = trajs[i]
            traj.steps.append(RolloutStep(traj.group_id, traj.traj_id, len(traj.steps), cur[i][0], keys[i], skeys[i],
                                         action_text(last_action[i]), float(rewards[i]), bool(terms[i]), trunc,
                                         step_valid(ninfo), nkey, nskey, ninfo))
            cur[i], keys[i], skeys[i] = (nobs[i], ninfo), nkey, nskey
            if terms[i] or trunc:
                done[i] = True
                traj.final_observation = nobs[i]
    groups = []
    for g in range(len(seeds)):
        groups.append(Group(g, trajs[g * group_size:(g + 1) * group_size], int(seeds[g]), options))
    return groups


def _stack_actions(actions: list[Any], envs: Any) -> Any:
    if all(isinstance(a, (int, np.integer)) for a in actions):
        return np.asarray(actions)
    return tuple(actions)
