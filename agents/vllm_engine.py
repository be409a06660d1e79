"""A colocated vLLM generation engine for a training policy (``generation.engine: vllm``).

vLLM (Kwon et al., "Efficient Memory Management for Large Language Model Serving with
PagedAttention", arXiv 2309.06180) generates with a paged KV cache and continuous batching. Here
one ``vllm.LLM`` runs in the training process (TRL's colocate mode, repository ``huggingface/trl``,
``trl/generation/vllm_generation.py``): it is built from the folder the policy was loaded from, and
after every optimizer step :meth:`VLLMEngine.sync` copies the trained weights into it and resets
its prefix cache (cached KV blocks were computed with the old weights).

Sampling follows :meth:`agents.policy.Policy.sample` / ``sample_logprobs``: ``n`` completions per
prompt in prompt-major order, each ending at its first EOS (included) or after ``max_new_tokens``;
``min_new_tokens`` suppresses EOS until then (``SamplingParams.min_tokens``); the vision
placeholder tokens are never sampled (``logit_bias`` of -100, vLLM's most negative, on them: far
below any logit of a trained model); ``top_k`` off; per-prompt seeds; greedy at temperature 0.
The log-probs are vLLM's ``processed_logprobs`` (after the logit bias, ``min_tokens``, temperature
and top-p: the distribution that sampled), the engine's log-prob of each sampled token, which the
trainer's truncated importance-sampling correction compares with its own (:mod:`agents.engines`).

Weight sync (``sync``): the DDP wrapper is unwrapped; a peft LoRA model is merged, its weights
pushed under the base model's names and unmerged (as TRL's ``_sync_peft_weights``); sharded
(FSDP2 ``DTensor``) parameters are gathered whole. Two reload paths: vLLM's CPU build repacks
linear weights, so its model's ``load_weights`` fails and ``model_runner.reload_weights
(weights_iterator=...)`` is used (then a tied output head is tied to the new embeddings again: the
in-place reload would keep its old tensors); on GPU the model's own ``load_weights`` (what TRL
calls), which writes into the shared tied tensor.

Vision-language policies (GPU only: vLLM's Qwen2-VL processor needs torchvision): the prompt goes
as its chat-templated text with the images as ``multi_modal_data`` and the policy's
``min_pixels``/``max_pixels`` as ``mm_processor_kwargs``, so vLLM's resize gives the same image
grid as the trainer's processor. Several ranks: one engine per rank
(``distributed_executor_backend="external_launcher"``, as TRL).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["VLLMEngine", "trained_weights"]

BAN = -100.0  # vLLM clamps logit_bias to [-100, 100]


def _unwrap(model: Any) -> Any:
    while hasattr(model, "module") and not hasattr(model, "merge_adapter"):  # DDP (a peft model has no .module)
        model = model.module
    return model


def _full(t: Any) -> Any:
    full = getattr(t, "full_tensor", None)  # an FSDP2 DTensor shard
    return (full() if full is not None else t).detach()


def trained_weights(model: Any) -> Iterator[tuple[str, Any]]:
    """``(name, tensor)`` of ``model``'s weights under the base model's names: DDP unwrapped; a
    peft model's adapters must already be merged (see :meth:`VLLMEngine.sync`), their own
    parameters are skipped and ``base_layer`` / ``modules_to_save`` renamed (TRL's
    ``_sync_peft_weights``)."""
    model = _unwrap(model)
    peft = hasattr(model, "merge_adapter")
    prefix = getattr(model, "prefix", "lora_")
    for name, p in model.named_parameters():
        if peft:
            name = name.removeprefix("base_model.model.").replace(".base_layer", "")
            if prefix in name or "original_module" in name:
                continue
            name = name.replace("modules_to_save.default.", "")
        yield name, _full(p)


class VLLMEngine:
    """A ``vllm.LLM`` colocated with ``policy`` (see the module docstring). ``model_path``: the HF
    folder the policy was loaded from; ``config``: an :class:`agents.engines.EngineConfig` (its
    ``vllm`` mapping: extra ``LLM`` keyword arguments; built by :func:`agents.engines.make_engine`,
    which this module does not import)."""

    name = "vllm"

    def __init__(self, policy: Any, model_path: str, config: Any = None, *, world_size: int = 1,
                 seed: int = 0):
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # in-process: the weights are reachable
        os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM CPU reserves far more by default
        from vllm import LLM

        self.policy = policy
        self.config = config
        self.syncs = 0
        self.sync_time = 0.0
        self.last_sync_s = 0.0
        kwargs: dict[str, Any] = {"dtype": self._dtype(policy), "max_model_len": 2048, "enable_prefix_caching": True}
        if policy.device.type != "cuda":
            kwargs["enforce_eager"] = True
        else:
            kwargs["gpu_memory_utilization"] = 0.3  # colocated: the rest stays for training (weights, optimizer, activations)
        if policy.is_vision:
            kwargs["limit_mm_per_prompt"] = {"image": 8}
        kwargs.update(getattr(config, "vllm", None) or {})
        if world_size > 1:
            kwargs["distributed_executor_backend"] = "external_launcher"
        t0 = time.perf_counter()
        self.llm = LLM(model=str(model_path), tokenizer=str(model_path), seed=int(seed),
                       logprobs_mode="processed_logprobs", **kwargs)
        self.init_s = time.perf_counter() - t0
        self.max_model_len = int(self.llm.llm_engine.model_config.max_model_len)

    @staticmethod
    def _dtype(policy: Any) -> str:
        import torch

        dt = next(policy.model.parameters()).dtype
        return {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(dt, "auto")

    # -- prompts ----------------------------------------------------------------------------------
    def _prompt(self, p: Any) -> dict[str, Any]:
        if not self.policy.is_vision or not p.images:
            return {"prompt_token_ids": [int(t) for t in p.ids.tolist()]}
        if p.text is None:
            raise ValueError("a vision prompt for vLLM needs Encoded.text and Encoded.images (from encode_messages)")
        from PIL import Image

        pixels = self._pixels()
        return {"prompt": p.text, "multi_modal_data": {"image": [Image.fromarray(im) for im in p.images]},
                "mm_processor_kwargs": pixels}

    def _pixels(self) -> dict[str, int]:
        """The policy processor's smart-resize bounds, as Qwen2-VL's ``mm_processor_kwargs``."""
        proc = self.policy.image_processor
        size = getattr(proc, "size", None) or {}
        out = {"min_pixels": getattr(proc, "min_pixels", None) or size.get("shortest_edge"),
               "max_pixels": getattr(proc, "max_pixels", None) or size.get("longest_edge")}
        return {k: int(v) for k, v in out.items() if v is not None}

    def _params(self, *, n: int, temperature: float, top_p: float, max_new_tokens: int, min_new_tokens: int,
                seed: int | None = None, logprobs: bool = False):
        from vllm import SamplingParams

        greedy = temperature <= 0
        return SamplingParams(n=1 if greedy else int(n), temperature=0.0 if greedy else float(temperature),
                              top_p=1.0 if greedy else float(top_p), top_k=0, max_tokens=int(max_new_tokens),
                              min_tokens=int(min_new_tokens), stop_token_ids=list(self.policy.eos_ids),
                              logit_bias={int(t): BAN for t in self.policy.banned_ids} or None,
                              seed=None if seed is None else int(seed), logprobs=0 if logprobs else None,
                              detokenize=False, skip_special_tokens=False)

    def _check_lengths(self, prompts: Sequence[Any], max_new_tokens: int) -> None:
        longest = max(len(p.ids) for p in prompts)
        if longest + max_new_tokens > self.max_model_len:
            raise ValueError(f"a prompt of {longest} tokens + max_new_tokens {max_new_tokens} exceeds the vLLM engine's "
                             f"max_model_len {self.max_model_len} (set generation.vllm.max_model_len)")

    def _cut(self, ids: Sequence[int], lps: Sequence[Any] | None) -> tuple[list[int], list[float]]:
        """The completion up to its first EOS (included) and its tokens' log-probs."""
        ids = [int(t) for t in ids]
        eos = set(self.policy.eos_ids)
        end = next((i + 1 for i, t in enumerate(ids) if t in eos), len(ids))
        ids = ids[:end]
        if lps is None:
            return ids, []
        return ids, [float(d[t].logprob) for t, d in zip(ids, lps)]

    def _generate(self, prompts: Sequence[Any], params: Any) -> list[Any]:
        outs = self.llm.generate([self._prompt(p) for p in prompts], params, use_tqdm=False)
        return [o.outputs for o in outs]

    # -- the engine protocol ----------------------------------------------------------------------
    def sample(self, prompts: Sequence[Any], n: int, *, temperature: float, top_p: float = 1.0, max_new_tokens: int = 64,
               seeds: Sequence[int] | None = None, min_new_tokens: int = 0) -> list[list[int]]:
        """:meth:`agents.policy.Policy.sample` on the engine (see the module docstring)."""
        return self.sample_with_logprobs(prompts, n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                         seeds=seeds, min_new_tokens=min_new_tokens, logprobs=False)[0]

    def sample_with_logprobs(self, prompts: Sequence[Any], n: int, *, temperature: float, top_p: float = 1.0,
                             max_new_tokens: int = 64, seeds: Sequence[int] | None = None, min_new_tokens: int = 0,
                             logprobs: bool = True) -> tuple[list[list[int]], list[list[float]]]:
        """:meth:`sample` and, with ``logprobs``, the engine's log-prob of every sampled token."""
        if not prompts:
            return [], []
        self._check_lengths(prompts, max_new_tokens)
        kw = dict(n=n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                  logprobs=logprobs)
        if seeds is not None:
            if len(seeds) != len(prompts):
                raise ValueError(f"{len(seeds)} seeds for {len(prompts)} prompts")
            params: Any = [self._params(**kw, seed=s) for s in seeds]
        else:
            params = self._params(**kw)
        comps: list[list[int]] = []
        lps: list[list[float]] = []
        for outs in self._generate(prompts, params):
            rows = [self._cut(o.token_ids, o.logprobs if logprobs else None) for o in outs]
            if temperature <= 0:  # greedy: n copies of the one completion, as the policy returns
                rows = rows * n
            comps += [r[0] for r in rows]
            lps += [r[1] for r in rows]
        return comps, lps

    def sample_logprobs(self, prompts: Sequence[Any], *, temperature: float, top_p: float = 1.0, max_new_tokens: int = 64,
                        min_new_tokens: int = 0) -> tuple[list[list[int]], list[list[float]]]:
        """:meth:`agents.policy.Policy.sample_logprobs` on the engine: one completion per prompt
        and the engine's processed log-prob of each of its tokens."""
        return self.sample_with_logprobs(prompts, 1, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                         min_new_tokens=min_new_tokens)

    # -- weights ----------------------------------------------------------------------------------
    def _model_runner(self) -> Any:
        worker = self.llm.llm_engine.model_executor.driver_worker
        return getattr(worker, "model_runner", None) or worker.worker.model_runner

    def load(self, weights: Sequence[tuple[str, Any]]) -> None:
        """Load ``(name, tensor)`` pairs (HF names) into the engine's model."""
        from vllm.platforms import current_platform

        runner = self._model_runner()
        if current_platform.is_cpu():  # CPU linear layers are repacked: only the reload path re-applies that
            runner.reload_weights(weights_iterator=iter(weights))
            self._retie(runner.get_model())
        else:
            runner.model.load_weights(weights=iter(weights))

    def _retie(self, model: Any) -> None:
        """Tie the output head to the reloaded input embeddings again: vLLM's in-place reload puts
        a tied ``lm_head``'s old (repacked) tensors back, since no checkpoint weight names it."""
        cfg = self.llm.llm_engine.model_config.hf_text_config
        if not getattr(cfg, "tie_word_embeddings", False):
            return
        mods = dict(model.named_modules())
        for name, head in mods.items():
            if not name.endswith("lm_head") or not hasattr(head, "weight"):
                continue
            emb = mods.get(name[: -len("lm_head")] + "model.embed_tokens")
            if emb is None:
                emb = next(m for k, m in mods.items() if k.endswith("embed_tokens"))
            head.weight = emb.weight
            method = getattr(head, "quant_method", None)
            if method is not None:
                method.process_weights_after_loading(head)  # the CPU gemm repacks from .weight

    def sync(self, model: Any) -> None:
        """Push ``model``'s current weights (the DDP/FSDP wrapper, a peft model or a plain one) into
        the engine and reset its prefix cache."""
        import torch

        t0 = time.perf_counter()
        core = _unwrap(model)
        with torch.no_grad():
            if hasattr(core, "merge_adapter"):
                core.merge_adapter()
                try:
                    self.load(list(trained_weights(core)))
                finally:
                    core.unmerge_adapter()
            else:
                self.load(list(trained_weights(core)))
        self.llm.reset_prefix_cache()
        self.syncs += 1
        self.last_sync_s = time.perf_counter() - t0
        self.sync_time += self.last_sync_s
