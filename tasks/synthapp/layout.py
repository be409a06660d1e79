"""The look of a generated app: its labels and metrics, the widgets of each screen and their pixels.

:class:`AppLayout` builds, for any :class:`~tasks.synthapp.state.AppState`, the widgets the screen
shows (tab bar, list rows, detail screen, toggles, form, dialogs), renders them through
:mod:`tasks.synthapp.render` and hit-tests points against them. State transitions and the oracle
build on it in :mod:`tasks.synthapp.transitions` and :mod:`tasks.synthapp.oracle`.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
from PIL import Image

import tasks.synthapp.vocab as V
from guienv.geometry import point_in_box
from guienv.types import UIElement
from tasks.synthapp.render import Painter, Scene, Widget, make_theme, paint_patch, text_size, widget_element
from tasks.synthapp.state import AppState

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


def _dynamic(w: Widget) -> bool:
    """Widgets whose look follows the state within one screen (painted per state)."""
    return w.kind in ("switch", "field") or w.name == "heart"


class _TooSmall(Exception):
    pass


class AppLayout:
    """A generated app's look: labels, metrics, the widgets of every screen and a cached renderer.

    Built from ``rng`` in a fixed order (labels, then sizes), so one seed is one app."""

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
            for i, (label, _icon, _) in enumerate(self.tabs):
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

    # -- hit testing ------------------------------------------------------------------------
    def hit(self, s: AppState, point: tuple[float, float]) -> Widget | None:
        """The control under ``point`` (only the dialog's while one is open)."""
        ws, modal = self.view(s)
        for w in reversed(modal if s.dialog else ws):
            if w.is_control and w.interactive and point_in_box(point, w.box):
                return w
        return None
