"""Model inputs for Qwen2-VL / Qwen2.5-VL without the processor class.

transformers' ``Qwen2_5_VLProcessor`` builds a video processor that needs torchvision, which CPU-only
installs lack (REFERENCE.md section 1). The inputs are simple to build from the image processor and
the tokenizer: the chat template puts one ``<|image_pad|>`` per image, which is expanded to
``prod(image_grid_thw) // merge_size**2`` copies, exactly as the processor does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from guienv.frames import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS

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
