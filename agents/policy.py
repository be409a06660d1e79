"""The trainable vision-language policy: prompt encoding, grouped sampling, token log-probs."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.decoding import decoding_kwargs
from agents.train_prompts import TrainPrompt
from guienv.frames import Frame
from guienv.prompts import step_messages
from guienv.vlm import IMAGE_PAD, build_inputs

if TYPE_CHECKING:
    import torch

VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>")


def no_grad(fn):
    """Run ``fn`` under ``torch.no_grad()`` (torch imported on call, so this module loads without it)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import torch

        with torch.no_grad():
            return fn(*args, **kwargs)

    return wrapper


@dataclass
class Encoded:
    """A tokenised prompt: ``ids`` (1-D), its images' ``pixel_values`` rows and ``grid`` rows;
    ``text`` (the chat-templated prompt with one image slot per image) and ``images`` (the images
    as given) for an engine that does its own image processing (:mod:`agents.vllm_engine`)."""

    ids: torch.Tensor
    pixel_values: torch.Tensor | None
    grid: torch.Tensor | None
    text: str | None = None
    images: list[np.ndarray] | None = None


class Policy:
    """The trainable model of a :class:`~agents.qwen.QwenAgent` (same loading, prompts, pixel
    bounds and coordinate frame) with the batching GRPO needs: prompt encoding (one or several
    images), grouped sampling and teacher-forced token log-probs."""

    is_vision = True
    engine: Any = None  # a generation engine (agents.engines) sample/sample_logprobs delegate to

    def __init__(self, agent: Any, cache_mb: float = 0.0):
        self.agent = agent
        self.image_processor = agent.image_processor
        self.frame: Frame | None = agent.frame
        self.resize = agent.resize
        self.merge_size = agent.merge_size
        self._setup(agent.model, agent.tokenizer, agent.device, agent.vlm.eos_ids, cache_mb)

    def _setup(self, model: Any, tokenizer: Any, device: Any, eos_ids: Sequence[int], cache_mb: float) -> None:
        """The state every policy shares (the text policy sets it up the same way)."""
        import torch

        self.model = model  # may be replaced by a peft model
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.eos_ids = list(eos_ids)
        self.pad_id = int(self.tokenizer.pad_token_id)
        self.share_vision = True  # encode each distinct prompt's images once per forward (see _vision_once)
        self._mm_kw: bool | None = None
        # Vision placeholders may never be sampled: one in a completion would be read as an image
        # slot by the training forward. They are suppressed in generation and masked out of the
        # training log-softmax alike, so both use the same distribution.
        vocab = self.tokenizer.get_vocab()
        self.banned_ids = sorted(vocab[t] for t in VISION_TOKENS if t in vocab)
        # Encoded prompts kept across steps (SFT revisits each task many times and decoding plus
        # resizing a screenshot costs more than a tiny model's forward); first come, first kept,
        # up to ``cache_mb`` of tensors.
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: dict[int, tuple[TrainPrompt, Encoded]] = {}
        self._cached_bytes = 0
        self.decoding: dict[str, Any] = {}

    def configure_decoding(self, cache: str = "dynamic", compile: bool = False) -> None:
        """How :meth:`sample` and :meth:`sample_logprobs` decode: ``cache`` ("dynamic", the default,
        or "static") and ``compile`` (a ``torch.compile``-d decode step; static cache only). Greedy
        outputs are token-identical across the options in float32 (tests/agents/test_decoding.py),
        and the compiled step reads weights updated in place by the optimizer
        (``benchmarks/decode_speed.py`` checks both). On a GPU use ``cache="static", compile=True``
        (the step replays as a CUDA graph: one-token decode is launch-bound); on the CPU the
        default stays: the tiny model gains little and the first compile costs ~30 s per shape.
        See :func:`agents.decoding.decoding_kwargs`."""
        self.decoding = decoding_kwargs(cache, compile, prefix="generation.")

    # -- prompts --------------------------------------------------------------------------------
    def messages(self, task: TrainPrompt) -> list[dict[str, Any]]:
        """The prompt's chat messages, built like ``guienv eval``'s (:func:`guienv.prompts.step_messages`):
        the images before the last are previous screens."""
        return step_messages(task.template, task.fields, len(task.images) - 1)

    def encode(self, task: TrainPrompt) -> Encoded:
        hit = self._cache.get(id(task))
        if hit is not None and hit[0] is task:
            return hit[1]
        enc = self.encode_messages(self.messages(task), task.load_images())
        if self.cache_bytes:
            size = sum(t.numel() * t.element_size() for t in (enc.ids, enc.pixel_values, enc.grid) if t is not None)
            size += sum(np.asarray(im).nbytes for im in enc.images or ())
            if self._cached_bytes + size <= self.cache_bytes:
                self._cache[id(task)] = (task, enc)
                self._cached_bytes += size
        return enc

    def encode_messages(self, messages: list[dict[str, Any]], images: Sequence[np.ndarray] = ()) -> Encoded:
        """Chat ``messages`` (as :mod:`guienv.prompts` builds them) through the tokenizer's chat
        template with the generation prompt, and ``images`` filling its image slots in order."""
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        images = list(images)
        if text.count(IMAGE_PAD) != len(images):
            raise ValueError(f"the messages have {text.count(IMAGE_PAD)} image slot(s) but {len(images)} image(s) were given")
        b = build_inputs(self.tokenizer, self.image_processor, [text], [images], self.merge_size)
        # Only an engine that processes images itself (agents.vllm_engine) needs the text and the raw
        # images: kept otherwise, 4000 cached 360x640 screens would add 2.7 GB to the encode cache.
        keep = self.engine is not None
        return Encoded(b["input_ids"][0], b.get("pixel_values"), b.get("image_grid_thw"),
                       text if keep else None, images if keep else None)

    # -- batching -------------------------------------------------------------------------------
    def collate(self, prompts: Sequence[Encoded], completions: Sequence[Sequence[int]] | None = None) -> dict[str, torch.Tensor]:
        """Left-padded prompts (+ right-padded completions when given) with their vision inputs."""
        import torch

        lp = max(len(p.ids) for p in prompts)
        lc = max((len(c) for c in completions), default=0) if completions is not None else 0
        n = len(prompts)
        ids = torch.full((n, lp + lc), self.pad_id, dtype=torch.long)
        att = torch.zeros((n, lp + lc), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, lp - len(p.ids):lp] = p.ids
            att[i, lp - len(p.ids):lp] = 1
            if completions is not None and len(completions[i]):
                c = torch.as_tensor(list(completions[i]), dtype=torch.long)
                ids[i, lp:lp + len(c)] = c
                att[i, lp:lp + len(c)] = 1
        out = {"input_ids": ids.to(self.device), "attention_mask": att.to(self.device)}
        pv = [p.pixel_values for p in prompts if p.pixel_values is not None]
        if pv:
            dtype = next(self.model.parameters()).dtype
            out["pixel_values"] = torch.cat(pv).to(self.device, dtype=dtype)
            out["image_grid_thw"] = torch.cat([p.grid for p in prompts if p.grid is not None]).to(self.device)
        return out

    def _completion_lists(self, new: torch.Tensor) -> list[list[int]]:
        import torch

        eos = torch.tensor(self.eos_ids, device=new.device)
        is_eos = torch.isin(new, eos)
        out = []
        for row, e in zip(new.tolist(), is_eos.tolist()):
            n = e.index(True) + 1 if True in e else len(row)
            out.append(row[:n])
        return out

    def _generation_kwargs(self, *, temperature: float, top_p: float, max_new_tokens: int, min_new_tokens: int,
                           n: int = 1) -> dict[str, Any]:
        # A clean generation config: a checkpoint's own defaults (Qwen2.5-VL ships top_k=1,
        # repetition_penalty=1.05) would make the sampling distribution differ from the
        # log_softmax(logits / T) the loss uses.
        kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, pad_token_id=self.pad_id, eos_token_id=self.eos_ids,
                                      bos_token_id=getattr(self.model.generation_config, "bos_token_id", None),
                                      suppress_tokens=self.banned_ids or None, min_new_tokens=min_new_tokens or None)
        if temperature > 0:
            kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0, num_return_sequences=n)
        else:
            kwargs.update(do_sample=False)
        kwargs.update(self.decoding)
        return kwargs

    @no_grad
    def sample(self, prompts: Sequence[Encoded], n: int, *, temperature: float, top_p: float = 1.0,
               max_new_tokens: int = 64, seeds: Sequence[int] | None = None, min_new_tokens: int = 0) -> list[list[int]]:
        """``n`` completions per prompt (prompt-major order). ``temperature=0`` is greedy.
        ``seeds`` (one per prompt): generate each prompt's group alone from that torch seed, so
        the samples do not depend on which prompts share the batch."""
        import torch

        if self.engine is not None:
            return self.engine.sample(prompts, n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                      seeds=seeds, min_new_tokens=min_new_tokens)

        if seeds is not None:
            out: list[list[int]] = []
            for p, s in zip(prompts, seeds):
                torch.manual_seed(int(s))
                out += self.sample([p], n, temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                   min_new_tokens=min_new_tokens)
            return out
        model = self.model
        was_training = model.training
        model.eval()
        batch = self.collate(prompts)
        from transformers import GenerationConfig

        kwargs = self._generation_kwargs(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                         min_new_tokens=min_new_tokens, n=n)
        try:
            seqs = model.generate(**batch, generation_config=GenerationConfig(**kwargs))
        finally:
            model.train(was_training)
        seqs = seqs if isinstance(seqs, torch.Tensor) else seqs.sequences
        comps = self._completion_lists(seqs[:, batch["input_ids"].shape[1]:])
        if temperature <= 0 and n > 1:
            comps = [c for c in comps for _ in range(n)]
        return comps

    @no_grad
    def sample_logprobs(self, prompts: Sequence[Encoded], *, temperature: float, top_p: float = 1.0,
                        max_new_tokens: int = 64, min_new_tokens: int = 0) -> tuple[list[list[int]], list[list[float]]]:
        """One completion per prompt (one batched ``generate`` over all prompts: each prompt may be a
        different trajectory's turn) and the log-prob of every sampled token under the distribution
        that sampled it: ``log_softmax`` of the processed logits (``output_scores``: banned tokens,
        ``min_new_tokens``, temperature and top-p applied; greedy at ``temperature=0``, where no
        temperature is applied). Completions end at the first EOS (included), as in :meth:`sample`.

        This is the behaviour policy's log-prob of PPO-style importance ratios (Schulman et al.,
        "Proximal Policy Optimization Algorithms", arXiv 1707.06347, eq. 6); teacher-forced
        :meth:`token_logprobs` at the same temperature recomputes it when ``top_p=1``."""
        import torch
        from transformers import GenerationConfig

        if not prompts:
            return [], []
        if self.engine is not None:
            return self.engine.sample_logprobs(prompts, temperature=temperature, top_p=top_p,
                                               max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens)
        model = self.model
        was_training = model.training
        model.eval()
        batch = self.collate(prompts)
        kwargs = self._generation_kwargs(temperature=temperature, top_p=top_p, max_new_tokens=max_new_tokens,
                                         min_new_tokens=min_new_tokens)
        kwargs.update(output_scores=True, return_dict_in_generate=True)
        try:
            out = model.generate(**batch, generation_config=GenerationConfig(**kwargs))
        finally:
            model.train(was_training)
        new = out.sequences[:, batch["input_ids"].shape[1]:]
        # out.scores: one (B, V) tensor per step, the logits each token was drawn from; reduced
        # step by step (a stacked (B, T, V) copy would be large for a 150k vocabulary)
        logp = torch.stack([torch.log_softmax(sc.float(), dim=-1).gather(-1, new[:, t:t + 1]).squeeze(-1)
                            for t, sc in enumerate(out.scores)], dim=1)
        comps = self._completion_lists(new)
        return comps, [logp[i, :len(c)].tolist() for i, c in enumerate(comps)]

    def _vision_once(self, model: Any, prompts: Sequence[Encoded], batch: dict[str, torch.Tensor]) -> dict[str, Any]:
        """Encode each distinct prompt's images once and hand the features to the forward
        (``mm_encoder_outputs``) for every row that shares the prompt: a GRPO batch holds G copies
        of each prompt, and the vision tower would otherwise run G times on the same screenshot.
        The gradient is the same (the G rows' contributions add up on the shared features)."""
        import inspect

        import torch
        from transformers.modeling_outputs import BaseModelOutputWithPooling

        core = model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model
        if not self.share_vision or "pixel_values" not in batch or not hasattr(core, "get_image_features"):
            return {}
        if self._mm_kw is None:
            fwd = getattr(core, "get_base_model", lambda: core)().forward
            self._mm_kw = "mm_encoder_outputs" in inspect.signature(fwd).parameters
        first: dict[int, int] = {}
        uniq: list[Encoded] = []
        for p in prompts:
            if id(p) not in first:
                first[id(p)] = len(uniq)
                uniq.append(p)
        if not self._mm_kw or len(uniq) == len(prompts):
            return {}
        dtype = next(core.parameters()).dtype
        pv = torch.cat([p.pixel_values for p in uniq]).to(self.device, dtype=dtype)
        grid = torch.cat([p.grid for p in uniq]).to(self.device)
        feats = core.get_image_features(pv, grid, return_dict=True).pooler_output
        per_prompt, k = [], 0
        for p in uniq:
            per_prompt.append(list(feats[k:k + len(p.grid)]))
            k += len(p.grid)
        rows = [f for p in prompts for f in per_prompt[first[id(p)]]]
        del batch["pixel_values"]  # image_grid_thw stays: it gives the M-RoPE positions
        return {"mm_encoder_outputs": {"image": BaseModelOutputWithPooling(pooler_output=rows)}}

    def token_logprobs(self, model: Any, prompts: Sequence[Encoded], completions: Sequence[Sequence[int]],
                       temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced ``log_softmax(logits / temperature)`` of each completion token, ``(B, T)``
        with ``T`` the longest completion, and the ``(B, T)`` mask of real tokens. ``model`` is the
        module to call (the DDP/FSDP wrapper in training). Rows that share an :class:`Encoded`
        prompt object share one vision encoding."""
        import torch

        batch = self.collate(prompts, completions)
        t = max(len(c) for c in completions)
        extra = self._vision_once(model, prompts, batch)
        out = model(**batch, **extra, logits_to_keep=t + 1, use_cache=False)
        logits = out.logits[:, :-1, :].float()
        if self.banned_ids:
            banned = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
            banned[self.banned_ids] = True
            logits = logits.masked_fill(banned, float("-inf"))
        if temperature != 1.0:
            logits = logits / temperature
        ids = batch["input_ids"][:, -t:]
        logp = torch.gather(logits, -1, ids.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        mask = torch.zeros_like(logp)
        for i, c in enumerate(completions):
            mask[i, : len(c)] = 1.0
        return logp, mask

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)
