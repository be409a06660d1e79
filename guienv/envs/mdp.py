"""``guienv/MDP-v0``: finite-horizon tabular MDPs with exact values, advantages and gradients.

The env runs a :class:`tasks.mdp_specs.MDPSpec`: the observation is the current state's
observation text (several states may share one: aliasing), actions are the spec's action names
(or their indices), rewards are paid on arrival, arriving in a terminal state terminates, and the
``horizon``-th step truncates. ``info["state"]`` names the hidden state (for analysis only: a
policy must act on the observation), ``info["t"]`` is the step index.

Exact quantities for a tabular policy ``pi`` acting on observations, ``pi[o, a]`` (stationary)
or ``pi[t, o, a]`` (horizon-indexed), by backward induction over the hidden states (a policy
that depends only on the current observation makes the hidden-state process Markov, so this is
exact even with aliasing)::

    V_H(s) = 0,   V_t(s) = 0 for terminal s
    Q_t(s, a) = sum_s' P(s'|s,a) [ R(s,a,s') + V_{t+1}(s') ]
    V_t(s) = sum_a pi_t(a | o(s)) Q_t(s, a),    A_t(s, a) = Q_t(s, a) - V_t(s)

and the policy gradient of ``J = E[sum_t r_t]`` for a softmax policy ``pi = softmax(theta)``
(policy gradient theorem, Sutton et al. 2000, finite-horizon form)::

    dJ/dtheta[t, o, b] = sum_{s: o(s) = o} d_t(s) pi_t(b|o) A_t(s, b)

with ``d_t(s)`` the probability of being in non-terminal ``s`` at step ``t``; a stationary
``theta[o, b]`` sums this over ``t``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from guienv.actions import Action, ActionType
from guienv.envs.options import int_option, reset_options
from guienv.spaces import AnyText
from tasks.mdp_specs import BUILDERS, MDPArrays, MDPSpec, build, load_specs, spec_from_dict

_ACTION_TAG = re.compile(r"<action>(.*?)</action>", re.IGNORECASE | re.DOTALL)


# -- exact solution ------------------------------------------------------------------------
@dataclass(frozen=True)
class ExactValues:
    """Exact ``V[t, s]`` (``t = 0..H``), ``Q[t, s, a]``, ``A[t, s, a]`` and the occupancy
    ``d[t, s]`` (probability the episode is running and in ``s`` at step ``t``)."""

    V: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    d: np.ndarray

    @property
    def J(self) -> float:
        """Expected return from the start distribution."""
        return float((self.d[0] * self.V[0]).sum())


def _time_policy(pi: np.ndarray, horizon: int) -> np.ndarray:
    pi = np.asarray(pi, dtype=np.float64)
    if pi.ndim == 2:
        return np.broadcast_to(pi, (horizon,) + pi.shape)
    if pi.ndim == 3 and pi.shape[0] == horizon:
        return pi
    raise ValueError(f"policy must be (n_obs, n_actions) or (horizon={horizon}, n_obs, n_actions), got {pi.shape}")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def evaluate_policy(mdp: MDPArrays | MDPSpec, pi: np.ndarray) -> ExactValues:
    """Backward induction for the observation-based policy ``pi`` (see the module docstring)."""
    m = mdp.arrays() if isinstance(mdp, MDPSpec) else mdp
    H = m.horizon
    pt = _time_policy(pi, H)
    S, A = m.P.shape[:2]
    if pt.shape[1:] != (m.n_obs, A):
        raise ValueError(f"policy shape {pt.shape[1:]} != (n_obs={m.n_obs}, n_actions={A})")
    live = ~m.terminal
    V = np.zeros((H + 1, S))
    Q = np.zeros((H, S, A))
    exp_r = (m.P * m.R).sum(axis=2)  # (S, A)
    for t in range(H - 1, -1, -1):
        Q[t] = exp_r + m.P @ V[t + 1]
        Q[t][~live] = 0.0
        V[t] = (pt[t][m.obs_of] * Q[t]).sum(axis=1)
    d = np.zeros((H, S))
    d[0] = m.start * live
    for t in range(H - 1):
        flow = d[t][:, None] * pt[t][m.obs_of]  # (S, A)
        d[t + 1] = np.einsum("sa,sak->k", flow, m.P) * live
    Adv = Q - V[:H, :, None]
    Adv[:, ~live] = 0.0
    return ExactValues(V, Q, Adv, d)


def policy_gradient(mdp: MDPArrays | MDPSpec, logits: np.ndarray) -> np.ndarray:
    """Exact ``dJ/dlogits`` for ``pi = softmax(logits)``; ``logits`` is ``(n_obs, A)`` (stationary)
    or ``(H, n_obs, A)`` (horizon-indexed); the gradient has the same shape."""
    m = mdp.arrays() if isinstance(mdp, MDPSpec) else mdp
    pi = softmax(logits)
    ex = evaluate_policy(m, pi)
    pt = _time_policy(pi, m.horizon)
    # per (t, s, b): d_t(s) pi_t(b|o(s)) A_t(s, b), then summed over states sharing an observation
    contrib = ex.d[:, :, None] * pt[:, m.obs_of, :] * ex.A  # (H, S, A)
    grad_t = np.zeros((m.horizon, m.n_obs, contrib.shape[2]))
    np.add.at(grad_t, (slice(None), m.obs_of), contrib)
    return grad_t if np.asarray(logits).ndim == 3 else grad_t.sum(axis=0)


def observation_advantages(mdp: MDPArrays | MDPSpec, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A_obs[t, o, a], weight[t, o])``: the exact advantage averaged over the hidden states that
    show observation ``o`` at step ``t`` (weighted by occupancy), i.e. what a learner that sees
    only observations can hope to estimate, and the occupancy of ``o``."""
    m = mdp.arrays() if isinstance(mdp, MDPSpec) else mdp
    ex = evaluate_policy(m, pi)
    H, S, A = ex.A.shape
    num = np.zeros((H, m.n_obs, A))
    w = np.zeros((H, m.n_obs))
    np.add.at(num, (slice(None), m.obs_of), ex.d[:, :, None] * ex.A)
    np.add.at(w, (slice(None), m.obs_of), ex.d)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(w[..., None] > 0, num / w[..., None], 0.0), w


