"""Multi-turn rollout engine: P tasks x G trajectories in lockstep, one batched generate call per turn.

Group-based RL for agents (GRPO with outcome rewards; SALT, Li et al., arXiv 2510.20022; GiGPO, Feng
et al., arXiv 2505.10978, repository ``langfengQ/verl-agent``) compares G trajectories that start
from the same task. :meth:`RolloutEngine.run` plays them through a pool of env instances
(:mod:`agents.env_pool`: in-process, worker processes or Ray actors):

1. every slot ``g * G + j`` resets with task ``g``'s seed and options (group members share both, so
   the env's randomness is common to the group);
2. each turn, the live trajectories' prompts are built by :class:`guienv.history.History` (the env
   observation plus a bounded history of earlier screens/actions or observation/action pairs) and
   :func:`guienv.prompts.observation_messages`, the builders ``guienv eval`` prompts with, and sampled
   in ONE batched call (:meth:`agents.policy.Policy.sample_logprobs`); the model's text goes to the
   env unchanged (the env parses it and judges its validity);
3. trajectories that terminate, truncate (the env's own limit or ``max_turns``) or fail drop out of
   the batch; the loop ends when none is left.

Every turn is recorded twice: as a :class:`~agents.rollout.RolloutStep` (state identities before
and after, action text, reward, flags, validity: what :func:`agents.advantages.estimate` reads) and
as a :class:`Turn` (the encoded prompt, completion token ids, the sampling log-probs, the text and
the parsed action's validity: what the loss reads).

Invalid actions: the env's own judgement (``info["invalid"]``) is kept; the next observation is the
env's (an unchanged screen or "Nothing happens."), and :class:`~guienv.history.History` adds the
env's reason as feedback. ``invalid_penalty`` is subtracted from that turn's reward.

Faults: an env that raises, a worker that dies or a step that times out ends that trajectory as
*failed* with the reason (:attr:`MultiTurnRollout.failures`). Failed trajectories are never scored:
the trainer drops or retries their whole group (:mod:`agents.multiturn_trainer`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.rollout import Group, RolloutStep, Trajectory, action_text, observation_key, state_key, step_valid
from guienv.config import load_config
from guienv.frames import Screen
from guienv.history import History, HistoryConfig
from guienv.parsing import read_action
from guienv.prompts import observation_messages, step_images

__all__ = ["EpisodeTask", "MultiTurnConfig", "MultiTurnRollout", "RolloutEngine", "Turn", "episode_success", "rollout_stats"]

TURN_WEIGHTING = ("turn", "trajectory")
ON_FAILURE = ("drop", "retry")


@dataclass
class MultiTurnConfig:
    """Multi-turn settings (YAML block ``multiturn:``).

    ``advantage``: the step-advantage estimator, ``{name: grpo | salt | gigpo, ...its fields}``
    (:func:`agents.advantages.make_config`). ``turn_weighting``: ``turn`` makes every turn one
    sample of the loss (verl-agent's choice: a long trajectory contributes more tokens),
    ``trajectory`` weights each turn by ``1 / turns`` so every trajectory counts once.
    ``on_failure``: ``drop`` leaves a group with a failed trajectory out of the loss, ``retry``
    plays it again up to ``retries`` times, then drops it; more than ``max_failure_rate`` of a
    step's trajectories failing stops the run (after a checkpoint)."""

    max_turns: int = 8
    history: HistoryConfig = field(default_factory=HistoryConfig)
    template: str | None = None  # prompt template (default: synthapp for screens, text for text envs)
    advantage: dict[str, Any] = field(default_factory=lambda: {"name": "grpo"})
    turn_weighting: str = "turn"
    invalid_penalty: float = 0.0
    pool: str = "process"  # inline | process | ray (agents.env_pool)
    pool_workers: int | None = None  # slots (default: prompts_per_step x group_size on this rank)
    step_timeout_s: float = 300.0
    ray_address: str | None = None
    on_failure: str = "drop"
    retries: int = 1
    max_failure_rate: float = 0.25

    def __post_init__(self) -> None:
        if isinstance(self.history, Mapping):
            self.history = load_config(HistoryConfig, self.history, "multiturn.history", prefix="multiturn.history")
        if self.max_turns < 1:
            raise ValueError(f"multiturn.max_turns must be >= 1, got {self.max_turns}")
        if self.turn_weighting not in TURN_WEIGHTING:
            raise ValueError(f"multiturn.turn_weighting must be one of {TURN_WEIGHTING}, got {self.turn_weighting!r}")
        if self.on_failure not in ON_FAILURE:
            raise ValueError(f"multiturn.on_failure must be one of {ON_FAILURE}, got {self.on_failure!r}")
        if self.pool not in ("inline", "process", "ray"):
            raise ValueError(f"multiturn.pool must be inline, process or ray, got {self.pool!r}")
        if not 0.0 <= self.max_failure_rate <= 1.0:
            raise ValueError(f"multiturn.max_failure_rate must be in [0, 1], got {self.max_failure_rate}")
        if self.retries < 0:
            raise ValueError(f"multiturn.retries must be >= 0, got {self.retries}")
        if not isinstance(self.advantage, Mapping) or "name" not in self.advantage:
            raise ValueError("multiturn.advantage must be a mapping with a name (grpo, salt or gigpo)")

    def advantage_config(self) -> Any:
        from agents.advantages import make_config

        kw = dict(self.advantage)
        name = kw.pop("name")
        return make_config(name, "multiturn.advantage", **kw)


@dataclass(frozen=True)
class EpisodeTask:
    """One task of a task set: how its episodes reset (``seed``, ``options``) and how long an expert
    needs (``length``: turns, the curriculum's difficulty)."""

    id: int
    seed: int | None
    options: Mapping[str, Any] | None = None
    length: int = 1


@dataclass
class Turn:
    """What the loss needs of one turn: the encoded prompt, the completion's token ids and the
    log-probs they were sampled with, the decoded text."""

    prompt: Any = field(repr=False)  # agents.policy.Encoded
    completion: list[int]
    logprobs: list[float]
    text: str


@dataclass
class MultiTurnRollout:
    """One step's trajectories: ``groups[g].trajectories[j].steps[t]`` and ``turns[g][j][t]`` describe
    the same turn; ``failures[g][j]`` is the reason trajectory ``j`` of group ``g`` failed (None if
    it did not); ``successes[g][j]`` whether it solved its task."""

    tasks: list[EpisodeTask]
    groups: list[Group]
    turns: list[list[list[Turn]]]
    failures: list[list[str | None]]
    successes: list[list[bool]]
    times: dict[str, float] = field(default_factory=dict)

    @property
    def group_size(self) -> int:
        return len(self.groups[0].trajectories) if self.groups else 0

    def failed_groups(self) -> list[int]:
        return [g for g, f in enumerate(self.failures) if any(x is not None for x in f)]

    def select(self, groups: Sequence[int]) -> MultiTurnRollout:
        """The rollout of ``groups`` only (group ids renumbered 0..)."""
        gs = []
        for new, g in enumerate(groups):
            old = self.groups[g]
            trajs = [_renumber(t, new) for t in old.trajectories]
            gs.append(Group(new, trajs, old.seed, old.options))
        return MultiTurnRollout([self.tasks[g] for g in groups], gs, [self.turns[g] for g in groups],
                                [self.failures[g] for g in groups], [self.successes[g] for g in groups], dict(self.times))

    @staticmethod
    def concat(parts: Sequence[MultiTurnRollout]) -> MultiTurnRollout:
        out = MultiTurnRollout([], [], [], [], [], {})
        for p in parts:
            base = len(out.groups)
            for g, grp in enumerate(p.groups):
                out.groups.append(Group(base + g, [_renumber(t, base + g) for t in grp.trajectories], grp.seed, grp.options))
            out.tasks += p.tasks
            out.turns += p.turns
            out.failures += p.failures
            out.successes += p.successes
            for k, v in p.times.items():
                out.times[k] = out.times.get(k, 0.0) + v
        return out


def _renumber(t: Trajectory, group_id: int) -> Trajectory:
    if t.group_id == group_id:
        return t
    steps = [RolloutStep(group_id, s.traj_id, s.step, s.observation, s.obs_key, s.state_key, s.action_text, s.reward,
                         s.terminated, s.truncated, s.valid, s.next_obs_key, s.next_state_key, s.info) for s in t.steps]
    return Trajectory(group_id, t.traj_id, steps, t.final_observation)


def episode_success(info: Mapping[str, Any], total_reward: float) -> bool:
    """Whether an episode solved its task: the env's ``success`` (SynthApp) or ``won`` (ALFWorld)
    flag, else a positive return (MiniWoB's raw reward, the MDP's goal reward)."""
    for key in ("success", "won"):
        if key in info and info[key] is not None:
            return bool(info[key])
    return total_reward > 0


# What a compact info keeps per step (a full SynthApp/ALFWorld info repeats the task each turn).
_INFO_KEYS = ("invalid", "invalid_reason", "success", "won", "action", "k", "index")


class _Live:
    """One trajectory being played."""

    def __init__(self, g: int, j: int, slot: int, history: History):
        self.g, self.j, self.slot, self.history = g, j, slot, history
        self.steps: list[RolloutStep] = []
        self.turns: list[Turn] = []
        self.obs: Any = None
        self.obs_key = ""
        self.state_key = ""
        self.info: dict[str, Any] = {}
        self.done = False
        self.failure: str | None = None
        self.success = False
        self.total = 0.0


class RolloutEngine:
    """Plays task groups through ``pool`` with ``policy`` (see the module docstring).

    ``policy``: a :class:`~agents.policy.Policy` (screen envs) or
    :class:`~agents.text_policy.TextPolicy` (text envs): ``encode_messages``, ``sample_logprobs``,
    ``decode``, ``is_vision``, ``frame``/``resize``. ``pool``: an :class:`~agents.env_pool.EnvPool`
    with at least ``P * G`` slots. ``template``: the prompt template of :mod:`guienv.prompts`."""

    def __init__(self, policy: Any, pool: Any, config: MultiTurnConfig, template: str):
        self.policy = policy
        self.pool = pool
        self.config = config
        self.template = template

    def history(self) -> History:
        p = self.policy
        return History(self.config.history, getattr(p, "frame", None) or "pixel", getattr(p, "resize", None))

    def prompt(self, view: Mapping[str, Any]) -> Any:
        """The encoded prompt of one turn's view (what ``guienv eval``'s agents prompt with)."""
        msgs = observation_messages(self.template, view)
        images = step_images(view) if self.policy.is_vision else []
        return self.policy.encode_messages(msgs, images)

    def run(self, tasks: Sequence[EpisodeTask], group_size: int, *, temperature: float, top_p: float = 1.0,
            max_new_tokens: int = 64, act: Callable[[list[Any], list[dict[str, Any]]], list[str]] | None = None
            ) -> MultiTurnRollout:
        """Play ``group_size`` trajectories of every task in lockstep. ``act`` (optional) replaces
        sampling with a function ``(views, infos) -> texts`` (an expert collecting demonstrations:
        :mod:`agents.experts`); its turns keep the prompt and text but no completion or log-probs."""
        n = len(tasks) * group_size
        if n > self.pool.size:
            raise ValueError(f"{len(tasks)} tasks x {group_size} trajectories need {n} env slots; the pool has {self.pool.size}")
        times = {"env": 0.0, "generate": 0.0, "prompt": 0.0}
        live = [_Live(g, j, g * group_size + j, self.history()) for g in range(len(tasks)) for j in range(group_size)]
        t0 = time.perf_counter()
        res = self.pool.reset([(x.slot, tasks[x.g].seed, dict(tasks[x.g].options) if tasks[x.g].options else None)
                               for x in live])
        times["env"] += time.perf_counter() - t0
        for x, r in zip(live, res):
            if not r.ok:
                x.failure, x.done = f"reset failed: {r.error}", True
                continue
            x.obs, x.info = r.observation, dict(r.info)
            x.obs_key = observation_key(r.observation)
            x.state_key = state_key(r.info, x.obs_key)
            x.history.reset(r.observation, r.info)
        encoded: dict[str, Any] = {}
        for turn in range(self.config.max_turns):
            active = [x for x in live if not x.done]
            if not active:
                break
            t0 = time.perf_counter()
            views = [x.history.view() for x in active]
            prompts = []
            for v in views:
                # Identical views (a group's first turn, states trajectories share) get one Encoded
                # object: encoded once, and the update runs the vision tower once for all of them.
                k = observation_key(v)
                if k not in encoded:
                    encoded[k] = self.prompt(v)
                prompts.append(encoded[k])
            t1 = time.perf_counter()
            times["prompt"] += t1 - t0
            if act is None:
                comps, lps = self.policy.sample_logprobs(prompts, temperature=temperature, top_p=top_p,
                                                         max_new_tokens=max_new_tokens)
                texts = [self.policy.decode(c) for c in comps]
            else:
                texts = list(act(views, [x.info for x in active]))
                comps, lps = [[] for _ in active], [[] for _ in active]
            times["generate"] += time.perf_counter() - t1
            actions = [self.env_action(x.obs, text) for x, text in zip(active, texts)]
            t0 = time.perf_counter()
            res = self.pool.step([(x.slot, a) for x, a in zip(active, actions)])
            times["env"] += time.perf_counter() - t0
            last = turn == self.config.max_turns - 1
            for x, p, c, lp, text, a, r in zip(active, prompts, comps, lps, texts, actions, res):
                if not r.ok:
                    x.failure, x.done = f"step {len(x.steps)} failed: {r.error}", True
                    continue
                self._record(x, Turn(p, list(c), list(lp), text), a, r, last)
        # Every trajectory of the rollout is accounted for: done, failed, or cut at max_turns.
        groups, turns, failures, successes = [], [], [], []
        for g, task in enumerate(tasks):
            mine = live[g * group_size:(g + 1) * group_size]
            trajs = [Trajectory(g, x.j, x.steps, None) for x in mine]
            groups.append(Group(g, trajs, task.seed, task.options))
            turns.append([x.turns for x in mine])
            failures.append([x.failure for x in mine])
            successes.append([x.success for x in mine])
        return MultiTurnRollout(list(tasks), groups, turns, failures, successes, times)

    def env_action(self, obs: Any, text: str) -> Any:
        """What the env receives for the model's ``text``: for a screen policy the action read in its
        coordinate frame and mapped to the screenshot's pixels (:func:`guienv.parsing.read_action`,
        as ``guienv eval``'s agents hand it over; unreadable text is an invalid action the env
        flags), for a text policy the text itself (the env parses its command)."""
        if not self.policy.is_vision or not isinstance(obs, Mapping) or "screenshot" not in obs:
            return text
        h, w = np.asarray(obs["screenshot"]).shape[:2]
        return read_action(text, Screen(w, h, self.policy.resize), self.policy.frame)

    def _record(self, x: _Live, turn: Turn, action: Any, r: Any, last: bool) -> None:
        info = dict(r.info)
        valid = step_valid(info)
        reward = float(r.reward) - (self.config.invalid_penalty if not valid else 0.0)
        terminated = bool(r.terminated)
        truncated = bool(r.truncated) or (last and not terminated)
        nkey = observation_key(r.observation)
        nskey = state_key(info, nkey)
        compact = {k: info[k] for k in _INFO_KEYS if k in info}
        # The identity of the action for SALT/GiGPO: the parsed action (two texts that do the same
        # thing are one edge), or a text env's parsed command.
        cmd = info.get("action") if isinstance(info.get("action"), str) else None
        key = action_text(action) if not isinstance(action, str) else (cmd or action)
        x.steps.append(RolloutStep(x.g, x.j, len(x.steps), None, x.obs_key, x.state_key, key, reward, terminated,
                                   truncated, valid, nkey, nskey, compact))
        x.turns.append(turn)
        x.total += float(r.reward)
        x.obs, x.info, x.obs_key, x.state_key = r.observation, info, nkey, nskey
        x.history.record(action, r.observation, info)
        if terminated or truncated:
            x.done = True
            x.success = episode_success(info, x.total)


def rollout_stats(ro: MultiTurnRollout) -> dict[str, float]:
    """Per-step diagnostics of a rollout (sums and counts, so ranks can add them up)."""
    trajs = [t for g in ro.groups for t in g.trajectories]
    steps = [s for t in trajs for s in t.steps]
    fails = [f for fs in ro.failures for f in fs]
    ok = [s for g, fs in zip(ro.successes, ro.failures) for s, f in zip(g, fs) if f is None]
    lens = [len(c.completion) for ts in ro.turns for tt in ts for c in tt]
    return {
        "trajectories": float(len(trajs)),
        "failed": float(sum(f is not None for f in fails)),
        "succeeded": float(sum(ok)),
        "scored": float(len(ok)),
        "turns": float(len(steps)),
        "invalid": float(sum(not s.valid for s in steps)),
        "completion_tokens": float(sum(lens)),
        "return_sum": float(sum(t.total_reward for t, f in zip(trajs, fails) if f is None)),
    }

