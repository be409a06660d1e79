"""Decoding options of ``transformers`` generation: the KV cache kind and a compiled decode step.

One-token decode steps are bound by per-step overhead (Python, kernel launches), not by the
accelerator's arithmetic; a static KV cache gives every step the same shapes, which lets
``torch.compile`` (and on CUDA a CUDA graph) replace that overhead. Shared by the trainable
:class:`~agents.policy.Policy` and the evaluation :class:`~agents.qwen.QwenAgent`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CACHES", "decoding_kwargs"]

CACHES = ("dynamic", "static")


def decoding_kwargs(cache: str = "dynamic", compile: bool = False, *, prefix: str = "") -> dict[str, Any]:
    """``generate`` keyword arguments for a KV cache kind and a compiled decode step.

    ``cache="static"`` preallocates the KV cache at prompt + ``max_new_tokens`` (transformers'
    ``StaticCache``, ``src/transformers/cache_utils.py``) so every decode step has the same tensor
    shapes; ``compile=True`` (static cache only) has ``generate`` run the decode forward through
    ``torch.compile`` (``GenerationConfig.compile_config``, ``src/transformers/generation/utils.py``
    ``_valid_auto_compile_criteria``; on a CUDA device its default mode "reduce-overhead" replays the
    step as a CUDA graph, which removes the per-kernel launch cost that dominates one-token decode
    steps). transformers compiles only on accelerators by default; ``_compile_all_devices`` lets it
    compile on the CPU too (inductor, needs a C compiler). A bad value raises ``ValueError``
    naming the field (``prefix`` + "cache" / "compile")."""
    if cache not in CACHES:
        raise ValueError(f"{prefix}cache: expected one of {', '.join(CACHES)}, got {cache!r}")
    if not isinstance(compile, bool):
        raise ValueError(f"{prefix}compile: expected true or false, got {compile!r}")
    if compile and cache != "static":
        raise ValueError(f"{prefix}compile: needs {prefix}cache 'static' (a dynamic cache changes shape every step)")
    if cache == "dynamic":
        return {}
    out: dict[str, Any] = {"cache_implementation": "static"}
    if compile:
        from transformers import CompileConfig

        cc = CompileConfig(dynamic=None)  # torch marks the shapes that change between calls dynamic
        cc._compile_all_devices = True
        out["compile_config"] = cc
    else:
        out["disable_compile"] = True  # a static cache alone auto-compiles on CUDA: keep the two options apart
    return out
