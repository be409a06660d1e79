"""The model side of ``guienv train``: the starting model (the tiny one built on demand), LoRA
adapters, the generation engine (``generation:``, :mod:`agents.engines`), the optimizer and the
learning-rate schedule."""

from __future__ import annotations

import math
import re
from pathlib import Path

from guienv.errors import DataError
from guienv.run.distributed import barrier, wrap_distributed
from guienv.run.train_config import LoraConfig, ModelConfig, TrainConfig

__all__ = ["apply_lora", "check_model_path", "engine_text", "load_agent", "make_generation", "make_optimizer",
           "make_scheduler", "prepare_policy", "resolve_model_path"]


_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


def check_model_path(path: str) -> None:
    """DataError naming ``model.path`` unless it is ``tiny``, a model folder (with config.json) or
    something shaped like a hub id (``org/name``); a missing local folder would otherwise surface
    as Hugging Face's repo-id message."""
    if path == "tiny":
        return
    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise DataError(path, "model.path is a folder without config.json (not a Hugging Face model folder)",
                            field="model.path")
        return
    if p.exists():
        raise DataError(path, "model.path is a file; it must be a model folder or a hub id", field="model.path")
    if not _HUB_ID.fullmatch(path) or path.startswith((".", "~")) or path.count("/") > 1:
        raise DataError(path, "no such model folder", field="model.path")


def resolve_model_path(cfg: ModelConfig, out: Path, dist) -> str:
    if cfg.path != "tiny":
        return cfg.path
    path = out / "tiny-model"
    if dist.is_main and not (path / "config.json").exists():
        from agents.tiny_model import TinyModelConfig, build_tiny_model

        build_tiny_model(path, TinyModelConfig(**cfg.tiny))
    barrier(dist)
    return str(path)


def load_agent(cfg: ModelConfig, path: str, device: str):
    from agents.qwen import QwenAgent, QwenAgentConfig

    dtype = "bfloat16" if cfg.precision == "bf16" else "float32"
    return QwenAgent(QwenAgentConfig(model=path, template=cfg.template, min_pixels=cfg.min_pixels,
                                     max_pixels=cfg.max_pixels, dtype=dtype, device=device,
                                     attn_implementation=cfg.attn_implementation, image_backend=cfg.image_backend))


def apply_lora(model, cfg: LoraConfig, adapter: str | None = None):
    from peft import LoraConfig as PeftLoraConfig
    from peft import PeftModel, get_peft_model

    if adapter is not None:
        return PeftModel.from_pretrained(model, adapter, is_trainable=True)
    return get_peft_model(model, PeftLoraConfig(r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                                                target_modules=cfg.target_modules))


def make_optimizer(model, lr: float, weight_decay: float, betas=(0.9, 0.999)):
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, betas=tuple(betas))


def make_scheduler(optimizer, warmup_steps: int, total_steps: int = 0, schedule: str = "constant"):
    """Linear warm-up over ``warmup_steps``, then constant or cosine decay to 0 at ``total_steps``."""
    import torch

    w = max(int(warmup_steps), 0)

    def factor(s: int) -> float:
        if w and s < w:
            return (s + 1) / (w + 1)
        if schedule == "cosine" and total_steps > w:
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (s - w) / (total_steps - w))))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def prepare_policy(policy, cfg: TrainConfig, ckpt: Path | None, dist):
    """LoRA (the checkpoint's adapter on resume) and gradient checkpointing on a loaded policy (VL or
    text); returns the module training runs through (DDP/FSDP wrapper or the model) and the
    autocast dtype (``bf16-mixed``) or None."""
    import torch

    lora = cfg.model.lora
    if lora is not None:
        policy.model = apply_lora(policy.model, lora, str(ckpt / "model") if ckpt else None)
    if cfg.model.gradient_checkpointing:
        policy.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora is not None:  # frozen embeddings: checkpointed blocks need inputs that require grad
            policy.model.enable_input_require_grads()
    autocast = torch.bfloat16 if cfg.model.precision == "bf16-mixed" else None
    mode = "ddp" if cfg.train.distributed == "auto" else cfg.train.distributed
    return wrap_distributed(policy.model, mode, dist), autocast


def make_generation(cfg: TrainConfig, policy, base: str, dist, resumed: bool):
    """The generation engine of ``cfg.generation`` installed on the prepared policy, built from the
    base model folder ``base`` (one per rank); a resumed policy's weights are synced into it at once."""
    from agents.engines import make_engine

    return make_engine(cfg.generation, policy, model_path=base, world_size=dist.world, seed=cfg.train.seed + dist.rank,
                       sync=resumed)


def engine_text(gen) -> str:
    """The engine for the run's first log line."""
    init = getattr(gen, "init_s", None)
    return f"engine {gen.name}" + (f" (started in {init:.1f} s)" if init is not None else "")
