"""State transitions of a generated app: what pressing a control, typing or a system key does.

Plain functions of ``(app, state)`` returning a new :class:`~tasks.synthapp.state.AppState`
(states are never changed in place); :func:`apply` maps a pixel-frame
:class:`~guienv.actions.Action` onto them by hit testing the rendered widgets.
"""

from __future__ import annotations

from guienv.actions import Action, ActionType
from tasks.synthapp.layout import AppLayout
from tasks.synthapp.state import AppState


def press(app: AppLayout, s: AppState, name: str) -> AppState:
    """The state after activating control ``name``."""
    n = s.copy()
    if not name.startswith("field:"):
        n.focus = None
    if name.startswith("tab:"):
        n.tab, n.detail = int(name[4:]), None
    elif name.startswith("row:"):
        n.detail = name[4:]
    elif name.startswith("switch:"):
        lab = name[7:]
        n.toggles[lab] = not n.toggles[lab]
    elif name.startswith("field:"):
        n.focus = name[6:]
    elif name == "submit":
        n.dialog = ("submit", "")
    elif name == "back":
        n.detail = None
    elif name == "heart" and n.detail:
        n.favorites = n.favorites ^ {n.detail}
    elif name == "trash" and n.detail:
        n.dialog = ("delete", n.detail)
    elif name == "dlg:ok" and n.dialog:
        kind, item = n.dialog
        if kind == "delete":
            n.items = tuple(i for i in n.items if i != item)
            n.favorites = n.favorites - {item}
            n.detail = None
        else:
            n.submitted = tuple((f, n.fields[f]) for f in app.field_labels)
        n.dialog = None
    elif name == "dlg:cancel":
        n.dialog = None
    return n  # share, more, home buttons: no effect

def type_text(s: AppState, text: str) -> AppState | None:
    """Set the focused field to ``text`` (Android's ACTION_SET_TEXT replaces); None if no field
    has focus."""
    if s.focus is None or s.dialog is not None:
        return None
    n = s.copy()
    n.fields[s.focus] = text
    return n

def apply(app: AppLayout, s: AppState, a: Action) -> tuple[AppState, str | None]:
    """Apply a pixel-frame action; returns the new state and why it was invalid (or None).

    ``click`` presses the control under the point (a miss is a valid no-op); ``type`` fills the
    focused field (with a ``point``: clicks there first); ``navigate_back`` closes a dialog, drops
    focus or leaves a detail screen; ``navigate_home`` goes to the first tab; ``keyboard_enter``
    drops focus; ``wait``, ``scroll``, ``swipe`` and ``long_press`` change nothing."""
    t = a.type
    if t in (ActionType.CLICK, ActionType.TYPE) and a.point is not None:
        x, y = a.point
        if not (0 <= x < app.W and 0 <= y < app.H):
            return s, f"point ({x:.1f}, {y:.1f}) is outside the {app.W}x{app.H} screen"
    if t is ActionType.CLICK:
        w = app.hit(s, a.point)  # type: ignore[arg-type]
        return (press(app, s, w.name) if w is not None else s), None
    if t is ActionType.TYPE:
        if a.point is not None:
            w = app.hit(s, a.point)
            if w is None or w.kind != "field":
                return s, "type with a point that is not on a text field"
            s = press(app, s, w.name)
        n = type_text(s, a.text or "")
        return (s, "type with no focused text field") if n is None else (n, None)
    if t is ActionType.NAVIGATE_BACK:
        n = s.copy()
        if n.dialog:
            n.dialog = None
        elif n.focus:
            n.focus = None
        else:
            n.detail = None
        return n, None
    if t is ActionType.NAVIGATE_HOME:
        n = s.copy()
        n.tab, n.detail, n.dialog, n.focus = 0, None, None, None
        return n, None
    if t is ActionType.KEYBOARD_ENTER:
        n = s.copy()
        n.focus = None
        return n, None
    if t in (ActionType.WAIT, ActionType.SCROLL, ActionType.SWIPE, ActionType.LONG_PRESS, ActionType.FINISH):
        return s, None
    if t is ActionType.INVALID:
        return s, a.reason or "invalid action"
    return s, f"{t.value} is not an action this app understands"
