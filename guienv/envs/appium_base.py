"""Shared layer of the online GUI envs driven through an Appium server (REFERENCE.md section 10).

One :class:`AppiumEnv` base serves the web (Appium's Chromium driver, :mod:`guienv.envs.miniwob`)
and Android (UiAutomator2, :mod:`guienv.envs.android`). A step is

1. ``guienv.actions.as_action`` -> an :class:`~guienv.actions.Action` in any frame, converted to
   the **screenshot pixel** frame (``Action.to_frame(Frame.PIXEL, Screen(w, h))``);
2. :meth:`AppiumEnv.plan` -> a short list of typed device :class:`Command` s in the **driver's**
   coordinate space (CSS pixels for web, device pixels for Android): a pure function, so the
   translation is tested without a device;
3. :meth:`AppiumEnv.execute` runs each command: taps, long presses and swipes as W3C pointer
   actions (selenium ``ActionBuilder`` with a touch ``PointerInput``: move, down, pause, up), text
   through the driver (``send_keys`` to the focused element; never through a shell);
4. observation = screenshot (uint8 ``H x W x 3``) + the UI elements as a JSON string.

Elements travel in the observation as **JSON text** (an :class:`~guienv.spaces.AnyText`) rather
than a Gymnasium ``Sequence``: ``Sequence`` spaces break ``AsyncVectorEnv`` shared memory and
batch badly, a string batches as a tuple. The same elements, parsed into
:class:`guienv.types.UIElement`, are in ``info["elements"]``.

Every driver call goes through :meth:`AppiumEnv._guard`: the HTTP client has a per-request
timeout (``ClientConfig.timeout``, urllib3 retries off so a GET is not silently retried 3 times),
and a transport failure, a timeout or a vanished session becomes one
:class:`AppiumSessionError`; the env forgets the session and the next ``reset`` starts a new one.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from PIL import Image

from guienv.actions import Action, ActionType, action_space, scroll_to_swipe
from guienv.errors import EnvProtocolError, MissingDependency
from guienv.frames import Frame, Screen
from guienv.parsing import as_action
from guienv.spaces import AnyText, Screenshot
from guienv.types import UIElement


class AppiumSessionError(RuntimeError):
    """The Appium server or session died, or a command ran past its timeout.

    Raised by ``step``/``reset`` instead of hanging; the env has dropped the session and the
    next ``reset()`` starts a new one.
    """


# -- configuration ---------------------------------------------------------------------------
@dataclass
class AppiumConfig:
    """What every Appium env needs; platform configs extend it."""

    server_url: str = "http://127.0.0.1:4723"
    command_timeout_s: float = 20.0  # HTTP timeout of one driver command
    session_timeout_s: float = 120.0  # HTTP timeout while a new session starts
    max_steps: int = 20  # episode truncates after this many steps
    settle_s: float = 0.0  # pause after an action before observing (animations)
    wait_s: float = 1.0  # duration of the ``wait`` action
    tap_hold_ms: float = 50.0  # finger down time of a tap
    long_press_ms: float = 1000.0
    swipe_ms: float = 400.0
    scroll_fraction: float = 0.5  # a scroll moves this fraction of the screen
    invalid_action_penalty: float = 0.0  # reward for an unparseable action (the step is a no-op)
    max_elements_chars: int = 1 << 20  # length bound of the elements JSON observation

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppiumConfig:
        """Build from a mapping (e.g. a YAML section); unknown keys are an error."""
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown fields {sorted(unknown)}")
        return cls(**data)


# -- device commands (the pure output of AppiumEnv.plan) -------------------------------------
@dataclass(frozen=True)
class Tap:
    x: int
    y: int
    hold_ms: float


@dataclass(frozen=True)
class Swipe:
    x1: int
    y1: int
    x2: int
    y2: int
    duration_ms: float


@dataclass(frozen=True)
class Wheel:
    """A W3C wheel scroll at ``(x, y)`` (web); ``dx``/``dy`` in CSS pixels, content moves by it."""

    x: int
    y: int
    dx: int
    dy: int


@dataclass(frozen=True)
class SwipeGesture:
    """UiAutomator2 ``mobile: swipeGesture``; ``direction`` is the **finger's**."""

    left: int
    top: int
    width: int
    height: int
    direction: str
    percent: float