# -- fast vectorised sampling (tests and benchmarks) ---------------------------------------
@dataclass(frozen=True)
class Episodes:
    """``n`` sampled episodes, padded to the horizon. ``states[:, t]`` is the state before step
    ``t`` (``states[:, H]`` the last); ``alive[:, t]`` says step ``t`` was taken."""

    states: np.ndarray  # (n, H + 1)
    actions: np.ndarray  # (n, H)
    rewards: np.ndarray  # (n, H)
    alive: np.ndarray  # (n, H) bool

    @property
    def returns(self) -> np.ndarray:
        return (self.rewards * self.alive).sum(axis=1)


def sample_episodes(mdp: MDPArrays | MDPSpec, pi: np.ndarray, n: int, rng: np.random.Generator) -> Episodes:
    """Sample ``n`` independent episodes with numpy (same dynamics as :class:`MDPEnv`)."""
    m = mdp.arrays() if isinstance(mdp, MDPSpec) else mdp
    H = m.horizon
    pt = _time_policy(pi, H)
    S = m.P.shape[0]
    states = np.zeros((n, H + 1), dtype=np.int64)
    actions = np.zeros((n, H), dtype=np.int64)
    rewards = np.zeros((n, H))
    alive = np.zeros((n, H), dtype=bool)
    states[:, 0] = _draw(np.broadcast_to(m.start, (n, S)), rng)
    running = ~m.terminal[states[:, 0]]
    for t in range(H):
        s = states[:, t]
        a = _draw(pt[t][m.obs_of[s]], rng)
        s2 = _draw(m.P[s, a], rng)
        actions[:, t] = a
        alive[:, t] = running
        rewards[:, t] = np.where(running, m.R[s, a, s2], 0.0)
        states[:, t + 1] = np.where(running, s2, s)
        running = running & ~m.terminal[s2]
    return Episodes(states, actions, rewards, alive)


