"""Draw a proposed action on its screenshot, for a judge model to look at.

Step-level judges in GUI RL code (ZeroGUI, arXiv 2505.23762; DigiRL, arXiv 2406.11896; GUI-Critic-R1, arXiv 2506.04614) see the
screenshot with the action drawn on it rather than bare coordinates. guienv draws:

* ``click`` / ``long_press``: a circle with a crosshair; the centre pixel is the marker colour.
* ``swipe``: an arrow along the **finger** path (start dot, head at the end).
* ``scroll``: converted to the finger swipe with :func:`guienv.actions.scroll_to_swipe` (the scroll
  direction is the direction the *content* moves, AndroidControl's convention), drawn as a swipe.
* ``box``: the box outline.
* text actions (``type``, ``open_app``, system keys, ``wait``, ``finish``) and scrolls: a caption on a
  dark band at the top of the image (the bottom when the marker would sit under the band).

Output is a pure function of (image, action, style): no randomness, no clock.
"""

from __future__ import annotations

import functools
import math
import unicodedata
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from guienv.actions import OPPOSITE, Action, ActionType, scroll_to_swipe
from guienv.frames import Frame, Screen

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class DrawStyle:
    """Colours and sizes; sizes scale with the image's shorter side."""

    color: RGB = (255, 0, 0)
    halo: RGB = (255, 255, 255)  # drawn under the marker so it stays visible on red/dark screens
    caption_bg: RGB = (0, 0, 0)
    caption_fg: RGB = (255, 255, 255)
    marker_radius: float = 0.025  # fraction of the shorter side
    line_width: float = 0.005
    font_size: float = 0.03
    max_caption_chars: int = 120


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    # Pillow's bundled font (FreeType build) at a given size; the bitmap font otherwise.
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def _clean(text: str, limit: int) -> str:
    """One printable line: control characters become spaces, long text ends with an ellipsis."""
    out = "".join(" " if unicodedata.category(c).startswith("C") else c for c in str(text))
    out = " ".join(out.split())
    return out if len(out) <= limit else out[: limit - 1] + "…"


def caption_for(action: Action, limit: int = 120) -> str | None:
    """The caption drawn for ``action`` (``None`` for pure pointer actions and boxes)."""
    t = action.type
    quoted = lambda s: '"' + _clean(s or "", limit) + '"'  # noqa: E731
    if t is ActionType.TYPE:
        return "type " + quoted(action.text)
    if t is ActionType.OPEN_APP:
        return "open app " + quoted(action.text)
    if t is ActionType.NAVIGATE_BACK:
        return "press BACK"
    if t is ActionType.NAVIGATE_HOME:
        return "press HOME"
    if t is ActionType.KEYBOARD_ENTER:
        return "press ENTER"
    if t is ActionType.WAIT:
        return "wait"
    if t is ActionType.LONG_PRESS:
        return "long press"
    if t is ActionType.SCROLL:
        return f"scroll {action.direction} (content moves {action.direction}; arrow = finger)"
    if t is ActionType.SWIPE and (action.point is None or action.end is None):
        return f"swipe {action.direction} (finger)"
    if t is ActionType.FINISH:
        return f"finish ({action.status})" + (": " + quoted(action.text) if action.text else "")
    if t is ActionType.INVALID:
        return "invalid action"
    return None


