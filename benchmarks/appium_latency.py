"""Step latency and throughput of the Appium web env (MiniWoB click-button, headless Chromium).

One step = a W3C touch tap + the episode-state read + the DOM elements read + a screenshot.
The tap lands on the instruction area, so episodes don't end; the page's 10 s episode timer is
lifted so no reset falls inside the timed loop. Reports p50/p95 step latency and steps/s for one
env, and for N envs in ``gymnasium.vector.AsyncVectorEnv(shared_memory=False)`` (one Appium
session each, all on one server), plus a per-command breakdown for one env.

    python benchmarks/appium_latency.py --steps 100 --envs 1 2 [--server-url URL] [--scale 1]

Starts its own Appium server from .appium/ unless ``--server-url`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import gymnasium as gym  # noqa: E402

from emulator.appium_server import AppiumServer, AppiumServerConfig  # noqa: E402
from guienv.actions import Action, to_space  # noqa: E402
from guienv.envs.appium_commands import w3c_tap  # noqa: E402
from guienv.envs.miniwob import MiniWoBEnv, register_miniwob_envs  # noqa: E402
from guienv.frames import Screen  # noqa: E402
from guienv.io import decode_image  # noqa: E402

TASK = "click-button"
KW = dict(task=TASK, episode_max_time_ms=3_600_000, max_steps=1_000_000)


def _stats(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
            "mean_ms": round(float(ms.mean()), 1)}


def bench_single(url: str, steps: int, scale: float) -> dict:
    env = MiniWoBEnv(server_url=url, device_scale_factor=scale, **KW)
    env.reset(seed=0)
    w, h = env.viewport.width, env.viewport.height
    tap = Action.click(w * 0.5, h * 0.1)  # the #query area: no reward, no episode end
    for _ in range(5):
        env.step(tap)
    lat = []
    t0 = time.perf_counter()
    for _ in range(steps):
        s = time.perf_counter()
        env.step(tap)
        lat.append(time.perf_counter() - s)
    wall = time.perf_counter() - t0
    # Breakdown of one step's driver round trips.
    d, parts = env.driver, {"tap": [], "screenshot": [], "dom": [], "state": []}
    x, y = env.viewport.to_driver(w * 0.5, h * 0.1)
    for _ in range(min(steps, 50)):
        s = time.perf_counter()
        w3c_tap(d, x, y, env.config.tap_hold_ms)
        parts["tap"].append(time.perf_counter() - s)
        s = time.perf_counter()
        decode_image(d.get_screenshot_as_png())
        parts["screenshot"].append(time.perf_counter() - s)
        s = time.perf_counter()
        env.dom()
        parts["dom"].append(time.perf_counter() - s)
        s = time.perf_counter()
        d.execute_script("return WOB_DONE_GLOBAL;")
        parts["state"].append(time.perf_counter() - s)
    s = time.perf_counter()
    env.reset(seed=1)
    reset_s = time.perf_counter() - s
    env.close()
    s = time.perf_counter()
    env2 = MiniWoBEnv(server_url=url, device_scale_factor=scale, **KW)
    env2.reset(seed=0)
    session_s = time.perf_counter() - s
    env2.close()
    return {
        "envs": 1, "steps": steps, "step": _stats(lat), "steps_per_s": round(steps / wall, 1),
        "breakdown": {k: _stats(v) for k, v in parts.items()},
        "reset_ms": round(reset_s * 1000, 1), "new_session_and_reset_ms": round(session_s * 1000, 1),
        "screenshot_px": [w, h],
    }


def bench_vector(url: str, n: int, steps: int, scale: float) -> dict:
    register_miniwob_envs(per_task=False)
    fns = [lambda: gym.make("guienv/MiniWoB-v0", server_url=url, device_scale_factor=scale, **KW) for _ in range(n)]
    venv = gym.vector.AsyncVectorEnv(fns, shared_memory=False)
    try:
        obs, _ = venv.reset(seed=list(range(n)))
        h, w = obs["screenshot"].shape[1:3]
        a = to_space(Action.click(w * 0.5, h * 0.1), Screen(w, h))
        batch = {k: (tuple(a[k] for _ in range(n)) if k == "text" else np.stack([np.asarray(a[k])] * n)) for k in a}
        for _ in range(5):
            venv.step(batch)
        lat = []
        t0 = time.perf_counter()
        for _ in range(steps):
            s = time.perf_counter()
            _, _, term, trunc, _ = venv.step(batch)
            lat.append(time.perf_counter() - s)
            assert not (term.any() or trunc.any())
        wall = time.perf_counter() - t0
    finally:
        venv.close()
    return {"envs": n, "vector_steps": steps, "vector_step": _stats(lat), "env_steps_per_s": round(n * steps / wall, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--envs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--scale", type=float, default=1.0, help="device scale factor (screenshot px per CSS px)")
    p.add_argument("--server-url")
    p.add_argument("--out", help="also write the JSON here")
    args = p.parse_args(argv)
    server = None
    url = args.server_url
    if url is None:
        server = AppiumServer(AppiumServerConfig()).start()
        url = server.url
    try:
        results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "task": TASK, "scale": args.scale, "runs": []}
        for n in args.envs:
            results["runs"].append(bench_single(url, args.steps, args.scale) if n == 1 else bench_vector(url, n, args.steps, args.scale))
            print(json.dumps(results["runs"][-1]), flush=True)
    finally:
        if server is not None:
            server.stop()
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
