"""Web pages in headless Chromium through Appium's Chromium driver: :class:`ChromiumConfig`,
its W3C capabilities, the DOM script that lists visible elements, and :class:`ChromiumEnv`
(the base of :mod:`guienv.envs.miniwob`).

Capabilities follow Appium's Chromium driver documentation (appium/appium-chromium-driver,
``README.md``), checked against Debian's chromium/chromedriver packages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from guienv.actions import Action, ActionType
from guienv.envs.appium_base import AppiumEnv
from guienv.envs.appium_commands import AppiumConfig, Command, Noop, PressKey, TypeText, Viewport, Wheel, w3c_wheel
from guienv.io import decode_image


@dataclass
class ChromiumConfig(AppiumConfig):
    """A headless Chromium session through Appium's Chromium driver (capabilities verified with
    Debian's chromium/chromedriver; appium/appium-chromium-driver ``README.md``)."""

    window_size: tuple[int, int] = (500, 500)  # outer window; headless Chromium keeps width >= 500
    tap_hold_ms: float = 0.0  # Chromium turns a 0 ms touch into a click; saves 50 ms a step
    device_scale_factor: float = 1.0  # screenshot pixels per CSS pixel (devicePixelRatio)
    chromium_binary: str = "/usr/bin/chromium"
    chromedriver: str = "/usr/bin/chromedriver"
    extra_chromium_args: tuple[str, ...] = ()
    script_timeout_s: float = 10.0
    home_url: str | None = None  # ``navigate_home`` target; None makes it a no-op
    # Every Chromium session runs its own chromedriver; they all default to port 9515, and a
    # second session on that port kills the first one's. None: a free port per session.
    chromedriver_port: int | None = None


def chromium_capabilities(cfg: ChromiumConfig, chromedriver_port: int | None = None) -> dict[str, Any]:
    """W3C capabilities for Appium's Chromium driver (``browserName`` must be ``chrome``:
    chromedriver rejects ``chromium``; no chromedriver auto-download; a chromedriver port of
    its own so parallel sessions don't collide)."""
    w, h = cfg.window_size
    args = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={int(w)},{int(h)}",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--hide-scrollbars",
    ]
    if cfg.device_scale_factor != 1.0:
        args.append(f"--force-device-scale-factor={cfg.device_scale_factor:g}")
    args += list(cfg.extra_chromium_args)
    caps = {
        "platformName": "linux",
        "browserName": "chrome",
        "appium:automationName": "Chromium",
        "appium:executable": cfg.chromedriver,
        "appium:autodownloadEnabled": False,
        "goog:chromeOptions": {"binary": cfg.chromium_binary, "args": args},
    }
    port = chromedriver_port if chromedriver_port is not None else cfg.chromedriver_port
    if port is not None:
        caps["appium:chromedriverPort"] = int(port)
    return caps