@dataclass(frozen=True)
class TypeText:
    text: str


@dataclass(frozen=True)
class PressKey:
    key: str  # "enter" | "back" | "home"


@dataclass(frozen=True)
class LaunchApp:
    app_id: str


@dataclass(frozen=True)
class Wait:
    seconds: float


@dataclass(frozen=True)
class Noop:
    reason: str


Command = Tap | Swipe | Wheel | SwipeGesture | TypeText | PressKey | LaunchApp | Wait | Noop


# -- coordinates -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Viewport:
    """Maps screenshot pixels to driver coordinates: ``driver = origin + pixel / scale``.

    ``scale`` is screenshot pixels per driver unit (the page's devicePixelRatio for web, 1 for an
    Android screenshot taken at device resolution); ``origin`` is the driver coordinate of the
    screenshot's top-left pixel (a web crop's offset).
    """

    width: int  # screenshot size in pixels
    height: int
    scale: float = 1.0
    origin: tuple[float, float] = (0.0, 0.0)

    @property
    def screen(self) -> Screen:
        return Screen(self.width, self.height)

    def clamp(self, x: float, y: float) -> tuple[float, float]:
        """Keep a pixel point on the screenshot (a model may point just outside it)."""
        return min(max(x, 0.0), self.width - 1.0), min(max(y, 0.0), self.height - 1.0)

    def to_driver(self, x: float, y: float) -> tuple[int, int]:
        x, y = self.clamp(x, y)
        return (
            int(math.floor(self.origin[0] + x / self.scale)),
            int(math.floor(self.origin[1] + y / self.scale)),
        )

    def box_to_pixels(self, box: Sequence[float]) -> tuple[float, float, float, float]:
        """A driver-space ``(x1, y1, x2, y2)`` box in screenshot pixels, clipped to the image."""
        ox, oy = self.origin
        x1, y1, x2, y2 = ((box[0] - ox) * self.scale, (box[1] - oy) * self.scale,
                          (box[2] - ox) * self.scale, (box[3] - oy) * self.scale)
        cx = lambda v: min(max(v, 0.0), float(self.width))  # noqa: E731
        cy = lambda v: min(max(v, 0.0), float(self.height))  # noqa: E731
        return cx(x1), cy(y1), cx(x2), cy(y2)


def plan_pointer(action: Action, vp: Viewport, cfg: AppiumConfig) -> list[Command] | None:
    """Commands for the actions both platforms run the same way (pixel-frame ``action``).

    Returns ``None`` for the types a platform plans itself (scroll, keys, open_app).
    """
    t = action.type
    if t is ActionType.CLICK:
        return [Tap(*vp.to_driver(*action.point), hold_ms=cfg.tap_hold_ms)]
    if t is ActionType.LONG_PRESS:
        hold = action.duration_ms if action.duration_ms is not None else cfg.long_press_ms
        return [Tap(*vp.to_driver(*action.point), hold_ms=hold)]
    if t is ActionType.SWIPE:
        if action.point is None or action.end is None:  # direction only: a centred finger swipe
            finger = action.direction
            content = {"up": "down", "down": "up", "left": "right", "right": "left"}[finger]
            action = scroll_to_swipe(Action.scroll(content), vp.screen, cfg.scroll_fraction)
        dur = action.duration_ms if action.duration_ms is not None else cfg.swipe_ms
        (x1, y1), (x2, y2) = vp.to_driver(*action.point), vp.to_driver(*action.end)
        return [Swipe(x1, y1, x2, y2, duration_ms=dur)]
    if t is ActionType.TYPE:
        cmds: list[Command] = []
        if action.point is not None:  # focus the field first
            cmds.append(Tap(*vp.to_driver(*action.point), hold_ms=cfg.tap_hold_ms))
        return cmds + [TypeText(action.text)]
    if t is ActionType.KEYBOARD_ENTER:
        return [PressKey("enter")]
    if t is ActionType.NAVIGATE_BACK:
        return [PressKey("back")]
    if t is ActionType.NAVIGATE_HOME:
        return [PressKey("home")]
    if t is ActionType.WAIT:
        return [Wait(cfg.wait_s)]
    if t is ActionType.BOX:
        # A grounding answer is not a device action; treat it as a tap on the box centre.
        return [Tap(*vp.to_driver(*action.target), hold_ms=cfg.tap_hold_ms)]
    if t in (ActionType.FINISH, ActionType.INVALID):
        return []
    return None