def _draw(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    c = np.cumsum(probs, axis=-1)
    u = rng.random(probs.shape[:-1])[..., None] * c[..., -1:]
    return np.minimum((u >= c).sum(axis=-1), probs.shape[-1] - 1)


def episodes_to_arrays(m: MDPArrays, ep: Episodes, group_size: int, identity: str = "obs") -> dict[str, np.ndarray]:
    """Flatten episodes (consecutive blocks of ``group_size`` form a group) into the columns of
    :class:`agents.step_batch.StepBatch` plus ``t``, ``true_state``, ``obs``. ``identity``:
    ``obs`` (observation id), ``state`` (hidden state), ``history`` (prefix code)."""
    n, H = ep.actions.shape
    if n % group_size:
        raise ValueError("number of episodes must be a multiple of group_size")
    obs = m.obs_of[ep.states]  # (n, H + 1)
    if identity == "obs":
        key = obs
    elif identity == "state":
        key = ep.states
    elif identity == "history":
        # prefix codes: code_{t+1} = id(code_t, a_t, o_{t+1}); start from o_0
        key = np.zeros((n, H + 1), dtype=np.int64)
        key[:, 0] = obs[:, 0]
        nxt = int(obs.max()) + 1
        for t in range(H):
            trip = np.stack([key[:, t], ep.actions[:, t], obs[:, t + 1]], axis=1)
            _, inv = np.unique(trip, axis=0, return_inverse=True)
            key[:, t + 1] = inv.ravel() + nxt
            nxt = int(key[:, t + 1].max()) + 1
    else:
        raise ValueError(f"identity must be obs, state or history, got {identity!r}")
    ii, tt = np.nonzero(ep.alive)
    return {
        "group": ii // group_size,
        "traj": ii,
        "step": tt,
        "reward": ep.rewards[ii, tt],
        "state": key[ii, tt],
        "action": ep.actions[ii, tt],
        "next_state": key[ii, tt + 1],
        "t": tt,
        "true_state": ep.states[ii, tt],
        "obs": obs[ii, tt],
    }


# -- rendering (shared by the text envs) ---------------------------------------------------
def render_text(text: str, width: int = 640, height: int = 360) -> np.ndarray:
    """Draw ``text`` (wrapped) on a white ``(height, width, 3)`` uint8 image."""
    import textwrap

    from PIL import Image, ImageDraw

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    cols = max(10, width // 7)
    lines: list[str] = []
    for para in str(text).splitlines() or [""]:
        lines.extend(textwrap.wrap(para, cols) or [""])
    y = 4
    for line in lines:
        if y > height - 14:
            break
        draw.text((4, y), line, fill="black")
        y += 14
    return np.asarray(img, dtype=np.uint8)


# -- the env -------------------------------------------------------------------------------
def _as_spec(spec: Any) -> list[MDPSpec]:
    if isinstance(spec, MDPSpec):
        return [spec]
    if isinstance(spec, Mapping):
        return [spec_from_dict(spec)]
    if isinstance(spec, (str, Path)):
        if isinstance(spec, str) and spec in BUILDERS and not Path(spec).exists():
            return [build(spec)]
        return load_specs(spec)
    raise TypeError(f"spec must be an MDPSpec, a mapping, a YAML path or a builder name, got {type(spec).__name__}")


class MDPEnv(gym.Env):
    """A tabular MDP from a spec (or several: ``options={"index": i}`` picks one, else
    ``self.np_random``). Actions: an index, the action's name, text with ``<action>name</action>``,
    or a ``type`` :class:`~guienv.actions.Action` whose text is the name. Anything else is an
    invalid action: a no-op (state unchanged, reward 0, the step still counts) flagged with
    ``info["invalid"] = True``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, spec: Any = "chain", specs: Sequence[Any] | None = None, render_mode: str | None = None,
                 **builder_kwargs: Any):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        if specs is not None:
            self.specs = [s for x in specs for s in _as_spec(x)]
        elif builder_kwargs and isinstance(spec, str) and spec in BUILDERS:
            self.specs = [build(spec, **builder_kwargs)]
        else:
            self.specs = _as_spec(spec)
        if not self.specs:
            raise ValueError("no MDP spec given")
        actions = self.specs[0].actions
        if any(s.actions != actions for s in self.specs):
            raise ValueError("all specs of one env must share the action list")
        self.actions = actions
        self.arrays = [s.arrays() for s in self.specs]
        self.render_mode = render_mode
        self.observation_space = AnyText(4096)
        self.action_space = spaces.Discrete(len(actions))
        self._task = 0
        self._state = 0
        self._t = 0

    # -- helpers
    @property
    def spec_(self) -> MDPSpec:
        return self.specs[self._task]

    def _obs(self) -> str:
        return self.spec_.states[self._state].observation

    def _info(self, invalid: bool = False, action: str | None = None) -> dict[str, Any]:
        m = self.arrays[self._task]
        return {
            "state": self.spec_.state_names[self._state],
            "obs_id": int(m.obs_of[self._state]),
            "t": self._t,
            "task": self.spec_.name,
            "task_index": self._task,
            "admissible_commands": list(self.actions),
            "invalid": invalid,
            "action": action,
        }

    def read_command(self, action: Any) -> int | None:
        """Action index, or None if ``action`` names no action (never raises)."""
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
            return int(action) if 0 <= int(action) < len(self.actions) else None
        if isinstance(action, np.ndarray) and action.shape == () and np.issubdtype(action.dtype, np.integer):
            return self.read_command(int(action))
        if isinstance(action, Action):
            if action.type is ActionType.TYPE and action.text is not None:
                return self.read_command(action.text)
            return None
        if isinstance(action, str):
            found = _ACTION_TAG.findall(action[:10000])
            text = (found[-1] if found else action).strip().lower()
            for i, a in enumerate(self.actions):
                if text == a.lower():
                    return i
        return None

    # -- gym API
    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        i = int_option(reset_options(options), "index", 0, len(self.specs))
        self._task = int(self.np_random.integers(len(self.specs))) if i is None else i
        m = self.arrays[self._task]
        self._state = int(self.np_random.choice(len(m.start), p=m.start))
        self._t = 0
        return self._obs(), self._info()

    def step(self, action: Any):
        m = self.arrays[self._task]
        a = self.read_command(action)
        reward = 0.0
        if a is not None and not m.terminal[self._state]:
            probs = m.P[self._state, a]
            nxt = int(self.np_random.choice(len(probs), p=probs))
            reward = float(m.R[self._state, a, nxt])
            self._state = nxt
        self._t += 1
        terminated = bool(m.terminal[self._state])
        truncated = not terminated and self._t >= m.horizon
        info = self._info(invalid=a is None, action=None if a is None else self.actions[a])
        return self._obs(), reward, terminated, truncated, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return render_text(f"{self.spec_.name}  t={self._t}\nobservation: {self._obs()}\nactions: {', '.join(self.actions)}")

    # -- exact quantities for this env's current task
    def policy_values(self, pi: np.ndarray) -> ExactValues:
        return evaluate_policy(self.arrays[self._task], pi)

    def policy_gradient(self, logits: np.ndarray) -> np.ndarray:
        return policy_gradient(self.arrays[self._task], logits)


def score_function_gradients(cols: Mapping[str, np.ndarray], adv: np.ndarray, logits: np.ndarray,
                             group_size: int) -> np.ndarray:
    """Per-group policy-gradient estimates ``(1/G) sum_i sum_t Â_{i,t} grad log pi_t(a_t|o_t)`` for
    a softmax policy ``softmax(logits)`` (``(n_obs, A)`` or ``(H, n_obs, A)``), from the columns
    of :func:`episodes_to_arrays` and per-row advantages. Returns ``(n_groups, *logits.shape)``."""
    logits = np.asarray(logits, dtype=np.float64)
    pi = softmax(logits)
    timed = logits.ndim == 3
    n_groups = int(cols["group"].max()) + 1
    cell_shape = logits.shape[:-1]  # (n_obs,) or (H, n_obs)
    n_cells = int(np.prod(cell_shape))
    A = logits.shape[-1]
    cell = (cols["t"] * logits.shape[1] + cols["obs"]) if timed else cols["obs"]
    g = cols["group"]
    # sum_rows adv * (e_a - pi(.|cell)): accumulate adv per (group, cell, a) and per (group, cell)
    w_a = np.bincount((g * n_cells + cell) * A + cols["action"], adv, minlength=n_groups * n_cells * A)
    w_c = np.bincount(g * n_cells + cell, adv, minlength=n_groups * n_cells)
    grad = w_a.reshape(n_groups, n_cells, A) - w_c.reshape(n_groups, n_cells, 1) * pi.reshape(1, n_cells, A)
    return grad.reshape((n_groups,) + logits.shape) / group_size