def free_local_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Visible elements of the page as plain objects, boxes in CSS pixels relative to the viewport.
# arguments[0]: [x, y, w, h] region of interest (CSS px) or null; arguments[1]: CSS selector of
# subtrees to leave out, or null.
DOM_JS = r"""
const crop = arguments[0], skip = arguments[1];
const vw = window.innerWidth, vh = window.innerHeight;
const rx = crop ? crop[0] : 0, ry = crop ? crop[1] : 0;
const rw = crop ? crop[2] : vw, rh = crop ? crop[3] : vh;
const CLICK_TAGS = new Set(['A', 'BUTTON', 'INPUT', 'SELECT', 'TEXTAREA', 'LABEL', 'OPTION', 'SUMMARY']);
const ROLES = new Set(['button', 'link', 'checkbox', 'radio', 'tab', 'menuitem', 'option', 'switch']);
const TEXT_INPUTS = new Set(['text', 'search', 'email', 'password', 'tel', 'url', 'number', 'date',
                             'time', 'datetime-local', 'month', 'week']);
const SKIP_TAGS = new Set(['SCRIPT', 'STYLE', 'BR', 'NOSCRIPT', 'HEAD', 'META', 'LINK', 'TITLE']);
function ownText(el) {
  let t = '';
  for (const n of el.childNodes) if (n.nodeType === 3) t += n.data;
  return t.replace(/\s+/g, ' ').trim().slice(0, 300);
}
const out = [];
const all = document.body ? document.body.querySelectorAll('*') : [];
for (const el of all) {
  const tag = el.tagName;
  if (SKIP_TAGS.has(tag)) continue;
  if (skip && el.closest(skip)) continue;
  const r = el.getBoundingClientRect();
  if (r.width <= 0 || r.height <= 0) continue;
  if (r.right <= rx || r.bottom <= ry || r.left >= rx + rw || r.top >= ry + rh) continue;
  const cs = window.getComputedStyle(el);
  if (cs.visibility === 'hidden' || cs.display === 'none' || parseFloat(cs.opacity) === 0) continue;
  const role = (el.getAttribute('role') || '').toLowerCase();
  const isInput = el instanceof HTMLInputElement;
  const type = isInput ? (el.type || 'text').toLowerCase() : '';
  let checkable = isInput && (type === 'checkbox' || type === 'radio');
  let checked = checkable ? el.checked : false;
  if (tag === 'LABEL' && el.control && (el.control.type === 'checkbox' || el.control.type === 'radio')) {
    checkable = true; checked = el.control.checked;
  }
  if (role === 'checkbox' || role === 'radio' || role === 'switch') {
    checkable = true; checked = el.getAttribute('aria-checked') === 'true';
  }
  const editable = (isInput && TEXT_INPUTS.has(type)) || el instanceof HTMLTextAreaElement || el.isContentEditable;
  const clickable = CLICK_TAGS.has(tag) || ROLES.has(role) || el.hasAttribute('onclick') || cs.cursor === 'pointer';
  const scrollable = (el.scrollHeight > el.clientHeight + 1 && /(auto|scroll)/.test(cs.overflowY)) ||
                     (el.scrollWidth > el.clientWidth + 1 && /(auto|scroll)/.test(cs.overflowX));
  const value = (isInput || el instanceof HTMLTextAreaElement || el instanceof HTMLSelectElement) ? String(el.value) : null;
  const desc = el.getAttribute('aria-label') || el.getAttribute('title') || el.getAttribute('alt') ||
               el.getAttribute('placeholder') || null;
  out.push({
    css_box: [r.left, r.top, r.right, r.bottom],
    text: (editable && value !== null) ? value : ownText(el),
    content_description: desc,
    resource_id: el.id || null,
    class_name: tag.toLowerCase() + (type ? '_' + type : ''),
    clickable: !!clickable, editable: !!editable, scrollable: !!scrollable,
    checkable: !!checkable, checked: !!checked, visible: true,
    tag: tag.toLowerCase(),
    classes: typeof el.className === 'string' ? el.className : '',
    value: value,
    focused: document.activeElement === el,
  });
}
return {elements: out, inner: [vw, vh], dpr: window.devicePixelRatio};
"""

# WebDriver reserves U+E000..U+F8FF-range code points for keys (Enter, Ctrl, ...): hostile text
# must not press keys, so these characters are dropped (and counted) before typing.
_WEBDRIVER_KEY_RANGE = (0xE000, 0xF8FF)


def sanitize_webdriver_text(text: str) -> tuple[str, int]:
    """``text`` without WebDriver key code points, and how many were dropped."""
    lo, hi = _WEBDRIVER_KEY_RANGE
    clean = "".join(c for c in text if not lo <= ord(c) <= hi)
    return clean, len(text) - len(clean)


# WebDriver's sendKeys also turns "\n", "\r" and "\t" into Enter and Tab presses (an Enter in a
# one-line field submits its form). Such characters are inserted as text instead (the editing
# command a paste uses: no key events), so a newline lands in a textarea and is stripped by an
# <input>, exactly as pasted text would be.
_KEY_CHARS = re.compile(r"[\n\r\t]+")
_INSERT_TEXT_JS = "document.execCommand('insertText', false, arguments[0]);"


def split_key_chars(text: str) -> list[tuple[str, bool]]:
    """``text`` as runs ``(run, inserted)``: ``inserted`` runs hold only newline/tab characters."""
    out, pos = [], 0
    for m in _KEY_CHARS.finditer(text):
        if m.start() > pos:
            out.append((text[pos:m.start()], False))
        out.append((m.group(), True))
        pos = m.end()
    if pos < len(text):
        out.append((text[pos:], False))
    return out


