"""Synthetic GUI screens and grounding tasks: a seedable, pure-Pillow generator.

Two products, both deterministic functions of ``(config, seed, index)`` (same seed -> byte-identical
PNG on a given Pillow/FreeType build):

* one-step grounding samples (:func:`generate_screen`, :func:`make_grounding_samples`,
  :func:`export_screenspot`): a random screen of buttons, icons, text fields, toggles, lists, tabs
  or a modal dialog, an instruction naming one target by its visible label or icon name
  (``"tap the gear icon"``, ``"turn on Wi-Fi"``), and its ground-truth box, in the same shape as
  ScreenSpot (SeeClick, arXiv 2401.10935) so the same loaders, envs and metric apply;
* multi-screen apps whose tasks need ``k`` actions live in :mod:`tasks.synthapp.app`.

Difficulty knobs (:class:`SynthConfig`): ``target_size``, the range of a target's *relative size*
(box area / screen area, ScreenSpot-Pro's measure); ``distractors``, how many other controls the
screen shows; ``steps`` (``k``) for app tasks. Every control on a screen takes its size from the
same range, so a target never stands out by size alone.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import tasks.synthapp.vocab as V
from guienv.io import encode_png
from guienv.types import GroundingSample, ImageRef, UIElement
from tasks.screenspot import write_screenspot
from tasks.synthapp.config import SynthConfig, as_config, task_rng
from tasks.synthapp.render import (
    ICON_NAMES,
    Scene,
    Theme,
    Widget,
    make_theme,
    text_size,
    widget_element,
)

# Most same-kind distractors one group holds; the rest of the budget goes to other groups.
_GROUP_CAP = {"button": 8, "icon": 10, "field": 6, "toggle": 8, "row": 8, "tab": 5}
_FILLER_KINDS = ("button", "icon", "field", "toggle", "row")
# Box shape of text controls (fit_text_box): padding per font pixel, height growth, icon room.
_SHAPES = {
    "button": dict(padx=0.6, pady=0.35, h_ratio=2.2),
    "field": dict(padx=0.8, pady=0.4, h_ratio=2.0, min_aspect=3.0),
    "row": dict(padx=1.0, pady=0.4, h_ratio=3.0),
    "tab": dict(padx=0.4, pady=0.3, h_ratio=2.4),
}
_SALT_SCREEN = 0x5C12EE
_ATTEMPTS = 24


# -- grounding screens ------------------------------------------------------------------------
@dataclass
class SynthScreen:
    """A generated screen with one grounding target."""

    scene: Scene
    target: Widget
    instruction: str
    kind: str  # target kind (one of TARGET_KINDS)
    seed: int
    index: int
    _image: np.ndarray | None = field(default=None, repr=False)

    @property
    def data_type(self) -> str:
        return "icon" if self.kind == "icon" else "text"

    @property
    def box(self) -> tuple[float, float, float, float]:
        return tuple(float(v) for v in self.target.box)  # type: ignore[return-value]

    def image(self) -> np.ndarray:
        """The screenshot, ``(H, W, 3)`` uint8 (rendered once, read-only)."""
        if self._image is None:
            self._image = self.scene.render()
            self._image.setflags(write=False)
        return self._image

    def elements(self) -> list[UIElement]:
        return [widget_element(w) for w in self.scene.all_widgets()]


class _NoFit(Exception):
    """This random draw does not fit on the screen; draw again."""


class _Ctx:
    """Per-screen state of one generation attempt."""

    def __init__(self, cfg: SynthConfig, rng: np.random.Generator, theme: Theme):
        self.cfg, self.rng, self.theme = cfg, rng, theme
        self.used: set[str] = set()
        self.n = 0

    def area(self) -> float:
        lo, hi = self.cfg.target_size
        return float(self.rng.uniform(lo, hi)) * self.cfg.width * self.cfg.height

    def pick(self, pool: tuple[str, ...], k: int = 1, shape: str | None = None) -> list[str]:
        """``k`` unused labels; with ``shape``, only labels that can reach the size range."""
        free = [s for s in pool if s.lower() not in self.used and (shape is None or _can_fit(self, s, shape))]
        if len(free) < k:
            raise _NoFit()
        idx = self.rng.choice(len(free), size=k, replace=False)
        out = [free[int(i)] for i in idx]
        self.used.update(s.lower() for s in out)
        return out

    def name(self, kind: str) -> str:
        self.n += 1
        return f"{kind}_{self.n}"

    def choice(self, seq):
        return seq[int(self.rng.integers(len(seq)))]


def fit_text_box(ctx: _Ctx, label: str, *, padx: float, pady: float, h_ratio: float, max_w: float,
                 bold: bool = False, extra_w: float = 0.0, min_aspect: float = 0.0,
                 icon_h: float = 0.0) -> tuple[int, int, int]:
    """``(w, h, font)`` of a control showing ``label`` whose box area is drawn from ``target_size``.

    A font's natural height is its text line plus padding (the box may grow to ``h_ratio`` times
    that); its width must hold the text plus padding and ``extra_w`` line heights (icons). The
    area is drawn uniformly from the part of the range the label can fill at the smallest font,
    then the largest fonts that fit are tried first. Raises :class:`_NoFit` if none does."""
    fmin, fmax = ctx.cfg.font_range
    font = ctx.theme.font

    def shape(f: int) -> tuple[float, float]:
        tw, th = text_size(label, f, bold, font)
        nat_h = th + 2 * round(pady * f) + icon_h * th
        return nat_h, max(tw + 2 * round(padx * f) + extra_w * nat_h, min_aspect * nat_h)

    lo, hi = ctx.cfg.target_size
    scale = ctx.cfg.width * ctx.cfg.height
    nat_h, min_w = shape(fmin)
    a_lo = max(lo * scale, nat_h * min_w)
    a_hi = min(hi * scale, max_w * h_ratio * shape(fmax)[0])
    if a_lo > a_hi or min_w > max_w:
        raise _NoFit()
    area = float(ctx.rng.uniform(a_lo, a_hi))
    feasible = []
    for f in range(fmax, fmin - 1, -1):
        nat_h, min_w = shape(f)
        w_lo, w_hi = max(min_w, area / (h_ratio * nat_h)), min(max_w, area / nat_h)
        if w_lo <= w_hi:
            feasible.append((f, w_lo, w_hi))
            if len(feasible) == 3:
                break
    if not feasible:
        raise _NoFit()
    f, w_lo, w_hi = feasible[int(ctx.rng.integers(len(feasible)))]
    w = float(ctx.rng.uniform(w_lo, w_hi))
    h = max(1, round(area / w))
    w = max(1, min(int(max_w), round(area / h)))
    return w, h, f


def _can_fit(ctx: _Ctx, label: str, shape: str) -> bool:
    """Whether ``label`` at the smallest font fits in the largest allowed area (a cheap filter)."""
    p = _SHAPES[shape]
    f = ctx.cfg.font_range[0]
    tw, th = text_size(label, f, ctx.theme.bold and shape == "button", ctx.theme.font)
    nat_h = th + 2 * round(p["pady"] * f)
    min_w = max(tw + 2 * round(p["padx"] * f), p.get("min_aspect", 0.0) * nat_h)
    return nat_h * min_w <= ctx.cfg.target_size[1] * ctx.cfg.width * ctx.cfg.height


# Blocks are widgets laid out relative to (0, 0) with their total size.
Block = tuple[int, int, list[Widget]]


def _shift(ws: list[Widget], dx: int, dy: int) -> list[Widget]:
    for w in ws:
        x1, y1, x2, y2 = w.box
        w.box = (x1 + dx, y1 + dy, x2 + dx, y2 + dy)
    return ws


def _flow(ctx: _Ctx, items: list[Widget], cw: int) -> Block:
    """Wrap ``items`` (boxes at the origin) into lines ``cw`` wide."""
    gap = int(ctx.rng.integers(6, 17))
    lines: list[list[Widget]] = [[]]
    x = 0
    for w in items:
        iw = w.box[2] - w.box[0]
        if iw > cw:
            raise _NoFit()
        if lines[-1] and x + iw > cw:
            lines.append([])
            x = 0
        lines[-1].append(w)
        x += iw + gap
    align = ctx.choice(("left", "center", "right"))
    y = 0
    out: list[Widget] = []
    for line in lines:
        lw = sum(w.box[2] - w.box[0] for w in line) + gap * (len(line) - 1)
        lh = max(w.box[3] - w.box[1] for w in line)
        x = {"left": 0, "center": (cw - lw) // 2, "right": cw - lw}[align]
        for w in line:
            iw, ih = w.box[2] - w.box[0], w.box[3] - w.box[1]
            w.box = (x, y + (lh - ih) // 2, x + iw, y + (lh - ih) // 2 + ih)
            x += iw + gap
            out.append(w)
        y += lh + gap
    return cw, y - gap, out


def _buttons(ctx: _Ctx, labels: list[str], cw: int) -> Block:
    style = ctx.choice(("filled", "outlined", "tonal", "text", "mixed"))
    items = []
    for i, label in enumerate(labels):
        w, h, f = fit_text_box(ctx, label, **_SHAPES["button"], max_w=cw, bold=ctx.theme.bold)
        st = style if style != "mixed" else ("filled" if i == 0 else ctx.choice(("outlined", "text")))
        items.append(Widget("button", (0, 0, w, h), label, ctx.name("button"), f, st))
    return _flow(ctx, items, cw)


def _icons(ctx: _Ctx, names: list[str], cw: int) -> Block:
    style = ctx.choice(("plain", "circle", "filled", "accent"))
    items = []
    for name in names:
        area = ctx.area()
        h = max(10, round(math.sqrt(area)))
        w = max(10, round(area / h))  # within a pixel of square, area within rounding of the draw
        items.append(Widget("icon", (0, 0, w, h), name, ctx.name("icon"), style=style, on=True))
    return _flow(ctx, items, cw)


def _fields(ctx: _Ctx, labels: list[str], cw: int) -> Block:
    longest = max(labels, key=lambda s: text_size(s, 14)[0])
    w, h, f = fit_text_box(ctx, longest, **_SHAPES["field"], max_w=cw)
    style = ctx.choice(("box", "underline", "filled"))
    # 40%: a label above an empty box instead of a placeholder inside it
    labeled = bool(ctx.rng.random() < 0.4)
    out: list[Widget] = []
    y, gap = 0, int(ctx.rng.integers(6, 15))
    for label in labels:
        if labeled:
            lf = max(ctx.cfg.font_range[0], int(f * 0.85))
            tw, th = text_size(label, lf, False, ctx.theme.font)
            out.append(Widget("text", (0, y, tw, y + th), label, ctx.name("text"), lf, "caption", interactive=False))
            y += th + 2
        out.append(Widget("field", (0, y, w, y + h), label, ctx.name("field"), f,
                          style + (":labeled" if labeled else "")))
        y += h + gap
    return w, y - gap, out


def _toggles(ctx: _Ctx, labels: list[str], cw: int) -> Block:
    area = ctx.area()
    sh = max(8, round(math.sqrt(area / 1.8)))
    sw = round(area / sh)
    fmin, fmax = ctx.cfg.font_range
    f = int(np.clip(round(sh * 0.8), fmin, fmax))
    longest = max(text_size(s, f, False, ctx.theme.font)[0] for s in labels)
    while f > fmin and longest + 12 + sw > cw:
        f -= 1
        longest = max(text_size(s, f, False, ctx.theme.font)[0] for s in labels)
    if longest + 12 + sw > cw:
        raise _NoFit()
    th = text_size("Ag", f, False, ctx.theme.font)[1]
    row_h = max(sh, th) + int(ctx.rng.integers(8, 21))
    width = int(ctx.rng.integers(longest + 12 + sw, cw + 1))
    style = ctx.choice(("ios", "material"))
    divider = bool(ctx.rng.random() < 0.5)
    out: list[Widget] = []
    for i, label in enumerate(labels):
        y = i * row_h
        out.append(Widget("text", (0, y + (row_h - th) // 2, text_size(label, f, False, ctx.theme.font)[0],
                                   y + (row_h - th) // 2 + th), label, ctx.name("text"), f, interactive=False))
        on = bool(ctx.rng.random() < 0.5)
        out.append(Widget("switch", (width - sw, y + (row_h - sh) // 2, width, y + (row_h - sh) // 2 + sh),
                          label, ctx.name("switch"), f, style, on=on))
        if divider and i < len(labels) - 1:
            out.append(Widget("divider", (0, y + row_h - 1, width, y + row_h), "", ctx.name("divider"),
                              interactive=False))
    return width, row_h * len(labels), out


def _rows(ctx: _Ctx, labels: list[str], cw: int) -> Block:
    longest = max(labels, key=lambda s: text_size(s, 14)[0])
    icons = bool(ctx.rng.random() < 0.5)
    w, h, f = fit_text_box(ctx, longest, **_SHAPES["row"], max_w=cw,
                           extra_w=1.2 if icons else 0.6)
    style = ctx.choice(("card_divider", "divider", "card", "plain"))
    icon_names = ctx.rng.choice(len(V.ROW_ICONS), size=len(labels), replace=len(labels) > len(V.ROW_ICONS))
    out = [
        Widget("row", (0, i * h, w, (i + 1) * h), label, ctx.name("row"), f, style,
               icon=V.ROW_ICONS[int(icon_names[i])] if icons else None)
        for i, label in enumerate(labels)
    ]
    return w, h * len(labels), out


def _tabs(ctx: _Ctx, labels: list[str], cw: int, target: int | None) -> Block:
    n = len(labels)
    icons = bool(ctx.rng.random() < 0.5)
    longest = max(labels, key=lambda s: text_size(s, 14)[0])
    w, h, f = fit_text_box(ctx, longest, **_SHAPES["tab"], max_w=cw / n,
                           icon_h=1.4 if icons else 0.0)
    style = ctx.choice(("underline", "pill", "plain"))
    choices = [i for i in range(n) if i != target] or [0]
    selected = choices[int(ctx.rng.integers(len(choices)))] if n > 1 else -1
    x0 = (cw - n * w) // 2
    out: list[Widget] = [Widget("bar", (0, 0, cw, h), "", ctx.name("bar"), style="bottom_line", interactive=False)]
    icon_idx = ctx.rng.choice(len(V.TAB_ICONS), size=n, replace=False)
    for i, label in enumerate(labels):
        out.append(Widget("tab", (x0 + i * w, 0, x0 + (i + 1) * w, h), label, ctx.name("tab"), f, style,
                          icon=V.TAB_ICONS[int(icon_idx[i])] if icons else None, on=i == selected))
    return cw, h, out


def _clutter(ctx: _Ctx, cw: int) -> Block:
    kind = ctx.choice(("heading", "paragraph", "image"))
    f = int(ctx.rng.integers(ctx.cfg.font_range[0], min(ctx.cfg.font_range[1], 16) + 1))
    font = ctx.theme.font
    if kind == "heading":
        (label,) = ctx.pick(V.HEADINGS)
        hf = min(ctx.cfg.font_range[1], f + 3)
        tw, th = text_size(label, hf, True, font)
        return tw, th, [Widget("text", (0, 0, tw, th), label, ctx.name("text"), hf, "title", interactive=False)]
    if kind == "paragraph":
        out, y = [], 0
        th = text_size("Ag", f, False, font)[1]
        for _ in range(int(ctx.rng.integers(1, 4))):
            words = [ctx.choice(V.LOREM) for _ in range(12)]
            line = ""
            for wd in words:
                cand = (line + " " + wd).strip()
                if text_size(cand, f, False, font)[0] > cw:
                    break
                line = cand
            if not line:
                break
            tw = text_size(line, f, False, font)[0]
            out.append(Widget("text", (0, y, tw, y + th), line, ctx.name("text"), f, "caption", interactive=False))
            y += th + 3
        if not out:
            raise _NoFit()
        return max(w.box[2] for w in out), y - 3, out
    iw = int(ctx.rng.integers(min(cw, 60), cw + 1))
    ih = int(ctx.rng.integers(40, max(41, int(ctx.cfg.height * 0.18))))
    return iw, ih, [Widget("image", (0, 0, iw, ih), "", ctx.name("image"), interactive=False)]


def _group(ctx: _Ctx, kind: str, n: int, cw: int, target: int | None) -> Block:
    if kind == "button":
        return _buttons(ctx, ctx.pick(V.BUTTON_LABELS, n, "button"), cw)
    if kind == "icon":
        return _icons(ctx, ctx.pick(ICON_NAMES, n), cw)
    if kind == "field":
        return _fields(ctx, ctx.pick(V.FIELD_LABELS, n, "field"), cw)
    if kind == "toggle":
        return _toggles(ctx, ctx.pick(V.TOGGLE_LABELS, n), cw)
    if kind == "row":
        return _rows(ctx, ctx.pick(V.ROW_LABELS, n, "row"), cw)
    if kind == "tab":
        return _tabs(ctx, ctx.pick(V.TAB_LABELS, n, "tab"), cw, target)
    raise ValueError(kind)


def _chrome(ctx: _Ctx) -> tuple[list[Widget], tuple[int, int, int, int]]:
    """Status/title bars; returns them and the content region."""
    cfg, t = ctx.cfg, ctx.theme
    W, H = cfg.width, cfg.height
    (title,) = ctx.pick(V.TITLES)
    fmin, fmax = cfg.font_range
    out: list[Widget] = []
    if cfg.desktop:
        bh = int(np.clip(round(H * 0.04), 22, 40))
        out.append(Widget("status", (0, 0, W, bh), title, "window_bar", max(fmin, min(fmax, bh // 2)), "window",
                          interactive=False))
        m = int(ctx.rng.integers(16, 41))
        tf = int(np.clip(round(H * 0.03), fmin, fmax + 4))
        tw, th = text_size(title, tf, True, t.font)
        out.append(Widget("text", (m, bh + m // 2, m + tw, bh + m // 2 + th), title, "title", tf, "title",
                          interactive=False))
        return out, (m, bh + m + th, W - m, H - m // 2)
    sh = int(np.clip(round(H * 0.042), 14, 32))
    clock = f"{int(ctx.rng.integers(1, 13))}:{int(ctx.rng.integers(0, 60)):02d}"
    accent_bar = bool(ctx.rng.random() < 0.4)
    bar_color = t.accent if accent_bar else None
    out.append(Widget("bar", (0, 0, W, sh), "", "status_bg", color=bar_color, interactive=False))
    out.append(Widget("status", (0, 0, W, sh), clock, "status_bar", max(fmin, min(fmax, sh * 2 // 3)),
                      color=t.on_accent if accent_bar else None, interactive=False))
    ah = int(np.clip(round(H * 0.085), 32, 72))
    out.append(Widget("bar", (0, sh, W, sh + ah), "", "app_bar", color=bar_color,
                      style="" if accent_bar else "bottom_line", interactive=False))
    tf = int(np.clip(round(ah * 0.4), fmin, fmax + 4))
    tw, th = text_size(title, tf, True, t.font)
    tx = 16 if ctx.rng.random() < 0.7 else (W - tw) // 2
    out.append(Widget("text", (tx, sh + (ah - th) // 2, tx + tw, sh + (ah - th) // 2 + th), title, "title", tf,
                      "title", color=t.on_accent if accent_bar else None, interactive=False))
    m = int(ctx.rng.integers(8, 17))
    return out, (m, sh + ah + m, W - m, H - m)


def _stack(ctx: _Ctx, blocks: list[Block], region: tuple[int, int, int, int], min_gap: int) -> list[Widget]:
    x0, y0, x1, y1 = region
    total = sum(b[1] for b in blocks) + min_gap * (len(blocks) - 1)
    if total > y1 - y0:
        raise _NoFit()
    slack = (y1 - y0) - total
    cuts = np.sort(ctx.rng.uniform(0, slack * ctx.rng.uniform(0.2, 1.0), size=len(blocks)))
    gaps = np.diff(np.concatenate([[0.0], cuts])).astype(int)
    out: list[Widget] = []
    y = y0
    for (bw, bh, ws), g in zip(blocks, gaps):
        y += int(g)
        free = (x1 - x0) - bw
        dx = x0 + (0 if free <= 0 else int(ctx.choice((0, 0, free // 2, int(ctx.rng.integers(0, free + 1))))))
        out.extend(_shift(ws, dx, y))
        y += bh + min_gap
    return out


def _dialog(ctx: _Ctx, cw: int, n_buttons: int) -> tuple[list[Widget], str]:
    cfg, t = ctx.cfg, ctx.theme
    pool = V.DIALOGS if n_buttons == 2 else V.SINGLE_DIALOGS
    free = [d for d in pool if not any(b.lower() in ctx.used for b in d[2])]
    if not free:
        raise _NoFit()
    title, message, buttons = ctx.choice(free)
    ctx.used.update(b.lower() for b in buttons)
    ctx.used.add(title.lower())
    W, H = cfg.width, cfg.height
    dw = int(min(cw, max(W * 0.8 if not cfg.desktop else 360, 240)))
    pad = int(np.clip(dw * 0.06, 12, 28))
    fmin, fmax = cfg.font_range
    bf = []
    for b in buttons:
        bw, bh, f = fit_text_box(ctx, b, **_SHAPES["button"],
                                 max_w=(dw - 3 * pad) / max(1, n_buttons), bold=t.bold)
        bf.append((b, bw, bh, f))
    tf = int(np.clip(max(f for *_, f in bf) + 3, fmin, fmax + 4))
    mf = int(np.clip(max(f for *_, f in bf), fmin, fmax))
    tw, th = text_size(title, tf, True, t.font)
    mw, mh = text_size(message, mf, False, t.font)
    while mw > dw - 2 * pad and mf > fmin:
        mf -= 1
        mw, mh = text_size(message, mf, False, t.font)
    if tw > dw - 2 * pad or mw > dw - 2 * pad:
        raise _NoFit()
    bh_max = max(bh for _, _, bh, _ in bf)
    ph = pad + th + pad // 2 + mh + pad + bh_max + pad
    if ph > H - 16:
        raise _NoFit()
    px, py = (W - dw) // 2, int((H - ph) * ctx.rng.uniform(0.35, 0.6))
    out = [
        Widget("panel", (px, py, px + dw, py + ph), "", ctx.name("panel"), interactive=False),
        Widget("text", (px + pad, py + pad, px + pad + tw, py + pad + th), title, ctx.name("text"), tf, "title",
               interactive=False),
        Widget("text", (px + pad, py + pad + th + pad // 2, px + pad + mw, py + pad + th + pad // 2 + mh), message,
               ctx.name("text"), mf, "caption", interactive=False),
    ]
    style = ctx.choice(("text", "filled"))
    x = px + dw - pad
    by = py + ph - pad - bh_max
    for i, (b, bw, bh, f) in enumerate(bf):  # confirm button rightmost
        x -= bw
        st = style if style == "text" else ("filled" if i == 0 else "outlined")
        out.append(Widget("button", (x, by + (bh_max - bh) // 2, x + bw, by + (bh_max - bh) // 2 + bh), b,
                          ctx.name("button"), f, st))
        x -= pad // 2
    return out, title


def _instruction(ctx: _Ctx, kind: str, target: Widget, title: str = "") -> str:
    tmpl = ctx.choice(V.TEMPLATES[kind])
    state = "off" if target.on else "on"
    return tmpl.format(label=target.label, title=title, state=state)


def _try_screen(cfg: SynthConfig, rng: np.random.Generator) -> tuple[Scene, Widget, str, str]:
    theme = make_theme(rng, cfg.themes, cfg.font_paths)
    ctx = _Ctx(cfg, rng, theme)
    chrome, region = _chrome(ctx)
    cw = region[2] - region[0]
    budget = cfg.distractors
    modal: list[Widget] = []
    title = ""
    blocks: list[Block] = []
    target: Widget | None = None
    # kinds whose labels can't reach the size range on this screen fall through to the next kind
    for kind in (str(k) for k in rng.permutation(list(cfg.kinds))):
        try:
            if kind == "dialog":
                n_b = 2 if budget >= 1 else 1
                modal, title = _dialog(ctx, cw, n_b)
                buttons = [w for w in modal if w.kind == "button"]
                target = buttons[int(rng.integers(len(buttons)))]
                budget -= n_b - 1
            else:
                cap = 8 if kind == "tab" and cfg.desktop else _GROUP_CAP[kind]
                n_same = 1 + min(budget, cap)
                t_idx = int(rng.integers(n_same))
                block = _group(ctx, kind, n_same, cw, t_idx)
                target = [w for w in block[2] if w.is_control][t_idx]
                blocks.append(block)
                budget -= n_same - 1
            break
        except _NoFit:
            continue
    if target is None:
        raise _NoFit()
    while budget > 0:
        for fk in (str(k) for k in rng.permutation(list(_FILLER_KINDS))):
            n = int(rng.integers(1, min(budget, _GROUP_CAP[fk]) + 1))
            try:
                blocks.append(_group(ctx, fk, n, cw, None))
            except _NoFit:
                continue
            budget -= n
            break
        else:
            raise _NoFit()
    min_gap = int(rng.integers(8, 21))
    for _ in range(cfg.clutter):
        try:
            c = _clutter(ctx, cw)
        except _NoFit:  # decoration only: skip what does not fit
            continue
        if sum(b[1] for b in blocks) + c[1] + min_gap * len(blocks) <= region[3] - region[1]:
            blocks.append(c)
    order = rng.permutation(len(blocks))
    widgets = _stack(ctx, [blocks[int(i)] for i in order], region, min_gap)
    if modal:
        for w in widgets:
            w.interactive = False
    scene = Scene(cfg.width, cfg.height, theme, chrome + widgets, modal)
    return scene, target, kind, _instruction(ctx, kind, target, title)


def generate_screen(config: SynthConfig | Mapping[str, Any] | None = None, seed: int | None = None,
                    index: int = 0) -> SynthScreen:
    """Grounding screen ``index`` of dataset ``seed`` (default ``config.seed``); deterministic."""
    cfg = as_config(config)
    seed = cfg.seed if seed is None else int(seed)
    rng = task_rng(_SALT_SCREEN, seed, index)
    for _ in range(_ATTEMPTS):
        try:
            scene, target, kind, instruction = _try_screen(cfg, rng)
        except _NoFit:
            continue
        return SynthScreen(scene, target, instruction, kind, seed, index)
    raise ValueError(
        f"SynthConfig: could not fit {cfg.distractors} distractors with target_size {cfg.target_size} on a "
        f"{cfg.width}x{cfg.height} screen in {_ATTEMPTS} draws; lower distractors or target_size"
    )


def screen_to_sample(screen: SynthScreen, cfg: SynthConfig) -> GroundingSample:
    sid = f"synthapp-{screen.seed}-{screen.index}"
    return GroundingSample(
        id=sid,
        image=ImageRef(data=encode_png(np.ascontiguousarray(screen.image())), where=f"<synthapp {sid}>"),
        instruction=screen.instruction,
        box=screen.box,
        width=cfg.width,
        height=cfg.height,
        data_type=screen.data_type,
        platform="synthetic",
        split="desktop" if cfg.desktop else "mobile",
        source="synthapp",
        extra={"kind": screen.kind, "elements": screen.elements(), "target": screen.target.name},
    )


def make_grounding_samples(n: int, config: SynthConfig | Mapping[str, Any] | None = None,
                           seed: int | None = None, *, start: int = 0) -> list[GroundingSample]:
    """Samples ``start .. start+n-1`` of dataset ``seed`` (default ``config.seed``) as PNG-backed
    :class:`GroundingSample` records (``platform="synthetic"``, split ``mobile``/``desktop``)."""
    cfg = as_config(config)
    if n < 0 or start < 0:
        raise ValueError(f"n and start must be >= 0, got n={n}, start={start}")
    return [screen_to_sample(generate_screen(cfg, seed, start + i), cfg) for i in range(n)]


def export_screenspot(n: int, out_dir: str | os.PathLike, config: SynthConfig | Mapping[str, Any] | None = None,
                      seed: int | None = None, *, version: str = "v2") -> Path:
    """Write ``n`` grounding samples as a ScreenSpot ``version`` directory; returns ``out_dir``."""
    return write_screenspot(make_grounding_samples(n, config, seed), out_dir, version=version)

