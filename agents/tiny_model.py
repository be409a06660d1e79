"""A tiny random-init Qwen2.5-VL saved as a normal Hugging Face folder.

No weights can be downloaded in CI, so tests and the embedded demo build this model and load it back
through the same ``from_pretrained`` path users take for real checkpoints. Same architecture as
Qwen2.5-VL (vision tower with window attention, patch merger, M-RoPE text decoder), a few layers and
a small hidden size; a byte-level BPE tokenizer trained locally on GUI-action text, with Qwen's
special tokens and a Qwen2-VL style chat template.

    guienv tiny-model runs/tiny-qwen25vl

The text envs (ALFWorld, WebShop, the MDP as text) get a tiny random-init Qwen2 the same way
(:func:`build_tiny_text_model`, ``guienv tiny-model --text PATH``).
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


def train_tokenizer(corpus: list[str], vocab_size: int, chat_template: str):
    """A byte-level BPE tokenizer (GPT-2/Qwen2 style: every byte is a token, so any text encodes)
    trained on ``corpus`` up to ``vocab_size`` tokens, with Qwen's special tokens, ``<|im_end|>``
    as EOS, ``<|endoftext|>`` as padding (left) and ``chat_template``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=QWEN_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=QWEN_SPECIAL_TOKENS[1:],
        chat_template=chat_template,
        padding_side="left",
        model_max_length=32768,
    )


def build_tokenizer(cfg: TinyModelConfig):
    """The tiny VL model's tokenizer: merges learnt on GUI-action text."""
    return train_tokenizer(_corpus(), cfg.vocab_size, CHAT_TEMPLATE)


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


# -- the tiny text model ----------------------------------------------------------------------------
# Qwen2-Instruct's chat template (repository ``QwenLM/Qwen2.5``, the ``tokenizer_config.json`` of
# its instruct checkpoints), reduced to system/user/assistant turns; content is a string or a list
# of ``{"type": "text"}`` items, concatenated (image items are not text: the text policy rejects
# them before rendering).
TEXT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'text' %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass
class TinyTextModelConfig:
    vocab_size: int = 1024  # BPE merges on top of the 256 bytes and the special tokens
    hidden_size: int = 128
    layers: int = 2
    heads: int = 2  # head size 64: vLLM's CPU attention kernels reject 16
    kv_heads: int = 1
    intermediate_size: int = 256
    rope_theta: float = 1000000.0  # Qwen2.5's
    # Std of the random init (Qwen2's 0.02 by default). A wider init gives sharper, more varied
    # greedy completions, which tests of batching need to tell rows apart.
    initializer_range: float = 0.02
    seed: int = 0


_ALF_OBJECTS = ("apple", "mug", "knife", "plate", "bowl", "egg", "potato", "lettuce", "tomato", "cup", "pan",
                "spatula", "book", "pencil", "cellphone", "keychain", "pillow", "vase", "soapbar", "towel")
_ALF_RECEPTACLES = ("cabinet", "countertop", "drawer", "fridge", "microwave", "sinkbasin", "stoveburner",
                    "diningtable", "shelf", "garbagecan", "desk", "bed", "sofa", "dresser", "toilet", "coffeemachine")


def _text_corpus() -> list[str]:
    """Text the text model's tokenizer learns merges from: ALFWorld's commands and observations
    (its TextWorld grammar, ``alfred.twl2``, and verl-agent's prompt, repository
    ``langfengQ/verl-agent``, ``agent_system/environments/prompts/alfworld.py``), the MDP env's
    action names and the ``<think>``/``<action>`` answer format."""
    lines = []
    n_o, n_r = len(_ALF_OBJECTS), len(_ALF_RECEPTACLES)
    for i in range(400):
        o, r = _ALF_OBJECTS[i % n_o], _ALF_RECEPTACLES[(i * 7) % n_r]
        r2, k = _ALF_RECEPTACLES[(i * 3 + 1) % n_r], i % 5 + 1
        cmds = [f"go to {r} {k}", f"open {r} {k}", f"close {r} {k}", f"take {o} {k} from {r} {k}",
                f"put {o} {k} in/on {r2} {k}", f"move {o} {k} to {r2} {k}", f"examine {r} {k}", f"use desklamp {k}",
                f"heat {o} {k} with microwave 1", f"cool {o} {k} with fridge 1", f"clean {o} {k} with sinkbasin 1",
                f"toggle {o} {k}", "look", "inventory"]
        lines += cmds
        lines.append(f"You are in the middle of a room. Looking quickly around you, you see a {r} {k}, a {r2} 1, "
                     f"and a {_ALF_RECEPTACLES[i % n_r]} 2.")
        lines.append(f"Your task is to: put a {o} in {r2}.")
        lines.append(f"You arrive at {r} {k}. On the {r} {k}, you see a {o} {k}. Nothing happens.")
        lines.append(f"You pick up the {o} {k} from the {r} {k}. You open the {r} {k}. The {r} {k} is open.")
        lines.append(f"Your admissible actions of the current situation are: [{', '.join(cmds[:4])}].")
        lines.append(f"<think>I need to find the {o}. It may be in the {r}.</think><action>{cmds[i % len(cmds)]}</action>")
        lines.append(f"State s{i % 12}, step {i % 10} of {i % 7 + 3}. Actions: a0, a1, a2, left, right. "
                     f"<action>a{i % 4}</action>")
    return lines


def build_text_tokenizer(cfg: TinyTextModelConfig):
    """The tiny text model's tokenizer: merges learnt on text-env vocabulary, Qwen2's chat template."""
    return train_tokenizer(_text_corpus(), cfg.vocab_size, TEXT_CHAT_TEMPLATE)


def build_tiny_text_model(path: str | Path, config: TinyTextModelConfig | None = None) -> Path:
    """Build, save and return the folder of a tiny random-init ``Qwen2ForCausalLM`` (model,
    tokenizer with chat template, generation config) for the text envs, loadable with
    ``AutoModelForCausalLM``/``AutoTokenizer.from_pretrained``.

        guienv tiny-model --text runs/tiny-qwen2
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    cfg = config or TinyTextModelConfig()
    if cfg.hidden_size % cfg.heads or cfg.heads % cfg.kv_heads:
        raise ValueError(f"hidden_size ({cfg.hidden_size}) must split into heads ({cfg.heads}), "
                         f"and heads into kv_heads ({cfg.kv_heads})")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = build_text_tokenizer(cfg)
    eos, pad = tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")
    config_hf = Qwen2Config(
        vocab_size=len(tok),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.layers,
        num_attention_heads=cfg.heads,
        num_key_value_heads=cfg.kv_heads,
        max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": float(cfg.rope_theta)},
        bos_token_id=pad,
        eos_token_id=eos,
        pad_token_id=pad,
        tie_word_embeddings=True,
        initializer_range=cfg.initializer_range,
    )
    torch.manual_seed(cfg.seed)
    model = Qwen2ForCausalLM(config_hf)
    model.generation_config = GenerationConfig(bos_token_id=pad, eos_token_id=[eos, pad], pad_token_id=pad, do_sample=False)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    (path / "guienv_tiny.json").write_text(json.dumps({"built_by": "guienv.agents.tiny_model", "kind": "text",
                                                       **cfg.__dict__}))
    return path
