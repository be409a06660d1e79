"""The one VLM loader and generation path (:mod:`guienv.vlm`) on the project's tiny random-init
Qwen2.5-VL, saved to disk and loaded back through ``from_pretrained``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.tiny_model import build_tiny_model
from guienv.frames import Frame
from guienv.vlm import FAMILY_FRAMES, Generated, generate, load_vlm

MAX_PIXELS = 64 * 28 * 28


@pytest.fixture(scope="module")
def vlm(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen25vl")
    return load_vlm(str(path), dtype="float32", device="cpu", max_pixels=MAX_PIXELS)


def _inputs(vlm, n_prompts=2):
    rng = np.random.default_rng(0)
    prompts = [f"<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>item {i}<|im_end|>\n<|im_start|>assistant\n"
               for i in range(n_prompts)]
    images = [[rng.integers(0, 255, (120 + 40 * i, 200, 3), dtype=np.uint8)] for i in range(n_prompts)]
    return vlm.inputs(prompts, images)


def test_loader_returns_model_tokenizer_processor_and_frame(vlm):
    assert vlm.family == "qwen2_5_vl" and vlm.frame is Frame.RESIZED == FAMILY_FRAMES["qwen2_5_vl"]
    assert not vlm.model.training and vlm.device.type == "cpu"
    assert next(vlm.model.parameters()).dtype is torch.float32
    assert vlm.tokenizer.padding_side == "left" and vlm.tokenizer.pad_token_id is not None
    assert vlm.tokenizer.eos_token_id in vlm.eos_ids
    assert vlm.image_processor.size["longest_edge"] == MAX_PIXELS and vlm.merge_size == 2


def test_loader_rejects_or_admits_a_foreign_checkpoint(tmp_path):
    from transformers import GPT2Config

    GPT2Config(n_layer=1, n_embd=8, n_head=2).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="not a Qwen2-VL/Qwen2.5-VL checkpoint"):
        load_vlm(str(tmp_path))
    with pytest.raises(ValueError, match="dtype must be one of"):
        load_vlm(str(tmp_path), dtype="float8", require_family=False)


def test_image_slots_are_expanded_to_the_grid(vlm):
    batch = _inputs(vlm)
    pad = vlm.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    per_row = (batch["input_ids"] == pad).sum(dim=1).tolist()
    assert per_row == (batch["image_grid_thw"].prod(-1) // 4).tolist()
    assert batch["attention_mask"][0, 0] == 0  # left padding: the shorter prompt is padded in front


def test_greedy_generation_is_one_row_per_prompt_and_matches_a_forward_pass(vlm):
    batch = _inputs(vlm)
    out = generate(vlm, batch, max_new_tokens=4, n=3, logprobs=True)
    assert isinstance(out, Generated) and len(out.token_ids) == len(out.texts) == 2
    for ids, text, lp in zip(out.token_ids, out.texts, out.logprobs):
        assert 1 <= len(ids) <= 4 and len(lp) == len(ids)
        assert all(t not in vlm.eos_ids for t in ids[:-1])  # trimmed at the first EOS
        assert text == vlm.tokenizer.decode(ids, skip_special_tokens=True)
    # the first generated token's log-prob equals the forward pass's log_softmax at the last position
    with torch.no_grad():
        logits = vlm.model(**batch).logits[:, -1].float()
    expected = torch.log_softmax(logits, -1).gather(-1, torch.tensor([[r[0]] for r in out.token_ids])).squeeze(-1)
    assert torch.allclose(torch.tensor([lp[0] for lp in out.logprobs]), expected, atol=1e-4)


def test_seeded_sampling_repeats_and_leaves_the_callers_rng_alone(vlm):
    batch = _inputs(vlm, 1)
    torch.manual_seed(7)
    expected = torch.rand(2)
    torch.manual_seed(7)
    a = generate(vlm, batch, max_new_tokens=6, temperature=1.0, n=3, seed=5)
    b = generate(vlm, batch, max_new_tokens=6, temperature=1.0, n=3, seed=5)
    assert torch.equal(torch.rand(2), expected)
    assert len(a.token_ids) == 3 and a.token_ids == b.token_ids and a.logprobs is None
