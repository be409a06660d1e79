"""``text_frame`` means one thing in every offline env: the frame of the coordinates in model
text the env reads (through :func:`guienv.parsing.read_action`). Fixtures are written with the
project's writers and read back through ``gym.make``."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from PIL import Image

import guienv  # noqa: F401  (registers the env ids)
from guienv.actions import Action
from guienv.frames import Frame, Screen, convert_point
from guienv.io import encode_png
from guienv.types import Episode, ImageRef, Step
from tasks.androidcontrol import write_androidcontrol_tfrecord
from tasks.synthapp import SynthConfig

W, H = 120, 240


@pytest.fixture(scope="module")
def shard(tmp_path_factory):
    png = encode_png(np.asarray(Image.new("RGB", (W, H), (40, 80, 120))))
    step = Step(ImageRef(data=png, where="fixture"), W, H, Action.click(30, 60), instruction="tap OK")
    path = tmp_path_factory.mktemp("ac") / "android_control-00000-of-00001.tfrecord.gz"
    write_androidcontrol_tfrecord([Episode("1", "Tap OK", (step,))], path, missing_final="repeat_last")
    return path


@pytest.mark.parametrize("frame", list(Frame))
def test_androidcontrol_reads_text_in_text_frame(shard, frame):
    env = gym.make("guienv/AndroidControl-v0", data=str(shard), text_frame=frame.value)
    env.reset(options={"index": 0})
    x, y = convert_point((30, 60), Frame.PIXEL, frame, Screen(W, H))
    _, reward, *_ , info = env.step(f'{{"action": "click", "coordinate": [{x}, {y}]}}')
    assert reward == 1.0 and info["exact_match"]


def test_androidcontrol_text_in_another_frame_misses(shard):
    env = gym.make("guienv/AndroidControl-v0", data=str(shard), text_frame="normalized")
    env.reset(options={"index": 0})
    _, reward, *_ = env.step('{"action": "click", "coordinate": [30, 60]}')  # pixels, not fractions
    assert reward == 0.0


@pytest.mark.parametrize("frame", list(Frame))
def test_synthapp_reads_text_in_text_frame(frame):
    cfg = SynthConfig(seed=3)
    env = gym.make("guienv/SynthApp-v0", mode="grounding", config=cfg, text_frame=frame.value)
    _, info = env.reset(options={"index": 0})
    x1, y1, x2, y2 = info["target_box"]
    x, y = convert_point(((x1 + x2) / 2, (y1 + y2) / 2), Frame.PIXEL, frame, env.unwrapped.screen)
    _, reward, *_ = env.step(f"<point>{x} {y}</point>")
    assert reward == 1.0


def test_synthapp_text_with_its_own_frame_keeps_it():
    # guienv action JSON written as text names its frame; text_frame does not relabel it
    env = gym.make("guienv/SynthApp-v0", mode="grounding", config=SynthConfig(seed=3), text_frame="grid1000")
    _, info = env.reset(options={"index": 0})
    x1, y1, x2, y2 = info["target_box"]
    text = f'{{"type": "click", "point": [{(x1 + x2) / 2}, {(y1 + y2) / 2}], "frame": "pixel"}}'
    _, reward, *_ = env.step(text)
    assert reward == 1.0