class ChromiumEnv(AppiumEnv):
    """Web pages in headless Chromium through Appium's Chromium driver.

    Screenshot pixels map to CSS pixels through the measured devicePixelRatio (screenshot width
    over ``window.innerWidth``); :attr:`crop` (CSS ``x, y, w, h``) limits the observation to part
    of the viewport (MiniWoB's task area).
    """

    crop: tuple[float, float, float, float] | None = None
    skip_selector: str | None = None

    def __init__(self, config: ChromiumConfig, render_mode: str | None = None):
        size = None
        if self.crop is not None:
            s = config.device_scale_factor
            size = (int(round(self.crop[2] * s)), int(round(self.crop[3] * s)))
        super().__init__(config, render_mode, screen_size=size)

    def capabilities(self) -> dict[str, Any]:
        port = self.config.chromedriver_port
        return chromium_capabilities(self.config, port if port is not None else free_local_port())

    def on_session_start(self) -> None:
        self.driver.set_script_timeout(self.config.script_timeout_s)

    def dom(self) -> dict[str, Any]:
        return self.driver.execute_script(DOM_JS, list(self.crop) if self.crop else None, self.skip_selector)

    def capture(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        info = self.dom()
        img = decode_image(self.driver.get_screenshot_as_png(), "screenshot")
        inner_w = float(info["inner"][0])
        scale = img.shape[1] / inner_w if inner_w > 0 else float(info.get("dpr") or 1.0)
        if self.crop is not None:
            cx, cy, cw, ch = self.crop
            x0, y0 = int(round(cx * scale)), int(round(cy * scale))
            img = img[y0 : y0 + int(round(ch * scale)), x0 : x0 + int(round(cw * scale))]
            origin = (cx, cy)
        else:
            origin = (0.0, 0.0)
        if self.screen_size is not None and (img.shape[1], img.shape[0]) != self.screen_size:
            # The browser rendered at another scale than configured: fit the fixed Box.
            fw, fh = self.screen_size
            scale *= fw / img.shape[1]
            img = np.asarray(Image.fromarray(img).resize((fw, fh), Image.BILINEAR))
        img = np.ascontiguousarray(img)
        self.viewport = Viewport(img.shape[1], img.shape[0], scale=scale, origin=origin)
        elements = []
        for e in info["elements"]:
            e = dict(e)
            e["box"] = list(self.viewport.box_to_pixels(e.pop("css_box")))
            if e["box"][2] > e["box"][0] and e["box"][3] > e["box"][1]:
                elements.append(e)
        return img, elements

    def plan_platform(self, action: Action, vp: Viewport) -> list[Command]:
        if action.type is ActionType.SCROLL:
            # Content moves in ``direction``: "down" reveals what is below = wheel deltaY > 0.
            x, y = action.point if action.point is not None else (vp.width / 2, vp.height / 2)
            dx, dy = vp.to_driver(x, y)
            amount = self.config.scroll_fraction
            step_x = int(round(amount * vp.width / vp.scale))
            step_y = int(round(amount * vp.height / vp.scale))
            ddx = {"left": -step_x, "right": step_x}.get(action.direction, 0)
            ddy = {"up": -step_y, "down": step_y}.get(action.direction, 0)
            return [Wheel(dx, dy, ddx, ddy)]
        if action.type is ActionType.OPEN_APP:
            return [Noop("open_app has no meaning in a web page")]
        return super().plan_platform(action, vp)

    def plan(self, action: Action) -> list[Command]:
        cmds = super().plan(action)
        out: list[Command] = []
        for c in cmds:
            if isinstance(c, TypeText):
                clean, dropped = sanitize_webdriver_text(c.text)
                if dropped:
                    out.append(Noop(f"dropped {dropped} WebDriver key-code character(s) from the typed text"))
                inserted = sum(len(run) for run, ins in split_key_chars(clean) if ins)
                if inserted:
                    out.append(Noop(f"inserted {inserted} newline/tab character(s) as text, not pressed as Enter/Tab keys"))
                c = TypeText(clean)
            elif isinstance(c, PressKey) and c.key == "home" and self.config.home_url is None:
                c = Noop("navigate_home has no target page here")
            out.append(c)
        return out

    def execute_platform(self, cmd: Command) -> None:
        from selenium.webdriver.common.keys import Keys

        d = self.driver
        if isinstance(cmd, TypeText):
            for run, insert in split_key_chars(cmd.text):
                if insert:
                    d.execute_script(_INSERT_TEXT_JS, run)
                else:
                    d.switch_to.active_element.send_keys(run)
        elif isinstance(cmd, PressKey):
            if cmd.key == "enter":
                d.switch_to.active_element.send_keys(Keys.ENTER)
            elif cmd.key == "back":
                d.back()
            elif cmd.key == "home":
                d.get(self.config.home_url)
        elif isinstance(cmd, Wheel):
            w3c_wheel(d, cmd.x, cmd.y, cmd.dx, cmd.dy)
        else:
            super().execute_platform(cmd)

    def execute_js(self, script: str, *args: Any) -> Any:
        """Run JavaScript in the page (tests and oracles read page state with it)."""
        with self._guard("execute_js"):
            return self.driver.execute_script(script, *args)
