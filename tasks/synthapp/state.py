"""The state of a generated app and the predicates and moves defined over it.

:class:`AppState` holds everything a user can change; a :class:`Goal` is one predicate of a task
over it; a :class:`Move` is one step of the oracle. Goals read the app's labels through
:class:`AppLabels` (the part of a :class:`~tasks.synthapp.app.SynthApp` they need).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol


class AppLabels(Protocol):
    """What goal predicates and texts read from an app: its tabs and the submit button label."""

    tabs: list[tuple[str, str, str]]  # (label, icon, kind)
    tab_of: dict[str, int]  # kind -> tab index
    submit_label: str


@dataclass
class AppState:
    """Everything a user can change. ``detail`` is the list item whose detail screen is open."""

    tab: int
    toggles: dict[str, bool]
    fields: dict[str, str]
    items: tuple[str, ...]
    favorites: frozenset[str]
    detail: str | None = None
    dialog: tuple[str, str] | None = None  # ("delete", item) | ("submit", "")
    focus: str | None = None
    submitted: tuple[tuple[str, str], ...] | None = None

    def copy(self) -> AppState:
        return replace(self, toggles=dict(self.toggles), fields=dict(self.fields))

    def key(self) -> tuple:
        """Hashable view of the state (what the screen shows depends only on it)."""
        return (self.tab, self.detail, self.dialog, self.focus, tuple(self.toggles.values()),
                tuple(self.fields.values()), self.items, self.detail in self.favorites if self.detail else None)


@dataclass(frozen=True)
class Goal:
    """One predicate of a task. ``kind``: tab | toggle | open | favorite | delete | fill | submit."""

    kind: str
    target: str
    value: Any = None  # toggle: bool; fill: text; submit: ((field, text), ...)

    @property
    def terminal(self) -> bool:
        """Goals about *where* the user is; only the last goal of a task may be one."""
        return self.kind in ("tab", "open")

    def satisfied(self, app: AppLabels, s: AppState) -> bool:
        k = self.kind
        if k == "tab":
            return s.detail is None and s.dialog is None and app.tabs[s.tab][0] == self.target
        if k == "toggle":
            return s.toggles.get(self.target) == self.value
        if k == "open":
            return s.detail == self.target and s.dialog is None
        if k == "favorite":
            return self.target in s.favorites
        if k == "delete":
            return self.target not in s.items
        if k == "fill":
            return s.fields.get(self.target, "").strip() == self.value
        if k == "submit":
            got = dict(s.submitted or ())
            return s.submitted is not None and all(got.get(f, "").strip() == v for f, v in self.value)
        raise ValueError(f"unknown goal kind {k!r}")

    def describe(self, app: AppLabels) -> str:
        k, t = self.kind, self.target
        lst, sett, form = (app.tabs[app.tab_of[x]][0] for x in ("list", "settings", "form"))
        if k == "tab":
            return f"go to the {t} tab"
        if k == "toggle":
            return f"turn {'on' if self.value else 'off'} {t} in {sett}"
        if k == "open":
            return f"open '{t}' in {lst}"
        if k == "favorite":
            return f"open '{t}' in {lst} and tap the heart icon"
        if k == "delete":
            return f"delete '{t}' from {lst} with the trash icon and confirm"
        if k == "fill":
            return f"type '{self.value}' in the {t} field on the {form} tab"
        if k == "submit":
            parts = " and ".join(f"'{v}' as {f}" for f, v in self.value)
            return f"on the {form} tab enter {parts}, then tap '{app.submit_label}' and confirm"
        raise ValueError(k)


@dataclass(frozen=True)
class Move:
    """An oracle move: press widget ``name`` or type ``text`` into the focused field ``name``."""

    kind: str  # press | type
    name: str
    text: str | None = None
