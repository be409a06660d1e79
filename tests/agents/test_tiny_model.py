"""The tiny random-init models the project builds for offline tests and demos: saved as normal
Hugging Face folders and loaded back through ``from_pretrained``."""

from __future__ import annotations

import json

import pytest

from agents.tiny_model import (
    QWEN_SPECIAL_TOKENS,
    TinyModelConfig,
    TinyTextModelConfig,
    build_tiny_text_model,
    build_tokenizer,
    train_tokenizer,
)
from guienv.run.cli import main


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    return build_tiny_text_model(tmp_path_factory.mktemp("tiny") / "qwen2")


def test_text_model_is_a_normal_qwen2_checkpoint(text_model):
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    cfg = AutoConfig.from_pretrained(text_model)
    tok = AutoTokenizer.from_pretrained(text_model)
    model = AutoModelForCausalLM.from_pretrained(text_model)
    assert cfg.model_type == "qwen2" and type(model).__name__ == "Qwen2ForCausalLM"
    assert cfg.hidden_size // cfg.num_attention_heads == 64  # vLLM's CPU attention rejects head size 16
    ids = [tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS]
    assert len(set(ids)) == len(QWEN_SPECIAL_TOKENS)  # each its own token
    assert [tok.convert_ids_to_tokens(i) for i in ids] == QWEN_SPECIAL_TOKENS
    assert cfg.eos_token_id == tok.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    assert cfg.pad_token_id == tok.pad_token_id == tok.convert_tokens_to_ids("<|endoftext|>")
    assert max(tok.get_vocab().values()) < cfg.vocab_size
    assert model.get_input_embeddings().weight.shape[0] == cfg.vocab_size
    gen = json.loads((text_model / "generation_config.json").read_text())
    assert tok.eos_token_id in gen["eos_token_id"]
    assert json.loads((text_model / "guienv_tiny.json").read_text())["kind"] == "text"


def test_text_tokenizer_learnt_the_text_env_vocabulary(text_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(text_model)
    vl = build_tokenizer(TinyModelConfig())
    line = "You arrive at countertop 1. <action>take apple 1 from countertop 1</action>"
    assert len(tok(line)["input_ids"]) < len(vl(line)["input_ids"])  # merges from ALFWorld text
    assert tok.decode(tok(line)["input_ids"]) == line  # byte-level: round trips
    hostile = "\x00\ufffd 日本 🙂 <|im_end|> \\n"
    assert tok.decode(tok(hostile, add_special_tokens=False)["input_ids"]) == hostile


def test_text_chat_template_renders_string_and_list_content(text_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(text_model)
    a = tok.apply_chat_template([{"role": "user", "content": "go to fridge 1"}], tokenize=False, add_generation_prompt=True)
    b = tok.apply_chat_template([{"role": "user", "content": [{"type": "text", "text": "go to "}, {"type": "text", "text": "fridge 1"}]}],
                                tokenize=False, add_generation_prompt=True)
    assert a == b == ("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                      "<|im_start|>user\ngo to fridge 1<|im_end|>\n<|im_start|>assistant\n")
    c = tok.apply_chat_template([{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                                 {"role": "assistant", "content": "<action>look</action>"}], tokenize=False)
    assert c == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n<action>look</action><|im_end|>\n"


def test_text_model_config_is_validated_and_reaches_the_checkpoint(tmp_path):
    from transformers import AutoConfig

    with pytest.raises(ValueError, match="kv_heads"):
        build_tiny_text_model(tmp_path / "bad", TinyTextModelConfig(heads=2, kv_heads=3))
    path = build_tiny_text_model(tmp_path / "m", TinyTextModelConfig(layers=1, kv_heads=2, initializer_range=0.1))
    cfg = AutoConfig.from_pretrained(path)
    assert (cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.initializer_range) == (1, 2, 0.1)


def test_shared_tokenizer_helper_keeps_the_special_tokens_and_template():
    tok = train_tokenizer(["hello world"] * 10, 300, "{{ messages[0]['content'] }}")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.padding_side == "left"
    assert tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False) == "hi"


def test_cli_builds_the_text_model(tmp_path, capsys):
    from transformers import AutoConfig

    assert main(["tiny-model", "--text", str(tmp_path / "t")]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "t")
    assert AutoConfig.from_pretrained(tmp_path / "t").model_type == "qwen2"
    assert main(["tiny-model", str(tmp_path / "vl")]) == 0  # without --text: the VL model, as before
    assert AutoConfig.from_pretrained(tmp_path / "vl").model_type == "qwen2_5_vl"


def test_cli_needs_exactly_one_path(tmp_path, capsys):
    assert main(["tiny-model"]) == 2
    assert main(["tiny-model", str(tmp_path / "a"), "--text", str(tmp_path / "b")]) == 2
    assert "one of them" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
