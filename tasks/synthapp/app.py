"""Multi-screen synthetic apps: screens as state, actions as transitions, ``k``-step tasks.

An app (:class:`SynthApp`) has a tab bar over three or four top-level screens: a *list* whose rows
open detail screens (heart = favourite, trash = delete after a confirm dialog, back arrow), a
*settings* screen of toggles, a *form* of text fields with a submit button (confirm dialog), and
sometimes a *home* screen of buttons that do nothing (distractors). :class:`AppState` holds
everything that can change; :meth:`SynthApp.press` and :meth:`SynthApp.type_text` are its
transitions (:mod:`tasks.synthapp.transitions`), :meth:`SynthApp.apply` maps a pixel-frame :class:`~guienv.actions.Action` onto them
by hit testing the rendered widgets.

A task (:func:`make_app_task`) is a list of :class:`Goal` predicates over the state (toggle X is
on, field Y holds the typed text, item Z is deleted, ...) plus a goal text naming the visible labels
and icons. Its length ``k`` is exact: tasks are built by simulating the state-based oracle
(:meth:`SynthApp.oracle` in :mod:`tasks.synthapp.oracle`, the next correct move from *any* state) and keeping goal sequences whose
oracle plan is exactly ``k`` actions long. Success is "all goals hold at once".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import tasks.synthapp.oracle as oracle
import tasks.synthapp.transitions as transitions
import tasks.synthapp.vocab as V
from guienv.actions import Action
from tasks.synthapp.config import as_config, task_rng
from tasks.synthapp.layout import AppLayout
from tasks.synthapp.state import AppState, Goal, Move

_SALT_APP = 0xA9917


@dataclass
class AppTask:
    """A task on one app: start state, goals, exact oracle length ``k`` and goal text."""

    app: SynthApp
    start: AppState
    goals: tuple[Goal, ...]
    k: int
    instruction: str
    seed: int
    index: int

    def success(self, s: AppState) -> bool:
        return all(g.satisfied(self.app, s) for g in self.goals)

    def describe(self) -> dict[str, Any]:
        return {
            "instruction": self.instruction,
            "k": self.k,
            "goals": [{"kind": g.kind, "target": g.target, "value": g.value} for g in self.goals],
            "seed": self.seed,
            "index": self.index,
        }


class SynthApp(AppLayout):
    """A generated app: its layout and renderer (:class:`AppLayout`), transitions and oracle."""

    # -- transitions (tasks.synthapp.transitions) ----------------------------------------------
    def press(self, s: AppState, name: str) -> AppState:
        """The state after activating control ``name``."""
        return transitions.press(self, s, name)

    def type_text(self, s: AppState, text: str) -> AppState | None:
        """Set the focused field to ``text``; None if no field has focus."""
        return transitions.type_text(s, text)

    def apply(self, s: AppState, a: Action) -> tuple[AppState, str | None]:
        """Apply a pixel-frame action; returns the new state and why it was invalid (or None)."""
        return transitions.apply(self, s, a)

    # -- oracle (tasks.synthapp.oracle) --------------------------------------------------------
    def oracle(self, s: AppState, goals: tuple[Goal, ...]) -> Move | None:
        """The next correct move towards ``goals`` from any state (None: done or impossible)."""
        return oracle.next_move(self, s, goals)

    def step_move(self, s: AppState, m: Move) -> AppState:
        return oracle.step_move(self, s, m)

    def move_action(self, s: AppState, m: Move) -> tuple[Action, tuple[float, float, float, float] | None]:
        """The pixel-frame action of an oracle move and the box of the control it touches."""
        return oracle.move_action(self, s, m)

    def plan_length(self, s: AppState, goals: tuple[Goal, ...], limit: int = 64) -> int | None:
        """Moves the oracle needs from ``s`` (None if it cannot finish within ``limit``)."""
        return oracle.plan_length(self, s, goals, limit)

    def initial_state(self, rng: np.random.Generator) -> AppState:
        return AppState(int(rng.integers(len(self.tabs))), dict(self.toggle_init),
                        {f: "" for f in self.field_labels}, self.items, self.fav_init)




def _candidates(app: SynthApp, s: AppState, used: set[str], have_submit: bool, rng: np.random.Generator) -> list[Goal]:
    out: list[Goal] = []
    for t in app.toggle_labels:
        if t not in used:
            out.append(Goal("toggle", t, not s.toggles[t]))
    free_fields = [f for f in app.field_labels if f not in used]
    for f in free_fields:
        out.append(Goal("fill", f, _value(f, rng)))
    for it in s.items:
        if it in used:
            continue
        if it not in s.favorites:
            out.append(Goal("favorite", it))
        out.append(Goal("delete", it))
        out.append(Goal("open", it))
    if not have_submit and free_fields:
        m = int(rng.integers(1, min(2, len(free_fields)) + 1))
        chosen = [free_fields[int(i)] for i in rng.choice(len(free_fields), size=m, replace=False)]
        out.append(Goal("submit", "form", tuple((f, _value(f, rng)) for f in chosen)))
    for label, _, _ in app.tabs:
        out.append(Goal("tab", label))
    return out


def _value(field_label: str, rng: np.random.Generator) -> str:
    pool = V.FIELD_VALUES.get(field_label, V.WORDS)
    return pool[int(rng.integers(len(pool)))]


def _goal_text(app: SynthApp, goals: tuple[Goal, ...]) -> str:
    parts = [g.describe(app) for g in goals]
    text = ". Then ".join(parts)
    return text[0].upper() + text[1:] + "."


def build_task(app: SynthApp, k: int, rng: np.random.Generator, seed: int, index: int,
               attempts: int = 200) -> AppTask:
    """A task whose oracle plan is exactly ``k`` moves (rejection sampling over goal sequences)."""
    for _ in range(attempts):
        start = app.initial_state(rng)
        goals: tuple[Goal, ...] = ()
        used: set[str] = set()
        length = 0
        while length < k:
            cands = _candidates(app, start, used, any(g.kind == "submit" for g in goals), rng)
            # one kind at a time, so kinds with many instances (rows) don't dominate
            kinds = sorted({c.kind for c in cands})
            accepted = False
            for _ in range(12):
                kind = kinds[int(rng.integers(len(kinds)))]
                pool = [c for c in cands if c.kind == kind]
                g = pool[int(rng.integers(len(pool)))]
                trial = goals + (g,)
                n = app.plan_length(start, trial, limit=k + 1)
                if n is None or n <= length or n > k or (g.terminal and n != k):
                    continue
                goals, length, accepted = trial, n, True
                used.add(g.target)
                if g.kind == "submit":
                    used.update(f for f, _ in g.value)
                break
            if not accepted or goals[-1].terminal:
                break
        if length == k:
            return AppTask(app, start, goals, k, _goal_text(app, goals), seed, index)
    raise ValueError(
        f"could not build a {k}-step task on this app in {attempts} tries; "
        f"raise SynthConfig.distractors (more controls) or lower steps"
    )


def make_app_task(config: Any = None, seed: int | None = None, index: int = 0, steps: int | None = None) -> AppTask:
    """App task ``index`` of dataset ``seed`` (default ``config.seed``): a fresh app and a goal
    needing exactly ``steps`` (default ``config.steps``) actions. Deterministic."""
    cfg = as_config(config)
    seed = cfg.seed if seed is None else int(seed)
    k = cfg.steps if steps is None else int(steps)
    if not 1 <= k <= 32:
        raise ValueError(f"steps must be in [1, 32], got {k}")
    rng = task_rng(_SALT_APP, seed, index)
    app = SynthApp(cfg, rng)
    return build_task(app, k, rng, seed, index)
