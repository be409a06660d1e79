"""Drawing for synthetic GUI screens: themes, cached text and icon masks, and widget painters.

Everything is drawn with Pillow. Speed comes from caching: every string is rasterised once per
(font, size, weight) into an ``L`` mask and every icon once per (name, size, fill) by 4x
supersampling, so painting a widget is a couple of ``Image.paste`` calls (microseconds) instead of
FreeType work. Text uses Pillow's embedded font (``ImageFont.load_default(size=...)``, Aileron), so
images are byte-identical on every machine with the same Pillow/FreeType; TrueType files named in
:class:`~tasks.synthapp.SynthConfig` ``font_paths`` add variety where they exist.

A :class:`Widget` is the unit of layout, drawing, hit testing and ground truth: it knows its box,
kind and label, and :func:`widget_element` turns it into a :class:`~guienv.types.UIElement`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from guienv.types import UIElement

RGB = tuple[int, int, int]
IBox = tuple[int, int, int, int]

# Interactive widget kinds and their Android-like class names (UIElement.class_name).
CONTROL_CLASSES = {
    "button": "Button",
    "icon": "ImageButton",
    "field": "EditText",
    "switch": "Switch",
    "row": "ListItem",
    "tab": "Tab",
}
STATIC_CLASSES = {
    "text": "TextView",
    "image": "ImageView",
    "bar": "View",
    "status": "StatusBar",
    "panel": "Dialog",
    "divider": "View",
}


# -- themes -----------------------------------------------------------------------------------
ACCENTS: tuple[RGB, ...] = (
    (25, 118, 210), (56, 142, 60), (211, 47, 47), (123, 31, 162), (0, 121, 107), (245, 124, 0),
    (48, 63, 159), (194, 24, 91), (0, 137, 123), (93, 64, 55), (2, 136, 209), (104, 159, 56),
)


@dataclass(frozen=True)
class Theme:
    """Colours, corner rounding and font of one screen (or one app)."""

    name: str
    bg: RGB
    surface: RGB
    surface2: RGB
    text: RGB
    subtext: RGB
    accent: RGB
    on_accent: RGB
    border: RGB
    switch_off: RGB
    knob: RGB
    radius: float  # corner radius as a fraction of a control's height (0.5 = pill)
    font: str | None = None  # TrueType path; None = Pillow's embedded font
    bold: bool = False  # bold control labels


def _jitter(rng: np.random.Generator, c: RGB, amount: int) -> RGB:
    if amount <= 0:
        return c
    d = rng.integers(-amount, amount + 1, size=3)
    return tuple(int(v) for v in np.clip(np.asarray(c) + d, 0, 255))  # type: ignore[return-value]


def make_theme(rng: np.random.Generator, names: tuple[str, ...], font_paths: tuple[str, ...] = ()) -> Theme:
    """A random theme: ``light`` or ``dark`` base, one accent colour, rounding, font and weight."""
    name = str(names[int(rng.integers(len(names)))])
    accent = ACCENTS[int(rng.integers(len(ACCENTS)))]
    if name == "dark":
        bg = _jitter(rng, (24, 24, 28), 8)
        surface, surface2 = _mix(bg, (255, 255, 255), 0.07), _mix(bg, (255, 255, 255), 0.14)
        text, subtext = (236, 236, 240), (160, 160, 170)
        accent = _mix(accent, (255, 255, 255), 0.25)
        border, switch_off, knob = (90, 90, 100), (96, 96, 104), (230, 230, 235)
    else:
        bg = _jitter(rng, (250, 250, 252), 6)
        if rng.random() < 0.3:  # tinted backgrounds
            bg = _mix(bg, accent, 0.05)
        surface, surface2 = (255, 255, 255), _mix(bg, accent, 0.10)
        text, subtext = (28, 28, 32), (110, 110, 118)
        border, switch_off, knob = (196, 196, 204), (189, 189, 196), (255, 255, 255)
    lum = 0.299 * accent[0] + 0.587 * accent[1] + 0.114 * accent[2]
    on_accent = (255, 255, 255) if lum < 170 else (20, 20, 24)
    radius = float((0.0, 0.15, 0.3, 0.5)[int(rng.integers(4))])
    fonts: tuple[str | None, ...] = (None, *font_paths)
    font = fonts[int(rng.integers(len(fonts)))]
    return Theme(name, bg, surface, surface2, text, subtext, accent, on_accent, border, switch_off, knob,
                 radius, font, bool(rng.random() < 0.3))


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x + (y - x) * t)) for x, y in zip(a, b))  # type: ignore[return-value]


# -- fonts and text masks ---------------------------------------------------------------------
@functools.lru_cache(maxsize=512)
def get_font(path: str | None, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's embedded font at ``size`` (or a TrueType file); cached per process."""
    if path is None:
        return ImageFont.load_default(size=size)
    return ImageFont.truetype(path, size)


