"""GRPO trainer for vision-language GUI agents (Qwen2.5-VL / Qwen2-VL through ``transformers``).

One training step (GRPO, Shao et al. 2024, arXiv 2402.03300, Algorithm 1 and eq. 3; GUI-G1's
objective, Zhou et al., "GUI-G1: Understanding R1-Zero-Like Training for Visual Grounding in GUI
Agents", arXiv 2505.15810; repository ``Yuqi-Zhou/GUI-G1``,
``src/open-r1-multimodal/src/open_r1/trainer/grpo_trainer.py``):

1. **Sample**: for each of the step's ``P`` prompts (tasks from the curriculum), ``G`` completions
   with the policy (``temperature``, ``top_p``), one batched ``generate`` call
   (``num_return_sequences=G``); completions end at the first EOS (included) or after
   ``max_new_tokens``.
2. **Score**: every completion with the configured reward (:class:`TaskReward`: a
   :class:`~rewards.composite.CompositeReward`, default GUI-G1's ``R_hit + 0.25 R_iou + 0.125 R_box``,
   or CRAFT-GUI's :class:`~rewards.hybrid.HybridReward` for recorded steps). The model's answer is
   read in its own coordinate frame (Qwen2.5-VL: pixels of the smart-resized image) and mapped to
   the screenshot's pixels before any reward term sees it.
3. **Advantages**: group-relative, ``A_i = r_i - mean_j r_j`` (std division optional;
   :func:`agents.step_batch.group_normalize`). A group whose rewards are all equal carries no
   signal; such zero-variance groups are counted and, by ``zero_variance``, kept, filtered out of
   the loss (GUI-G1's filtering applied online) or replaced by fresh prompts (``resample``, DAPO's
   dynamic sampling; up to ``resample_rounds`` rounds, then filtered).
4. **Update**: ``inner_epochs`` (GRPO's mu) optimizer steps on the batch, each accumulating
   gradients over micro-batches of ``micro_batch_size`` sequences. Loss per token from
   :func:`agents.grpo_loss.grpo_loss`: the clipped importance-ratio surrogate with old log-probs
   from the policy before the update (``pi_old``), plus ``beta * k3`` KL to a frozen reference;
   aggregated ``token-mean``, ``sequence-mean`` or ``constant`` (Dr.GRPO / GUI-G1:
   divide by the max completion length), each sample weighted by GUI-G1's difficulty weight
   (:func:`rewards.grounding.difficulty_weights`) when ``difficulty_weight`` is on.

Log-probs in training are ``log_softmax(logits / temperature)`` of a teacher-forced forward pass
(TRL's convention, so the ratio is taken against the distribution that sampled). ``pi_old`` is the
detached log-prob of the first inner epoch (the parameters have not moved yet), so no extra
forward pass is spent on it.

Generation engine (:mod:`agents.engines`, ``policy.engine``; e.g. a colocated vLLM): it samples the
rollouts, its sampled-token log-probs are kept in :attr:`Rollout.sample_logprobs`, and it is synced
once at the end of every update (after its ``inner_epochs`` optimizer steps: nothing samples in
between). ``importance_correction: tis`` multiplies each token's surrogate by
``min(exp(pi_old - pi_engine), tis_cap)``.

Distributed (DDP or FSDP2, under ``torchrun`` or ``accelerate launch``): the step's ``P`` prompts
are the global batch; every rank draws the same task ids (the curriculum is replicated) and takes
its contiguous slice; groups never straddle ranks, so advantages are local. Normalisers of the loss
(tokens or sequences) are global sums (all-reduce), and each rank's loss is scaled by the world
size, so the averaged gradient equals the single-process gradient on the whole batch.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.distributed import DistInfo
from agents.engines import EngineConfig, tis_weights
from agents.micro_batch import gradient_sync, micro_batches
from agents.policy import Encoded, Policy, no_grad
from agents.step_batch import group_normalize
from agents.task_reward import Scored, TaskReward
from agents.train_prompts import TrainPrompt
from guienv.types import GroundingSample

if TYPE_CHECKING:  # torch is imported where it is used, so configs load without it (fast CLI)
    import torch

    from agents.grpo_loss import GRPOLossConfig

ZERO_VARIANCE = ("keep", "filter", "resample")
PRECISIONS = ("fp32", "bf16", "bf16-mixed")


# -- configuration ------------------------------------------------------------------------------
@dataclass
class GRPOTrainerConfig:
    """GRPO hyper-parameters (YAML block ``grpo:``). Defaults follow GUI-G1 where it reports a
    value (group 8, temperature 0.9, lr 1e-6, no KL, constant normaliser, no std division)."""

    group_size: int = 8
    prompts_per_step: int = 4  # global batch of prompts (split across ranks)
    inner_epochs: int = 1  # GRPO's mu
    micro_batch_size: int = 8  # sequences per forward/backward
    temperature: float = 0.9
    top_p: float = 1.0
    max_new_tokens: int = 64
    lr: float = 1e-6
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    max_grad_norm: float | None = 1.0
    warmup_steps: int = 0
    eps_low: float = 0.2
    eps_high: float | None = None
    beta: float = 0.0  # KL coefficient (k3 to the frozen reference)
    aggregation: str = "constant"  # token-mean | sequence-mean | constant
    max_completion_length: int | None = None  # the constant's L (default max_new_tokens)
    normalize_std: bool = False
    difficulty_weight: bool = True
    zero_variance: str = "keep"  # keep | filter | resample
    resample_rounds: int = 2
    zero_variance_eps: float = 1e-6
    seed_per_prompt: bool = False  # sample each prompt's group from its own seed (batch-split invariant)
    min_new_tokens: int = 0  # benchmarks only: EOS is suppressed until then (sampling then differs from the loss's softmax)
    seed: int = 0

    def __post_init__(self) -> None:
        self.adam_betas = tuple(float(b) for b in self.adam_betas)  # type: ignore[assignment]
        if self.group_size < 2:
            raise ValueError(f"group_size must be >= 2 (GRPO compares completions of a prompt), got {self.group_size}")
        if self.prompts_per_step < 1 or self.inner_epochs < 1 or self.micro_batch_size < 1 or self.max_new_tokens < 1:
            raise ValueError("prompts_per_step, inner_epochs, micro_batch_size and max_new_tokens must be >= 1")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0 for GRPO sampling, got {self.temperature}")
        if self.zero_variance not in ZERO_VARIANCE:
            raise ValueError(f"zero_variance must be one of {ZERO_VARIANCE}, got {self.zero_variance!r}")
        if self.aggregation not in ("token-mean", "sequence-mean", "constant"):
            raise ValueError(f"aggregation must be token-mean, sequence-mean or constant, got {self.aggregation!r}")

    def loss_config(self) -> GRPOLossConfig:
        from agents.grpo_loss import GRPOLossConfig

        return GRPOLossConfig(self.eps_low, self.eps_high, self.beta, self.aggregation,  # type: ignore[arg-type]
                              self.max_completion_length or self.max_new_tokens)


# -- tasks --------------------------------------------------------------------------------------
# -- the trainer --------------------------------------------------------------------------------
@dataclass
class Rollout:
    """A step's sampled groups: ``tasks`` (one per group), ``prompts`` (encoded), ``completions``
    (token lists, group-major: group g holds rows ``g*G .. g*G+G-1``), their ``scored`` rewards,
    ``advantages`` and per-row ``weights``. ``row_prompts`` (multi-turn, :mod:`agents.multiturn_trainer`):
    one prompt per row instead (every turn of a trajectory has its own prompt). ``sample_logprobs``
    (one list per row, or None): the generation engine's log-prob of every completion token, for
    the truncated importance-sampling correction (:mod:`agents.engines`)."""

    task_ids: list[int]
    prompts: list[Encoded]
    completions: list[list[int]]
    scored: list[Scored]
    advantages: np.ndarray
    weights: np.ndarray
    group_size: int
    texts: list[str] = field(default_factory=list)
    row_prompts: list[Encoded] | None = None
    sample_logprobs: list[list[float]] | None = None

    def prompt_of(self, row: int) -> Encoded:
        return self.row_prompts[row] if self.row_prompts is not None else self.prompts[row // self.group_size]

    @property
    def rewards(self) -> np.ndarray:
        return np.array([s.reward for s in self.scored], dtype=np.float64)

    def zero_variance(self, eps: float = 1e-6) -> np.ndarray:
        """Bool per group: all rewards equal (no GRPO signal)."""
        r = self.rewards.reshape(-1, self.group_size)
        return (r.max(axis=1) - r.min(axis=1)) <= eps

    def select(self, groups: Sequence[int]) -> Rollout:
        G = self.group_size
        rows = [g * G + j for g in groups for j in range(G)]
        return Rollout([self.task_ids[g] for g in groups], [self.prompts[g] for g in groups],
                       [self.completions[r] for r in rows], [self.scored[r] for r in rows],
                       self.advantages[rows], self.weights[rows], G, [self.texts[r] for r in rows] if self.texts else [],
                       sample_logprobs=[self.sample_logprobs[r] for r in rows] if self.sample_logprobs is not None else None)

    @staticmethod
    def concat(parts: Sequence[Rollout]) -> Rollout:
        G = parts[0].group_size
        return Rollout(sum((p.task_ids for p in parts), []), sum((p.prompts for p in parts), []),
                       sum((p.completions for p in parts), []), sum((p.scored for p in parts), []),
                       np.concatenate([p.advantages for p in parts]), np.concatenate([p.weights for p in parts]), G,
                       sum((p.texts for p in parts), []),
                       sample_logprobs=sum((p.sample_logprobs for p in parts), []) if all(  # type: ignore[misc]
                           p.sample_logprobs is not None for p in parts) else None)


class GRPOTrainer:
    """GRPO on :class:`TrainPrompt` prompts (see the module docstring).

    ``sampler(n) -> list[int]`` draws the next global task ids (a :class:`~tasks.curriculum.Curriculum`'s
    ``next_batch``); ``train_model`` is what forward/backward runs through (``policy.model`` or its
    DDP/FSDP wrapper); ``ref_model`` a frozen reference for the KL term (``None``: with a peft
    policy the adapter is disabled instead; required when ``beta > 0`` otherwise). ``generation``:
    the engine settings (default: those of the engine installed on the policy, else
    transformers'); an installed engine (``policy.engine``) is synced after every update."""

    def __init__(self, policy: Policy, config: GRPOTrainerConfig, reward: TaskReward, tasks: Sequence[TrainPrompt],
                 optimizer: torch.optim.Optimizer, scheduler: Any = None, *, dist: DistInfo | None = None,
                 train_model: Any = None, ref_model: Any = None, autocast: torch.dtype | None = None,
                 generation: EngineConfig | None = None):
        self.policy = policy
        self.generation = generation or getattr(getattr(policy, "engine", None), "config", None) or EngineConfig()
        self.config = config
        self.reward = reward
        self.tasks = list(tasks)
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.dist = dist or DistInfo(device=str(policy.device))
        self.train_model = train_model if train_model is not None else policy.model
        self.ref_model = ref_model
        self.autocast = autocast
        self.loss_config = config.loss_config()
        self._tis_seen: list[tuple[Any, Any]] = []  # the update's (TIS weights, mask) per micro-batch, for its metrics
        self.outcomes: list[tuple[int, int]] = []  # (task id, hits) of every group of the last collect
        # What a rank with no rows left feeds its zero-weight dummy row (it must join the collectives).
        self.dummy_prompt: Callable[[], Encoded] = lambda: self.policy.encode(self.tasks[0])
        if config.beta and ref_model is None and not hasattr(policy.model, "disable_adapter"):
            raise ValueError("beta > 0 needs a reference model (or a peft policy whose adapter can be disabled)")

    # -- sampling and scoring -------------------------------------------------------------------
    def _autocast(self):
        import torch

        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.policy.device.type, dtype=self.autocast)

    def _seeds(self, step: int, global_ids: Sequence[int], offset: int) -> list[int] | None:
        if not self.config.seed_per_prompt:
            return None
        return [int(np.random.SeedSequence([self.config.seed, step, offset + i]).generate_state(1)[0]) for i in range(len(global_ids))]

    def rollout(self, task_ids: Sequence[int], step: int = 0, seed_offset: int = 0) -> Rollout:
        """Sample, score and compute advantages for this rank's ``task_ids``."""
        cfg, G = self.config, self.config.group_size
        tasks = [self.tasks[i] for i in task_ids]
        prompts = [self.policy.encode(t) for t in tasks]
        kw = dict(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                  seeds=self._seeds(step, task_ids, seed_offset), min_new_tokens=cfg.min_new_tokens)
        engine = getattr(self.policy, "engine", None)
        lps = None
        if not prompts:
            comps: list[list[int]] = []
        elif hasattr(engine, "sample_with_logprobs"):  # keep the engine's log-probs for the TIS correction
            comps, lps = engine.sample_with_logprobs(prompts, G, **kw)
        else:
            comps = self.policy.sample(prompts, G, **kw)
        texts = [self.policy.decode(c) for c in comps]
        row_tasks = [t for t in tasks for _ in range(G)]
        scored = self.reward.score(texts, row_tasks) if comps else []
        r = np.array([s.reward for s in scored], dtype=np.float64)
        adv = group_normalize(r, np.repeat(np.arange(len(tasks)), G), cfg.normalize_std, 1e-6) if len(r) else r
        w = np.array([t.weight if cfg.difficulty_weight else 1.0 for t in row_tasks], dtype=np.float64)
        return Rollout(list(task_ids), prompts, comps, scored, adv, w, G, texts, sample_logprobs=lps)

    def collect(self, sampler: Callable[[int], list[int]], step: int = 0) -> tuple[Rollout, dict[str, float]]:
        """The step's rollout on this rank, zero-variance groups handled per ``zero_variance``."""
        cfg, d = self.config, self.dist
        ids = sampler(cfg.prompts_per_step)
        lo, hi = d.shard(len(ids))
        ro = self.rollout(ids[lo:hi], step, lo)
        first = ro
        self.outcomes = self._outcomes(ro)
        zv = ro.zero_variance(cfg.zero_variance_eps)
        rounds = 0
        if cfg.zero_variance == "resample":
            keep = ro.select(np.flatnonzero(~zv))
            missing = int(zv.sum())
            for rounds in range(1, cfg.resample_rounds + 1):
                need = int(max(d.all_gather(missing)))
                if need == 0:
                    rounds -= 1
                    break
                extra = sampler(need * d.world)  # the same draw on every rank keeps samplers in sync
                mine = extra[d.rank * need: d.rank * need + missing]
                new = self.rollout(mine, step, cfg.prompts_per_step * rounds + d.rank * need)
                self.outcomes += self._outcomes(new)
                nz = np.flatnonzero(~new.zero_variance(cfg.zero_variance_eps))
                keep = Rollout.concat([keep, new.select(nz)]) if len(keep.task_ids) else new.select(nz)
                missing -= len(nz)
            ro = keep
        elif cfg.zero_variance == "filter":
            ro = ro.select(np.flatnonzero(~zv))
        stats = self._rollout_stats(first, zv, ro, rounds)
        return ro, stats

    @staticmethod
    def _outcomes(ro: Rollout) -> list[tuple[int, int]]:
        """``(task id, correct answers in its group)`` for every group sampled (before filtering)."""
        G = ro.group_size
        return [(t, sum(s.correct for s in ro.scored[g * G:(g + 1) * G])) for g, t in enumerate(ro.task_ids)]

    def _rollout_stats(self, first: Rollout, zv: np.ndarray, used: Rollout, rounds: int) -> dict[str, float]:
        """Global (all-rank) means of the first sampling round's diagnostics."""
        s = first.scored
        lens = [len(c) for c in first.completions]
        eos = set(self.policy.eos_ids)
        sums = {
            "n": len(s),
            "reward": sum(x.reward for x in s),
            "accuracy": sum(x.correct for x in s),
            "parsed": sum(x.parsed for x in s),
            "completion_len": sum(lens),
            "truncated": sum(1 for c in first.completions if not c or c[-1] not in eos),
            "groups": len(zv),
            "zero_var": int(zv.sum()),
            "groups_used": len(used.task_ids),
        }
        area = [x.area_ratio for x in s if math.isfinite(x.area_ratio)]
        size = [x.size_ratio for x in s if math.isfinite(x.size_ratio)]
        sums.update(area_sum=sum(area), area_n=len(area), size_sum=sum(size), size_n=len(size))
        terms = sorted({k for x in s for k in x.terms})
        # Every rank must reduce the same keys: gather the union of term names first.
        names = sorted(set().union(*[set(t) for t in self.dist.all_gather(terms)]))
        for k in names:
            sums[f"term/{k}"] = sum(x.terms.get(k, 0.0) for x in s)
        keys = list(sums)
        tot = dict(zip(keys, self.dist.all_reduce_sum([sums[k] for k in keys])))
        n = max(tot["n"], 1.0)
        out = {
            "reward": tot["reward"] / n,
            "accuracy": tot["accuracy"] / n,
            "parse_rate": tot["parsed"] / n,
            "completion_len": tot["completion_len"] / n,
            "truncated_frac": tot["truncated"] / n,
            "zero_var_frac": tot["zero_var"] / max(tot["groups"], 1.0),
            "groups_used": tot["groups_used"],
            "resample_rounds": float(rounds),
            "box_area_ratio": tot["area_sum"] / tot["area_n"] if tot["area_n"] else float("nan"),
            "box_size_vs_gt": tot["size_sum"] / tot["size_n"] if tot["size_n"] else float("nan"),
        }
        for k in names:
            out[f"reward_{k}"] = tot[f"term/{k}"] / n
        return out

    # -- update ---------------------------------------------------------------------------------
    @no_grad
    def _ref_logprobs(self, prompts: Sequence[Encoded], comps: Sequence[Sequence[int]]) -> torch.Tensor:
        T = self.config.temperature
        with self._autocast():
            if self.ref_model is not None:
                return self.policy.token_logprobs(self.ref_model, prompts, comps, T)[0]
            with self.policy.model.disable_adapter():
                return self.policy.token_logprobs(self.policy.model, prompts, comps, T)[0]

    def update(self, ro: Rollout) -> dict[str, float]:
        """``inner_epochs`` optimizer steps on this rank's rollout (see the module docstring)."""
        import torch

        from agents.grpo_loss import grpo_loss
        cfg, lc, d = self.config, self.loss_config, self.dist
        rows = list(range(len(ro.completions)))
        prompts_of = [ro.prompt_of(r) for r in rows]
        n_tok = float(sum(len(ro.completions[r]) for r in rows))
        glob_rows, glob_tok = d.all_reduce_sum([len(rows), n_tok])
        stats = {"loss": 0.0, "clip_frac": 0.0, "kl": 0.0, "ratio": 0.0, "grad_norm": 0.0, "update_tokens": glob_tok}
        if glob_rows == 0:  # every group filtered on every rank: nothing to learn from
            return {**stats, "skipped_update": 1.0}
        empty = not rows
        if empty:  # this rank has nothing left but must join the collective: a zero-weight dummy row
            ro = Rollout([0], [self.dummy_prompt()], [[self.policy.eos_ids[0]]],
                         [Scored(0.0, {}, False, False)], np.zeros(1), np.zeros(1), 1)
            rows, prompts_of = [0], [ro.prompts[0]]
        mbs = micro_batches(len(rows), cfg.micro_batch_size)
        adv = torch.as_tensor(ro.advantages, dtype=torch.float32)
        wts = torch.as_tensor(ro.weights, dtype=torch.float32)
        refs = [self._ref_logprobs([prompts_of[r] for r in mb], [ro.completions[r] for r in mb]) if lc.beta else None
                for mb in mbs]
        olds: list[torch.Tensor | None] = [None] * len(mbs)
        tis = self.generation.importance_correction == "tis" and ro.sample_logprobs is not None
        tws: list[torch.Tensor | None] = [None] * len(mbs)
        self.train_model.train()
        sums = np.zeros(4)  # loss, clipped tokens, kl tokens, ratio tokens (token-weighted)
        for epoch in range(cfg.inner_epochs):
            self.optimizer.zero_grad(set_to_none=True)
            for j, mb in enumerate(mbs):
                last = j == len(mbs) - 1
                with gradient_sync(self.train_model, last), self._autocast():
                    comps = [ro.completions[r] for r in mb]
                    logp, mask = self.policy.token_logprobs(self.train_model, [prompts_of[r] for r in mb], comps, cfg.temperature)
                    if olds[j] is None:
                        olds[j] = logp.detach()
                        if tis:
                            tws[j] = self._tis_weights(ro, mb, olds[j], mask)
                    ref = refs[j].to(logp.device) if refs[j] is not None else None
                    loss, st = grpo_loss(logp, olds[j], adv[mb].to(logp.device), mask, lc, ref_logp=ref,
                                         weights=wts[mb].to(logp.device), token_weights=tws[j])
                    # Global normaliser: this micro-batch's share of the whole (all-rank) batch.
                    mb_tok = float(mask.sum())
                    share = mb_tok / glob_tok if lc.aggregation == "token-mean" else len(mb) / glob_rows
                    scale = 0.0 if empty else share * d.world
                    (loss * scale).backward()
                if epoch == 0 and not empty:
                    sums += [float(loss.detach()) * share, st["clip_frac"] * mb_tok, st["kl_mean"] * mb_tok, st["ratio_mean"] * mb_tok]
                elif epoch == cfg.inner_epochs - 1 and cfg.inner_epochs > 1 and not empty:
                    stats["clip_frac_last_epoch"] = stats.get("clip_frac_last_epoch", 0.0) + st["clip_frac"] * mb_tok
            params = [p for p in self.policy.model.parameters() if p.requires_grad]
            if cfg.max_grad_norm is not None:
                gn = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            else:
                gn = torch.sqrt(sum((p.grad.detach().float() ** 2).sum() for p in params if p.grad is not None))
            if epoch == 0:
                stats["grad_norm"] = float(gn)
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
        tot = d.all_reduce_sum(list(sums) + [stats.get("clip_frac_last_epoch", 0.0)])
        stats.update(loss=tot[0], clip_frac=tot[1] / glob_tok, kl=tot[2] / glob_tok, ratio=tot[3] / glob_tok)
        if cfg.inner_epochs > 1:
            stats["clip_frac_last_epoch"] = tot[4] / glob_tok
        stats["lr"] = float(self.optimizer.param_groups[0]["lr"])
        if tis:
            w = [t[m.bool()] for t, m in self._tis_seen]
            flat = torch.cat(w) if w else torch.ones(1)
            stats.update(tis_weight_mean=float(flat.mean()), tis_capped_frac=float((flat >= self.generation.tis_cap).float().mean()))
        self._tis_seen = []
        engine = getattr(self.policy, "engine", None)
        if engine is not None:  # the engine samples the next step: it gets the new weights now
            engine.sync(self.train_model)
            stats.update(engine_syncs=float(engine.syncs), time_sync=engine.last_sync_s)
        return stats

    def _tis_weights(self, ro: Rollout, mb: Sequence[int], old: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The truncated importance-sampling weights of a micro-batch's tokens (:func:`agents.engines.tis_weights`);
        a row without the engine's log-probs of every token (a transformers-sampled turn) gets weight 1."""
        eng = old.clone()
        for i, r in enumerate(mb):
            lp = ro.sample_logprobs[r]  # type: ignore[index]
            if len(lp) == len(ro.completions[r]) and lp:
                eng[i, :len(lp)] = old.new_tensor(lp)
        w = tis_weights(old, eng, mask, self.generation.tis_cap)
        self._tis_seen = [*self._tis_seen, (w, mask)]
        return w

    def step(self, sampler: Callable[[int], list[int]], step: int = 0) -> tuple[dict[str, float], Rollout]:
        """One GRPO step: collect (sample + score + advantages) then update. Returns the metrics
        (global means) and this rank's rollout."""
        t0 = time.perf_counter()
        ro, stats = self.collect(sampler, step)
        t1 = time.perf_counter()
        stats.update(self.update(ro))
        t2 = time.perf_counter()
        stats.update(time_generate=t1 - t0, time_update=t2 - t1)
        return stats, ro

    # -- evaluation and pass rates --------------------------------------------------------------
    @no_grad
    def greedy_accuracy(self, tasks: Sequence[TrainPrompt], batch_size: int = 8, max_new_tokens: int | None = None) -> dict[str, float]:
        """Greedy decoding on ``tasks`` (split across ranks): accuracy (click in box / exact step
        match), mean reward, parse rate, mean predicted box area ratio; for grounding tasks also the
        mean distance of the click from the target centre per axis (``dx``: fraction of the width,
        ``dy``: of the height) and ``accuracy_by_kind`` (SynthApp control kind, else ScreenSpot's
        text/icon ``data_type``)."""
        lo, hi = self.dist.shard(len(tasks))
        mine = list(tasks[lo:hi])
        n = acc = rew = parsed = area = area_n = dx = dy = dn = 0.0
        kinds: dict[str, list[float]] = {}
        for i in range(0, len(mine), batch_size):
            chunk = mine[i:i + batch_size]
            comps = self.policy.sample([self.policy.encode(t) for t in chunk], 1, temperature=0.0,
                                       max_new_tokens=max_new_tokens or self.config.max_new_tokens)
            for t, s in zip(chunk, self.reward.score([self.policy.decode(c) for c in comps], chunk)):
                n += 1
                acc += s.correct
                rew += s.reward
                parsed += s.parsed
                if math.isfinite(s.area_ratio):
                    area += s.area_ratio
                    area_n += 1
                tgt = t.target
                if isinstance(tgt, GroundingSample):
                    k = kinds.setdefault(str(tgt.extra.get("kind") or tgt.data_type or "all"), [0.0, 0.0])
                    k[0] += s.correct
                    k[1] += 1
                    p = s.action.target if (s.action is not None and s.action.is_valid) else None
                    if p is not None:
                        dx += abs(p[0] - (tgt.box[0] + tgt.box[2]) / 2) / tgt.width
                        dy += abs(p[1] - (tgt.box[1] + tgt.box[3]) / 2) / tgt.height
                        dn += 1
        n, acc, rew, parsed, area, area_n, dx, dy, dn = self.dist.all_reduce_sum([n, acc, rew, parsed, area, area_n, dx, dy, dn])
        merged: dict[str, list[float]] = {}
        for part in self.dist.all_gather(kinds):
            for key, (h, c) in part.items():
                m = merged.setdefault(key, [0.0, 0.0])
                m[0] += h
                m[1] += c
        n = max(n, 1.0)
        out = {"tasks": n, "accuracy": acc / n, "reward": rew / n, "parse_rate": parsed / n,
               "box_area_ratio": area / area_n if area_n else float("nan")}
        if dn:
            out.update(dx=dx / dn, dy=dy / dn)
        if merged:
            out["accuracy_by_kind"] = {key: h / c for key, (h, c) in sorted(merged.items())}
        return out

    @no_grad
    def pass_rates(self, tasks: Sequence[TrainPrompt], k: int, batch_size: int = 4) -> np.ndarray:
        """Fraction of ``k`` sampled answers (the trainer's temperature) that are correct, per task
        (split across ranks, gathered): the curriculum's base-model pass rate and GUI-G1's
        all-correct / all-wrong data filter."""
        lo, hi = self.dist.shard(len(tasks))
        rates: list[float] = []
        for i in range(lo, hi, batch_size):
            chunk = list(tasks[i:min(i + batch_size, hi)])
            comps = self.policy.sample([self.policy.encode(t) for t in chunk], k, temperature=self.config.temperature,
                                       top_p=self.config.top_p, max_new_tokens=self.config.max_new_tokens)
            scored = self.reward.score([self.policy.decode(c) for c in comps], [t for t in chunk for _ in range(k)])
            ok = np.array([s.correct for s in scored], dtype=np.float64).reshape(len(chunk), k)
            rates += ok.mean(axis=1).tolist()
        return np.array(sum(self.dist.all_gather(rates), []), dtype=np.float64)

