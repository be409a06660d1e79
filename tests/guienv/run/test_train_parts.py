"""Pieces of the embedded training demo: the text-first GUI-G1 template, the mean-click reference,
the tiny model's M-RoPE settings, the encoded-prompt cache and the SFT learning-rate schedule."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents.baselines import AGENTS, MeanClickAgent
from agents.tiny_model import TinyModelConfig, build_tiny_model
from guienv.errors import DataError
from guienv.frames import Frame
from guienv.prompts import render
from guienv.run.train_config import TrainConfig
from guienv.run.train_model import make_scheduler
from tasks.synthapp import SynthConfig, make_grounding_samples


def test_text_first_template_keeps_gui_g1_words_and_moves_the_image_last():
    obs = {"instruction": "tap Save"}
    a, b = render("gui-g1", obs)[0]["content"], render("gui-g1-text-first", obs)[0]["content"]
    assert [c["type"] for c in a] == ["image", "text"] and [c["type"] for c in b] == ["text", "image"]
    assert a[1]["text"] == b[0]["text"]
    assert b[0]["text"] == "Grounding instruction is: tap Save. Report the bbox coordinates in JSON format."


def test_mean_click_agent_fits_the_mean_centre_and_scores_by_hit_test():
    samples = make_grounding_samples(40, SynthConfig(width=224, height=392, distractors=0), seed=3)
    agent = MeanClickAgent.fit(samples)
    cx = np.mean([(s.box[0] + s.box[2]) / 2 / s.width for s in samples])
    cy = np.mean([(s.box[1] + s.box[3]) / 2 / s.height for s in samples])
    assert (agent.x, agent.y) == pytest.approx((cx, cy))
    act = agent.act({}, {})
    assert act.frame is Frame.NORMALIZED and act.point == pytest.approx((cx, cy))
    hits = [s.box[0] <= cx * s.width <= s.box[2] and s.box[1] <= cy * s.height <= s.box[3] for s in samples]
    assert agent.accuracy(samples) == pytest.approx(np.mean(hits))
    # A point on a target's centre hits it; the CLI knows the agent by name.
    s = samples[0]
    assert MeanClickAgent((s.box[0] + s.box[2]) / 2 / s.width, (s.box[1] + s.box[3]) / 2 / s.height).accuracy([s]) == 1.0
    assert AGENTS["mean-click"] is MeanClickAgent
    with pytest.raises(ValueError, match="at least one"):
        MeanClickAgent.fit([])


def test_tiny_model_rope_settings_reach_the_saved_config(tmp_path):
    path = build_tiny_model(tmp_path / "m", TinyModelConfig(rope_theta=10.0, mrope_section=[2, 3, 3]))
    rope = json.loads((path / "config.json").read_text())["text_config"]["rope_parameters"]
    assert rope["rope_theta"] == 10.0 and rope["mrope_section"] == [2, 3, 3]
    with pytest.raises(ValueError, match="mrope_section"):
        build_tiny_model(tmp_path / "bad", TinyModelConfig(mrope_section=[4, 4, 4]))  # head_dim 16: must sum to 8


def test_model_tiny_block_is_validated(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("model: {tiny: {hidden: 32}}\n")
    with pytest.raises(DataError, match="hidden"):
        TrainConfig.from_yaml(bad)
    cfg = TrainConfig.from_yaml(bad, ["model.tiny={rope_theta: 10.0}"])
    assert cfg.model.tiny == {"rope_theta": 10.0}


def test_policy_encode_cache_returns_the_same_tensors_within_its_budget(tmp_path):
    from agents.policy import Policy
    from agents.qwen import QwenAgent, QwenAgentConfig
    from agents.train_prompts import grounding_prompt

    model = build_tiny_model(tmp_path / "m")
    agent = QwenAgent(QwenAgentConfig(model=str(model), max_pixels=12544, dtype="float32", image_backend="pil"))
    tasks = [grounding_prompt(s) for s in make_grounding_samples(3, SynthConfig(width=224, height=392), seed=0)]
    uncached = Policy(agent)
    cached = Policy(agent, cache_mb=64)
    for t in tasks:
        a, b = uncached.encode(t), cached.encode(t)
        assert torch.equal(a.ids, b.ids) and torch.equal(a.pixel_values, b.pixel_values)
        assert cached.encode(t) is b and uncached.encode(t) is not a
    one = cached._cached_bytes / 3
    small = Policy(agent, cache_mb=1.5 * one / 2**20)  # room for one encoded screen, not two
    for t in tasks:
        small.encode(t)
    assert len(small._cache) == 1 and small._cached_bytes <= small.cache_bytes


def test_sft_schedule_warms_up_then_decays_by_cosine():
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1.0)
    sch = make_scheduler(opt, warmup_steps=2, total_steps=10, schedule="cosine")
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sch.step()
    assert lrs[:2] == pytest.approx([1 / 3, 2 / 3])
    assert lrs[2] == pytest.approx(1.0) and lrs[6] == pytest.approx(0.5) and lrs[-1] < 0.05
    assert all(a >= b for a, b in zip(lrs[2:], lrs[3:]))
    const = make_scheduler(torch.optim.SGD([p], lr=1.0), warmup_steps=0)
    assert const.get_last_lr() == [1.0]
    with pytest.raises(DataError, match="schedule"):
        TrainConfig.from_dict({"sft": {"schedule": "linear"}})
