"""Shared layer of the online GUI envs driven through an Appium server (appium/appium
``packages/appium/README.md``; W3C WebDriver Actions, https://www.w3.org/TR/webdriver2/#actions).

One :class:`AppiumEnv` base serves the web (Appium's Chromium driver, :mod:`guienv.envs.miniwob`)
and Android (UiAutomator2, :mod:`guienv.envs.android`). A step is

1. :func:`guienv.parsing.read_action` -> an :class:`~guienv.actions.Action` in the **screenshot
   pixel** frame (model text is read in pixels; other inputs carry their own frame);
2. :meth:`AppiumEnv.plan` -> a short list of typed device commands (:mod:`guienv.envs.appium_commands`) in the **driver's**
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
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from guienv.actions import Action, ActionType, action_space
from guienv.envs.appium_commands import (
    AppiumConfig,
    Command,
    Noop,
    Swipe,
    Tap,
    Viewport,
    Wait,
    plan_pointer,
    w3c_swipe,
    w3c_tap,
)
from guienv.errors import EnvProtocolError, MissingDependency
from guienv.frames import Frame
from guienv.parsing import read_action
from guienv.spaces import AnyText, Screenshot
from guienv.types import UIElement


class AppiumSessionError(RuntimeError):
    """The Appium server or session died, or a command ran past its timeout.

    Raised by ``step``/``reset`` instead of hanging; the env has dropped the session and the
    next ``reset()`` starts a new one.
    """


# -- elements ----------------------------------------------------------------------------------
_ELEMENT_FIELDS = tuple(UIElement.__dataclass_fields__)


def element_from_dict(d: dict[str, Any]) -> UIElement:
    """A :class:`UIElement` from one entry of the elements JSON (extra keys are ignored)."""
    kw = {k: d[k] for k in _ELEMENT_FIELDS if k in d}
    kw["box"] = tuple(float(v) for v in d["box"])
    return UIElement(**kw)


def elements_to_json(elements: Sequence[dict[str, Any]]) -> str:
    return json.dumps(list(elements), ensure_ascii=False, separators=(",", ":"))


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
    :meth:`judge_step` (did the action succeed: reward, terminated) and the platform parts of
    :meth:`plan`/:meth:`execute`.

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

    def judge_step(self, action: Action) -> tuple[float, bool, dict[str, Any]]:
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
        a = pixel = read_action(action, self.viewport.screen)
        self._steps += 1
        info: dict[str, Any] = {}
        reward, terminated = 0.0, False
        if not a.is_valid:
            info["invalid"] = a.reason
            reward = self.config.invalid_action_penalty
            cmds: list[Command] = []
        else:
            cmds = self.plan(pixel)
        with self._guard(f"step ({a.type.value})"):
            for cmd in cmds:
                err = self._run_action_command(cmd)
                if err:
                    info["action_error"] = err
                    break
            if cmds and self.config.settle_s > 0:
                time.sleep(self.config.settle_s)
            r, terminated, extra = self.judge_step(pixel)
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
