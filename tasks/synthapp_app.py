"""Multi-screen synthetic apps: screens as state, actions as transitions, ``k``-step tasks.

An app (:class:`SynthApp`) has a tab bar over three or four top-level screens: a *list* whose rows
open detail screens (heart = favourite, trash = delete after a confirm dialog, back arrow), a
*settings* screen of toggles, a *form* of text fields with a submit button (confirm dialog), and
sometimes a *home* screen of buttons that do nothing (distractors). :class:`AppState` holds
everything that can change; :meth:`SynthApp.press` and :meth:`SynthApp.type_text` are its
transitions, :meth:`SynthApp.apply` maps a pixel-frame :class:`~guienv.actions.Action` onto them
by hit testing the rendered widgets.

A task (:func:`make_app_task`) is a list of :class:`Goal` predicates over the state (toggle X is
on, field Y holds the typed text, item Z is deleted, ...) plus a goal text naming the visible labels
and icons. Its length ``k`` is exact: tasks are built by simulating the state-based oracle
(:meth:`SynthApp.oracle`, the next correct move from *any* state) and keeping goal sequences whose
oracle plan is exactly ``k`` actions long. Success is "all goals hold at once".
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from PIL import Image

from guienv.actions import Action, ActionType
from guienv.geometry import point_in_box
from guienv.types import UIElement
from tasks import synthapp_vocab as V
from tasks.synthapp_render import Painter, Scene, Widget, make_theme, paint_patch, text_size, widget_element

_SALT_APP = 0xA9917
_LIST_TABS = (("Inbox", "mail"), ("Library", "bookmark"), ("Files", "cloud"), ("Contacts", "user"),
              ("Notes", "edit"), ("Playlists", "play"))
_SETTINGS_TABS = (("Settings", "gear"), ("Preferences", "gear"), ("Options", "filter"))
_FORM_TABS = (("Profile", "user"), ("Account", "lock"), ("Compose", "send"), ("Feedback", "chat"),
              ("Sign up", "edit"))
_HOME_TABS = (("Home", "home"), ("Today", "calendar"), ("Start", "star"))
_SUBMIT = ("Submit", "Save", "Send", "Update", "Register")
_SUBMIT_DIALOGS = (("Submit form?", "Send", "Cancel"), ("Save profile?", "Save", "Cancel"),
                   ("Send it now?", "Yes", "No"), ("Confirm changes?", "Confirm", "Cancel"))
_CACHE = 48  # rendered views kept per app


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

    def satisfied(self, app: SynthApp, s: AppState) -> bool:
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

    def describe(self, app: SynthApp) -> str:
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


def _dynamic(w: Widget) -> bool:
    """Widgets whose look follows the state within one screen (painted per state)."""
    return w.kind in ("switch", "field") or w.name == "heart"


class _TooSmall(Exception):
    pass


class SynthApp:
    """A generated app: labels, layout per screen, transitions, oracle and a cached renderer."""

    def __init__(self, cfg: Any, rng: np.random.Generator):
        self.cfg = cfg
        self.W, self.H = cfg.width, cfg.height
        self.desktop = cfg.width > cfg.height
        self.theme = make_theme(rng, cfg.themes, cfg.font_paths)
        used: set[str] = set()

        def pick(pool, k=1):
            free = [p for p in pool if (p[0] if isinstance(p, tuple) else p).lower() not in used]
            idx = rng.choice(len(free), size=k, replace=False)
            out = [free[int(i)] for i in idx]
            used.update((p[0] if isinstance(p, tuple) else p).lower() for p in out)
            return out

        kinds = ["list", "settings", "form"]
        rng.shuffle(kinds)
        if rng.random() < 0.5:
            kinds.insert(0, "home")
        pools = {"list": _LIST_TABS, "settings": _SETTINGS_TABS, "form": _FORM_TABS, "home": _HOME_TABS}
        self.tabs: list[tuple[str, str, str]] = []  # (label, icon, kind)
        for k in kinds:
            (label, icon), = pick(pools[k])
            self.tabs.append((label, icon, k))
        self.tab_of = {k: i for i, (_, _, k) in enumerate(self.tabs)}
        n = 1 + cfg.distractors
        self.items: tuple[str, ...] = tuple(pick(V.ROW_LABELS, min(n, len(V.ROW_LABELS) - 8)))
        self.item_icons = {it: V.ROW_ICONS[int(rng.integers(len(V.ROW_ICONS)))] for it in self.items}
        self.toggle_labels: tuple[str, ...] = tuple(pick(V.TOGGLE_LABELS, min(n, len(V.TOGGLE_LABELS))))
        self.toggle_init = {t: bool(rng.random() < 0.5) for t in self.toggle_labels}
        self.field_labels: tuple[str, ...] = tuple(pick(V.FIELD_LABELS, min(n, len(V.FIELD_LABELS))))
        (self.submit_label,) = pick(_SUBMIT)
        (self.title,) = pick(V.TITLES)
        self.dialog_submit = _SUBMIT_DIALOGS[int(rng.integers(len(_SUBMIT_DIALOGS)))]
        self.home_buttons: tuple[str, ...] = tuple(pick(V.BUTTON_LABELS, min(n, 12)))
        self.fav_init = frozenset(it for it in self.items if rng.random() < 0.3)
        self.body = " ".join(V.LOREM[int(i)] for i in rng.integers(len(V.LOREM), size=24))
        lo, hi = cfg.target_size
        self.u = math.sqrt(float(rng.uniform(lo, hi)) * self.W * self.H)
        self.switch_style = ("ios", "material")[int(rng.integers(2))]
        self.field_style = ("box", "underline", "filled")[int(rng.integers(3))]
        self.row_style = ("card_divider", "divider", "plain")[int(rng.integers(3))]
        for _ in range(40):  # shrink the UI until the longest screen fits
            try:
                self._metrics()
                self._check_fit()
                break
            except _TooSmall:
                self.u *= 0.9
                if self.u < 14:
                    raise ValueError(
                        f"SynthConfig: {cfg.distractors} distractors do not fit on a {self.W}x{self.H} app screen; "
                        "lower distractors"
                    ) from None
        self._views: OrderedDict[tuple, tuple[list[Widget], list[Widget]]] = OrderedDict()
        self._images: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bases: OrderedDict[tuple, np.ndarray] = OrderedDict()

    # -- geometry -----------------------------------------------------------------------------
    def _metrics(self) -> None:
        fmin, fmax = self.cfg.font_range
        u = self.u
        self.f = int(np.clip(round(0.36 * u), fmin, fmax))
        th = text_size("Ag", self.f, False, self.theme.font)[1]
        self.th = th
        self.row_h = max(round(1.1 * u), round(th * 2.0))
        self.icon = max(12, round(u))
        self.field_h = max(round(0.9 * u), round(th * 1.9))
        self.sw_h = max(10, round(0.62 * u))
        W, H = self.W, self.H
        if self.desktop:
            self.bar_h = int(np.clip(round(H * 0.04), 22, 40))
            self.side_w = int(np.clip(round(W * 0.2), 150, 280))
            self.nav_h = max(round(1.1 * u), round(th * 2.2))
            self.head_h = max(round(1.2 * u), round(th * 2.4))
            m = 24
            self.content = (self.side_w + m, self.bar_h + self.head_h + m // 2, min(W - m, self.side_w + m + 760), H - m)
        else:
            self.bar_h = int(np.clip(round(H * 0.042), 14, 32))
            self.head_h = max(round(1.15 * u), round(th * 2.4), 32)
            self.nav_h = max(round(1.35 * u), round(th * 3.0))
            m = 10
            self.content = (m, self.bar_h + self.head_h + m, W - m, H - self.nav_h - m)
        if self.desktop and len(self.tabs) * self.nav_h > H - self.bar_h - 16:
            raise _TooSmall()
        if self.content[3] - self.content[1] < 3 * self.row_h or self.content[2] - self.content[0] < 4 * self.icon:
            raise _TooSmall()

    def _check_fit(self) -> None:
        s = self._start_state_for_fit()
        for t in range(len(self.tabs)):
            s.tab = t
            self._layout(s)
        s.tab, s.detail = self.tab_of["list"], self.items[0]
        self._layout(s)

    def _start_state_for_fit(self) -> AppState:
        return AppState(0, dict(self.toggle_init), {f: "" for f in self.field_labels}, self.items, self.fav_init)

    # -- layout -------------------------------------------------------------------------------
    def _layout(self, s: AppState) -> tuple[list[Widget], list[Widget]]:
        """Widgets of the screen ``s`` shows (and the modal dialog's); raises _TooSmall if they
        do not fit."""
        t, f, font = self.theme, self.f, self.theme.font
        W, H = self.W, self.H
        ws: list[Widget] = []
        x0, y0, x1, y1 = self.content
        cw = x1 - x0
        on_detail = s.detail is not None
        title = s.detail if on_detail else self.tabs[s.tab][0]
        tf = min(self.cfg.font_range[1] + 4, f + 3)
        # chrome
        if self.desktop:
            ws.append(Widget("status", (0, 0, W, self.bar_h), self.title, "window_bar",
                             max(9, self.bar_h // 2), "window", interactive=False))
            ws.append(Widget("bar", (0, self.bar_h, self.side_w, H), "", "sidebar", style="right_line",
                             interactive=False))
            for i, (label, icon, _) in enumerate(self.tabs):
                y = self.bar_h + 8 + i * self.nav_h
                ws.append(Widget("tab", (0, y, self.side_w - 1, y + self.nav_h), label, f"tab:{i}", f, "pill",
                                 icon=None, on=i == s.tab and not on_detail))
            hx = x0
            if on_detail:
                ib = min(self.icon, self.head_h)
                hy = self.bar_h + (self.head_h - ib) // 2
                ws.append(Widget("icon", (x0, hy, x0 + ib, hy + ib), "back", "back", on=True))
                hx = x0 + ib + 12
            tw, th = text_size(title, tf, True, font)
            ws.append(Widget("text", (hx, self.bar_h + (self.head_h - th) // 2, hx + tw,
                                      self.bar_h + (self.head_h - th) // 2 + th), title, "title", tf, "title",
                             interactive=False))
        else:
            ws.append(Widget("bar", (0, 0, W, self.bar_h + self.head_h), "", "app_bar", style="bottom_line",
                             interactive=False))
            ws.append(Widget("status", (0, 0, W, self.bar_h), "9:41", "status_bar", max(9, self.bar_h * 2 // 3),
                             interactive=False))
            hx = 14
            ib = min(self.icon, self.head_h - 4)
            hy = self.bar_h + (self.head_h - ib) // 2
            if on_detail:
                ws.append(Widget("icon", (6, hy, 6 + ib, hy + ib), "back", "back", on=True))
                hx = 6 + ib + 8
            tw, th = text_size(title, tf, True, font)
            if hx + tw > W - ib - 10:
                raise _TooSmall()
            ws.append(Widget("text", (hx, self.bar_h + (self.head_h - th) // 2, hx + tw,
                                      self.bar_h + (self.head_h - th) // 2 + th), title, "title", tf, "title",
                             interactive=False))
            if not on_detail:
                ws.append(Widget("icon", (W - 6 - ib, hy, W - 6, hy + ib), "more", "more", on=True))
                ws.append(Widget("bar", (0, H - self.nav_h, W, H), "", "nav_bar", style="top_line",
                                 interactive=False))
                slot = W / len(self.tabs)
                for i, (label, icon, _) in enumerate(self.tabs):
                    if text_size(label, f, True, font)[0] > slot - 4:
                        raise _TooSmall()
                    ws.append(Widget("tab", (round(i * slot), H - self.nav_h, round((i + 1) * slot), H), label,
                                     f"tab:{i}", f, "plain", icon=icon, on=i == s.tab))
        # content
        kind = "detail" if on_detail else self.tabs[s.tab][2]
        y = y0
        if kind == "list":
            for it in s.items:
                if y + self.row_h > y1:
                    raise _TooSmall()
                ws.append(Widget("row", (x0, y, x1, y + self.row_h), it, f"row:{it}", f, self.row_style,
                                 icon=self.item_icons[it]))
                y += self.row_h
            if not s.items:
                ws.append(self._text(x0, y + 8, "Nothing here", f, "caption"))
        elif kind == "settings":
            for lab in self.toggle_labels:
                if y + self.row_h > y1:
                    raise _TooSmall()
                tw, th = text_size(lab, f, False, font)
                sh, sw = self.sw_h, round(1.75 * self.sw_h)
                if tw + sw + 16 > cw:
                    raise _TooSmall()
                ws.append(Widget("text", (x0 + 4, y + (self.row_h - th) // 2, x0 + 4 + tw, y + (self.row_h - th) // 2 + th),
                                 lab, f"label:{lab}", f, interactive=False))
                ws.append(Widget("switch", (x1 - 4 - sw, y + (self.row_h - sh) // 2, x1 - 4, y + (self.row_h - sh) // 2 + sh),
                                 lab, f"switch:{lab}", f, self.switch_style, on=s.toggles[lab]))
                ws.append(Widget("divider", (x0, y + self.row_h - 1, x1, y + self.row_h), "", "", interactive=False))
                y += self.row_h
        elif kind == "form":
            lf = max(self.cfg.font_range[0], f - 2)
            lth = text_size("Ag", lf, False, font)[1]
            for lab in self.field_labels:
                if y + lth + 2 + self.field_h > y1:
                    raise _TooSmall()
                ws.append(self._text(x0, y, lab, lf, "caption", name=f"label:{lab}"))
                y += lth + 2
                ws.append(Widget("field", (x0, y, x1, y + self.field_h), lab, f"field:{lab}", f,
                                 self.field_style + ":labeled", value=s.fields[lab], on=s.focus == lab))
                y += self.field_h + max(6, self.field_h // 4)
            bw = max(text_size(self.submit_label, f, True, font)[0] + 2 * f, cw // 3)
            if y + self.field_h > y1:
                raise _TooSmall()
            ws.append(Widget("button", (x1 - bw, y, x1, y + self.field_h), self.submit_label, "submit", f, "filled"))
            if s.submitted is not None:
                ws.append(self._text(x0, y + (self.field_h - self.th) // 2, "Sent", f, "caption", name="sent_note"))
        elif kind == "home":
            hf = min(self.cfg.font_range[1], f + 2)
            ws.append(self._text(x0, y, "Welcome back", hf, "title", name="welcome"))
            y += text_size("Ag", hf, True, font)[1] + 10
            bh = self.field_h
            x = x0
            for lab in self.home_buttons:
                bw = text_size(lab, f, t.bold, font)[0] + 2 * f
                if bw > cw:
                    raise _TooSmall()
                if x + bw > x1:
                    x, y = x0, y + bh + 10
                if y + bh > y1:
                    raise _TooSmall()
                ws.append(Widget("button", (x, y, x + bw, y + bh), lab, f"home:{lab}", f, "tonal"))
                x += bw + 10
            y += bh + 14
            if y1 - y > 60:
                ws.append(Widget("image", (x0, y, x1, min(y1, y + int((y1 - y) * 0.8))), "", "banner",
                                 interactive=False))
        else:  # detail
            img_h = int(min((y1 - y0) * 0.35, cw * 0.6))
            ws.append(Widget("image", (x0, y, x1, y + img_h), "", "photo", interactive=False))
            y += img_h + 10
            ib = self.icon
            if y + ib > y1:
                raise _TooSmall()
            x = x0
            for name in ("heart", "share", "trash"):
                ws.append(Widget("icon", (x, y, x + ib, y + ib), name, name, style="circle",
                                 on=name != "heart" or s.detail in s.favorites))
                x += ib + max(8, ib // 2)
            y += ib + 12
            words = self.body.split()
            line = ""
            for wd in words:
                cand = (line + " " + wd).strip()
                if text_size(cand, f, False, font)[0] > cw:
                    if y + self.th > y1:
                        break
                    ws.append(self._text(x0, y, line, f, "caption"))
                    y += self.th + 3
                    line = wd
                else:
                    line = cand
        modal = self._dialog_widgets(s) if s.dialog else []
        return ws, modal

    def _text(self, x: int, y: int, s: str, f: int, style: str, name: str = "") -> Widget:
        tw, th = text_size(s, f, style == "title", self.theme.font)
        return Widget("text", (x, y, x + tw, y + th), s, name, f, style, interactive=False)

    def _dialog_widgets(self, s: AppState) -> list[Widget]:
        kind, item = s.dialog  # type: ignore[misc]
        if kind == "delete":
            title, msg, ok, cancel = f"Delete '{item}'?", "This cannot be undone.", "Delete", "Cancel"
        else:
            title, ok, cancel = self.dialog_submit
            msg = "Please confirm."
        t, f, font = self.theme, self.f, self.theme.font
        W, H = self.W, self.H
        dw = int(min(W * 0.84, max(300, W * 0.3))) if self.desktop else int(W * 0.86)
        pad = max(12, f)
        tf = min(self.cfg.font_range[1] + 4, f + 3)
        tw, th = text_size(title, tf, True, font)
        mw, mh = text_size(msg, f, False, font)
        bh = self.field_h
        ph = pad + th + pad // 2 + mh + pad + bh + pad
        px, py = (W - dw) // 2, (H - ph) // 2
        out = [
            Widget("panel", (px, py, px + dw, py + ph), "", "dialog", interactive=False),
            Widget("text", (px + pad, py + pad, px + pad + min(tw, dw - 2 * pad), py + pad + th), title,
                   "dialog_title", tf, "title", interactive=False),
            Widget("text", (px + pad, py + pad + th + pad // 2, px + pad + min(mw, dw - 2 * pad),
                            py + pad + th + pad // 2 + mh), msg, "dialog_msg", f, "caption", interactive=False),
        ]
        x = px + dw - pad
        by = py + ph - pad - bh
        for label, name, style in ((ok, "dlg:ok", "filled"), (cancel, "dlg:cancel", "text")):
            bw = text_size(label, f, t.bold, font)[0] + 2 * f
            x -= bw
            out.append(Widget("button", (x, by, x + bw, by + bh), label, name, f, style))
            x -= pad // 2
        return out

    def view(self, s: AppState) -> tuple[list[Widget], list[Widget]]:
        """``(widgets, modal)`` of the screen ``s`` shows (cached per state)."""
        key = s.key()
        v = self._views.get(key)
        if v is None:
            v = self._layout(s)
            self._views[key] = v
            if len(self._views) > _CACHE:
                self._views.popitem(last=False)
        else:
            self._views.move_to_end(key)
        return v

    def scene(self, s: AppState) -> Scene:
        ws, modal = self.view(s)
        return Scene(self.W, self.H, self.theme, ws, modal)

    def render(self, s: AppState) -> np.ndarray:
        """The screenshot of ``s`` (read-only array, cached per state: copy before handing out).

        Layered: the screen's static widgets are rendered once per screen (``_bases``); switches,
        fields and the heart icon are painted onto a copy patch by patch; a dialog dims the result
        and draws on top. Every state goes through the same layers, so pixels depend only on it."""
        key = s.key()
        img = self._images.get(key)
        if img is not None:
            self._images.move_to_end(key)
            return img
        ws, modal = self.view(s)
        bkey = (s.tab, s.detail, s.items, s.submitted is not None)
        base = self._bases.get(bkey)
        if base is None:
            base = Scene(self.W, self.H, self.theme, [w for w in ws if not _dynamic(w)]).render()
            base.setflags(write=False)
            self._bases[bkey] = base
            if len(self._bases) > _CACHE:
                self._bases.popitem(last=False)
        arr = base.copy()
        for w in ws:
            if _dynamic(w):
                paint_patch(arr, w, self.theme)
        if modal:
            im = Image.fromarray(arr)
            p = Painter(im, self.theme)
            p.dim()
            for w in modal:
                p.widget(w)
            arr = np.asarray(im)
        arr.setflags(write=False)
        self._images[key] = arr
        if len(self._images) > _CACHE:
            self._images.popitem(last=False)
        return arr

    def elements(self, s: AppState) -> list[UIElement]:
        ws, modal = self.view(s)
        return [widget_element(w) for w in ws + modal]

    def widget(self, s: AppState, name: str) -> Widget | None:
        ws, modal = self.view(s)
        for w in (modal if s.dialog else ws):
            if w.name == name:
                return w
        return None

    # -- transitions --------------------------------------------------------------------------
    def hit(self, s: AppState, point: tuple[float, float]) -> Widget | None:
        """The control under ``point`` (only the dialog's while one is open)."""
        ws, modal = self.view(s)
        for w in reversed(modal if s.dialog else ws):
            if w.is_control and w.interactive and point_in_box(point, w.box):
                return w
        return None

    def press(self, s: AppState, name: str) -> AppState:
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
                n.submitted = tuple((f, n.fields[f]) for f in self.field_labels)
            n.dialog = None
        elif name == "dlg:cancel":
            n.dialog = None
        return n  # share, more, home buttons: no effect

    def type_text(self, s: AppState, text: str) -> AppState | None:
        """Set the focused field to ``text`` (Android's ACTION_SET_TEXT replaces); None if no field
        has focus."""
        if s.focus is None or s.dialog is not None:
            return None
        n = s.copy()
        n.fields[s.focus] = text
        return n

    def apply(self, s: AppState, a: Action) -> tuple[AppState, str | None]:
        """Apply a pixel-frame action; returns the new state and why it was invalid (or None).

        ``click`` presses the control under the point (a miss is a valid no-op); ``type`` fills the
        focused field (with a ``point``: clicks there first); ``navigate_back`` closes a dialog, drops
        focus or leaves a detail screen; ``navigate_home`` goes to the first tab; ``keyboard_enter``
        drops focus; ``wait``, ``scroll``, ``swipe`` and ``long_press`` change nothing."""
        t = a.type
        if t in (ActionType.CLICK, ActionType.TYPE) and a.point is not None:
            x, y = a.point
            if not (0 <= x < self.W and 0 <= y < self.H):
                return s, f"point ({x:.1f}, {y:.1f}) is outside the {self.W}x{self.H} screen"
        if t is ActionType.CLICK:
            w = self.hit(s, a.point)  # type: ignore[arg-type]
            return (self.press(s, w.name) if w is not None else s), None
        if t is ActionType.TYPE:
            if a.point is not None:
                w = self.hit(s, a.point)
                if w is None or w.kind != "field":
                    return s, "type with a point that is not on a text field"
                s = self.press(s, w.name)
            n = self.type_text(s, a.text or "")
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

    # -- oracle -------------------------------------------------------------------------------
    def oracle(self, s: AppState, goals: tuple[Goal, ...]) -> Move | None:
        """The next correct move towards ``goals`` from any state (None: done or impossible)."""
        g = next((g for g in goals if not g.satisfied(self, s)), None)
        if g is None:
            return None
        if s.dialog is not None:
            fields_ok = g.kind == "submit" and all(s.fields[f].strip() == v for f, v in g.value)
            want = (g.kind == "delete" and s.dialog == ("delete", g.target)) or (g.kind == "submit" and fields_ok
                                                                                 and s.dialog[0] == "submit")
            return Move("press", "dlg:ok" if want else "dlg:cancel")
        lst = self.tab_of["list"]
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
        tab = self.tab_of[need] if need else next(i for i, t in enumerate(self.tabs) if t[0] == g.target)
        if s.tab != tab:
            return Move("press", f"tab:{tab}")
        if g.kind == "toggle":
            return Move("press", f"switch:{g.target}")
        pairs = ((g.target, g.value),) if g.kind == "fill" else g.value
        for f, v in pairs:
            if s.fields[f].strip() != v:
                return Move("type", f"field:{f}", v) if s.focus == f else Move("press", f"field:{f}")
        return Move("press", "submit")

    def step_move(self, s: AppState, m: Move) -> AppState:
        if m.kind == "press":
            return self.press(s, m.name)
        n = self.type_text(s, m.text or "")
        assert n is not None, "oracle typed with no focused field"
        return n

    def move_action(self, s: AppState, m: Move) -> tuple[Action, tuple[float, float, float, float] | None]:
        """The pixel-frame action of an oracle move and the box of the control it touches."""
        w = self.widget(s, m.name)
        box = None if w is None else tuple(float(v) for v in w.box)
        if m.kind == "type":
            return Action.type_text(m.text or ""), box  # type: ignore[return-value]
        if w is None:
            raise RuntimeError(f"oracle pressed {m.name!r}, which the screen does not show")
        x, y = w.center
        return Action.click(x, y), box  # type: ignore[return-value]

    def plan_length(self, s: AppState, goals: tuple[Goal, ...], limit: int = 64) -> int | None:
        """Moves the oracle needs from ``s`` (None if it cannot finish within ``limit``)."""
        for n in range(limit + 1):
            m = self.oracle(s, goals)
            if m is None:
                return n if all(g.satisfied(self, s) for g in goals) else None
            s = self.step_move(s, m)
        return None

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
    from tasks.synthapp import as_config, task_rng

    cfg = as_config(config)
    seed = cfg.seed if seed is None else int(seed)
    k = cfg.steps if steps is None else int(steps)
    if not 1 <= k <= 32:
        raise ValueError(f"steps must be in [1, 32], got {k}")
    rng = task_rng(_SALT_APP, seed, index)
    app = SynthApp(cfg, rng)
    return build_task(app, k, rng, seed, index)
