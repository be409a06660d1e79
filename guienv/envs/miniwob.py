"""MiniWoB++ tasks in headless Chromium through Appium (``guienv/MiniWoB-v0``).

MiniWoB++ (Shi et al., 2017, "World of Bits"; Liu et al., 2018) task pages ship in the
``miniwob`` PyPI package under ``miniwob/html/miniwob/<task>.html`` and run offline from
``file://`` URLs. As in the package's own Selenium envs (Farama-Foundation/miniwob-plusplus
``miniwob/selenium_instance.py``), an episode is
started with ``core.startEpisodeReal()`` after ``Math.seedrandom(seed)``; the reward is
``WOB_RAW_REWARD_GLOBAL`` (``reward="raw"``) or the time-decayed ``WOB_REWARD_GLOBAL``
(``reward="decayed"``), read once ``WOB_DONE_GLOBAL`` is true; the instruction is the ``#query``
text (``core.getUtterance()``).

The observation is the 160x210 CSS-pixel task area, rendered at ``device_scale_factor`` screenshot
pixels per CSS pixel (so ``scale=2`` gives a 320x420 screenshot); coordinates of actions and
element boxes are in that screenshot's pixel frame.

Registration: ``register_miniwob_envs()`` registers ``guienv/MiniWoB-v0`` (``task=...`` kwarg)
and one ``guienv/MiniWoB-<task>-v0`` id per task page of the installed package.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from guienv.actions import Action
from guienv.envs.appium_commands import Command, Noop, PressKey
from guienv.envs.chromium import ChromiumConfig, ChromiumEnv
from guienv.registration import miniwob_html_dir, miniwob_tasks, register_miniwob_envs  # noqa: F401

TASK_WIDTH, TASK_HEIGHT = 160, 210  # MiniWoB's #wrap, CSS pixels
_TASK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass
class MiniWoBConfig(ChromiumConfig):
    task: str = "click-button"
    reward: str = "raw"  # "raw": WOB_RAW_REWARD_GLOBAL; "decayed": WOB_REWARD_GLOBAL (time-decayed)
    episode_max_time_ms: int | None = None  # None keeps the page's own limit (10 s)
    html_dir: str | None = None  # default: the installed package's html folder
    max_steps: int = 10
    ready_timeout_s: float = 5.0  # page load / WOB_TASK_READY wait

    def __post_init__(self) -> None:
        if self.reward not in ("raw", "decayed"):
            raise ValueError(f"reward must be 'raw' or 'decayed', got {self.reward!r}")
        if not _TASK_NAME.match(self.task):
            raise ValueError(f"bad MiniWoB task name {self.task!r}")


# Episode state read after every action (one round trip).
_STATE_JS = """
return {done: WOB_DONE_GLOBAL, raw: WOB_RAW_REWARD_GLOBAL, decayed: WOB_REWARD_GLOBAL,
        reason: WOB_REWARD_REASON == null ? null : String(WOB_REWARD_REASON)};
"""

_START_JS = """
const seed = arguments[0], maxTime = arguments[1];
Math.seedrandom(seed);
if (maxTime !== null) core.EPISODE_MAX_TIME = maxTime;
core.startEpisodeReal();
const u = core.getUtterance();
return {utterance: (typeof u === 'object' && u !== null) ? u.utterance : u, ready: WOB_TASK_READY};
"""


class MiniWoBEnv(ChromiumEnv):
    """One MiniWoB++ task page per Appium session; ``reset(options={"task": name})`` switches task.

    Reward: the task's raw (or time-decayed) reward once the page reports the episode done, else
    0. ``terminated`` when the page is done or on ``finish``; ``truncated`` after ``max_steps``.
    Info adds ``task``, ``done``, ``raw_reward``, ``env_reward``, ``reason``, ``success``.
    """

    crop = (0.0, 0.0, float(TASK_WIDTH), float(TASK_HEIGHT))
    skip_selector = "#reward-display, #click-canvas"

    def __init__(self, task: str | None = None, render_mode: str | None = None, config: MiniWoBConfig | None = None, **kwargs: Any):
        if config is None:
            config = MiniWoBConfig.from_dict({**({"task": task} if task else {}), **kwargs}, "MiniWoBEnv keyword options")
        elif task or kwargs:
            raise ValueError("pass either config= or task/keyword options, not both")
        self.tasks = miniwob_tasks(config.html_dir)
        if config.task not in self.tasks:
            raise ValueError(f"unknown MiniWoB task {config.task!r}; the package has {len(self.tasks)} tasks")
        super().__init__(config, render_mode)
        self.task = config.task
        self._loaded: str | None = None
        self._episode_done = False
        self._page_seed: int | None = None

    def task_url(self, task: str) -> str:
        root = Path(self.config.html_dir) if self.config.html_dir else miniwob_html_dir()
        return (root / "miniwob" / f"{task}.html").as_uri()

    def on_session_start(self) -> None:
        super().on_session_start()
        self._loaded = None

    def begin_episode(self, options: dict[str, Any]) -> str:
        task = options.get("task", self.task)
        if task not in self.tasks:
            raise ValueError(f"unknown MiniWoB task {task!r}")
        d = self.driver
        if self._loaded != task:
            d.get(self.task_url(task))
            self._wait(lambda: d.execute_script(
                "return document.readyState === 'complete' && typeof core !== 'undefined' && typeof genProblem === 'function';"
            ), f"task page {task} to load")
            self._loaded = task
        self.task = task
        seed = int(options["page_seed"]) if "page_seed" in options else int(self.np_random.integers(0, 2**31 - 1))
        started = d.execute_script(_START_JS, seed, self.config.episode_max_time_ms)
        if not started.get("ready", True):
            self._wait(lambda: d.execute_script("return WOB_TASK_READY;"), f"task {task} to become ready")
            started["utterance"] = d.execute_script("const u = core.getUtterance(); return typeof u === 'object' ? u.utterance : u;")
        self._episode_done = False
        self._page_seed = seed
        return str(started.get("utterance") or "")

    def _wait(self, predicate, what: str) -> None:
        deadline = time.monotonic() + self.config.ready_timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise RuntimeError(f"MiniWoB: gave up after {self.config.ready_timeout_s:g}s waiting for {what}")
            time.sleep(0.05)

    def plan(self, action: Action) -> list[Command]:
        # A task is one page: browser back/home would leave it, so they do nothing here.
        return [Noop(f"{c.key} has no effect in a MiniWoB task") if isinstance(c, PressKey) and c.key in ("back", "home") else c
                for c in super().plan(action)]

    def judge_step(self, action: Action) -> tuple[float, bool, dict[str, Any]]:
        st = self.driver.execute_script(_STATE_JS)
        done = bool(st["done"])
        raw, decayed = float(st["raw"] or 0.0), float(st["decayed"] or 0.0)
        reward = (raw if self.config.reward == "raw" else decayed) if done and not self._episode_done else 0.0
        self._episode_done = self._episode_done or done
        info = {
            "task": self.task,
            "done": done,
            "raw_reward": raw,
            "env_reward": decayed,
            "reason": st["reason"],
            "success": bool(done and raw > 0),
        }
        return reward, done, info

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = super().reset(seed=seed, options=options)
        info.update(task=self.task, page_seed=self._page_seed, done=False, success=False)
        return obs, info