# -- W3C pointer actions ---------------------------------------------------------------------
def w3c_tap(driver: Any, x: int, y: int, hold_ms: float) -> None:
    """Touch tap / long press: move (0 ms), down, pause ``hold_ms``, up."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    ab = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_TOUCH, "finger"), duration=0)
    ab.pointer_action.move_to_location(int(x), int(y))
    ab.pointer_action.pointer_down()
    if hold_ms > 0:
        ab.pointer_action.pause(hold_ms / 1000.0)
    ab.pointer_action.pointer_up()
    ab.perform()


def w3c_swipe(driver: Any, x1: int, y1: int, x2: int, y2: int, duration_ms: float) -> None:
    """Touch swipe: move to start, down, move to end over ``duration_ms``, up."""
    from selenium.webdriver.common.actions import interaction
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput

    finger = PointerInput(interaction.POINTER_TOUCH, "finger")
    ab = ActionBuilder(driver, mouse=finger, duration=0)
    ab.pointer_action.move_to_location(int(x1), int(y1))
    ab.pointer_action.pointer_down()
    # Only the drag carries the duration; the approach above is instantaneous.
    finger.create_pointer_move(duration=int(duration_ms), x=int(x2), y=int(y2))
    ab.pointer_action.pointer_up()
    ab.perform()


def w3c_wheel(driver: Any, x: int, y: int, dx: int, dy: int) -> None:
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    ab = ActionBuilder(driver, duration=0)
    ab.wheel_action.scroll(x=int(x), y=int(y), delta_x=int(dx), delta_y=int(dy), duration=0)
    ab.perform()


# -- elements ----------------------------------------------------------------------------------
_ELEMENT_FIELDS = tuple(UIElement.__dataclass_fields__)


def element_from_dict(d: dict[str, Any]) -> UIElement:
    """A :class:`UIElement` from one entry of the elements JSON (extra keys are ignored)."""
    kw = {k: d[k] for k in _ELEMENT_FIELDS if k in d}
    kw["box"] = tuple(float(v) for v in d["box"])
    return UIElement(**kw)


def elements_to_json(elements: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(elements), ensure_ascii=False, separators=(",", ":"))


def parse_elements(text: str) -> list[dict[str, Any]]:
    """Inverse of the ``elements`` observation (a JSON list of element dicts)."""
    data = json.loads(text)
    if not isinstance(data, list):
        raise ValueError("elements observation must be a JSON list")
    return data


def decode_png(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


# -- session-loss classification -------------------------------------------------------------
_GONE_MARKERS = (
    "invalid session id",
    "session deleted",
    "no such session",
    "not reachable",
    "disconnected",
    "session not created",
    "instrumentation process is not running",
    "socket hang up",
    "econnrefused",
    "could not proxy",
    "target window already closed",
)


def _is_transport_error(exc: BaseException) -> bool:
    import urllib3

    return isinstance(exc, (urllib3.exceptions.HTTPError, http.client.HTTPException, ConnectionError, TimeoutError, OSError))


def is_session_lost(exc: BaseException) -> bool:
    """True for errors after which the session can't be used (transport, timeout, gone session)."""
    from selenium.common.exceptions import InvalidSessionIdException, NoSuchWindowException, WebDriverException

    if _is_transport_error(exc):
        return True
    if isinstance(exc, (InvalidSessionIdException, NoSuchWindowException)):
        return True
    if isinstance(exc, WebDriverException):
        msg = (exc.msg or str(exc)).lower()
        return any(m in msg for m in _GONE_MARKERS)
    return False