def _stroke(size: int, bold: bool) -> int:
    return 1 if bold and size >= 10 else 0


@functools.lru_cache(maxsize=8192)
def _word(word: str, size: int, bold: bool, font: str | None) -> tuple[Image.Image, int]:
    """One word's mask and advance width (words repeat across screens; lines rarely do)."""
    f = get_font(font, size)
    sw = _stroke(size, bold)
    h = _line_height(size, bold, font)
    w = int(math.ceil(f.getlength(word))) + 1 + 2 * sw
    im = Image.new("L", (w, h))
    ImageDraw.Draw(im).text((sw, sw), word, font=f, fill=255, stroke_width=sw, stroke_fill=255)
    return im, w


@functools.lru_cache(maxsize=512)
def _line_height(size: int, bold: bool, font: str | None) -> int:
    f = get_font(font, size)
    try:
        ascent, descent = f.getmetrics()  # type: ignore[union-attr]
    except AttributeError:  # bitmap fallback font
        ascent, descent = f.getbbox("Ag")[3], 0
    return ascent + descent + 2 * _stroke(size, bold)


@functools.lru_cache(maxsize=512)
def _space(size: int, font: str | None) -> int:
    return max(1, int(round(get_font(font, size).getlength(" "))))


@functools.lru_cache(maxsize=16384)
def text_size(text: str, size: int, bold: bool = False, font: str | None = None) -> tuple[int, int]:
    """Width and line height of ``text``'s mask: words are measured (and drawn) separately and
    joined by spaces, so every word is rasterised once per font however many lines use it."""
    words = text.split(" ")
    width = sum(_word(w, size, bold, font)[1] for w in words if w) + _space(size, font) * (len(words) - 1)
    return max(width, 0), _line_height(size, bold, font)


@functools.lru_cache(maxsize=4096)
def text_mask(text: str, size: int, bold: bool = False, font: str | None = None) -> Image.Image:
    """``text`` as an ``L`` mask one line high (ascent + descent), composed from cached words."""
    w, h = text_size(text, size, bold, font)
    im = Image.new("L", (max(w, 1), h))
    x, space = 0, _space(size, font)
    for word in text.split(" "):
        if word:
            m, ww = _word(word, size, bold, font)
            im.paste(m, (x, 0))
            x += ww
        x += space
    return im


# -- icons ------------------------------------------------------------------------------------
IconFn = Callable[[ImageDraw.ImageDraw, Callable[[float, float], tuple[float, float]], float, int, bool], None]
_ICONS: dict[str, IconFn] = {}


def _icon(name: str):
    def deco(fn: IconFn) -> IconFn:
        _ICONS[name] = fn
        return fn

    return deco


def _box(T, x1, y1, x2, y2):
    (a, b), (c, d) = T(x1, y1), T(x2, y2)
    return (a, b, c, d)


def _pts(T, *xy):
    return [T(xy[i], xy[i + 1]) for i in range(0, len(xy), 2)]


@_icon("gear")
def _gear(d, T, s, w, filled):
    pts = []
    for i in range(8):
        a0 = 2 * math.pi * i / 8
        for da, r in ((-0.2, 0.33), (-0.13, 0.46), (0.13, 0.46), (0.2, 0.33)):
            a = a0 + da
            pts.append(T(0.5 + r * math.cos(a), 0.5 + r * math.sin(a)))
    d.polygon(pts, fill=255)
    d.ellipse(_box(T, 0.17, 0.17, 0.83, 0.83), fill=255)
    d.ellipse(_box(T, 0.37, 0.37, 0.63, 0.63), fill=0)


@_icon("heart")
def _heart(d, T, s, w, filled):
    def shape(k: float, fill: int) -> None:
        S = lambda x, y: T(0.5 + (x - 0.5) * k, 0.52 + (y - 0.52) * k)  # noqa: E731
        d.ellipse(_box(S, 0.1, 0.16, 0.52, 0.58), fill=fill)
        d.ellipse(_box(S, 0.48, 0.16, 0.9, 0.58), fill=fill)
        d.polygon(_pts(S, 0.12, 0.45, 0.5, 0.88, 0.88, 0.45, 0.5, 0.3), fill=fill)

    shape(1.0, 255)
    if not filled:
        shape(1.0 - 2.2 * w / s, 0)


