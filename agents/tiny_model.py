"""A tiny random-init Qwen2.5-VL saved as a normal Hugging Face folder.

No weights can be downloaded in CI, so tests and the embedded demo build this model and load it back
through the same ``from_pretrained`` path users take for real checkpoints. Same architecture as
Qwen2.5-VL (vision tower with window attention, patch merger, M-RoPE text decoder), a few layers and
a small hidden size; a byte-level BPE tokenizer trained locally on GUI-action text, with Qwen's
special tokens and a Qwen2-VL style chat template.

    guienv tiny-model runs/tiny-qwen25vl
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from guienv.vlm import make_image_processor

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<tool_call>",
    "</tool_call>",
]

# Qwen2-VL's chat template, reduced to what guienv prompts use (system/user/assistant turns,
# text and image content items).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class TinyModelConfig:
    vocab_size: int = 1024  # BPE merges on top of the 256 bytes and the special tokens
    hidden_size: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate_size: int = 128
    vision_hidden_size: int = 32
    vision_layers: int = 2
    vision_heads: int = 2
    # M-RoPE of the text decoder: Qwen2.5-VL's theta 1e6 by default. With a 16-dim head the
    # height/width sections get only the slowest frequencies, which barely turn over a screen's
    # few token rows; the demo config tries theta 10 (BENCHMARKS.md: no clear difference on it).
    # ``mrope_section`` (temporal, height, width; sums to head_dim / 2), None: a third each.
    rope_theta: float = 1000000.0
    mrope_section: list[int] | None = None
    seed: int = 0


def _corpus() -> list[str]:
    """Text the tokenizer learns merges from: GUI instructions and actions in guienv's formats."""
    words = ["click", "tap", "the", "button", "icon", "Save", "Cancel", "OK", "Settings", "Wi-Fi",
             "search", "type", "scroll", "down", "up", "open", "app", "back", "home", "toggle"]
    lines = []
    for i in range(400):
        a, b = words[i % len(words)], words[(i * 7) % len(words)]
        x, y = (i * 37) % 1000, (i * 91) % 1000
        lines.append(f"Grounding instruction is: {a} {b}. Report the bbox coordinates in JSON format.")
        lines.append(f'```json\n[{{"bbox_2d": [{x}, {y}, {x + 40}, {y + 20}]}}]\n```')
        lines.append(f'{{"action": "click", "coordinate": [{x}, {y}]}}')
        lines.append(f"<think>{a} {b}</think><answer>({x},{y})</answer>")
    return lines


def build_tokenizer(cfg: TinyModelConfig):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=cfg.vocab_size,
        special_tokens=QWEN_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIAL_TOKENS[1:],
        chat_template=CHAT_TEMPLATE,
        padding_side="left",
        model_max_length=32768,
    )


def build_tiny_model(path: str | Path, cfg: TinyModelConfig | None = None) -> Path:
    """Build, save and return the folder of a tiny random-init Qwen2.5-VL (model, tokenizer,
    image processor config, generation config)."""
    import torch
    from transformers import GenerationConfig, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    cfg = cfg or TinyModelConfig()
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_tokenizer(cfg)
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    head_dim = cfg.hidden_size // cfg.heads
    half = head_dim // 2
    mrope = list(cfg.mrope_section) if cfg.mrope_section else [half - 2 * (half // 3), half // 3, half // 3]
    if len(mrope) != 3 or sum(mrope) != half or min(mrope) < 0:
        raise ValueError(f"mrope_section must be 3 non-negative ints summing to head_dim/2 = {half}, got {mrope}")
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(tok),
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.layers,
            num_attention_heads=cfg.heads,
            num_key_value_heads=cfg.kv_heads,
            max_position_embeddings=32768,
            rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta), "mrope_section": mrope},
            bos_token_id=ids["<|endoftext|>"],
            eos_token_id=ids["<|im_end|>"],
            pad_token_id=ids["<|endoftext|>"],
            tie_word_embeddings=True,
        ),
        vision_config=dict(
            depth=cfg.vision_layers,
            hidden_size=cfg.vision_hidden_size,
            intermediate_size=cfg.vision_hidden_size * 2,
            num_heads=cfg.vision_heads,
            out_hidden_size=cfg.hidden_size,
            fullatt_block_indexes=[cfg.vision_layers - 1],
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=112,
        ),
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=True,
    )
    config.bos_token_id = ids["<|endoftext|>"]
    config.eos_token_id = ids["<|im_end|>"]
    config.pad_token_id = ids["<|endoftext|>"]
    torch.manual_seed(cfg.seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]],
        pad_token_id=ids["<|endoftext|>"],
        do_sample=False,
    )
    model.save_pretrained(path)
    tok.save_pretrained(path)
    make_image_processor().save_pretrained(path)
    (path / "guienv_tiny.json").write_text(json.dumps({"built_by": "guienv.agents.tiny_model", **cfg.__dict__}))
    return path