# -- the env -----------------------------------------------------------------------------------
class AppiumEnv(gym.Env):
    """Base Gymnasium env for one Appium session.

    Subclasses provide :meth:`capabilities`, :meth:`begin_episode`, :meth:`capture`,
    :meth:`evaluate` and the platform parts of :meth:`plan`/:meth:`execute`.

    Observation: ``{"screenshot": uint8 (H, W, 3), "instruction": str, "elements": JSON str}``.
    Info: ``elements`` (tuple of :class:`UIElement`, screenshot pixels), ``step``, ``action``
    (the pixel-frame action JSON), ``commands`` (what ran), ``action_error`` (when the device
    refused the action), ``invalid`` (reason, for unparseable actions), ``session_id``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, config: AppiumConfig, render_mode: str | None = None, screen_size: tuple[int, int] | None = None):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.config = config
        self.render_mode = render_mode
        # (width, height) when every screenshot has the same size: a fixed Box; else Screenshot().
        self.screen_size = screen_size
        if screen_size is not None:
            w, h = screen_size
            shot = spaces.Box(0, 255, shape=(h, w, 3), dtype=np.uint8)
        else:
            shot = Screenshot()
        self.observation_space = spaces.Dict(
            {
                "screenshot": shot,
                "instruction": AnyText(4096),
                "elements": AnyText(config.max_elements_chars),
            }
        )
        self.action_space = action_space()
        self.driver: Any = None
        self._stale_driver: Any = None
        self.viewport: Viewport | None = None
        self._steps = 0
        self._done = False
        self._instruction = ""
        self._last_frame: np.ndarray | None = None
        self._sessions_started = 0

    # -- platform hooks ------------------------------------------------------------------------
    def capabilities(self) -> dict[str, Any]:
        raise NotImplementedError

    def on_session_start(self) -> None:
        """Called once per new session (e.g. to measure the viewport)."""

    def begin_episode(self, options: dict[str, Any]) -> str:
        """Put the device in the episode's start state; return the instruction."""
        raise NotImplementedError

    def capture(self) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Screenshot and element dicts (boxes in screenshot pixels); sets ``self.viewport``."""
        raise NotImplementedError

    def evaluate(self, action: Action) -> tuple[float, bool, dict[str, Any]]:
        """Reward, terminated and extra info after ``action`` ran."""
        raise NotImplementedError

    def plan_platform(self, action: Action, vp: Viewport) -> list[Command]:
        """Commands for the types :func:`plan_pointer` leaves to the platform."""
        return [Noop(f"{action.type.value} is not supported here")]

    def execute_platform(self, cmd: Command) -> None:
        raise NotImplementedError(f"{type(cmd).__name__} is not supported here")

    # -- planning and execution ----------------------------------------------------------------
    def plan(self, action: Action) -> list[Command]:
        """Device commands for ``action`` (any frame; needs a captured viewport)."""
        if self.viewport is None:
            raise EnvProtocolError("plan() needs an observation first: call reset()")
        action = action.to_frame(Frame.PIXEL, self.viewport.screen)
        cmds = plan_pointer(action, self.viewport, self.config)
        return cmds if cmds is not None else self.plan_platform(action, self.viewport)

    def execute(self, cmd: Command) -> None:
        d = self.driver
        if isinstance(cmd, Tap):
            w3c_tap(d, cmd.x, cmd.y, cmd.hold_ms)
        elif isinstance(cmd, Swipe):
            w3c_swipe(d, cmd.x1, cmd.y1, cmd.x2, cmd.y2, cmd.duration_ms)
        elif isinstance(cmd, Wait):
            time.sleep(cmd.seconds)
        elif isinstance(cmd, Noop):
            pass
        else:
            self.execute_platform(cmd)

    # -- session management --------------------------------------------------------------------
    def _client_config(self, timeout: float) -> Any:
        from appium.webdriver.client_config import AppiumClientConfig
        from selenium.webdriver.common.proxy import Proxy

        return AppiumClientConfig(
            self.config.server_url,
            timeout=timeout,
            keep_alive=True,
            # Never route a loopback server through an http_proxy from the environment.
            proxy=Proxy(raw={"proxyType": "direct"}),
            # urllib3 would retry a timed-out GET 3 times (4x the timeout); fail on the first.
            init_args_for_pool_manager={"init_args_for_pool_manager": {"retries": False}},
        )

    def new_driver(self) -> Any:
        """Start a session (overridable; the Android tests swap in a labelled fake)."""
        try:
            from appium import webdriver
            from appium.options.common import AppiumOptions
        except ImportError as exc:
            raise MissingDependency(
                "Appium envs need the Appium Python client: pip install Appium-Python-Client (emulator/install.sh)"
            ) from exc

        options = AppiumOptions().load_capabilities(self.capabilities())
        driver = webdriver.Remote(
            self.config.server_url, options=options, client_config=self._client_config(self.config.session_timeout_s)
        )
        # Session start may take long (UiAutomator2 installs its server); commands may not.
        driver.command_executor.client_config.timeout = self.config.command_timeout_s
        return driver

    def _start_session(self) -> None:
        self._drop_session()
        try:
            self.driver = self.new_driver()
        except Exception as exc:
            self.driver = None
            raise AppiumSessionError(
                f"cannot start an Appium session at {self.config.server_url} ({type(exc).__name__}: {exc}); "
                "is the server running (`guienv appium start`) with the needed driver installed?"
            ) from exc
        self._sessions_started += 1
        with self._guard("session setup"):
            self.on_session_start()

    def _drop_session(self, lost: bool = False) -> None:
        """Forget the session. A healthy one is ended now; a lost one (server dead or hung) is
        only asked to end, briefly, when the next session starts, so ``step`` raises at once."""
        driver, self.driver, self.viewport = self.driver, None, None
        stale, self._stale_driver = self._stale_driver, None
        if lost:
            self._stale_driver = driver
            driver = None
        for d in (stale, driver):
            if d is None:
                continue
            with contextlib.suppress(Exception):
                d.command_executor.client_config.timeout = min(2.0, self.config.command_timeout_s)
                d.quit()

    @property
    def session_id(self) -> str | None:
        return None if self.driver is None else self.driver.session_id

    @contextlib.contextmanager
    def _guard(self, what: str) -> Iterator[None]:
        """Turn a lost session (transport error, timeout, vanished session) into AppiumSessionError."""
        try:
            yield
        except AppiumSessionError:
            raise
        except Exception as exc:
            from selenium.common.exceptions import WebDriverException

            if is_session_lost(exc) or isinstance(exc, WebDriverException):
                # A failed observation/setup command leaves the session in an unknown state too.
                self._drop_session(lost=True)
                kind = "session lost" if is_session_lost(exc) else "command failed"
                raise AppiumSessionError(
                    f"Appium {kind} during {what} (server {self.config.server_url}, command timeout "
                    f"{self.config.command_timeout_s:g}s): {type(exc).__name__}: {str(exc).strip()[:500]}. "
                    "The next reset() starts a new session."
                ) from exc
            raise

    # -- Gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        fresh = self.driver is None
        if fresh:
            self._start_session()
        try:
            with self._guard("reset"):
                self._instruction = self.begin_episode(options)
                obs, info = self._observe()
        except AppiumSessionError:
            if fresh:
                raise
            # The kept session had died between episodes: one retry on a new session.
            self._start_session()
            with self._guard("reset"):
                self._instruction = self.begin_episode(options)
                obs, info = self._observe()
        self._steps, self._done = 0, False
        info["step"] = 0
        return obs, info

    def step(self, action: Any):
        if self.driver is None:
            raise AppiumSessionError("no Appium session: call reset() first (the last session was lost or closed)")
        a = as_action(action)
        self._steps += 1
        info: dict[str, Any] = {}
        reward, terminated = 0.0, False
        if not a.is_valid:
            info["invalid"] = a.reason
            reward = self.config.invalid_action_penalty
            cmds: list[Command] = []
            pixel = a
        else:
            pixel = a.to_frame(Frame.PIXEL, self.viewport.screen)
            cmds = self.plan(pixel)
        with self._guard(f"step ({a.type.value})"):
            for cmd in cmds:
                err = self._run_action_command(cmd)
                if err:
                    info["action_error"] = err
                    break
            if cmds and self.config.settle_s > 0:
                time.sleep(self.config.settle_s)
            r, terminated, extra = self.evaluate(pixel)
            reward += r
            info.update(extra)
            obs, obs_info = self._observe()
        if a.type is ActionType.FINISH:
            terminated = True
        truncated = not terminated and self._steps >= self.config.max_steps
        self._done = terminated or truncated
        info.update(obs_info)
        info.update(step=self._steps, action=pixel.to_dict() if pixel.is_valid else None,
                    commands=[type(c).__name__ for c in cmds])
        noops = [c.reason for c in cmds if isinstance(c, Noop)]
        if noops:
            info["noops"] = noops
        return obs, float(reward), bool(terminated), bool(truncated), info

    def _run_action_command(self, cmd: Command) -> str | None:
        """Run one command; a device refusal (not a lost session) is returned as an error string."""
        from selenium.common.exceptions import WebDriverException

        try:
            self.execute(cmd)
        except WebDriverException as exc:
            if is_session_lost(exc):
                raise
            return f"{type(cmd).__name__}: {type(exc).__name__}: {(exc.msg or str(exc)).strip()[:300]}"
        return None

    def _observe(self) -> tuple[dict[str, Any], dict[str, Any]]:
        frame, elements = self.capture()
        self._last_frame = frame
        text, kept = elements_to_json(elements), len(elements)
        while len(text) > self.config.max_elements_chars and kept > 0:
            # Keep the observation inside its space: drop trailing elements, and say so in info.
            kept = kept * self.config.max_elements_chars // (len(text) + 1)
            text = elements_to_json(elements[:kept])
        obs = {
            "screenshot": frame,
            "instruction": self._instruction,
            "elements": text,
        }
        info = {
            "elements": tuple(element_from_dict(e) for e in elements),
            "session_id": self.session_id,
            "sessions_started": self._sessions_started,
        }
        if kept < len(elements):
            info["elements_dropped"] = len(elements) - kept
        return obs, info

    def render(self):
        if self.render_mode == "rgb_array":
            return None if self._last_frame is None else self._last_frame.copy()
        return None

    def close(self):
        self._drop_session()
        super().close()


# == web (Appium Chromium driver) ==============================================================
@dataclass
class ChromiumConfig(AppiumConfig):
    """A headless Chromium session through Appium's Chromium driver (capabilities verified with
    Debian's chromium/chromedriver, REFERENCE.md section 10)."""

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
        img = decode_png(self.driver.get_screenshot_as_png())
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
                c = TypeText(clean)
            elif isinstance(c, PressKey) and c.key == "home" and self.config.home_url is None:
                c = Noop("navigate_home has no target page here")
            out.append(c)
        return out

    def execute_platform(self, cmd: Command) -> None:
        from selenium.webdriver.common.keys import Keys

        d = self.driver
        if isinstance(cmd, TypeText):
            if cmd.text:
                d.switch_to.active_element.send_keys(cmd.text)
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
