"""Offline env overhead: env steps/s against the raw image-decode rate on the same files.

For each offline format it writes N real screenshots (PNG, ScreenSpot-v2 JSON; AndroidControl
gzip TFRecord), then times, interleaved over several rounds in one process:

* ``decode``: Pillow decode to an RGB uint8 array of exactly those images (the floor any env pays);
* ``env``: ``reset(options={"index": i})`` + one ``step`` per image through ``gym.make``.

Overhead = env time / decode time - 1 (target < 10%). SynthApp steps/s are measured too.

    python benchmarks/env_speed.py --n 200 --rounds 5 --size 1080x2400
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
from PIL import Image

import guienv  # noqa: F401  (registers ids)
from guienv.actions import Action
from guienv.types import Episode, GroundingSample, ImageRef, Step


def _screens(n: int, w: int, h: int, seed: int) -> list[bytes]:
    """Screenshot-like PNGs: flat panels and text-like noise rows (random noise would make PNG
    decoding unrealistically slow, flat colour unrealistically fast)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.full((h, w, 3), rng.integers(200, 256, 3), dtype=np.uint8)
        for _ in range(12):
            y0 = int(rng.integers(0, h - 60))
            x0 = int(rng.integers(0, w - 200))
            img[y0 : y0 + 40, x0 : x0 + 180] = rng.integers(0, 256, 3)
            img[y0 + 10 : y0 + 14, x0 + 10 : x0 + 170] = rng.integers(0, 256, (4, 160, 3))
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def _decode_all(blobs: list[bytes]) -> None:
    for b in blobs:
        with Image.open(io.BytesIO(b)) as im:
            np.asarray(im.convert("RGB"))


def _run_env(env: gym.Env, n: int) -> None:
    for i in range(n):
        obs, info = env.reset(options={"index": i})
        env.step(Action.click(5, 5))


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def bench_offline(n: int, w: int, h: int, rounds: int) -> list[dict]:
    from tasks.androidcontrol import write_androidcontrol_tfrecord
    from tasks.screenspot import write_screenspot

    blobs = _screens(n, w, h, seed=0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        samples = [
            GroundingSample(
                id=str(i), image=ImageRef(data=b, where=f"bench {i}"), instruction="x",
                box=(0.0, 0.0, 10.0, 10.0), width=w, height=h, data_type="text", platform="mobile",
            )
            for i, b in enumerate(blobs)
        ]
        ss_dir = write_screenspot(samples, Path(tmp) / "ss", version="v2", split="mobile")
        ss_env = gym.make("guienv/ScreenSpot-v0", data=str(ss_dir))
        ss_files = sorted(p for p in Path(ss_dir).rglob("*.png"))
        ss_blobs = [p.read_bytes() for p in ss_files]

        # AndroidControl: episodes of 5 steps (6 screenshots).
        eps = []
        for e in range(n // 5):
            shots = blobs[e * 5 : e * 5 + 5]
            steps = tuple(
                Step(image=ImageRef(data=b, where=""), width=w, height=h, action=Action.click(5, 5),
                     raw_action={"action_type": "click", "x": 5, "y": 5}, instruction="tap")
                for b in shots
            )
            eps.append(Episode(id=str(e), goal="g", steps=steps, extra={"final_image": ImageRef(data=shots[-1], where="")}))
        tfr = Path(tmp) / "android_control-00000-of-00001"
        write_androidcontrol_tfrecord(eps, tfr)
        ac_env = gym.make("guienv/AndroidControl-v0", data=str(tfr))
        ac_steps = sum(len(ep.steps) for ep in eps)
        ac_blobs = blobs[:ac_steps]

        def run_ac():
            for i in range(len(eps)):
                env_obs, info = ac_env.reset(options={"index": i})
                done = False
                while not done:
                    _, _, term, trunc, _ = ac_env.step(Action.click(5, 5))
                    done = term or trunc

        t = {"ss_decode": [], "ss_env": [], "ac_decode": [], "ac_env": []}
        _run_env(ss_env, 3)  # warm-up
        for _ in range(rounds):
            t["ss_decode"].append(_time(lambda: _decode_all(ss_blobs)))
            t["ss_env"].append(_time(lambda: _run_env(ss_env, n)))
            t["ac_decode"].append(_time(lambda: _decode_all(ac_blobs)))
            t["ac_env"].append(_time(run_ac))
        med = {k: statistics.median(v) for k, v in t.items()}
        rows.append(dict(env="ScreenSpot-v0", steps=n, decode_per_s=n / med["ss_decode"],
                         env_per_s=n / med["ss_env"], overhead=med["ss_env"] / med["ss_decode"] - 1))
        rows.append(dict(env="AndroidControl-v0", steps=ac_steps, decode_per_s=ac_steps / med["ac_decode"],
                         env_per_s=ac_steps / med["ac_env"], overhead=med["ac_env"] / med["ac_decode"] - 1))
    return rows


def bench_synthapp(steps: int) -> list[dict]:
    rows = []
    for mode in ("grounding", "app"):
        env = gym.make("guienv/SynthApp-v0", mode=mode)
        obs, info = env.reset(seed=0)
        t = time.perf_counter()
        for i in range(steps):
            obs, r, term, trunc, info = env.step(Action.click(1, 1))
            if term or trunc:
                obs, info = env.reset(seed=i)
        dt = time.perf_counter() - t
        h, w = obs["screenshot"].shape[:2]
        rows.append(dict(env=f"SynthApp-v0 ({mode}, {w}x{h})", steps=steps, env_per_s=steps / dt))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="screenshots per offline format")
    ap.add_argument("--size", default="1080x2400", help="screenshot WxH")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--synth-steps", type=int, default=3000)
    a = ap.parse_args(argv)
    w, h = (int(v) for v in a.size.split("x"))
    print(f"offline envs, {a.n} PNG screenshots {w}x{h}, median of {a.rounds} interleaved rounds")
    print(f"{'env':<22} {'steps':>6} {'decode/s':>9} {'env/s':>8} {'overhead':>9}")
    for r in bench_offline(a.n, w, h, a.rounds):
        print(f"{r['env']:<22} {r['steps']:>6} {r['decode_per_s']:>9.1f} {r['env_per_s']:>8.1f} {r['overhead']:>8.1%}")
    print()
    for r in bench_synthapp(a.synth_steps):
        print(f"{r['env']:<34} {r['steps']:>6} steps  {r['env_per_s']:>9.1f} steps/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