@_icon("trash")
def _trash(d, T, s, w, filled):
    d.rectangle(_box(T, 0.16, 0.2, 0.84, 0.28), fill=255)
    d.rectangle(_box(T, 0.38, 0.1, 0.62, 0.2), fill=255)
    d.polygon(_pts(T, 0.24, 0.32, 0.76, 0.32, 0.7, 0.9, 0.3, 0.9), fill=255)
    for x in (0.4, 0.6):
        d.line(_pts(T, x, 0.42, x, 0.8), fill=0, width=max(1, w // 2))


@_icon("search")
def _search(d, T, s, w, filled):
    d.ellipse(_box(T, 0.12, 0.12, 0.66, 0.66), outline=255, width=w)
    d.line(_pts(T, 0.6, 0.6, 0.88, 0.88), fill=255, width=int(w * 1.5))


@_icon("home")
def _home(d, T, s, w, filled):
    d.polygon(_pts(T, 0.5, 0.1, 0.92, 0.5, 0.8, 0.5, 0.8, 0.9, 0.2, 0.9, 0.2, 0.5, 0.08, 0.5), fill=255)
    d.rectangle(_box(T, 0.41, 0.6, 0.59, 0.9), fill=0)


@_icon("star")
def _star(d, T, s, w, filled):
    pts = []
    for i in range(10):
        a = -math.pi / 2 + math.pi * i / 5
        r = 0.45 if i % 2 == 0 else 0.19
        pts.append(T(0.5 + r * math.cos(a), 0.54 + r * math.sin(a)))
    d.polygon(pts, fill=255)


@_icon("bell")
def _bell(d, T, s, w, filled):
    d.pieslice(_box(T, 0.22, 0.14, 0.78, 0.7), 180, 360, fill=255)
    d.rectangle(_box(T, 0.22, 0.42, 0.78, 0.72), fill=255)
    d.polygon(_pts(T, 0.1, 0.78, 0.9, 0.78, 0.78, 0.66, 0.22, 0.66), fill=255)
    d.ellipse(_box(T, 0.41, 0.78, 0.59, 0.94), fill=255)


@_icon("user")
def _user(d, T, s, w, filled):
    d.ellipse(_box(T, 0.31, 0.08, 0.69, 0.46), fill=255)
    d.pieslice(_box(T, 0.12, 0.54, 0.88, 1.24), 180, 360, fill=255)


@_icon("plus")
def _plus(d, T, s, w, filled):
    d.rectangle(_box(T, 0.43, 0.14, 0.57, 0.86), fill=255)
    d.rectangle(_box(T, 0.14, 0.43, 0.86, 0.57), fill=255)


@_icon("close")
def _close(d, T, s, w, filled):
    d.line(_pts(T, 0.2, 0.2, 0.8, 0.8), fill=255, width=int(w * 1.5))
    d.line(_pts(T, 0.8, 0.2, 0.2, 0.8), fill=255, width=int(w * 1.5))


@_icon("menu")
def _menu(d, T, s, w, filled):
    for y in (0.22, 0.46, 0.7):
        d.rectangle(_box(T, 0.12, y, 0.88, y + 0.1), fill=255)


@_icon("back")
def _back(d, T, s, w, filled):
    d.line(_pts(T, 0.18, 0.5, 0.86, 0.5), fill=255, width=int(w * 1.3))
    d.line(_pts(T, 0.46, 0.2, 0.16, 0.5, 0.46, 0.8), fill=255, width=int(w * 1.3), joint="curve")


@_icon("share")
def _share(d, T, s, w, filled):
    d.line(_pts(T, 0.72, 0.2, 0.26, 0.5, 0.72, 0.8), fill=255, width=w)
    for x, y in ((0.72, 0.2), (0.26, 0.5), (0.72, 0.8)):
        d.ellipse(_box(T, x - 0.13, y - 0.13, x + 0.13, y + 0.13), fill=255)


@_icon("lock")
def _lock(d, T, s, w, filled):
    d.arc(_box(T, 0.28, 0.08, 0.72, 0.6), 180, 360, fill=255, width=w)
    d.line(_pts(T, 0.28, 0.34, 0.28, 0.46), fill=255, width=w)
    d.line(_pts(T, 0.72, 0.34, 0.72, 0.46), fill=255, width=w)
    d.rectangle(_box(T, 0.18, 0.44, 0.82, 0.92), fill=255)
    d.ellipse(_box(T, 0.44, 0.58, 0.56, 0.7), fill=0)


@_icon("camera")
def _camera(d, T, s, w, filled):
    d.rectangle(_box(T, 0.34, 0.18, 0.66, 0.3), fill=255)
    d.rectangle(_box(T, 0.08, 0.28, 0.92, 0.84), fill=255)
    d.ellipse(_box(T, 0.3, 0.36, 0.7, 0.76), fill=0)
    d.ellipse(_box(T, 0.39, 0.45, 0.61, 0.67), fill=255)


@_icon("mail")
def _mail(d, T, s, w, filled):
    d.rectangle(_box(T, 0.08, 0.22, 0.92, 0.78), outline=255, width=w)
    d.line(_pts(T, 0.1, 0.25, 0.5, 0.55, 0.9, 0.25), fill=255, width=w, joint="curve")


@_icon("play")
def _play(d, T, s, w, filled):
    d.polygon(_pts(T, 0.26, 0.14, 0.84, 0.5, 0.26, 0.86), fill=255)


@_icon("pause")
def _pause(d, T, s, w, filled):
    d.rectangle(_box(T, 0.24, 0.16, 0.42, 0.84), fill=255)
    d.rectangle(_box(T, 0.58, 0.16, 0.76, 0.84), fill=255)


@_icon("download")
def _download(d, T, s, w, filled):
    d.rectangle(_box(T, 0.43, 0.1, 0.57, 0.5), fill=255)
    d.polygon(_pts(T, 0.22, 0.44, 0.78, 0.44, 0.5, 0.74), fill=255)
    d.rectangle(_box(T, 0.14, 0.82, 0.86, 0.92), fill=255)


@_icon("edit")
def _edit(d, T, s, w, filled):
    d.polygon(_pts(T, 0.14, 0.86, 0.2, 0.62, 0.64, 0.18, 0.82, 0.36, 0.38, 0.8), fill=255)
    d.line(_pts(T, 0.56, 0.26, 0.74, 0.44), fill=0, width=max(1, w // 2))


@_icon("calendar")
def _calendar(d, T, s, w, filled):
    d.rectangle(_box(T, 0.12, 0.18, 0.88, 0.9), outline=255, width=w)
    d.rectangle(_box(T, 0.12, 0.18, 0.88, 0.36), fill=255)
    for x in (0.32, 0.68):
        d.line(_pts(T, x, 0.08, x, 0.26), fill=255, width=w)
    for gy in (0.5, 0.7):
        for gx in (0.28, 0.5, 0.72):
            d.rectangle(_box(T, gx - 0.06, gy - 0.05, gx + 0.06, gy + 0.05), fill=255)


@_icon("bookmark")
def _bookmark(d, T, s, w, filled):
    d.polygon(_pts(T, 0.22, 0.08, 0.78, 0.08, 0.78, 0.92, 0.5, 0.68, 0.22, 0.92), fill=255)


@_icon("cart")
def _cart(d, T, s, w, filled):
    d.line(_pts(T, 0.04, 0.16, 0.2, 0.16, 0.3, 0.66, 0.82, 0.66), fill=255, width=w, joint="curve")
    d.polygon(_pts(T, 0.22, 0.28, 0.92, 0.28, 0.84, 0.58, 0.28, 0.58), fill=255)
    for x in (0.36, 0.76):
        d.ellipse(_box(T, x - 0.08, 0.74, x + 0.08, 0.9), fill=255)


@_icon("chat")
def _chat(d, T, s, w, filled):
    d.rounded_rectangle(_box(T, 0.08, 0.14, 0.92, 0.7), radius=0.14 * s, fill=255)
    d.polygon(_pts(T, 0.24, 0.64, 0.2, 0.92, 0.48, 0.66), fill=255)


@_icon("info")
def _info(d, T, s, w, filled):
    d.ellipse(_box(T, 0.08, 0.08, 0.92, 0.92), outline=255, width=w)
    d.ellipse(_box(T, 0.44, 0.24, 0.56, 0.36), fill=255)
    d.rectangle(_box(T, 0.44, 0.42, 0.56, 0.76), fill=255)


@_icon("refresh")
def _refresh(d, T, s, w, filled):
    d.arc(_box(T, 0.16, 0.16, 0.84, 0.84), 40, 320, fill=255, width=w)
    d.polygon(_pts(T, 0.64, 0.1, 0.9, 0.3, 0.62, 0.42), fill=255)


@_icon("filter")
def _filter(d, T, s, w, filled):
    d.polygon(_pts(T, 0.08, 0.14, 0.92, 0.14, 0.58, 0.52, 0.58, 0.88, 0.42, 0.78, 0.42, 0.52), fill=255)


@_icon("check")
def _check(d, T, s, w, filled):
    d.line(_pts(T, 0.14, 0.52, 0.4, 0.78, 0.88, 0.24), fill=255, width=int(w * 1.6), joint="curve")


@_icon("more")
def _more(d, T, s, w, filled):
    for y in (0.2, 0.5, 0.8):
        d.ellipse(_box(T, 0.41, y - 0.09, 0.59, y + 0.09), fill=255)


@_icon("send")
def _send(d, T, s, w, filled):
    d.polygon(_pts(T, 0.08, 0.12, 0.94, 0.5, 0.08, 0.88, 0.18, 0.55, 0.56, 0.5, 0.18, 0.45), fill=255)


@_icon("moon")
def _moon(d, T, s, w, filled):
    d.ellipse(_box(T, 0.1, 0.1, 0.9, 0.9), fill=255)
    d.ellipse(_box(T, 0.34, 0.0, 1.04, 0.7), fill=0)


@_icon("flag")
def _flag(d, T, s, w, filled):
    d.rectangle(_box(T, 0.16, 0.08, 0.26, 0.94), fill=255)
    d.polygon(_pts(T, 0.26, 0.1, 0.86, 0.1, 0.72, 0.3, 0.86, 0.5, 0.26, 0.5), fill=255)


@_icon("pin")
def _pin(d, T, s, w, filled):
    d.ellipse(_box(T, 0.2, 0.06, 0.8, 0.66), fill=255)
    d.polygon(_pts(T, 0.24, 0.48, 0.76, 0.48, 0.5, 0.94), fill=255)
    d.ellipse(_box(T, 0.39, 0.25, 0.61, 0.47), fill=0)


@_icon("cloud")
def _cloud(d, T, s, w, filled):
    d.ellipse(_box(T, 0.08, 0.42, 0.44, 0.78), fill=255)
    d.ellipse(_box(T, 0.26, 0.2, 0.7, 0.64), fill=255)
    d.ellipse(_box(T, 0.54, 0.36, 0.92, 0.74), fill=255)
    d.rectangle(_box(T, 0.26, 0.56, 0.74, 0.78), fill=255)


@_icon("image")
def _image(d, T, s, w, filled):
    d.rectangle(_box(T, 0.08, 0.16, 0.92, 0.84), outline=255, width=w)
    d.polygon(_pts(T, 0.16, 0.76, 0.4, 0.44, 0.58, 0.66, 0.7, 0.54, 0.86, 0.76), fill=255)
    d.ellipse(_box(T, 0.62, 0.26, 0.76, 0.4), fill=255)


@_icon("chevron")
def _chevron(d, T, s, w, filled):
    d.line(_pts(T, 0.36, 0.16, 0.68, 0.5, 0.36, 0.84), fill=255, width=w, joint="curve")


# Icons an instruction may name ("tap the gear icon"); chevrons only decorate list rows.
ICON_NAMES: tuple[str, ...] = tuple(n for n in _ICONS if n not in ("chevron",))


@functools.lru_cache(maxsize=4096)
def icon_mask(name: str, size: int, filled: bool = True) -> Image.Image:
    """Icon ``name`` as a ``size`` x ``size`` anti-aliased ``L`` mask (4x supersampled, cached)."""
    if name not in _ICONS:
        raise KeyError(f"unknown icon {name!r}; known: {sorted(_ICONS)}")
    size = max(int(size), 4)
    big = size * 4
    im = Image.new("L", (big, big))
    T = lambda x, y: (x * big, y * big)  # noqa: E731
    _ICONS[name](ImageDraw.Draw(im), T, float(big), max(2, round(0.1 * big)), filled)
    return im.resize((size, size), Image.Resampling.BOX)


# -- widgets ----------------------------------------------------------------------------------
@dataclass
class Widget:
    """One drawable element. ``name`` is a stable id (``resource_id``, app hit testing)."""

    kind: str
    box: IBox
    label: str = ""  # visible text; the icon name for ``icon``; the row label for ``switch``
    name: str = ""
    font: int = 14
    style: str = ""
    icon: str | None = None  # leading icon (rows, tabs)
    on: bool = False  # switch on / tab selected / icon filled / field focused
    value: str = ""  # field text
    color: RGB | None = None  # text/bar colour override
    interactive: bool = True

    @property
    def center(self) -> tuple[float, float]:
        x1, y1, x2, y2 = self.box
        return (x1 + x2) / 2.0, (y1 + y2) / 2.0

    @property
    def is_control(self) -> bool:
        return self.kind in CONTROL_CLASSES


def widget_element(w: Widget) -> UIElement:
    """The ground-truth :class:`UIElement` of a widget (pixel box ``x1, y1, x2, y2``)."""
    box = tuple(float(v) for v in w.box)
    cls = CONTROL_CLASSES.get(w.kind) or STATIC_CLASSES.get(w.kind, "View")
    text = w.label or None
    desc = None
    if w.kind == "icon":
        text, desc = None, w.label
    elif w.kind == "switch":
        text, desc = None, w.label
    elif w.kind == "field":
        text, desc = (w.value or None), w.label
    return UIElement(
        box=box,  # type: ignore[arg-type]
        text=text,
        content_description=desc,
        resource_id=w.name or None,
        class_name=cls,
        clickable=w.is_control and w.interactive,
        editable=w.kind == "field",
        checkable=w.kind == "switch",
        checked=w.kind == "switch" and w.on,
    )


class Painter:
    """Draws widgets onto one RGB ``PIL.Image`` with a :class:`Theme`."""

    def __init__(self, image: Image.Image, theme: Theme):
        self.img = image
        self.draw = ImageDraw.Draw(image)
        self.theme = theme

    # primitives
    def text(self, xy: tuple[float, float], s: str, size: int, color: RGB, bold: bool = False,
             clip_w: int | None = None) -> None:
        m = text_mask(s, size, bold, self.theme.font)
        if clip_w is not None and m.width > clip_w > 0:  # keep the end visible (text being typed)
            m = m.crop((m.width - clip_w, 0, m.width, m.height))
        self.img.paste(color, (int(round(xy[0])), int(round(xy[1]))), m)

    def text_in(self, box: IBox, s: str, size: int, color: RGB, bold: bool = False,
                align: str = "center", pad: int = 0) -> None:
        tw, th = text_size(s, size, bold, self.theme.font)
        x1, y1, x2, y2 = box
        avail = x2 - x1 - 2 * pad
        if align == "left" or tw > avail:
            x = x1 + pad
        elif align == "right":
            x = x2 - pad - tw
        else:
            x = (x1 + x2 - tw) / 2
        self.text((x, (y1 + y2 - th) / 2), s, size, color, bold, clip_w=max(avail, 1) if tw > avail else None)

    def rect(self, box: IBox, fill: RGB | None = None, outline: RGB | None = None, width: int = 1,
             radius: float = 0.0) -> None:
        x1, y1, x2, y2 = box
        box = (x1, y1, x2 - 1, y2 - 1)  # PIL's rectangles include their far edge
        r = int(min(radius, (box[2] - box[0]) / 2, (box[3] - box[1]) / 2))
        if r >= 1:
            self.draw.rounded_rectangle(box, radius=r, fill=fill, outline=outline, width=width)
        else:
            self.draw.rectangle(box, fill=fill, outline=outline, width=width)

    def icon(self, name: str, box: IBox, color: RGB, filled: bool = True, scale: float = 1.0) -> None:
        x1, y1, x2, y2 = box
        size = max(4, int(min(x2 - x1, y2 - y1) * scale))
        m = icon_mask(name, size, filled)
        self.img.paste(color, (int((x1 + x2 - size) / 2), int((y1 + y2 - size) / 2)), m)

    def dim(self, alpha: float = 0.45) -> None:
        """Darken everything drawn so far (a modal's scrim)."""
        self.img.paste(self.img.point(_dim_table(round(alpha * 100))))

    # widgets
    def widget(self, w: Widget) -> None:
        _PAINT[w.kind](self, w)


@functools.lru_cache(maxsize=8)
def _dim_table(percent: int) -> list[int]:
    return [int(v * (100 - percent) / 100) for v in range(256)] * 3


def _radius(t: Theme, box: IBox) -> float:
    return t.radius * (box[3] - box[1])


def _paint_button(p: Painter, w: Widget) -> None:
    t = p.theme
    fg = t.on_accent
    if w.style == "filled":
        p.rect(w.box, fill=t.accent, radius=_radius(t, w.box))
    elif w.style == "outlined":
        p.rect(w.box, outline=t.accent, width=max(1, (w.box[3] - w.box[1]) // 22), radius=_radius(t, w.box))
        fg = t.accent
    elif w.style == "tonal":
        p.rect(w.box, fill=t.surface2, radius=_radius(t, w.box))
        fg = t.text
    else:  # text button
        fg = t.accent
    p.text_in(w.box, w.label, w.font, w.color or fg, t.bold)


def _paint_icon(p: Painter, w: Widget) -> None:
    t = p.theme
    color = w.color or t.text
    scale = 0.78
    if w.style == "circle":
        p.draw.ellipse((w.box[0], w.box[1], w.box[2] - 1, w.box[3] - 1), fill=t.surface2)
        scale = 0.6
    elif w.style == "filled":
        p.rect(w.box, fill=t.accent, radius=_radius(t, w.box))
        color, scale = t.on_accent, 0.6
    elif w.style == "accent":
        color = t.accent
    p.icon(w.label, w.box, color, filled=w.on or w.label != "heart", scale=scale)


def _paint_field(p: Painter, w: Widget) -> None:
    t = p.theme
    x1, y1, x2, y2 = w.box
    h = y2 - y1
    line = t.accent if w.on else t.border
    style, _, labeled = w.style.partition(":")
    if style == "underline":
        p.rect((x1, y2 - (2 if w.on else 1), x2, y2), fill=line)
    elif style == "filled":
        p.rect(w.box, fill=t.surface2, radius=min(_radius(t, w.box), h * 0.2))
        p.rect((x1, y2 - (2 if w.on else 1), x2, y2), fill=line)
    else:
        p.rect(w.box, fill=t.surface, outline=line, width=2 if w.on else 1, radius=min(_radius(t, w.box), h * 0.3))
    pad = max(4, int(w.font * 0.6))
    # a ":labeled" field has its label drawn above it, so no placeholder inside
    s, color = (w.value, t.text) if w.value else ("" if labeled else w.label, t.subtext)
    if s:
        p.text_in(w.box, s, w.font, color, align="left", pad=pad)
    if w.on:  # caret after the text
        tw = text_size(w.value, w.font, False, t.font)[0] if w.value else 0
        cx = min(x1 + pad + tw + 1, x2 - pad)
        p.rect((cx, y1 + h // 4, cx + max(1, w.font // 12), y2 - h // 4), fill=t.accent)


def _paint_switch(p: Painter, w: Widget) -> None:
    t = p.theme
    x1, y1, x2, y2 = w.box
    h = y2 - y1
    track = t.accent if w.on else t.switch_off
    if w.style == "material":  # thin track, knob overhanging it
        inset = max(1, h // 5)
        p.rect((x1, y1 + inset, x2, y2 - inset), fill=_mix(track, t.bg, 0.45), radius=h)
        kx = x2 - h if w.on else x1
        p.draw.ellipse((kx, y1, kx + h - 1, y2 - 1), fill=track if w.on else t.knob, outline=t.border if not w.on else None)
    else:
        p.rect(w.box, fill=track, radius=h / 2)
        m = max(2, h // 8)
        kx = x2 - h + m if w.on else x1 + m
        p.draw.ellipse((kx, y1 + m, kx + h - 2 * m - 1, y2 - m - 1), fill=t.knob)


def _paint_row(p: Painter, w: Widget) -> None:
    t = p.theme
    x1, y1, x2, y2 = w.box
    h = y2 - y1
    if w.style in ("card", "card_divider"):
        p.rect(w.box, fill=t.surface)
    pad = max(6, int(w.font * 0.8))
    x = x1 + pad
    if w.icon:
        isz = int(h * 0.5)
        p.icon(w.icon, (x, y1 + (h - isz) // 2, x + isz, y1 + (h - isz) // 2 + isz), t.subtext)
        x += isz + pad
    p.text_in((x, y1, x2 - pad, y2), w.label, w.font, t.text, align="left")
    csz = int(h * 0.34)
    p.icon("chevron", (x2 - pad - csz, y1 + (h - csz) // 2, x2 - pad, y1 + (h - csz) // 2 + csz), t.subtext)
    if w.style in ("divider", "card_divider"):
        p.rect((x1 + pad, y2 - 1, x2, y2), fill=t.border)


def _paint_tab(p: Painter, w: Widget) -> None:
    t = p.theme
    x1, y1, x2, y2 = w.box
    color = t.accent if w.on else t.subtext
    if w.on and w.style == "pill":
        p.rect(w.box, fill=t.surface2, radius=(y2 - y1) / 2)
    if w.icon:
        th = text_size(w.label, w.font, w.on, t.font)[1]
        h = y2 - y1
        isz = max(6, min(int(h - th - h * 0.2), int((x2 - x1) * 0.6)))
        top = y1 + (h - isz - th) // 2
        p.icon(w.icon, (x1, top, x2, top + isz), color, filled=True)
        p.text_in((x1, top + isz, x2, top + isz + th), w.label, w.font, color, w.on)
    else:
        p.text_in(w.box, w.label, w.font, color, w.on)
    if w.on and w.style == "underline":
        p.rect((x1, y2 - max(2, (y2 - y1) // 14), x2, y2), fill=t.accent)


def _paint_text(p: Painter, w: Widget) -> None:
    t = p.theme
    color = w.color or {"title": t.text, "caption": t.subtext}.get(w.style, t.text)
    p.text((w.box[0], w.box[1]), w.label, w.font, color, w.style == "title")


def _paint_image(p: Painter, w: Widget) -> None:
    t = p.theme
    p.rect(w.box, fill=t.surface2, radius=_radius(t, w.box) * 0.3)
    p.icon("image", w.box, _mix(t.surface2, t.text, 0.35), scale=0.45)


def _paint_bar(p: Painter, w: Widget) -> None:
    t = p.theme
    fill = w.color or t.surface
    p.rect(w.box, fill=fill)
    x1, y1, x2, y2 = w.box
    if w.style == "bottom_line":
        p.rect((x1, y2 - 1, x2, y2), fill=t.border)
    elif w.style == "top_line":
        p.rect((x1, y1, x2, y1 + 1), fill=t.border)
    elif w.style == "right_line":
        p.rect((x2 - 1, y1, x2, y2), fill=t.border)


def _paint_status(p: Painter, w: Widget) -> None:
    t = p.theme
    x1, y1, x2, y2 = w.box
    h = y2 - y1
    color = w.color or t.text
    if w.style == "window":  # desktop title bar: traffic lights and a window title
        p.rect(w.box, fill=_mix(t.bg, t.text, 0.08))
        r = max(3, h // 5)
        for i, c in enumerate(((237, 106, 94), (245, 191, 79), (98, 197, 84))):
            cx = x1 + h // 2 + i * 3 * r
            p.draw.ellipse((cx - r, y1 + h / 2 - r, cx + r, y1 + h / 2 + r), fill=c)
        p.text_in(w.box, w.label, w.font, t.subtext)
        return
    p.text_in((x1 + 8, y1, x2, y2), w.label, w.font, color, align="left")
    bh = max(4, h // 3)
    bx = x2 - 8 - 2 * bh
    p.rect((bx, y1 + (h - bh) // 2, bx + 2 * bh, y1 + (h + bh) // 2), outline=color, width=1)
    top, bottom = y1 + (h - bh) // 2 + 2, y1 + (h + bh) // 2 - 2
    if bottom > top:  # tiny status bars have no room for the battery's fill
        p.rect((bx + 2, top, bx + int(1.4 * bh), bottom), fill=color)
    for i in range(3):
        hh = bh * (i + 1) // 3
        sx = bx - 10 - 4 * (2 - i)
        p.rect((sx, y1 + (h + bh) // 2 - hh, sx + 3, y1 + (h + bh) // 2), fill=color)


def _paint_panel(p: Painter, w: Widget) -> None:
    t = p.theme
    x1, y1, x2, y2 = w.box
    r = min(16, (y2 - y1) // 8) if t.radius > 0 else 0
    p.rect((x1 + 2, y1 + 3, x2 + 2, y2 + 3), fill=_mix(t.bg, (0, 0, 0), 0.6), radius=r)  # shadow
    p.rect(w.box, fill=t.surface, radius=r)


def _paint_divider(p: Painter, w: Widget) -> None:
    p.rect(w.box, fill=p.theme.border)


_PAINT: dict[str, Callable[[Painter, Widget], None]] = {
    "button": _paint_button,
    "icon": _paint_icon,
    "field": _paint_field,
    "switch": _paint_switch,
    "row": _paint_row,
    "tab": _paint_tab,
    "text": _paint_text,
    "image": _paint_image,
    "bar": _paint_bar,
    "status": _paint_status,
    "panel": _paint_panel,
    "divider": _paint_divider,
}


def paint_patch(arr: np.ndarray, w: Widget, theme: Theme, margin: int = 2) -> None:
    """Draw ``w`` into the RGB array ``arr`` in place, converting only the pixels around its box
    (a widget redraw costs its own area, not the screen's). The patch origin is kept on even
    coordinates so coordinates rounded half-to-even land as they would on the full screen."""
    H, W = arr.shape[:2]
    x1, y1, x2, y2 = w.box
    px, py = max(0, x1 - margin) & ~1, max(0, y1 - margin) & ~1
    qx, qy = min(W, x2 + margin), min(H, y2 + margin)
    if qx <= px or qy <= py:
        return
    patch = Image.fromarray(arr[py:qy, px:qx])
    shifted = Widget(**{**w.__dict__, "box": (x1 - px, y1 - py, x2 - px, y2 - py)})
    Painter(patch, theme).widget(shifted)
    arr[py:qy, px:qx] = np.asarray(patch)


@dataclass
class Scene:
    """A screen to draw: widgets below an optional modal (drawn above a scrim)."""

    width: int
    height: int
    theme: Theme
    widgets: list[Widget] = field(default_factory=list)
    modal: list[Widget] = field(default_factory=list)

    def render_image(self) -> Image.Image:
        img = Image.new("RGB", (self.width, self.height), self.theme.bg)
        p = Painter(img, self.theme)
        for w in self.widgets:
            p.widget(w)
        if self.modal:
            p.dim()
            for w in self.modal:
                p.widget(w)
        return img

    def render(self) -> np.ndarray:
        return np.asarray(self.render_image())

    def all_widgets(self) -> list[Widget]:
        return [*self.widgets, *self.modal]
