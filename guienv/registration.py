"""Gymnasium registration of every ``guienv/`` id.

Gymnasium 1.x loads no plugins from entry points, so ids are registered when ``guienv`` is
imported (``gym.make("guienv:guienv/SynthApp-v0")`` also works from a fresh interpreter).
Entry points are strings, so registering imports no env module.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym

from guienv.errors import MissingDependency

ENVS: dict[str, str] = {
    "guienv/ScreenSpot-v0": "guienv.envs.screenspot:ScreenSpotEnv",
    "guienv/AndroidControl-v0": "guienv.envs.androidcontrol:AndroidControlEnv",
    "guienv/SynthApp-v0": "guienv.envs.synthapp:SynthAppEnv",
    "guienv/MiniWoB-v0": "guienv.envs.miniwob:MiniWoBEnv",
    "guienv/AppiumAndroid-v0": "guienv.envs.android:AndroidEnv",
    "guienv/MDP-v0": "guienv.envs.mdp:MDPEnv",
    "guienv/ALFWorld-v0": "guienv.envs.alfworld:ALFWorldEnv",
    "guienv/WebShop-v0": "guienv.envs.webshop:WebShopEnv",
}


def register_envs() -> None:
    for env_id, entry_point in ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)
    # One id per MiniWoB++ task (guienv/MiniWoB-click-button-v0, ...), found without importing miniwob.
    register_miniwob_envs()


def miniwob_html_dir() -> Path:
    """``miniwob/html`` of the installed ``miniwob`` package (located without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("miniwob")
    if spec is None or not spec.origin:
        raise MissingDependency("the `miniwob` package is needed for MiniWoB envs: pip install miniwob (emulator/install.sh)")
    return Path(spec.origin).resolve().parent / "html"


def miniwob_tasks(html_dir: str | Path | None = None) -> tuple[str, ...]:
    """Names of the task pages (``click-button``, ...), sorted."""
    root = Path(html_dir) if html_dir else miniwob_html_dir()
    return tuple(sorted(p.stem for p in (root / "miniwob").glob("*.html")))


def register_miniwob_envs(per_task: bool = True) -> list[str]:
    """Register ``guienv/MiniWoB-v0`` and (``per_task``) ``guienv/MiniWoB-<task>-v0`` ids.

    Entry points are strings, so workers of ``AsyncVectorEnv`` started with ``spawn`` see the
    ids once they import ``guienv.envs.miniwob``; ``per_task`` lists the installed package's
    task pages (130 in miniwob 1.1). Returns the ids registered by this call.
    """
    ids = {"guienv/MiniWoB-v0": {}}
    if per_task:
        try:
            for task in miniwob_tasks():
                ids[f"guienv/MiniWoB-{task}-v0"] = {"task": task}
        except ImportError:
            pass
    new = []
    for env_id, kwargs in ids.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point="guienv.envs.miniwob:MiniWoBEnv", kwargs=kwargs)
            new.append(env_id)
    return new
