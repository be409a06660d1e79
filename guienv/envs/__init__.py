"""The guienv Gymnasium envs. ``gym.make("guienv/<Name>-v0")`` imports only the env it makes;
the names below load their module on first use (env modules pull in optional engines)."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ALFWorldEnv": "guienv.envs.alfworld",
    "AndroidControlEnv": "guienv.envs.androidcontrol",
    "AndroidEnv": "guienv.envs.android",
    "AppiumEnv": "guienv.envs.appium_base",
    "AppiumSessionError": "guienv.envs.appium_base",
    "ChromiumEnv": "guienv.envs.chromium",
    "MDPEnv": "guienv.envs.mdp",
    "MiniWoBEnv": "guienv.envs.miniwob",
    "ScreenSpotEnv": "guienv.envs.screenspot",
    "SynthAppEnv": "guienv.envs.synthapp",
    "WebShopEnv": "guienv.envs.webshop",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'guienv.envs' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
