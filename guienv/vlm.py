"""Qwen2-VL / Qwen2.5-VL through ``transformers``: one loader, model inputs, one batched generation.

Every local VLM user (the evaluation agent :class:`agents.qwen.QwenAgent`, the trainer's policy
that takes its model from that agent, the local judge in :mod:`rewards.judge`) loads a checkpoint
with :func:`load_vlm` and samples with :func:`generate`.

Inputs are built without the processor class: transformers' ``Qwen2_5_VLProcessor`` builds a video
processor that needs torchvision, which CPU-only installs lack. The inputs are simple to build from
the image processor and the tokenizer: the chat template puts one ``<|image_pad|>`` per image, which
is expanded to ``prod(image_grid_thw) // merge_size**2`` copies, exactly as the processor does
(transformers, ``src/transformers/models/qwen2_5_vl/processing_qwen2_5_vl.py``).

Coordinate frame per family (Qwen team, "Qwen2.5-VL Technical Report", arXiv 2502.13923:
absolute coordinates on the resized image; "Qwen2-VL", arXiv 2409.12191: a 0-1000
grid): ``qwen2_5_vl`` answers in ``Frame.RESIZED``, ``qwen2_vl`` in ``Frame.GRID1000``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from guienv.frames import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, Frame

FAMILY_FRAMES = {"qwen2_5_vl": Frame.RESIZED, "qwen2_vl": Frame.GRID1000}
DTYPES = ("auto", "bfloat16", "float16", "float32")

IMAGE_PAD = "<|image_pad|>"


def make_image_processor(
    min_pixels: int = QWEN_MIN_PIXELS, max_pixels: int = QWEN_MAX_PIXELS, backend: str = "pil", **kwargs: Any
):
    """Qwen2-VL's image processor with the given pixel bounds.

    ``backend="pil"`` needs no torchvision (CPU installs); ``"torchvision"`` is transformers' fast
    processor, which can resize and normalise on the GPU (pass ``device=`` when calling it);
    ``"auto"`` takes torchvision when it imports. Both resize to the same smart-resized grid.
    """
    if backend not in ("pil", "torchvision", "auto"):
        raise ValueError(f"image processor backend must be pil, torchvision or auto, got {backend!r}")
    cls = None
    if backend in ("torchvision", "auto"):
        try:
            from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor as cls
        except ImportError:
            if backend == "torchvision":
                raise
    if cls is None:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil as cls
    return cls(min_pixels=min_pixels, max_pixels=max_pixels, size={"shortest_edge": min_pixels, "longest_edge": max_pixels}, **kwargs)


def is_torchvision_processor(image_processor: Any) -> bool:
    return "Pil" not in type(image_processor).__name__


def build_inputs(
    tokenizer: Any,
    image_processor: Any,
    prompts: Sequence[str],
    images: Sequence[Sequence[np.ndarray]],
    merge_size: int = 2,
    device: Any = None,
) -> dict[str, Any]:
    """Batch of chat-templated ``prompts`` (each with one ``<|image_pad|>`` per image) and their
    images into ``input_ids``, ``attention_mask`` (padding on the tokenizer's side; left for
    generation), ``pixel_values`` and ``image_grid_thw`` tensors."""
    flat = [img for imgs in images for img in imgs]
    expanded = list(prompts)
    out: dict[str, Any] = {}
    if flat:
        extra = {"device": device} if device is not None and is_torchvision_processor(image_processor) else {}
        vis = image_processor(images=flat, return_tensors="pt", **extra)
        grid = vis["image_grid_thw"]
        per_image = (grid.prod(-1) // merge_size**2).tolist()
        k = 0
        for i, (prompt, imgs) in enumerate(zip(prompts, images)):
            if prompt.count(IMAGE_PAD) != len(imgs):
                raise ValueError(f"prompt {i} has {prompt.count(IMAGE_PAD)} image slots but {len(imgs)} images")
            parts = prompt.split(IMAGE_PAD)
            text = parts[0]
            for j, part in enumerate(parts[1:]):
                text += "<|placeholder|>" * per_image[k + j] + part
            k += len(imgs)
            expanded[i] = text.replace("<|placeholder|>", IMAGE_PAD)
        out["pixel_values"] = vis["pixel_values"]
        out["image_grid_thw"] = grid
    enc = tokenizer(expanded, return_tensors="pt", padding=True, add_special_tokens=False)
    out["input_ids"] = enc["input_ids"]
    out["attention_mask"] = enc["attention_mask"]
    return out


# -- loading ----------------------------------------------------------------------------------------
@dataclass
class VLM:
    """A loaded checkpoint: ``model`` (eval mode, on ``device``), ``tokenizer`` (left padding, pad
    token set), ``image_processor`` (this loader's pixel bounds), the ``family`` (``model_type``),
    its coordinate ``frame`` (None outside :data:`FAMILY_FRAMES`), ``merge_size`` and the ids that
    end a completion (``eos_ids``: the generation config's and the tokenizer's EOS)."""

    model: Any
    tokenizer: Any
    image_processor: Any
    family: str
    frame: Frame | None
    merge_size: int
    eos_ids: list[int]

    @property
    def device(self) -> Any:
        return self.model.device

    def inputs(self, prompts: Sequence[str], images: Sequence[Sequence[np.ndarray]]) -> dict[str, Any]:
        """:func:`build_inputs` for this model, every tensor on its device."""
        batch = build_inputs(self.tokenizer, self.image_processor, prompts, images, self.merge_size, device=self.device)
        return {k: v.to(self.device) if hasattr(v, "to") else v for k, v in batch.items()}


def _dtype_kwargs(dtype: str) -> dict[str, Any]:
    import torch
    import transformers

    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if dtype == "auto":
        return {"dtype": "auto"}
    # transformers renamed torch_dtype to dtype in 4.56
    major, minor = (int(v) for v in re.findall(r"\d+", transformers.__version__)[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": getattr(torch, dtype)}


def load_vlm(
    path: str,
    *,
    dtype: str = "auto",
    device: str | None = None,
    attn_implementation: str | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    image_backend: str = "pil",
    require_family: bool = True,
) -> VLM:
    """Load a Qwen-VL checkpoint (hub id or folder) for inference.

    ``device`` defaults to cuda when available. ``min_pixels``/``max_pixels`` (default: Qwen's,
    4*28*28 and 16384*28*28) bound the image processor's smart resize; they define the resized frame
    the model answers in. ``require_family``: raise ``ValueError`` for a checkpoint outside
    :data:`FAMILY_FRAMES` (its frame is unknown); else such a model loads with ``frame=None``.
    Missing files raise ``OSError``/``ValueError`` from transformers."""
    import torch
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer

    hf_cfg = AutoConfig.from_pretrained(path)
    family = str(hf_cfg.model_type)
    if require_family and family not in FAMILY_FRAMES:
        raise ValueError(f"{path}: model_type {family!r} is not a Qwen2-VL/Qwen2.5-VL checkpoint")
    kwargs = _dtype_kwargs(dtype)
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = AutoModelForImageTextToText.from_pretrained(path, **kwargs).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    image_processor = make_image_processor(min_pixels or QWEN_MIN_PIXELS, max_pixels or QWEN_MAX_PIXELS, backend=image_backend)
    gen = getattr(model, "generation_config", None)
    eos = set(np.atleast_1d((gen.eos_token_id if gen is not None else None) or []).tolist())
    eos.add(tokenizer.eos_token_id)
    return VLM(model, tokenizer, image_processor, family, FAMILY_FRAMES.get(family),
               int(getattr(getattr(hf_cfg, "vision_config", None), "spatial_merge_size", 2)),
               sorted(int(e) for e in eos if e is not None))


# -- generation -------------------------------------------------------------------------------------
@dataclass
class Generated:
    """Completions of a :func:`generate` call, row-major (``n`` rows per prompt): token ids up to
    and including the first EOS (padding excluded), the decoded texts (special tokens skipped) and,
    when asked for, each token's log-probability under the sampling distribution."""

    token_ids: list[list[int]]
    texts: list[str]
    logprobs: list[list[float]] | None = None


def generate(
    vlm: VLM,
    inputs: dict[str, Any],
    *,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float | None = None,
    n: int = 1,
    seed: int | None = None,
    logprobs: bool = False,
    **generate_kwargs: Any,
) -> Generated:
    """Batched ``model.generate`` on ``inputs`` (from :meth:`VLM.inputs`).

    ``temperature=0`` decodes greedily (one row per prompt whatever ``n``); else ``n`` samples per
    prompt at ``temperature`` (and ``top_p`` when given). ``seed``: sample under that torch seed
    inside ``torch.random.fork_rng``, leaving the caller's RNG state untouched. ``logprobs``: also
    return ``log_softmax(logits / temperature)`` of each generated token (temperature 1 when
    greedy) from the raw logits. ``generate_kwargs`` go to ``model.generate`` last."""
    import contextlib

    import torch

    sample = temperature > 0
    kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, do_sample=sample, pad_token_id=vlm.tokenizer.pad_token_id)
    if sample:
        kwargs["temperature"] = temperature
        if top_p is not None:
            kwargs["top_p"] = top_p
        if n > 1:
            kwargs["num_return_sequences"] = n
    if logprobs:
        kwargs.update(return_dict_in_generate=True, output_logits=True)
    kwargs.update(generate_kwargs)
    rng: Any = contextlib.nullcontext()
    if seed is not None:
        dev = vlm.device
        cuda = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
        rng = torch.random.fork_rng(devices=cuda)
    with torch.inference_mode(), rng:
        if seed is not None:
            torch.manual_seed(seed)
        out = vlm.model.generate(**inputs, **kwargs)
    seqs = out if isinstance(out, torch.Tensor) else out.sequences
    new = seqs[:, inputs["input_ids"].shape[1]:]
    tok_logp = None
    if logprobs:
        logits = torch.stack(out.logits, dim=1).float()  # (B, T, V), raw (unprocessed) logits
        logp = torch.log_softmax(logits / (temperature if sample else 1.0), dim=-1)
        tok_logp = logp.gather(-1, new.unsqueeze(-1)).squeeze(-1)
    eos = set(vlm.eos_ids)
    ids_out, texts, lps = [], [], []
    for i, row in enumerate(new.tolist()):
        k = next((j + 1 for j, t in enumerate(row) if t in eos), len(row))
        ids_out.append(row[:k])
        texts.append(vlm.tokenizer.decode(row[:k], skip_special_tokens=True))
        if tok_logp is not None:
            lps.append(tok_logp[i, :k].tolist())
    return Generated(ids_out, texts, lps if logprobs else None)
