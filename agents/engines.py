"""Who generates rollouts: the generation engine seam (YAML block ``generation:``).

``generation.engine`` picks the engine that samples completions for training rollouts
(single-step GRPO and multi-turn) and greedy evaluation:

* ``transformers`` (default): the policy's own ``generate`` (:meth:`agents.policy.Policy.sample`),
  with the decoding options ``cache`` and ``compile`` handed to ``Policy.configure_decoding``
  when the policy has it;
* ``vllm``: a colocated ``vllm.LLM`` in the training process (:class:`agents.vllm_engine.VLLMEngine`),
  built from the folder the policy was loaded from and given the trained weights after every
  optimizer step (TRL's colocate mode, repository ``huggingface/trl``,
  ``trl/generation/vllm_generation.py``).

Whatever samples, the loss's log-probs come from the training forward pass
(:meth:`agents.policy.Policy.token_logprobs`). Two engines differ numerically (kernels, precision,
batching), so the sampler's distribution ``pi_engine`` is not exactly the trainer's ``pi_old``: the
update is slightly off-policy. ``importance_correction: tis`` corrects it with truncated importance
sampling (Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You Off-Policy RL
Training", fengyao.notion.site/off-policy-rl; TRL's ``vllm_importance_sampling_correction``,
``trl/trainer/grpo_trainer.py``): every completion token's surrogate loss is multiplied by

    w_t = min(exp(logp_old_t - logp_engine_t), tis_cap)

(detached), with ``logp_engine_t`` the engine's own log-prob of the sampled token, kept in the
rollout records. ``w_t == 1`` when engine and trainer agree; the cap bounds the variance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from agents.decoding import CACHES
from guienv.config import ConfigValueError

__all__ = ["CACHES", "CORRECTIONS", "ENGINES", "EngineConfig", "GenerationEngine", "TransformersEngine",
           "install_engine", "make_engine", "tis_weights"]

ENGINES = ("transformers", "vllm")
CORRECTIONS = ("none", "tis")
# vllm.LLM keyword arguments the engine sets itself (they follow the policy and the run).
_RESERVED_VLLM = ("model", "tokenizer", "seed", "logprobs_mode", "distributed_executor_backend")


@dataclass
class EngineConfig:
    """``engine``: transformers | vllm. ``cache`` (dynamic | static) and ``compile``: the
    transformers engine's decoding options. ``importance_correction``: none | tis (see the module
    docstring), ``tis_cap`` its cap (> 0; TRL's default 2). ``vllm``: extra ``vllm.LLM`` keyword
    arguments (``gpu_memory_utilization``, ``max_model_len``, ``enforce_eager``, ``dtype``, ...)."""

    engine: str = "transformers"
    cache: str = "dynamic"
    compile: bool = False
    importance_correction: str = "none"
    tis_cap: float = 2.0
    vllm: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise ConfigValueError("engine", f"must be one of {ENGINES}, got {self.engine!r}")
        if self.cache not in CACHES:
            raise ConfigValueError("cache", f"must be one of {CACHES}, got {self.cache!r}")
        if not isinstance(self.compile, bool):
            raise ConfigValueError("compile", f"must be true or false, got {self.compile!r}")
        if self.importance_correction not in CORRECTIONS:
            raise ConfigValueError("importance_correction", f"must be one of {CORRECTIONS}, got {self.importance_correction!r}")
        if isinstance(self.tis_cap, bool) or not isinstance(self.tis_cap, (int, float)) or not self.tis_cap > 0:
            raise ConfigValueError("tis_cap", f"must be a number > 0, got {self.tis_cap!r}")
        self.tis_cap = float(self.tis_cap)
        if not isinstance(self.vllm, Mapping):
            raise ConfigValueError("vllm", f"must be a mapping of vllm.LLM keyword arguments, got {self.vllm!r:.100}")
        bad = sorted(k for k in self.vllm if not isinstance(k, str) or k in _RESERVED_VLLM)
        if bad:
            raise ConfigValueError("vllm", f"key(s) {bad} are set by the engine itself (reserved: {list(_RESERVED_VLLM)})")
        if self.engine != "vllm" and self.vllm:
            raise ConfigValueError("vllm", f"vllm options given but engine is {self.engine!r}")
        self.vllm = dict(self.vllm)


class GenerationEngine(Protocol):
    """What samples for a policy: :meth:`agents.policy.Policy.sample`'s and ``sample_logprobs``'
    signatures and semantics, ``sync(model)`` after an optimizer step, and counters."""

    name: str
    config: EngineConfig
    syncs: int
    sync_time: float

    def sample(self, prompts: Sequence[Any], n: int, *, temperature: float, top_p: float = 1.0,
               max_new_tokens: int = 64, seeds: Sequence[int] | None = None,
               min_new_tokens: int = 0) -> list[list[int]]: ...

    def sample_logprobs(self, prompts: Sequence[Any], *, temperature: float, top_p: float = 1.0,
                        max_new_tokens: int = 64, min_new_tokens: int = 0) -> tuple[list[list[int]], list[list[float]]]: ...

    def sync(self, model: Any) -> None: ...


class TransformersEngine:
    """The policy's own ``generate``: nothing to sync (generation runs on the trained weights).
    Never installed as ``policy.engine`` (the policy's methods are the engine)."""

    name = "transformers"

    def __init__(self, policy: Any, config: EngineConfig):
        self.policy = policy
        self.config = config
        self.syncs = 0
        self.sync_time = 0.0
        policy.configure_decoding(cache=config.cache, compile=config.compile)

    def sample(self, prompts, n, **kwargs):
        return self.policy.sample(prompts, n, **kwargs)

    def sample_logprobs(self, prompts, **kwargs):
        return self.policy.sample_logprobs(prompts, **kwargs)

    def sync(self, model: Any) -> None:
        return None


def install_engine(policy: Any, engine: Any) -> Any:
    """Make ``policy.sample``/``sample_logprobs`` delegate to ``engine`` (a transformers engine is
    not installed: it is the policy's own generation)."""
    policy.engine = None if isinstance(engine, TransformersEngine) else engine
    return engine


def make_engine(cfg: EngineConfig, policy: Any, *, model_path: str | None = None, world_size: int = 1,
                seed: int = 0, sync: bool = False) -> Any:
    """The engine ``cfg.engine`` for ``policy``, installed on it. ``model_path``: the base model
    folder (vllm builds its ``LLM`` from it); ``sync``: push the policy's weights into it at once
    (a policy resumed from a checkpoint differs from the folder; a fresh one, LoRA included, whose
    adapters start at zero, does not)."""
    if cfg.engine == "transformers":
        return install_engine(policy, TransformersEngine(policy, cfg))
    from agents.vllm_engine import VLLMEngine

    if model_path is None:
        raise ConfigValueError("engine", "engine vllm needs the policy's model folder (model_path)")
    engine = VLLMEngine(policy, model_path, cfg, world_size=world_size, seed=seed)
    if sync:
        engine.sync(policy.model)
    return install_engine(policy, engine)


def tis_weights(old_logp: Any, engine_logp: Any, mask: Any, cap: float) -> Any:
    """Truncated importance-sampling weights ``min(exp(old - engine), cap)`` per token (detached;
    1 on padding), see the module docstring."""
    import torch

    w = torch.exp(old_logp.detach() - engine_logp.to(old_logp.dtype)).clamp(max=float(cap))
    return torch.where(mask.bool(), w, torch.ones_like(w))
