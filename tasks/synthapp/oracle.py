"""The oracle of a generated app: the next correct move towards a task's goals from any state.

Tasks are built by simulating it (:func:`plan_length`), so a task's length ``k`` is exact; the
env's expert actions (``oracle_action``) come from :func:`next_move` and :func:`move_action`.
"""

from __future__ import annotations

from guienv.actions import Action
from tasks.synthapp.layout import AppLayout
from tasks.synthapp.state import AppState, Goal, Move
from tasks.synthapp.transitions import press, type_text


def next_move(app: AppLayout, s: AppState, goals: tuple[Goal, ...]) -> Move | None:
    """The next correct move towards ``goals`` from any state (None: done or impossible)."""
    g = next((g for g in goals if not g.satisfied(app, s)), None)
    if g is None:
        return None
    if s.dialog is not None:
        fields_ok = g.kind == "submit" and all(s.fields[f].strip() == v for f, v in g.value)
        want = (g.kind == "delete" and s.dialog == ("delete", g.target)) or (g.kind == "submit" and fields_ok
                                                                             and s.dialog[0] == "submit")
        return Move("press", "dlg:ok" if want else "dlg:cancel")
    lst = app.tab_of["list"]
    if g.kind in ("favorite", "delete", "open"):
        if g.target not in s.items:
            return None  # deleted by the agent: the task can no longer succeed
        if s.detail == g.target:
            return Move("press", "heart" if g.kind == "favorite" else "trash")
        if s.detail is not None:
            return Move("press", "back")
        if s.tab != lst:
            return Move("press", f"tab:{lst}")
        return Move("press", f"row:{g.target}")
    if s.detail is not None:
        return Move("press", "back")
    need = {"toggle": "settings", "fill": "form", "submit": "form"}.get(g.kind)
    tab = app.tab_of[need] if need else next(i for i, t in enumerate(app.tabs) if t[0] == g.target)
    if s.tab != tab:
        return Move("press", f"tab:{tab}")
    if g.kind == "toggle":
        return Move("press", f"switch:{g.target}")
    pairs = ((g.target, g.value),) if g.kind == "fill" else g.value
    for f, v in pairs:
        if s.fields[f].strip() != v:
            return Move("type", f"field:{f}", v) if s.focus == f else Move("press", f"field:{f}")
    return Move("press", "submit")

def step_move(app: AppLayout, s: AppState, m: Move) -> AppState:
    if m.kind == "press":
        return press(app, s, m.name)
    n = type_text(s, m.text or "")
    assert n is not None, "oracle typed with no focused field"
    return n

def move_action(app: AppLayout, s: AppState, m: Move) -> tuple[Action, tuple[float, float, float, float] | None]:
    """The pixel-frame action of an oracle move and the box of the control it touches."""
    w = app.widget(s, m.name)
    box = None if w is None else tuple(float(v) for v in w.box)
    if m.kind == "type":
        return Action.type_text(m.text or ""), box  # type: ignore[return-value]
    if w is None:
        raise RuntimeError(f"oracle pressed {m.name!r}, which the screen does not show")
    x, y = w.center
    return Action.click(x, y), box  # type: ignore[return-value]

def plan_length(app: AppLayout, s: AppState, goals: tuple[Goal, ...], limit: int = 64) -> int | None:
    """Moves the oracle needs from ``s`` (None if it cannot finish within ``limit``)."""
    for n in range(limit + 1):
        m = next_move(app, s, goals)
        if m is None:
            return n if all(g.satisfied(app, s) for g in goals) else None
        s = step_move(app, s, m)
    return None