def _to_image(image: np.ndarray | Image.Image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image.copy()
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"image must be an (H, W, 3) uint8 array, got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr[..., :3].copy(), "RGB")


def _fit(text: str, font, width: float) -> str:
    """Shorten ``text`` (ellipsis) until it fits ``width`` pixels."""
    if font.getlength(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:  # longest prefix that fits with the ellipsis
        mid = (lo + hi + 1) // 2
        if font.getlength(text[:mid] + "…") <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo] + "…"


def _draw_caption(draw: ImageDraw.ImageDraw, size: tuple[int, int], text: str, bottom: bool, style: DrawStyle) -> None:
    w, h = size
    fsize = max(10, round(style.font_size * min(w, h)))
    font = _font(fsize)
    pad = max(2, fsize // 4)
    band = fsize + 2 * pad
    y0 = h - band if bottom else 0
    draw.rectangle((0, y0, w - 1, y0 + band - 1), fill=style.caption_bg)
    text = _fit(text, font, w - 2 * pad)
    try:
        draw.text((pad, y0 + pad), text, fill=style.caption_fg, font=font)
    except UnicodeEncodeError:  # bitmap font (Pillow without FreeType) is latin-1 only
        draw.text((pad, y0 + pad), text.encode("ascii", "replace").decode(), fill=style.caption_fg, font=font)


def _marker(draw: ImageDraw.ImageDraw, p: tuple[float, float], r: float, lw: int, style: DrawStyle) -> None:
    x, y = p
    arm = r * 1.5
    for color, extra in ((style.halo, 2), (style.color, 0)):
        width = lw + extra
        draw.ellipse((x - r, y - r, x + r, y + r), outline=color, width=width)
        draw.line((x - arm, y, x + arm, y), fill=color, width=width)
        draw.line((x, y - arm, x, y + arm), fill=color, width=width)
    dot = max(2.0, lw)
    draw.ellipse((x - dot, y - dot, x + dot, y + dot), fill=style.color)


def _arrow(
    draw: ImageDraw.ImageDraw, a: tuple[float, float], b: tuple[float, float], head: float, lw: int, style: DrawStyle
) -> None:
    ang = math.atan2(b[1] - a[1], b[0] - a[0])
    spread = math.radians(25)
    tip = [b] + [(b[0] - head * math.cos(ang + s), b[1] - head * math.sin(ang + s)) for s in (spread, -spread)]
    dot = max(3.0, 1.5 * lw)
    for color, extra in ((style.halo, 2), (style.color, 0)):
        draw.line((a, b), fill=color, width=lw + extra)
        draw.ellipse((a[0] - dot - extra, a[1] - dot - extra, a[0] + dot + extra, a[1] + dot + extra), fill=color)
        draw.polygon(tip, fill=color, outline=color)


def draw_action(
    image: np.ndarray | Image.Image,
    action: Action,
    screen: Screen | None = None,
    style: DrawStyle | None = None,
) -> Image.Image:
    """A copy of ``image`` (RGB) with ``action`` drawn on it.

    ``action`` may be in any frame of ``screen`` (default: a screen the size of ``image``); when
    ``screen`` is larger or smaller than ``image`` (a downscaled copy) the drawing is scaled to it.
    """
    style = style or DrawStyle()
    img = _to_image(image)
    w, h = img.size
    screen = screen or Screen(w, h)
    sx, sy = w / screen.width, h / screen.height
    px = lambda p: (p[0] * sx, p[1] * sy)  # noqa: E731  screen pixels -> image pixels
    short = min(w, h)
    r = max(6.0, style.marker_radius * short)
    lw = max(2, round(style.line_width * short))
    draw = ImageDraw.Draw(img)

    a = action.to_frame(Frame.PIXEL, screen) if action.is_valid else action
    anchor: tuple[float, float] | None = None
    t = a.type
    if t in (ActionType.CLICK, ActionType.LONG_PRESS) or (t is ActionType.TYPE and a.point is not None):
        anchor = px(a.point)
        _marker(draw, anchor, r, lw, style)
    elif t in (ActionType.SWIPE, ActionType.SCROLL):
        if t is ActionType.SCROLL:
            sw = scroll_to_swipe(a, screen)
        elif a.point is not None and a.end is not None:
            sw = a
        else:  # direction only: the finger path through the centre, half the screen long
            sw = scroll_to_swipe(Action.scroll(OPPOSITE[a.direction]), screen)
        start, end = px(sw.point), px(sw.end)
        anchor = start
        _arrow(draw, start, end, max(12.0, 2.0 * r), lw, style)
    elif t is ActionType.BOX:
        x1, y1 = px(a.box[:2])
        x2, y2 = px(a.box[2:])
        anchor = (x1, y1)
        draw.rectangle((x1, y1, x2, y2), outline=style.halo, width=lw + 2)
        draw.rectangle((x1, y1, x2, y2), outline=style.color, width=lw)

    text = caption_for(a, style.max_caption_chars)
    if text:
        band = max(10, round(style.font_size * short)) * 1.5 + r
        bottom = anchor is not None and anchor[1] <= band
        _draw_caption(draw, (w, h), text, bottom, style)
    return img
