"""Device commands of the Appium envs: the pure output of ``AppiumEnv.plan``, the viewport that
maps screenshot pixels to driver coordinates, and the W3C pointer actions that run them.

Commands are plain frozen dataclasses in the **driver's** coordinate space (CSS pixels for web,
device pixels for Android), so the translation from an :class:`~guienv.actions.Action` is tested
without a device. Taps, long presses and swipes run as W3C pointer actions (selenium
``ActionBuilder`` with a touch ``PointerInput``: move, down, pause, up).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from guienv.actions import Action, ActionType, scroll_to_swipe
from guienv.config import load_config
from guienv.frames import Screen


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
    def from_dict(cls, data: Mapping[str, Any], where: str = "<appium config>") -> AppiumConfig:
        """Build from a mapping (e.g. a YAML section) with :func:`guienv.config.load_config`:
        unknown keys and bad types are :class:`~guienv.errors.DataError` s naming the key."""
        return load_config(cls, data, where)


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
