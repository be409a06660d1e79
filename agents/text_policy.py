"""The trainable text policy: any causal-LM chat model (Qwen2/Qwen2.5-Instruct and the like) behind
the same interface as the vision-language :class:`~agents.policy.Policy`.

The text envs (ALFWorld, WebShop, the MDP rendered as text) prompt a chat model the way verl-agent
does (repository ``langfengQ/verl-agent``, ``agent_system/environments/prompts/alfworld.py``: one
user turn per step with the task, recent history and admissible actions; the answer in
``<action>...</action>``). Batching, sampling and teacher-forced log-probs are :class:`Policy`'s
own (left-padded prompts, right-padded completions, a clean generation config); only loading and
prompt encoding differ: no image processor, and image items in a prompt are an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agents.policy import Encoded, Policy
from guienv.errors import DataError
from guienv.vlm import _dtype_kwargs

__all__ = ["TextPolicy", "load_text_policy", "message_text"]


def message_text(message: Any, index: int) -> str:
    """A chat message's content as one string: plain string content as is, a content list's
    ``{"type": "text"}`` items joined (as Qwen2-VL's chat template concatenates them). An image
    item, or anything else that is not text, raises ``ValueError`` naming the message and item."""
    if not isinstance(message, dict) or "content" not in message or not isinstance(message.get("role"), str):
        raise ValueError(f"message {index}: expected a dict with a string 'role' and a 'content', got {message!r:.200}")
    content = message["content"]
    if isinstance(content, str):
        return content
    if not isinstance(content, (list, tuple)):
        raise ValueError(f"message {index}: content must be a string or a list of items, got {type(content).__name__}")
    parts = []
    for j, item in enumerate(content):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "image" or (isinstance(item, dict) and "image" in item):
            raise ValueError(f"message {index}, item {j}: a text policy takes no images (use the vision Policy)")
        if kind != "text" or not isinstance(item.get("text"), str):
            raise ValueError(f"message {index}, item {j}: expected {{'type': 'text', 'text': str}}, got {item!r:.200}")
        parts.append(item["text"])
    return "".join(parts)


class TextPolicy(Policy):
    """A causal LM chat model with :class:`Policy`'s batching, sampling and log-probs.

    ``model`` (an ``AutoModelForCausalLM``), ``tokenizer`` (with a chat template and a pad
    token), ``device`` and ``eos_ids`` (the ids that end a completion). ``frame`` and ``resize``
    are None: the text is the action."""

    is_vision = False

    def __init__(self, model: Any, tokenizer: Any, *, device: Any = None, eos_ids: Sequence[int] | None = None,
                 cache_mb: float = 0.0):
        if getattr(tokenizer, "chat_template", None) is None:
            raise ValueError("the tokenizer has no chat template: a text policy needs a chat model")
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.agent = None
        self.image_processor = None
        self.frame = None
        self.resize = None
        self.merge_size = None
        if eos_ids is None:
            gen = getattr(model, "generation_config", None)
            eos = set(np.atleast_1d((gen.eos_token_id if gen is not None else None) or []).tolist())
            eos.add(tokenizer.eos_token_id)
            eos_ids = sorted(int(e) for e in eos if e is not None)
        self._setup(model, tokenizer, device if device is not None else model.device, eos_ids, cache_mb)

    def encode_messages(self, messages: list[dict[str, Any]], images: Sequence[np.ndarray] = ()) -> Encoded:
        """Chat ``messages`` (string content, or lists of text items, joined) through the
        tokenizer's chat template with the generation prompt. Images are an error."""
        import torch

        if len(images):
            raise ValueError(f"a text policy takes no images, got {len(images)}")
        if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence) or not messages:
            raise ValueError(f"messages must be a non-empty list of chat messages, got {messages!r:.200}")
        flat = []
        for i, m in enumerate(messages):
            content = message_text(m, i)  # validates the message before its role is read
            flat.append({"role": m["role"], "content": content})
        text = self.tokenizer.apply_chat_template(flat, tokenize=False, add_generation_prompt=True)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return Encoded(torch.tensor(ids, dtype=torch.long), None, None)


def load_text_policy(path: str | Path, *, device: str | None = None, dtype: str = "auto",
                     attn_implementation: str | None = "sdpa") -> TextPolicy:
    """Load a causal-LM chat checkpoint (local folder or hub id) as a :class:`TextPolicy`.

    ``device`` defaults to cuda when available; ``dtype`` is auto | bfloat16 | float16 | float32.
    A path that is neither a folder nor a reachable hub id raises :class:`~guienv.errors.DataError`;
    a vision-language checkpoint raises ``ValueError`` (load it with :class:`Policy`)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    kwargs = _dtype_kwargs(dtype)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    local = Path(path).expanduser()
    if local.is_dir():
        path = str(local)
    elif str(path).startswith((".", "/", "~")):  # meant as a folder, not a hub id
        raise DataError(path, "no such model folder")
    try:
        hf_cfg = AutoConfig.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise DataError(path, f"not a local model folder or a reachable hub id ({type(exc).__name__}: {exc})") from exc
    if getattr(hf_cfg, "vision_config", None) is not None:
        raise ValueError(f"{path}: model_type {hf_cfg.model_type!r} is a vision-language model; load it with agents.policy.Policy")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = AutoModelForCausalLM.from_pretrained(str(path), **kwargs).to(device).eval()
    except ValueError as exc:  # a config without a causal-LM head
        raise ValueError(f"{path}: not a causal language model ({exc})") from exc
    tokenizer = AutoTokenizer.from_pretrained(str(path), padding_side="left")
    return TextPolicy(model, tokenizer, device=device)
