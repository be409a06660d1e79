"""The VLM policy on a tiny random-init Qwen2.5-VL built and saved by the project itself, loaded
through the same ``from_pretrained`` path real checkpoints take."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents.qwen import QwenAgent, QwenAgentConfig
from agents.tiny_model import QWEN_SPECIAL_TOKENS, build_tiny_model
from guienv.actions import Action
from guienv.frames import Frame, Screen
from guienv.io import decode_image

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen25vl")


@pytest.fixture(scope="module")
def agent(tiny):
    return QwenAgent(QwenAgentConfig(model=str(tiny), max_new_tokens=5, max_pixels=64 * 28 * 28, dtype="float32"))


def test_tiny_model_folder_is_a_normal_hf_checkpoint(tiny):
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(tiny)
    tok = AutoTokenizer.from_pretrained(tiny)
    assert cfg.model_type == "qwen2_5_vl"
    assert all(tok.convert_tokens_to_ids(t) != tok.unk_token_id for t in QWEN_SPECIAL_TOKENS)
    assert cfg.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert cfg.text_config.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert cfg.text_config.pad_token_id == tok.pad_token_id
    assert max(tok.get_vocab().values()) < cfg.text_config.vocab_size
    gen = json.loads((tiny / "generation_config.json").read_text())
    assert tok.eos_token_id in gen["eos_token_id"]


def test_image_tokens_match_the_resized_frame(agent, shared_data):
    """The processor's grid (patch 14) equals guienv's resized frame for a screenshot larger than
    max_pixels, so coordinates the model emits are in exactly that frame."""
    img = decode_image(shared_data / "screens" / "os-atlas_web_6f93090a.png")
    h, w = img.shape[:2]
    batch = agent.inputs([{"screenshot": img, "instruction": "x"}])
    t, gh, gw = batch["image_grid_thw"][0].tolist()
    assert (gw * 14, gh * 14) == Screen(w, h, agent.resize).resized
    n_pad = int((batch["input_ids"] == agent.model.config.image_token_id).sum())
    assert n_pad == t * gh * gw // 4


def test_model_coordinates_map_back_to_the_original_screenshot(agent):
    w, h = 2560, 1440
    rw, rh = Screen(w, h, agent.resize).resized
    a = agent.to_pixels(Action.click(rw / 2, rh / 4, frame=agent.frame), w, h)
    assert a.frame is Frame.PIXEL and a.point == pytest.approx((1280.0, 360.0))
    # Qwen2-VL family answers on the 0-1000 grid.
    grid = agent.to_pixels(Action.click(500, 250, frame=Frame.GRID1000), w, h)
    assert grid.point == pytest.approx((1280.0, 360.0))
    assert agent.frame is Frame.RESIZED


def test_batched_generation_returns_tokens_and_logprobs_matching_a_forward_pass(agent):
    rng = np.random.default_rng(0)
    obs = [{"screenshot": rng.integers(0, 255, (300 + 40 * i, 200, 3), dtype=np.uint8), "instruction": f"click {i}"}
           for i in range(3)]
    gens = agent.generate(obs)
    assert len(gens) == 3
    for g in gens:
        assert 0 < len(g.token_ids) == len(g.logprobs) <= 5
        assert all(lp <= 0 for lp in g.logprobs)
        assert isinstance(g.action, Action)
    # Teacher-forced log-probs of the generated tokens equal the ones generation reported.
    g = agent.generate(obs[:1])[0]
    batch = agent.inputs(obs[:1])
    ids = torch.cat([batch["input_ids"], torch.tensor([g.token_ids])], dim=1)
    with torch.no_grad():
        logits = agent.model(input_ids=ids, attention_mask=torch.ones_like(ids), pixel_values=batch["pixel_values"],
                             image_grid_thw=batch["image_grid_thw"]).logits
    n = len(g.token_ids)
    lp = torch.log_softmax(logits[0, -n - 1 : -1].float(), -1).gather(-1, torch.tensor(g.token_ids)[:, None])[:, 0]
    assert lp.tolist() == pytest.approx(g.logprobs, abs=1e-4)
    # Without log-probs (guienv eval's setting) the greedy answers are the same, the log-probs empty.
    agent.cfg.logprobs = False
    try:
        plain = agent.generate(obs)
    finally:
        agent.cfg.logprobs = True
    assert [p.token_ids for p in plain] == [g.token_ids for g in gens] and all(p.logprobs == [] for p in plain)
    assert [p.text for p in plain] == [g.text for g in gens]


def test_agent_acts_in_synthapp_env(agent):
    import gymnasium as gym

    env = gym.make("guienv/SynthApp-v0", mode="grounding")
    obs, info = env.reset(seed=0)
    action = agent.act(obs, info)
    obs, reward, terminated, truncated, info = env.step(action)
    assert terminated and reward in (0.0, 1.0)


def test_non_qwen_checkpoint_is_rejected(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a Qwen2-VL/Qwen2.5-VL checkpoint"):
        QwenAgent(QwenAgentConfig(model=str(tmp_path)))
