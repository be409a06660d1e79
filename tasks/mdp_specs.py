"""Finite-horizon tabular MDP specifications: dataclasses, YAML loading and builders.

A spec is what ``guienv/MDP-v0`` runs and what :mod:`guienv.envs.mdp` solves exactly (backward
induction). States carry an **observation** the agent sees; several states may share one
observation (aliasing), so a policy that acts on observations cannot tell them apart.

YAML format (one spec per file, or a list under ``specs:``)::

    name: diamond
    horizon: 4
    actions: [left, right]
    start: s0                    # or {s0: 0.5, s1: 0.5}
    states:
      s0:
        obs: "start"             # default: the state's name
        transitions:
          left: [{to: a, reward: 0}]                  # p defaults to 1
          right: [{to: b, p: 0.8}, {to: a, p: 0.2}]
      a: {transitions: {left: [{to: goal, reward: 1}], right: [{to: s0}]}}
      b: {obs: "a", transitions: {...}}               # aliased with a
      goal: {terminal: true}

An action a state does not list leaves the agent where it is with reward 0 (a self-loop), so
every state has the full action set and a tabular policy is a plain ``(n_obs, n_actions)`` table.
Terminal states end the episode on arrival; ``horizon`` bounds the number of steps (truncation).
Rewards are paid on arrival (they depend on ``(s, a, s')``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guienv.config import read_yaml
from guienv.errors import DataError


@dataclass(frozen=True)
class Outcome:
    """One possible result of taking an action: go to ``to`` with probability ``p``, earn ``reward``."""

    to: str
    p: float = 1.0
    reward: float = 0.0


@dataclass(frozen=True)
class StateSpec:
    name: str
    obs: str | None = None  # None: the observation is the state's name
    terminal: bool = False
    transitions: Mapping[str, tuple[Outcome, ...]] = field(default_factory=dict)

    @property
    def observation(self) -> str:
        return self.name if self.obs is None else self.obs


@dataclass(frozen=True)
class MDPSpec:
    """A finite-horizon MDP with (possibly aliased) observations."""

    name: str
    actions: tuple[str, ...]
    states: tuple[StateSpec, ...]
    start: Mapping[str, float]
    horizon: int
    where: str = "<spec>"  # file the spec came from, for error messages

    def __post_init__(self) -> None:
        names = [s.name for s in self.states]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise DataError(self.where, f"duplicate state names {dup}", record=self.name, field="states")
        if not self.actions or len(set(self.actions)) != len(self.actions):
            raise DataError(self.where, "actions must be a non-empty list of distinct names", record=self.name, field="actions")
        if not isinstance(self.horizon, int) or self.horizon < 1:
            raise DataError(self.where, f"horizon must be a positive integer, got {self.horizon!r}", record=self.name, field="horizon")
        known = set(names)
        for s in self.states:
            for a, outs in s.transitions.items():
                if a not in self.actions:
                    raise DataError(self.where, f"state {s.name!r} uses unknown action {a!r}", record=self.name, field="transitions")
                total = 0.0
                for o in outs:
                    if o.to not in known:
                        raise DataError(self.where, f"state {s.name!r}, action {a!r}: unknown target {o.to!r}", record=self.name, field="transitions")
                    if not (o.p >= 0 and math.isfinite(o.p)) or not math.isfinite(o.reward):
                        raise DataError(self.where, f"state {s.name!r}, action {a!r}: bad p/reward {o}", record=self.name, field="transitions")
                    total += o.p
                if abs(total - 1.0) > 1e-9:
                    raise DataError(self.where, f"state {s.name!r}, action {a!r}: probabilities sum to {total}, not 1", record=self.name, field="transitions")
        ps = 0.0
        for s, p in self.start.items():
            if s not in known:
                raise DataError(self.where, f"unknown start state {s!r}", record=self.name, field="start")
            ps += p
        if abs(ps - 1.0) > 1e-9:
            raise DataError(self.where, f"start probabilities sum to {ps}, not 1", record=self.name, field="start")

    # -- array views (what the env and the exact solver use) --------------------------------
    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.states)

    @property
    def observations(self) -> tuple[str, ...]:
        """Distinct observation texts, in order of first appearance."""
        seen: dict[str, None] = {}
        for s in self.states:
            seen.setdefault(s.observation, None)
        return tuple(seen)

    def arrays(self) -> MDPArrays:
        return MDPArrays.from_spec(self)


@dataclass(frozen=True)
class MDPArrays:
    """Dense arrays of a spec: ``P[s, a, s']``, ``R[s, a, s']`` (reward on arrival), ``terminal[s]``,
    ``obs_of[s]`` (observation index of each state), ``start[s]``."""

    P: np.ndarray
    R: np.ndarray
    terminal: np.ndarray
    obs_of: np.ndarray
    start: np.ndarray
    horizon: int
    n_obs: int

    @classmethod
    def from_spec(cls, spec: MDPSpec) -> MDPArrays:
        idx = {n: i for i, n in enumerate(spec.state_names)}
        aidx = {a: i for i, a in enumerate(spec.actions)}
        obs_idx = {o: i for i, o in enumerate(spec.observations)}
        S, A = len(idx), len(aidx)
        P = np.zeros((S, A, S))
        R = np.zeros((S, A, S))
        for s in spec.states:
            i = idx[s.name]
            for a in spec.actions:
                outs = s.transitions.get(a)
                if not outs:
                    P[i, aidx[a], i] = 1.0  # unlisted action: stay put, reward 0
                    continue
                for o in outs:
                    j = idx[o.to]
                    # Two outcomes with the same target merge: their expected reward is kept.
                    tot = P[i, aidx[a], j] + o.p
                    if tot > 0:
                        R[i, aidx[a], j] = (R[i, aidx[a], j] * P[i, aidx[a], j] + o.reward * o.p) / tot
                    P[i, aidx[a], j] = tot
        terminal = np.array([s.terminal for s in spec.states])
        obs_of = np.array([obs_idx[s.observation] for s in spec.states])
        start = np.zeros(S)
        for n, p in spec.start.items():
            start[idx[n]] = p
        return cls(P, R, terminal, obs_of, start, spec.horizon, len(obs_idx))


# -- YAML loading --------------------------------------------------------------------------
def _outcomes(raw: Any, where: str, rec: str, field_: str) -> tuple[Outcome, ...]:
    if isinstance(raw, (str, Mapping)):
        raw = [raw]
    if not isinstance(raw, Sequence) or not raw:
        raise DataError(where, f"expected a list of outcomes, got {raw!r}", record=rec, field=field_)
    out = []
    for o in raw:
        if isinstance(o, str):
            o = {"to": o}
        if not isinstance(o, Mapping) or "to" not in o:
            raise DataError(where, f"an outcome needs 'to', got {o!r}", record=rec, field=field_)
        unknown = set(o) - {"to", "p", "reward"}
        if unknown:
            raise DataError(where, f"unknown outcome keys {sorted(unknown)}", record=rec, field=field_)
        try:
            out.append(Outcome(str(o["to"]), float(o.get("p", 1.0)), float(o.get("reward", 0.0))))
        except (TypeError, ValueError) as exc:
            raise DataError(where, f"bad outcome {o!r}: {exc}", record=rec, field=field_) from exc
    return tuple(out)


def spec_from_dict(data: Mapping[str, Any], where: str = "<dict>") -> MDPSpec:
    """Build an :class:`MDPSpec` from the YAML structure (see the module docstring)."""
    if not isinstance(data, Mapping):
        raise DataError(where, f"a spec must be a mapping, got {type(data).__name__}")
    name = str(data.get("name", "mdp"))
    for key in ("actions", "states", "start", "horizon"):
        if key not in data:
            raise DataError(where, f"missing required key {key!r}", record=name, field=key)
    unknown = set(data) - {"name", "actions", "states", "start", "horizon"}
    if unknown:
        raise DataError(where, f"unknown keys {sorted(unknown)}", record=name)
    actions = data["actions"]
    if not isinstance(actions, Sequence) or isinstance(actions, str):
        raise DataError(where, "actions must be a list", record=name, field="actions")
    raw_states = data["states"]
    if not isinstance(raw_states, Mapping) or not raw_states:
        raise DataError(where, "states must be a non-empty mapping name -> state", record=name, field="states")
    states = []
    for sname, sd in raw_states.items():
        sd = sd or {}
        rec = f"{name}/{sname}"
        if not isinstance(sd, Mapping):
            raise DataError(where, f"state must be a mapping, got {sd!r}", record=rec)
        unknown = set(sd) - {"obs", "terminal", "transitions"}
        if unknown:
            raise DataError(where, f"unknown state keys {sorted(unknown)}", record=rec)
        trans_raw = sd.get("transitions") or {}
        if not isinstance(trans_raw, Mapping):
            raise DataError(where, "transitions must map action -> outcomes", record=rec, field="transitions")
        trans = {str(a): _outcomes(o, where, rec, f"transitions.{a}") for a, o in trans_raw.items()}
        obs = sd.get("obs")
        states.append(StateSpec(str(sname), None if obs is None else str(obs), bool(sd.get("terminal", False)), trans))
    start = data["start"]
    if isinstance(start, str):
        start = {start: 1.0}
    if not isinstance(start, Mapping):
        raise DataError(where, "start must be a state name or a mapping state -> probability", record=name, field="start")
    try:
        start = {str(k): float(v) for k, v in start.items()}
        horizon = int(data["horizon"])
    except (TypeError, ValueError) as exc:
        raise DataError(where, str(exc), record=name) from exc
    return MDPSpec(name, tuple(str(a) for a in actions), tuple(states), start, horizon, where)


def load_specs(path: str | Path) -> list[MDPSpec]:
    """Read one spec, or a list of specs under ``specs:``, from a YAML file."""
    path = Path(path)
    data = read_yaml(path)  # unreadable, non-UTF-8, invalid or too deep YAML: a DataError naming the file
    if isinstance(data, Mapping) and "specs" in data:
        items = data["specs"]
        if not isinstance(items, Sequence):
            raise DataError(path, "specs must be a list", field="specs")
        return [spec_from_dict(d, str(path)) for d in items]
    return [spec_from_dict(data, str(path))]


def load_spec(path: str | Path) -> MDPSpec:
    specs = load_specs(path)
    if len(specs) != 1:
        raise DataError(path, f"expected one spec, found {len(specs)}")
    return specs[0]


def spec_to_dict(spec: MDPSpec) -> dict[str, Any]:
    """Inverse of :func:`spec_from_dict` (for writing YAML)."""
    states = {}
    for s in spec.states:
        d: dict[str, Any] = {}
        if s.obs is not None:
            d["obs"] = s.obs
        if s.terminal:
            d["terminal"] = True
        if s.transitions:
            d["transitions"] = {a: [{"to": o.to, "p": o.p, "reward": o.reward} for o in outs] for a, outs in s.transitions.items()}
        states[s.name] = d
    return {"name": spec.name, "horizon": spec.horizon, "actions": list(spec.actions), "start": dict(spec.start), "states": states}


# -- builders ------------------------------------------------------------------------------
def tree(depth: int = 3, branching: int = 2, goal_leaf: int = 0, reward: float = 1.0) -> MDPSpec:
    """A complete ``branching``-ary tree of ``depth`` decisions; leaves are terminal and only leaf
    number ``goal_leaf`` (in left-to-right order) pays ``reward``. No two paths re-merge."""
    actions = tuple(f"a{i}" for i in range(branching))
    states: list[StateSpec] = []

    def node(path: tuple[int, ...]) -> str:
        return "root" if not path else "n" + "".join(map(str, path))

    def leaf_index(path: tuple[int, ...]) -> int:
        i = 0
        for b in path:
            i = i * branching + b
        return i

    frontier: list[tuple[int, ...]] = [()]
    while frontier:
        path = frontier.pop(0)
        if len(path) == depth:
            states.append(StateSpec(node(path), terminal=True))
            continue
        trans = {}
        for b, a in enumerate(actions):
            child = path + (b,)
            r = reward if len(child) == depth and leaf_index(child) == goal_leaf else 0.0
            trans[a] = (Outcome(node(child), 1.0, r),)
            frontier.append(child)
        states.append(StateSpec(node(path), transitions=trans))
    return MDPSpec(f"tree-d{depth}-b{branching}", actions, tuple(states), {"root": 1.0}, depth)


def chain(length: int = 6, n_actions: int = 3, dead_end: str = "trap", slip: float = 0.0,
          horizon: int | None = None, reward: float = 1.0, aliased: bool = False) -> MDPSpec:
    """A corridor of ``length`` states; action ``a0`` advances, the others lead to a dead end.

    ``dead_end="trap"``: a non-terminal sink the agent can never leave (the episode runs on to the
    horizon, reward 0); ``"terminal"``: a terminal failure state; ``"restart"``: back to the start.
    ``slip``: probability that the advancing action fails and leaves the agent in place.
    ``aliased``: every corridor state shows the same observation (the agent can't see where it is).
    Reaching the end pays ``reward`` (sparse, long-horizon)."""
    actions = tuple(f"a{i}" for i in range(n_actions))
    states = []
    for i in range(length):
        trans = {}
        nxt = f"c{i + 1}" if i + 1 < length else "goal"
        r = reward if i + 1 == length else 0.0
        adv = (Outcome(nxt, 1.0 - slip, r),) + ((Outcome(f"c{i}", slip, 0.0),) if slip > 0 else ())
        trans["a0"] = adv
        fail = {"trap": "trap", "terminal": "fail", "restart": "c0"}[dead_end]
        for a in actions[1:]:
            trans[a] = (Outcome(fail, 1.0, 0.0),)
        states.append(StateSpec(f"c{i}", obs="corridor" if aliased else None, transitions=trans))
    states.append(StateSpec("goal", terminal=True))
    if dead_end == "trap":
        states.append(StateSpec("trap"))  # unlisted actions: stay in the trap
    elif dead_end == "terminal":
        states.append(StateSpec("fail", terminal=True))
    h = horizon if horizon is not None else length + 2
    return MDPSpec(f"chain-{length}-{dead_end}" + (f"-slip{slip}" if slip else "") + ("-aliased" if aliased else ""),
                   actions, tuple(states), {"c0": 1.0}, h)


def remerge(n_diamonds: int = 2, reward: float = 1.0, good_prob: float = 0.9, bad_prob: float = 0.3) -> MDPSpec:
    """``n_diamonds`` diamonds in sequence: at each split ``up``/``down`` lead to different states
    that both re-merge at the next junction. The final step pays ``reward`` with a probability that
    depends on the branch taken last (``up``: ``good_prob``, ``down``: ``bad_prob``); the outcome is
    stochastic, so re-merged paths share edges with different returns."""
    actions = ("up", "down")
    states = []
    for k in range(n_diamonds):
        j, u, d = f"j{k}", f"u{k}", f"d{k}"
        nxt = f"j{k + 1}"
        states.append(StateSpec(j, transitions={"up": (Outcome(u),), "down": (Outcome(d),)}))
        if k + 1 < n_diamonds:
            states.append(StateSpec(u, transitions={"up": (Outcome(nxt),), "down": (Outcome(nxt),)}))
            states.append(StateSpec(d, transitions={"up": (Outcome(nxt),), "down": (Outcome(nxt),)}))
        else:
            for s, p in ((u, good_prob), (d, bad_prob)):
                outs = tuple(o for o in (Outcome("win", p, reward), Outcome("lose", 1 - p, 0.0)) if o.p > 0)
                states.append(StateSpec(s, transitions={"up": outs, "down": outs}))
    states += [StateSpec("win", terminal=True), StateSpec("lose", terminal=True)]
    return MDPSpec(f"remerge-{n_diamonds}", actions, tuple(states), {"j0": 1.0}, 2 * n_diamonds + 1)


def aliased_corridor(reward: float = 1.0) -> MDPSpec:
    """Two states with one observation that need **different** actions: from ``start``, ``left``
    leads to ``x1`` and ``right`` to ``x2``; both show ``"hall"``; in ``x1`` the right move is
    ``left``, in ``x2`` it is ``right``. A memoryless policy on observations can't be optimal."""
    actions = ("left", "right")
    win, lose = (Outcome("win", 1.0, reward),), (Outcome("lose", 1.0, 0.0),)
    states = (
        StateSpec("start", transitions={"left": (Outcome("x1"),), "right": (Outcome("x2"),)}),
        StateSpec("x1", obs="hall", transitions={"left": win, "right": lose}),
        StateSpec("x2", obs="hall", transitions={"left": lose, "right": win}),
        StateSpec("win", terminal=True),
        StateSpec("lose", terminal=True),
    )
    return MDPSpec("aliased-corridor", actions, states, {"start": 1.0}, 2)


def stochastic(slip: float = 0.3, reward: float = 1.0) -> MDPSpec:
    """A two-step task with stochastic transitions: ``go`` reaches ``mid`` with probability
    ``1 - slip`` and ``detour`` otherwise; ``wait`` stays. From ``mid`` ``go`` wins; from ``detour``
    ``go`` wins with probability 0.5. Same (s, a) can lead to different s' (SALT's edge includes s')."""
    actions = ("go", "wait")
    states = (
        StateSpec("s0", transitions={"go": (Outcome("mid", 1 - slip), Outcome("detour", slip))}),
        StateSpec("mid", transitions={"go": (Outcome("win", 1.0, reward),), "wait": (Outcome("lose"),)}),
        StateSpec("detour", transitions={"go": (Outcome("win", 0.5, reward), Outcome("lose", 0.5)), "wait": (Outcome("lose"),)}),
        StateSpec("win", terminal=True),
        StateSpec("lose", terminal=True),
    )
    return MDPSpec(f"stochastic-{slip}", actions, states, {"s0": 1.0}, 3)


BUILDERS = {
    "tree": tree,
    "chain": chain,
    "remerge": remerge,
    "aliased_corridor": aliased_corridor,
    "stochastic": stochastic,
}


def build(name: str, **kwargs: Any) -> MDPSpec:
    """A builder by name (``tree``, ``chain``, ``remerge``, ``aliased_corridor``, ``stochastic``)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown MDP builder {name!r}; known: {sorted(BUILDERS)}")
    return BUILDERS[name](**kwargs)
