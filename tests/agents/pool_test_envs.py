"""Test envs for ``tests/agents/test_env_pool.py``: registered by entry-point string when this
module is imported, so spawned workers and Ray actors reach them as ``pool_test_envs:<id>``.

``FaultEnv`` counts steps; ``reset(options={"fault": ..., "at": n})`` makes step ``n`` of that
episode raise (``"raise"``), end the process (``"exit"``: ``os._exit(3)``) or hang (``"hang"``),
so each slot of one pool can get its own fault. ``sleep_s`` makes every step sleep.
"""

from __future__ import annotations

import os
import time

import gymnasium as gym
import numpy as np

FAULT_ID = "guienv-test/PoolFault-v0"
FAULTS = ("raise", "exit", "hang")


class FaultEnv(gym.Env):
    observation_space = gym.spaces.Box(0, 1_000_000, (2,), np.int64)
    action_space = gym.spaces.Discrete(10)

    def __init__(self, sleep_s: float = 0.0):
        self.sleep_s = float(sleep_s)
        self.t, self.fault, self.at, self.pid_seen = 0, None, None, os.getpid()

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = dict(options or {})
        self.fault, self.at = options.get("fault"), options.get("at")
        if self.fault not in (None, *FAULTS):
            raise ValueError(f"unknown fault {self.fault!r}")
        self.t = 0
        start = int(self.np_random.integers(0, 1000))
        self.start = start
        return np.array([start, 0]), {"pid": os.getpid()}

    def step(self, action):
        self.t += 1
        if self.sleep_s:
            time.sleep(self.sleep_s)
        if self.t == self.at:
            if self.fault == "raise":
                raise RuntimeError(f"session lost at step {self.t}")
            if self.fault == "exit":
                os._exit(3)
            if self.fault == "hang":
                time.sleep(3600)
        return np.array([self.start, self.t]), float(action), False, self.t >= 5, {"pid": os.getpid(), "t": self.t}


if FAULT_ID not in gym.registry:
    gym.register(FAULT_ID, entry_point=f"{__name__}:FaultEnv")
