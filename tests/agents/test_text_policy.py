"""The text policy on the project's tiny random-init Qwen2, loaded through ``from_pretrained``, and
the shared policy interface (``encode_messages``, ``sample_logprobs``) on both policies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from agents.policy import Policy
from agents.qwen import QwenAgent, QwenAgentConfig
from agents.text_policy import TextPolicy, load_text_policy, message_text
from agents.tiny_model import TinyTextModelConfig, build_tiny_model, build_tiny_text_model
from agents.train_prompts import TrainPrompt
from guienv.errors import DataError
from guienv.vlm import build_inputs


@pytest.fixture(scope="module")
def text_path(tmp_path_factory):
    return build_tiny_text_model(tmp_path_factory.mktemp("tiny") / "qwen2")


@pytest.fixture(scope="module")
def text_policy(text_path):
    return load_text_policy(text_path, dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def sharp_policy(tmp_path_factory):
    """A wider random init: varied greedy completions, so rows mixed up by padding would show."""
    path = build_tiny_text_model(tmp_path_factory.mktemp("tiny") / "sharp", TinyTextModelConfig(initializer_range=0.2))
    return load_text_policy(path, dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def vl_policy(tmp_path_factory):
    path = build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen25vl")
    return Policy(QwenAgent(QwenAgentConfig(model=str(path), max_pixels=64 * 28 * 28, dtype="float32", device="cpu")))


def _user(text):
    return [{"role": "user", "content": text}]


PROMPTS = [
    "go to cabinet 1",
    "You arrive at fridge 1. The fridge 1 is closed. Your admissible actions of the current situation are: "
    "[open fridge 1, go to countertop 2, look, inventory]. Answer in <action> </action> tags.",
    "State s3, step 2 of 5. Actions: a0, a1, a2.",
]


def test_interface_attributes(text_policy, vl_policy):
    assert text_policy.is_vision is False and vl_policy.is_vision is True
    assert text_policy.frame is None and text_policy.resize is None
    assert text_policy.tokenizer.convert_tokens_to_ids("<|im_end|>") in text_policy.eos_ids
    assert text_policy.pad_id == text_policy.tokenizer.pad_token_id
    assert text_policy.device == torch.device("cpu")
    assert isinstance(text_policy, TextPolicy)


def test_string_and_list_content_encode_alike(text_policy):
    a = text_policy.encode_messages(_user("look around"))
    b = text_policy.encode_messages([{"role": "user", "content": [{"type": "text", "text": "look "},
                                                                  {"type": "text", "text": "around"}]}])
    assert a.ids.tolist() == b.ids.tolist() and a.pixel_values is None and a.grid is None
    text = text_policy.tokenizer.decode(a.ids)
    assert text.endswith("<|im_start|>assistant\n") and "look around" in text


@pytest.mark.parametrize("bad, match", [
    ([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "x"}]}], "item 0: a text policy takes no images"),
    ([{"role": "user", "content": [{"type": "video"}]}], "item 0: expected"),
    ([{"role": "user", "content": 3}], "content must be a string"),
    (["not a dict"], "message 0"),
    ([], "non-empty"),
    ("just a string", "non-empty list"),
])
def test_bad_messages_raise_clear_errors(text_policy, bad, match):
    with pytest.raises(ValueError, match=match):
        text_policy.encode_messages(bad)


def test_images_are_an_error(text_policy):
    with pytest.raises(ValueError, match="no images"):
        text_policy.encode_messages(_user("x"), [np.zeros((28, 28, 3), np.uint8)])


def test_message_text_never_crashes_on_hostile_items():
    for item in (None, 3, "text", {"type": "text"}, {"type": "text", "text": 5}, {"image": "x.png"}):
        with pytest.raises(ValueError):
            message_text({"role": "user", "content": [item]}, 0)


@pytest.mark.parametrize("which", ["text", "vl"])
@pytest.mark.parametrize("temperature", [0.7, 1.0])
def test_sampled_logprobs_equal_a_teacher_forced_recomputation(which, temperature, text_policy, vl_policy):
    pol = text_policy if which == "text" else vl_policy
    prompts = [pol.encode_messages(_user(t)) for t in PROMPTS]
    torch.manual_seed(0)
    comps, lps = pol.sample_logprobs(prompts, temperature=temperature, max_new_tokens=12)
    assert len(comps) == len(prompts) == len(lps)
    assert all(len(c) == len(lp) > 0 for c, lp in zip(comps, lps))
    assert all(all(t not in pol.eos_ids for t in c[:-1]) for c in comps)  # ends at the first EOS
    ref, mask = pol.token_logprobs(pol.model, prompts, comps, temperature)
    for i, c in enumerate(comps):
        assert mask[i].sum() == len(c)
        assert ref[i, :len(c)].tolist() == pytest.approx(lps[i], abs=1e-4)
    assert all(lp <= 0 for row in lps for lp in row)


@pytest.mark.parametrize("which", ["text", "vl"])
def test_greedy_logprobs_are_the_raw_distribution_and_match_sample(which, text_policy, vl_policy):
    pol = text_policy if which == "text" else vl_policy
    prompts = [pol.encode_messages(_user(t)) for t in PROMPTS]
    comps, lps = pol.sample_logprobs(prompts, temperature=0.0, max_new_tokens=8)
    assert comps == pol.sample(prompts, 1, temperature=0.0, max_new_tokens=8)
    ref, _ = pol.token_logprobs(pol.model, prompts, comps, 1.0)
    for i, c in enumerate(comps):
        assert ref[i, :len(c)].tolist() == pytest.approx(lps[i], abs=1e-4)


def test_top_p_restricts_the_sampling_distribution(text_policy):
    prompts = [text_policy.encode_messages(_user(t)) for t in PROMPTS]
    torch.manual_seed(1)
    _, full = text_policy.sample_logprobs(prompts, temperature=1.0, top_p=1.0, max_new_tokens=6)
    torch.manual_seed(1)
    _, nucleus = text_policy.sample_logprobs(prompts, temperature=1.0, top_p=0.3, max_new_tokens=6)
    # top-p renormalises over the nucleus, so each sampled token's log-prob can only rise
    assert np.mean([x for r in nucleus for x in r]) > np.mean([x for r in full for x in r])


def test_batched_greedy_equals_one_at_a_time(sharp_policy):
    pol = sharp_policy
    prompts = [pol.encode_messages(_user(t)) for t in PROMPTS]
    assert len({len(p.ids) for p in prompts}) == len(prompts)  # different lengths: left padding at work
    batched, blps = pol.sample_logprobs(prompts, temperature=0.0, max_new_tokens=10)
    assert len({tuple(c) for c in batched}) == len(prompts)  # each row its own completion
    for p, c, lp in zip(prompts, batched, blps):
        one, olp = pol.sample_logprobs([p], temperature=0.0, max_new_tokens=10)
        assert one[0] == c
        assert olp[0] == pytest.approx(lp, abs=1e-4)


def test_collate_left_pads_prompts_and_right_pads_completions(text_policy):
    pol = text_policy
    a, b = pol.encode_messages(_user("look")), pol.encode_messages(_user(PROMPTS[1]))
    batch = pol.collate([a, b], [[5, 6, 7], [8]])
    lp = max(len(a.ids), len(b.ids))
    assert batch["input_ids"].shape == (2, lp + 3)
    assert batch["input_ids"][0, lp - len(a.ids):lp].tolist() == a.ids.tolist()
    assert batch["attention_mask"][0, : lp - len(a.ids)].sum() == 0
    assert batch["input_ids"][1, lp:].tolist() == [8, pol.pad_id, pol.pad_id]
    assert batch["attention_mask"][1, lp:].tolist() == [1, 0, 0]
    assert "pixel_values" not in batch


def test_vl_encode_of_a_train_prompt_is_unchanged(vl_policy):
    """``encode`` = ``encode_messages(messages(task), task.load_images())``, byte-identical to the
    chat template + :func:`guienv.vlm.build_inputs` it was written as before."""
    rng = np.random.default_rng(0)
    imgs = tuple(rng.integers(0, 255, (56, 84, 3), dtype=np.uint8) for _ in range(2))
    task = TrainPrompt("t0", imgs, {"instruction": "click Save"}, None, "gui-g1")
    enc = vl_policy.encode(task)
    text = vl_policy.tokenizer.apply_chat_template(vl_policy.messages(task), tokenize=False, add_generation_prompt=True)
    b = build_inputs(vl_policy.tokenizer, vl_policy.image_processor, [text], [task.load_images()], vl_policy.merge_size)
    assert enc.ids.tolist() == b["input_ids"][0].tolist()
    assert torch.equal(enc.pixel_values, b["pixel_values"]) and torch.equal(enc.grid, b["image_grid_thw"])
    assert enc.grid.shape[0] == 2
    with pytest.raises(ValueError, match="2 image slot"):
        vl_policy.encode_messages(vl_policy.messages(task), task.load_images()[:1])


def test_load_text_policy_errors(tmp_path, monkeypatch):
    import huggingface_hub.constants

    # the hub's documented offline mode (this machine has no network anyway): no connection retries
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DataError, match="no such model folder"):
        load_text_policy(tmp_path / "missing")
    with pytest.raises(DataError, match="not a local model folder or a reachable hub id"):
        load_text_policy("no-such-org-guienv/no-such-model-xyz")
    vl = build_tiny_model(tmp_path / "vl")
    with pytest.raises(ValueError, match="vision-language"):
        load_text_policy(vl)
