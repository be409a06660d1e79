"""``guienv train``: GRPO (optionally after an SFT warm-up) for a Qwen-VL GUI agent, from YAML.

    guienv train --config configs/train_default.yaml --out runs/demo
    torchrun --nproc_per_node 4 -m guienv train --config my.yaml --out runs/big    # DDP (or FSDP)
    accelerate launch --num_processes 4 -m guienv train --config my.yaml --out runs/big

The YAML file has one block per dataclass below (every key optional; ``model.path`` defaults to
the tiny model, shaped by ``model.tiny``; unknown keys are errors naming the file and the key): ``model`` (:class:`ModelConfig`, LoRA via
peft as an option), ``data`` (:class:`DataConfig`: SynthApp grounding tasks generated on the fly
by default, ScreenSpot-format files, or AndroidControl episodes as step tasks), ``reward``
(:class:`RewardConfig`: a composite preset or term list; a CRAFT-GUI hybrid/judge block for step
tasks when :mod:`rewards.hybrid` is importable), ``curriculum``
(:class:`~tasks.curriculum.CurriculumConfig`), ``grpo`` (:class:`~agents.grpo.GRPOTrainerConfig`),
``sft`` (:class:`~agents.sft.SFTConfig`) and ``train`` (:class:`RunConfig`: steps, checkpoints,
evaluation, logging, distribution).

Output directory ``DIR``:

* ``config.yaml`` (resolved), ``metrics.jsonl`` (one row per step: reward and its terms, accuracy,
  KL, clip fraction, completion length, zero-variance fraction, curriculum stage, predicted box
  area ratio...), ``tb/`` (TensorBoard event files, same scalars), ``curves.png``;
* ``checkpoints/step-NNNNNN/`` every ``save_every`` steps (HF model folder or peft adapter,
  optimizer, scheduler, RNG states of python/numpy/torch per rank, curriculum and data-sampler
  state); a rerun with the same ``--out`` resumes exactly from the latest one (``--no-resume``
  starts over), dropping metrics rows written after it;
* ``eval_before.json``, ``eval_after_sft.json`` (when there is a warm-up) and ``eval.json``:
  held-out accuracy (greedy; grounding tasks also by target kind and the click's distance from the
  target centre per axis) before training, after the warm-up and at the end, with the accuracy of
  always clicking the training targets' mean centre for reference; ``final/``: the trained model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import random
import shutil
import sys
import time
import typing
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from agents.grpo import PRECISIONS, GRPOTrainerConfig
from agents.sft import SFTConfig
from guienv.errors import DataError
from guienv.frames import QWEN_MIN_PIXELS
from tasks.curriculum import CurriculumConfig, DifficultyConfig

SOURCES = ("synthapp", "screenspot", "androidcontrol")
LANGUAGE_LINEARS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


# -- configuration ------------------------------------------------------------------------------
@dataclass
class LoraConfig:
    """LoRA adapters through peft (only the adapters train; the KL reference is the adapter-free
    model). ``target_modules``: a regex or a list of module names (default: the language model's
    linear layers, not the vision tower)."""

    r: int = 16
    alpha: int = 32
    dropout: float = 0.0
    target_modules: Any = LANGUAGE_LINEARS


@dataclass
class ModelConfig:
    """``path``: a Qwen2.5-VL/Qwen2-VL HF folder or hub id, or ``tiny`` (a tiny random-init
    Qwen2.5-VL built into ``DIR/tiny-model``, :mod:`agents.tiny_model`). ``precision``: ``fp32``,
    ``bf16`` (bf16 weights) or ``bf16-mixed`` (fp32 weights, bf16 autocast)."""

    path: str = "tiny"
    template: str = "gui-g1"
    min_pixels: int = QWEN_MIN_PIXELS
    max_pixels: int = 1280 * 28 * 28
    precision: str = "fp32"
    attn_implementation: str | None = "sdpa"
    image_backend: str = "auto"
    gradient_checkpointing: bool = False
    lora: LoraConfig | None = None
    device: str | None = None
    tiny: dict[str, Any] = field(default_factory=dict)  # agents.tiny_model.TinyModelConfig fields (path: tiny)
    encode_cache_mb: float = 1024.0  # encoded prompts (pixel patches) kept in memory across steps

    def __post_init__(self) -> None:
        if isinstance(self.lora, Mapping):
            self.lora = LoraConfig(**self.lora)
        from agents.tiny_model import TinyModelConfig

        known = {f.name for f in fields(TinyModelConfig)}
        unknown = sorted(set(self.tiny or {}) - known)
        if unknown:
            raise ValueError(f"model.tiny: unknown field(s) {unknown}; known: {sorted(known)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")


@dataclass
class DataConfig:
    """Training and held-out tasks.

    ``synthapp``: ``train_size`` grounding tasks of dataset ``seed`` generated with ``synth``
    (:class:`~tasks.synthapp.SynthConfig` fields), held-out tasks from dataset ``seed + 1000``.
    ``screenspot``: ``path`` (any format :func:`~tasks.screenspot.load_screenspot` reads); held out:
    ``eval_path``, else ``eval_size`` samples split off after a seeded shuffle.
    ``androidcontrol``: episodes from ``path`` (:func:`~tasks.androidcontrol.load_androidcontrol`),
    one task per step (``template`` androidcontrol-low/high; ``history_images`` previous screens
    shown as extra images); held out as for screenspot, by episode.
    ``prefilter_k``: GUI-G1's data filter: sample k answers per task with the starting model and
    drop tasks it gets all right or all wrong."""

    source: str = "synthapp"
    train_size: int = 256
    eval_size: int = 64
    synth: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    path: str | None = None
    eval_path: str | None = None
    image_dir: str | None = None
    on_error: str = "raise"
    template: str | None = None  # default: model.template for grounding, androidcontrol-low for steps
    history_images: int = 0
    prefilter_k: int = 0

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"data source must be one of {SOURCES}, got {self.source!r}")
        if self.source != "synthapp" and not self.path:
            raise ValueError(f"data source {self.source!r} needs data.path")
        if self.prefilter_k == 1:
            raise ValueError("prefilter_k must be 0 (off) or >= 2")


@dataclass
class RewardConfig:
    """``preset`` (:data:`rewards.composite.PRESETS`: gui-g1, gui-r1, ui-s1) or ``composite`` (a
    :class:`~rewards.composite.CompositeConfig` mapping: ``terms: [{name, weight, params}]``);
    the frame is always the policy's. ``hybrid`` (a :class:`~rewards.hybrid.HybridConfig` mapping)
    and/or ``judge`` (a :class:`~rewards.judge.JudgeConfig` mapping, placed into the hybrid block)
    score step tasks with CRAFT-GUI's rules + judge; ``protocol`` names the step matcher of the
    accuracy metric. ``imports``: Python modules imported first (they register custom terms with
    :func:`rewards.composite.register_term`; every rank imports them)."""

    preset: str | None = "gui-g1"
    composite: dict[str, Any] | None = None
    hybrid: dict[str, Any] | None = None
    judge: dict[str, Any] | None = None
    protocol: str = "plain"
    imports: list[str] = field(default_factory=list)


@dataclass
class RunConfig:
    """Loop settings. ``steps``: GRPO steps (after ``sft.steps`` warm-up steps). ``distributed``:
    ``auto`` (DDP when launched with WORLD_SIZE > 1), ``ddp``, ``fsdp`` (FSDP2 ``fully_shard`` per
    decoder/vision block) or ``none``."""

    steps: int = 100
    save_every: int = 50
    keep_checkpoints: int = 2
    eval_every: int = 0
    eval_batch_size: int = 8
    seed: int = 0
    distributed: str = "auto"
    tensorboard: bool = True
    plot: bool = True
    progress: bool = True
    eval_before: bool = True

    def __post_init__(self) -> None:
        if self.distributed not in ("auto", "ddp", "fsdp", "none"):
            raise ValueError(f"train.distributed must be auto, ddp, fsdp or none, got {self.distributed!r}")
        if self.steps < 0 or self.save_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("train.steps must be >= 0, save_every and keep_checkpoints >= 1")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    grpo: GRPOTrainerConfig = field(default_factory=GRPOTrainerConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    train: RunConfig = field(default_factory=RunConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "<train config>") -> TrainConfig:
        data = dict(data or {})
        blocks = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(blocks))
        if unknown:
            raise DataError(where, f"unknown config block(s) {unknown}; known: {sorted(blocks)}", field=unknown[0])
        kwargs = {}
        for name, f in blocks.items():
            sub = data.get(name) or {}
            klass = f.default_factory().__class__  # type: ignore[misc]
            kwargs[name] = _build(klass, sub, where, name)
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: Sequence[str] = ()) -> TrainConfig:
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except OSError as exc:
            raise DataError(path, f"cannot read config ({exc})") from exc
        except yaml.YAMLError as exc:
            raise DataError(path, f"not valid YAML ({exc})") from exc
        if not isinstance(data, dict):
            raise DataError(path, f"a train config must be a mapping, got {type(data).__name__}")
        for item in overrides:
            apply_override(data, item)
        return cls.from_dict(data, str(path))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=list))


def _build(klass: type, sub: Any, where: str, name: str) -> Any:
    if not isinstance(sub, Mapping):
        raise DataError(where, f"block {name!r} must be a mapping, got {type(sub).__name__}", field=name)
    known = {f.name for f in fields(klass)}
    unknown = sorted(set(sub) - known)
    if unknown:
        raise DataError(where, f"unknown key(s) {unknown} in block {name!r}; known: {sorted(known)}", field=f"{name}.{unknown[0]}")
    sub = dict(sub)
    if klass is CurriculumConfig and isinstance(sub.get("difficulty"), Mapping):
        d = sub["difficulty"]
        bad = sorted(set(d) - {f.name for f in fields(DifficultyConfig)})
        if bad:
            raise DataError(where, f"unknown key(s) {bad} in curriculum.difficulty", field=f"curriculum.difficulty.{bad[0]}")
    hints = typing.get_type_hints(klass)
    for k, v in list(sub.items()):
        # YAML 1.1 reads 1e-6 (no dot) as a string: coerce numbers where the field wants a float.
        if isinstance(v, str) and "float" in str(hints.get(k, "")):
            try:
                sub[k] = float(v)
            except ValueError:
                raise DataError(where, f"{name}.{k} must be a number, got {v!r}", field=f"{name}.{k}") from None
    try:
        return klass(**sub)
    except (TypeError, ValueError) as exc:
        raise DataError(where, f"bad {name!r} block: {exc}", field=name) from exc


def apply_override(data: dict, item: str) -> None:
    """``a.b.c=value`` (value parsed as YAML) into the nested mapping ``data``."""
    import yaml

    if "=" not in item:
        raise ValueError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    d = data
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ValueError(f"override {item!r}: {p!r} is not a block")
    d[parts[-1]] = yaml.safe_load(raw)


# -- distributed setup --------------------------------------------------------------------------
def init_distributed(mode: str, device: str | None):
    """DistInfo from the launcher's environment (torchrun / accelerate launch set RANK,
    WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); initialises the process group when needed."""
    import torch

    from agents.distributed import DistInfo

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if mode == "none" or world == 1:
        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return DistInfo(0, 1, 0, dev)
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    dev = f"cuda:{local}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return DistInfo(rank, world, local, dev)


def _barrier(dist) -> None:
    if dist.active:
        import torch

        torch.distributed.barrier()


# -- data ---------------------------------------------------------------------------------------
@dataclass
class TaskData:
    train: list  # agents.train_prompts.Task
    eval: list
    difficulty: list  # tasks.curriculum.TaskDifficulty per train task


def _shuffled_split(items: list, n_eval: int, seed: int) -> tuple[list, list]:
    order = np.random.default_rng(seed).permutation(len(items))
    ev = [items[i] for i in sorted(order[:n_eval])]
    tr = [items[i] for i in sorted(order[n_eval:])]
    return tr, ev


def load_tasks(cfg: DataConfig, template: str) -> TaskData:
    """Training and held-out :class:`~agents.train_prompts.Task` lists plus per-task difficulty records."""
    from agents.train_prompts import episode_tasks, grounding_task
    from rewards.grounding import difficulty_weights
    from tasks.curriculum import TaskDifficulty, task_difficulty

    tmpl = cfg.template or (template if cfg.source != "androidcontrol" else "androidcontrol-low")
    if cfg.source in ("synthapp", "screenspot"):
        if cfg.source == "synthapp":
            from tasks.synthapp import SynthConfig, make_grounding_samples

            synth = SynthConfig.from_dict(cfg.synth)
            train = make_grounding_samples(cfg.train_size, synth, seed=cfg.seed)
            held = make_grounding_samples(cfg.eval_size, synth, seed=cfg.seed + 1000)
        else:
            from tasks.screenspot import load_screenspot

            kw = dict(image_dir=cfg.image_dir, on_error=cfg.on_error)
            samples = list(load_screenspot(cfg.path, **kw))
            if cfg.eval_path:
                train, held = samples, list(load_screenspot(cfg.eval_path, **kw))
            else:
                train, held = _shuffled_split(samples, cfg.eval_size, cfg.seed)
            if cfg.train_size and len(train) > cfg.train_size:
                train = train[: cfg.train_size]
        if not train:
            raise DataError(cfg.path or "<synthapp>", "no training samples")
        w = difficulty_weights(train)
        return TaskData([grounding_task(s, float(wi), tmpl) for s, wi in zip(train, w)],
                        [grounding_task(s, 1.0, tmpl) for s in held],
                        [task_difficulty(s) for s in train])
    from tasks.androidcontrol import load_androidcontrol

    eps = list(load_androidcontrol(cfg.path, on_error=cfg.on_error))
    if cfg.eval_path:
        tr_eps, ev_eps = eps, list(load_androidcontrol(cfg.eval_path, on_error=cfg.on_error))
    else:
        tr_eps, ev_eps = _shuffled_split(eps, cfg.eval_size, cfg.seed)
    train, diff = [], []
    for ep in tr_eps:
        for t in episode_tasks(ep, tmpl, cfg.history_images):
            train.append(t)
            d = task_difficulty(t.target)
            diff.append(TaskDifficulty(len(ep.steps), d.relative_size))
    held = [t for ep in ev_eps for t in episode_tasks(ep, tmpl, cfg.history_images)]
    if cfg.train_size and len(train) > cfg.train_size:
        train, diff = train[: cfg.train_size], diff[: cfg.train_size]
    if not train:
        raise DataError(cfg.path, "no training steps")
    return TaskData(train, held, diff)


def mean_click_accuracy(data: TaskData) -> float | None:
    """Held-out accuracy of always clicking the training targets' mean centre
    (:class:`~agents.baselines.MeanClickAgent`); None unless every task is a grounding task."""
    from agents.baselines import MeanClickAgent
    from guienv.types import GroundingSample

    tr = [t.target for t in data.train]
    ev = [t.target for t in data.eval]
    if not ev or not all(isinstance(x, GroundingSample) for x in tr + ev):
        return None
    return MeanClickAgent.fit(tr).accuracy(ev)


# -- model --------------------------------------------------------------------------------------
def resolve_model_path(cfg: ModelConfig, out: Path, dist) -> str:
    if cfg.path != "tiny":
        return cfg.path
    path = out / "tiny-model"
    if dist.is_main and not (path / "config.json").exists():
        from agents.tiny_model import TinyModelConfig, build_tiny_model

        build_tiny_model(path, TinyModelConfig(**cfg.tiny))
    _barrier(dist)
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


def wrap_distributed(model, mode: str, dist):
    """The module forward/backward runs through: DDP, FSDP2 (``fully_shard``) or the model."""
    import torch

    if not dist.active or mode == "none":
        return model
    if mode == "fsdp":
        from torch.distributed.fsdp import fully_shard

        # One unit per decoder/vision block, one for the vision tower's own parameters (patch
        # embedding, merger: generate may call the tower outside the root forward), then the root
        # (tied embeddings and head, final norm).
        for name, mod in model.named_modules():
            if type(mod).__name__.endswith(("DecoderLayer", "VisionBlock")):
                fully_shard(mod)
        for name, mod in model.named_modules():
            if name.endswith("visual"):
                fully_shard(mod)
        fully_shard(model)
        # FSDP2 makes the first unit that runs the root: run the real root once (text only).
        with torch.no_grad():
            model(input_ids=torch.zeros((1, 1), dtype=torch.long, device=dist.device), use_cache=False)
        model.reshard()  # the root keeps its parameters unsharded after forward; the optimizer needs the shards
        return model
    ids = [dist.local_rank] if str(dist.device).startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


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


# -- checkpoints --------------------------------------------------------------------------------
def _ckpt_dir(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:06d}"


def latest_checkpoint(out: Path) -> Path | None:
    root = out / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / "state.json").exists())
    return done[-1] if done else None


def save_model(policy, path: Path, fsdp: bool, dist) -> None:
    """An HF folder (or peft adapter folder) with tokenizer and image processor. Under FSDP the
    full state dict is gathered (collective, offloaded to CPU) and rank 0 writes it through a
    meta-device copy of the model, so the files use the same ``save_pretrained`` key layout as an
    unsharded run."""
    model = policy.model
    if fsdp:
        import torch
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if dist.is_main:
            with torch.device("meta"):
                model = type(model)(model.config)
            model.load_state_dict(sd, assign=True)
            model.tie_weights()
    if dist.is_main:
        path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(path)
        policy.tokenizer.save_pretrained(path)
        policy.image_processor.save_pretrained(path)


def save_checkpoint(out: Path, step: int, policy, optimizer, scheduler, state: dict, dist, fsdp: bool, keep: int) -> Path:
    import torch

    final = _ckpt_dir(out, step)
    tmp = final.with_name(final.name + ".tmp")
    if dist.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    _barrier(dist)
    save_model(policy, tmp / "model", fsdp, dist)
    if fsdp:  # each rank keeps the optimizer state of its own shards (resume needs the same world size)
        torch.save(_to_local(optimizer.state_dict()), tmp / f"optimizer-rank{dist.rank}.pt")
    elif dist.is_main:
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if dist.is_main:
        if scheduler is not None:
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / f"rng-rank{dist.rank}.pt")
    _barrier(dist)
    if dist.is_main:
        (tmp / "state.json").write_text(json.dumps(state))  # written last: marks the folder complete
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        old = sorted(p for p in (out / "checkpoints").iterdir() if p.is_dir() and p.name.startswith("step-") and not p.name.endswith(".tmp"))
        for p in old[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
    _barrier(dist)
    return final


def _to_local(obj: Any) -> Any:
    from torch.distributed.tensor import DTensor

    if isinstance(obj, DTensor):
        return obj.to_local().detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_local(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_local(v) for v in obj]
    return obj


def load_optimizer(optimizer, ckpt: Path, dist, fsdp: bool) -> None:
    """Restore the optimizer; under FSDP each rank reads its shard's state and re-wraps it as
    DTensors laid out like the parameters."""
    import torch

    if not fsdp:
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location=dist.device, weights_only=False))
        return
    from torch.distributed.tensor import DTensor

    f = ckpt / f"optimizer-rank{dist.rank}.pt"
    if not f.exists():
        raise DataError(ckpt, f"no optimizer shard for rank {dist.rank} (FSDP resumes need the same world size)")
    optimizer.load_state_dict(torch.load(f, map_location=dist.device, weights_only=False))
    for p, st in optimizer.state.items():
        if isinstance(p, DTensor):
            for k, v in st.items():
                if torch.is_tensor(v) and not isinstance(v, DTensor) and v.shape == p.to_local().shape and v.dim() > 0:
                    st[k] = DTensor.from_local(v.to(p.to_local().device), p.device_mesh, p.placements, run_check=False)


def load_rng(ckpt: Path, rank: int) -> None:
    import torch

    f = ckpt / f"rng-rank{rank}.pt"
    if not f.exists():
        raise DataError(ckpt, f"no RNG state for rank {rank} (was the run resumed with another world size?)")
    rng = torch.load(f, weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])


# -- logging ------------------------------------------------------------------------------------
def _clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (np.floating, np.integer)):
        return _clean(v.item())
    return v


class MetricsLog:
    """``metrics.jsonl`` + TensorBoard on rank 0. Resuming at ``step`` drops rows after it."""

    def __init__(self, out: Path, resume_step: int, tensorboard: bool, enabled: bool):
        self.enabled = enabled
        self.path = out / "metrics.jsonl"
        self.tb = None
        if not enabled:
            return
        if self.path.exists():
            rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
            keep = [r for r in rows if r.get("step", 0) <= resume_step]
            self.path.write_text("".join(json.dumps(r) + "\n" for r in keep))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:  # the tensorboard package is missing: metrics.jsonl still has everything
                import warnings

                warnings.warn(f"TensorBoard logging off ({exc}); pip install tensorboard", stacklevel=2)
            else:
                self.tb = SummaryWriter(str(out / "tb"), purge_step=resume_step + 1 if resume_step else None)

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        row = {k: _clean(v) for k, v in row.items()}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            for k, v in row.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "step":
                    self.tb.add_scalar(f"{row.get('phase', 'train')}/{k}", v, row["step"])
            self.tb.flush()

    def rows(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


PLOT_KEYS = ("reward", "accuracy", "kl", "clip_frac", "completion_len", "zero_var_frac", "stage", "box_size_vs_gt",
             "sft_loss", "eval_accuracy")


def plot_curves(rows: Sequence[Mapping[str, Any]], path: Path, keys: Sequence[str] = PLOT_KEYS) -> Path | None:
    """A PNG grid of line charts (one panel per metric present in ``rows``), drawn with Pillow."""
    from PIL import Image, ImageDraw

    series = []
    for k in keys:
        pts = [(r["step"], float(r[k])) for r in rows if isinstance(r.get(k), (int, float)) and math.isfinite(float(r[k]))]
        if pts:
            series.append((k, pts))
    if not series:
        return None
    pw, ph, cols = 360, 220, 3
    nrows = (len(series) + cols - 1) // cols
    img = Image.new("RGB", (pw * cols, ph * nrows), "white")
    d = ImageDraw.Draw(img)
    for i, (name, pts) in enumerate(series):
        ox, oy = (i % cols) * pw, (i // cols) * ph
        x0, y0, x1, y1 = ox + 52, oy + 24, ox + pw - 12, oy + ph - 28
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        lo, hi = min(ys), max(ys)
        if hi - lo < 1e-12:
            lo, hi = lo - 0.5, hi + 0.5
        sx0, sx1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
        d.rectangle((x0, y0, x1, y1), outline=(160, 160, 160))
        d.text((ox + 8, oy + 6), name, fill="black")
        for frac in (0.0, 0.5, 1.0):
            y = y1 - frac * (y1 - y0)
            d.line((x0 - 4, y, x0, y), fill=(120, 120, 120))
            d.text((ox + 4, y - 6), f"{lo + frac * (hi - lo):.3g}", fill=(80, 80, 80))
        d.text((x0, y1 + 6), f"{sx0}", fill=(80, 80, 80))
        d.text((x1 - 30, y1 + 6), f"{sx1}", fill=(80, 80, 80))
        xy = [(x0 + (x - sx0) / (sx1 - sx0) * (x1 - x0), y1 - (y - lo) / (hi - lo) * (y1 - y0)) for x, y in pts]
        if len(xy) > 60:  # noisy per-step series: faint raw line, moving average on top
            d.line(xy, fill=(190, 210, 235), width=1)
            k = max(2, len(xy) // 30)
            avg = np.convolve(ys, np.ones(k) / k, mode="valid")
            xy = [(xy[j + k - 1][0], y1 - (v - lo) / (hi - lo) * (y1 - y0)) for j, v in enumerate(avg)]
        if len(xy) > 1:
            d.line(xy, fill=(31, 119, 180), width=2)
        for p in xy if len(xy) < 40 else xy[-1:]:
            d.ellipse((p[0] - 2, p[1] - 2, p[0] + 2, p[1] + 2), fill=(31, 119, 180))
    img.save(path)
    return path


# -- the loop -----------------------------------------------------------------------------------
def _seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _eval(trainer, tasks, cfg: RunConfig) -> dict[str, float] | None:
    import torch

    if not tasks:
        return None
    with torch.random.fork_rng(devices=[]):  # evaluation never moves the training RNG streams
        return {k: _clean(v) for k, v in trainer.greedy_accuracy(tasks, cfg.eval_batch_size).items()}


def train(cfg: TrainConfig, out: str | os.PathLike, *, resume: bool = True, stop_after: int | None = None,
          log: Any = print) -> dict[str, Any]:
    """Run (or resume) training into ``out``; returns a summary with held-out accuracy before and
    after. ``stop_after=k`` returns right after global step ``k`` without a final checkpoint or
    evaluation (what a kill at that point leaves behind; used by the resume tests)."""
    import torch
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    from agents.grpo import GRPOTrainer
    from agents.policy import Policy
    from agents.sft import SFTTrainer
    from tasks.curriculum import Curriculum, TaskDifficulty, difficulty_scores

    hf_logging.disable_progress_bar()  # per-checkpoint "Writing model shards" bars would bury the run's own
    out = Path(out)
    dist = init_distributed(cfg.train.distributed, cfg.model.device)
    main = dist.is_main
    if main:
        out.mkdir(parents=True, exist_ok=True)
    _barrier(dist)
    ckpt = latest_checkpoint(out) if resume else None
    if not resume and main and (out / "checkpoints").exists():
        shutil.rmtree(out / "checkpoints")
        for f in ("metrics.jsonl", "pass_rates.json", "eval_before.json", "eval_after_sft.json"):
            (out / f).unlink(missing_ok=True)
        shutil.rmtree(out / "tb", ignore_errors=True)
    _barrier(dist)
    state = json.loads((ckpt / "state.json").read_text()) if ckpt else {}
    start = int(state.get("step", 0))
    if main:
        import yaml

        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    _seed_all(cfg.train.seed + dist.rank)
    fsdp = cfg.train.distributed == "fsdp" and dist.active
    sft_steps, total = cfg.sft.steps, cfg.sft.steps + cfg.train.steps
    if fsdp and cfg.model.lora is not None:
        raise ValueError("train.distributed=fsdp with model.lora is not supported; use ddp for LoRA")
    if cfg.grpo.prompts_per_step < dist.world or (sft_steps and cfg.sft.batch_size < dist.world):
        raise ValueError(f"grpo.prompts_per_step and sft.batch_size must be >= the world size {dist.world}")

    # Model: the base (or the checkpoint's full model; a LoRA checkpoint holds only the adapter).
    base_path = resolve_model_path(cfg.model, out, dist)
    lora = cfg.model.lora
    load_from = str(ckpt / "model") if (ckpt and lora is None) else base_path
    agent = load_agent(cfg.model, load_from, dist.device)
    policy = Policy(agent, cache_mb=cfg.model.encode_cache_mb)
    if lora is not None:
        policy.model = apply_lora(agent.model, lora, str(ckpt / "model") if ckpt else None)
    if cfg.model.gradient_checkpointing:
        policy.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora is not None:
            policy.model.enable_input_require_grads()
    autocast = torch.bfloat16 if cfg.model.precision == "bf16-mixed" else None
    train_model = wrap_distributed(policy.model, "ddp" if cfg.train.distributed == "auto" else cfg.train.distributed, dist)

    data = load_tasks(cfg.data, cfg.model.template)
    reward = _make_reward(cfg.reward, policy)
    prior = mean_click_accuracy(data)
    if main and prior is not None:
        log(f"reference: always clicking the training targets' mean centre scores {prior:.3f} on the held-out tasks")
    if main:
        log(f"guienv train: {len(data.train)} training tasks, {len(data.eval)} held out; model {base_path} "
            f"({sum(p.numel() for p in policy.model.parameters()) / 1e6:.2f}M params, frame {policy.frame.value}); "
            f"world {dist.world}; {'resuming at step ' + str(start) if ckpt else 'fresh run'}")

    def grpo_parts(phase_start: bool):
        """Optimizer, scheduler, reference model, task list and curriculum of the GRPO phase."""
        opt = make_optimizer(policy.model, cfg.grpo.lr, cfg.grpo.weight_decay, cfg.grpo.adam_betas)
        sch = make_scheduler(opt, cfg.grpo.warmup_steps)
        ref = None
        if cfg.grpo.beta and lora is None:
            ref_path = base_path if not sft_steps else str(out / "ref-model")
            if phase_start and sft_steps:
                save_model(policy, out / "ref-model", fsdp, dist)
                _barrier(dist)
            ref = load_agent(cfg.model, ref_path, dist.device).model.eval().requires_grad_(False)
        return opt, sch, ref

    def build_curriculum(trainer: GRPOTrainer, phase_start: bool) -> tuple[Curriculum, list]:
        need_k = max(cfg.data.prefilter_k, cfg.curriculum.pass_rate_samples if cfg.curriculum.difficulty.pass_rate > 0 else 0)
        rates = None
        pr_file = out / "pass_rates.json"
        if need_k:
            if pr_file.exists() and not phase_start:
                rates = np.array(json.loads(pr_file.read_text())["pass_rates"], dtype=np.float64)
            else:
                with torch.random.fork_rng(devices=[]):
                    rates = trainer.pass_rates(data.train, need_k)
                if main:
                    pr_file.write_text(json.dumps({"k": need_k, "pass_rates": rates.tolist()}))
        tasks, diffs = list(data.train), list(data.difficulty)
        if rates is not None:
            diffs = [TaskDifficulty(d.steps, d.relative_size, float(r)) for d, r in zip(diffs, rates)]
            if cfg.data.prefilter_k:
                keep = [i for i, r in enumerate(rates) if 0.0 < r < 1.0]
                if main:
                    log(f"GUI-G1 prefilter (k={need_k}): kept {len(keep)}/{len(tasks)} tasks "
                        f"({int((rates >= 1).sum())} all correct, {int((rates <= 0).sum())} all wrong dropped)")
                if not keep:
                    raise ValueError("prefilter dropped every task (all answered all-right or all-wrong); lower prefilter_k or change data")
                tasks, diffs = [tasks[i] for i in keep], [diffs[i] for i in keep]
        ccfg = cfg.curriculum
        scores = difficulty_scores(diffs, ccfg.difficulty) if ccfg.mode == "staged" else np.zeros(len(tasks))
        return Curriculum(scores, ccfg), tasks

    # State of the run, restored from the checkpoint when resuming. The GRPO phase starts (fresh
    # optimizer, reference snapshot, pass rates, curriculum) at the first step after the warm-up.
    sft_sampler = Curriculum(np.zeros(len(data.train)), CurriculumConfig(mode="random", seed=cfg.train.seed + 17))
    optimizer = scheduler = ref_model = None
    sft_trainer = grpo_trainer = curriculum = None
    if start < sft_steps:
        phase = "sft"
        optimizer = make_optimizer(policy.model, cfg.sft.lr, cfg.sft.weight_decay, cfg.sft.adam_betas)
        scheduler = make_scheduler(optimizer, cfg.sft.warmup_steps, sft_steps, cfg.sft.schedule)
        sft_trainer = SFTTrainer(policy, cfg.sft, data.train, optimizer, dist=dist, train_model=train_model, autocast=autocast)
    elif state.get("phase") == "grpo":
        phase = "grpo"
        optimizer, scheduler, ref_model = grpo_parts(phase_start=False)
    else:
        phase = "pending"
    if ckpt and phase != "pending":
        load_optimizer(optimizer, ckpt, dist, fsdp)
        if scheduler is not None and (ckpt / "scheduler.pt").exists():
            scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=False))
    if ckpt and "sft_sampler" in state:
        sft_sampler.load_state_dict(state["sft_sampler"])

    def make_grpo_trainer(tasks, **kw):
        return GRPOTrainer(policy, kw.pop("config", cfg.grpo), reward, tasks, optimizer, scheduler, dist=dist,
                           train_model=train_model, ref_model=ref_model, autocast=autocast)

    if phase == "grpo":
        curriculum, tasks = build_curriculum(make_grpo_trainer(data.train), phase_start=False)
        grpo_trainer = make_grpo_trainer(tasks)
        curriculum.load_state_dict(state["curriculum"])

    evaluator = make_grpo_trainer(data.train, config=dataclasses.replace(cfg.grpo, beta=0.0))
    eval_before = None
    if (out / "eval_before.json").exists():
        eval_before = json.loads((out / "eval_before.json").read_text())
    elif cfg.train.eval_before and start == 0:
        eval_before = _eval(evaluator, data.eval, cfg.train)
        if main and eval_before is not None:
            (out / "eval_before.json").write_text(json.dumps(eval_before, indent=2))
            log(f"held-out before training: accuracy {eval_before['accuracy']:.3f}, reward {eval_before['reward']:.3f}, "
                f"parse rate {eval_before['parse_rate']:.3f} ({int(eval_before['tasks'])} tasks)")
    eval_sft = json.loads((out / "eval_after_sft.json").read_text()) if (out / "eval_after_sft.json").exists() else None
    if ckpt:
        load_rng(ckpt, dist.rank)

    metrics = MetricsLog(out, start, cfg.train.tensorboard, main)
    bar = tqdm(total=total, initial=start, desc="guienv train", unit="step", disable=not (main and cfg.train.progress))
    last_saved = start
    try:
        for step in range(start + 1, total + 1):
            if phase != "grpo" and step > sft_steps:
                phase = "grpo"
                optimizer, scheduler, ref_model = grpo_parts(phase_start=True)
                curriculum, tasks = build_curriculum(make_grpo_trainer(data.train, config=dataclasses.replace(cfg.grpo, beta=0.0)),
                                                     phase_start=True)
                grpo_trainer = make_grpo_trainer(tasks)
            t0 = time.perf_counter()
            if phase == "sft":
                row = sft_trainer.step(sft_sampler.next_batch)
                scheduler.step()
            else:
                row, ro = grpo_trainer.step(curriculum.next_batch, step)
                # Every group sampled on every rank (filtered ones too) updates the per-task statistics.
                outcomes = [o for part in dist.all_gather(grpo_trainer.outcomes) for o in part]
                stage_before = curriculum.stage
                promoted = curriculum.record(row[cfg.curriculum.metric], [t for t, _ in outcomes], [h for _, h in outcomes],
                                             [ro.group_size] * len(outcomes))
                row.update(stage=stage_before, stage_difficulty=curriculum.stage_difficulty(), promoted=int(promoted))
            row = {"step": step, "phase": phase, **row, "step_time": time.perf_counter() - t0}
            if step == sft_steps and step < total:  # the warm-up's own result, before any GRPO step
                eval_sft = _eval(evaluator, data.eval, cfg.train)
                if eval_sft:
                    row.update({f"eval_{k}": v for k, v in eval_sft.items() if k != "tasks" and isinstance(v, (int, float))})
                    if main:
                        (out / "eval_after_sft.json").write_text(json.dumps(eval_sft, indent=2))
                        tqdm.write(f"held-out after the SFT warm-up: accuracy {eval_sft['accuracy']:.3f}, "
                                   f"reward {eval_sft['reward']:.3f}, parse rate {eval_sft['parse_rate']:.3f}")
            elif cfg.train.eval_every and step % cfg.train.eval_every == 0 and step < total:
                ev = _eval(evaluator, data.eval, cfg.train)
                if ev:
                    row.update({f"eval_{k}": v for k, v in ev.items() if k != "tasks" and isinstance(v, (int, float))})
            metrics.write(row)
            bar.update(1)
            bar.set_postfix({k: f"{row[k]:.3f}" for k in ("reward", "accuracy", "sft_loss", "kl") if isinstance(row.get(k), float)})
            if step % cfg.train.save_every == 0 or step == total:
                st = {"step": step, "phase": phase, "sft_sampler": sft_sampler.state_dict(), "world": dist.world}
                if curriculum is not None:
                    st["curriculum"] = curriculum.state_dict()
                save_checkpoint(out, step, policy, optimizer, scheduler, st, dist, fsdp,
                                cfg.train.keep_checkpoints)
                last_saved = step
            if stop_after is not None and step >= stop_after:
                _barrier(dist)
                return {"stopped_at": step, "last_checkpoint": last_saved}
    finally:
        bar.close()
        metrics.close()

    eval_after = _eval(evaluator, data.eval, cfg.train)
    summary = {"steps": total, "eval_before": eval_before, "eval_after": eval_after, "eval_after_sft": eval_sft,
               "mean_click_accuracy": prior,
               "curriculum": curriculum.history if curriculum is not None else []}
    save_model(policy, out / "final", fsdp, dist)
    if main:
        (out / "eval.json").write_text(json.dumps(summary, indent=2))
        if cfg.train.plot:
            rows = metrics.rows()
            if eval_after:
                rows = rows + [{"step": total, "eval_accuracy": eval_after["accuracy"]}]
                if eval_before:
                    rows = [{"step": 0, "eval_accuracy": eval_before["accuracy"]}] + rows
            plot_curves(rows, out / "curves.png")
        if eval_after:
            b = f"{eval_before['accuracy']:.3f}" if eval_before else "n/a"
            ref = f"; mean-centre clicking: {prior:.3f}" if prior is not None else ""
            mid = f", after the SFT warm-up {eval_sft['accuracy']:.3f}" if eval_sft else ""
            log(f"held-out click accuracy: before {b}{mid}, after {eval_after['accuracy']:.3f} "
                f"({int(eval_after['tasks'])} tasks){ref}; reward after {eval_after['reward']:.3f}")
        if eval_after and eval_after.get("accuracy_by_kind"):
            log("  by target kind: " + ", ".join(f"{k} {v:.2f}" for k, v in eval_after["accuracy_by_kind"].items()) +
                (f"; click distance from the target centre |dx| {eval_after['dx']:.3f} of the width, "
                 f"|dy| {eval_after['dy']:.3f} of the height" if eval_after.get("dx") is not None else ""))
        log(f"outputs in {out}: metrics.jsonl, tb/, curves.png, eval.json, final/")
    # Ranks leave together: a rank that tears its gloo/NCCL group down while rank 0 is still
    # writing the outputs can abort at exit ("terminate called without an active exception").
    _barrier(dist)
    return summary


def _make_reward(cfg: RewardConfig, policy):
    import importlib

    from agents.task_reward import TaskReward

    for name in cfg.imports:
        importlib.import_module(name)
    hybrid = None
    if cfg.hybrid is not None or cfg.judge is not None:
        try:
            from rewards.hybrid import HybridConfig, HybridReward
        except ImportError as exc:  # the judge modules are optional
            raise ValueError(f"reward.hybrid/judge given but rewards.hybrid cannot be imported ({exc})") from exc
        block = dict(cfg.hybrid or {})
        if cfg.judge is not None:
            block["judge"] = dict(cfg.judge)
        hybrid = HybridReward(HybridConfig.from_dict(block, "reward.hybrid"))
    composite = cfg.composite if cfg.composite is not None else (cfg.preset or "gui-g1")
    return TaskReward(composite, policy.frame, policy.resize, hybrid=hybrid, protocol=cfg.protocol)


# -- CLI ----------------------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    cfg = TrainConfig.from_yaml(args.config, args.set or ())
    if args.steps is not None:
        cfg.train.steps = args.steps
    distributed = False
    try:
        train(cfg, args.out, resume=not args.no_resume, stop_after=args.stop_after)
    finally:
        import torch

        # A process group left alive at interpreter exit aborts gloo/NCCL worker threads.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            distributed = True
            torch.distributed.destroy_process_group()
    if distributed:
        # Every output is written and closed. Interpreter finalisation in a worker can still hit
        # a joinable native thread of the torn-down backend and abort ("terminate called without
        # an active exception"), failing a finished run, so a successful worker leaves directly.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def add_train_args(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``guienv train`` on an ``argparse`` subparsers object."""
    t = subparsers.add_parser("train", help="GRPO (+ optional SFT warm-up) for a Qwen-VL GUI agent from a YAML config",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", required=True, help="YAML file (see configs/train_default.yaml)")
    t.add_argument("--out", required=True, help="output directory (resumed when it holds checkpoints)")
    t.add_argument("--steps", type=int, help="override train.steps (GRPO steps)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. grpo.lr=1e-5 (repeatable)")
    t.add_argument("--no-resume", action="store_true", help="start over even if DIR has checkpoints")
    t.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)
    t.set_defaults(func=_cmd_train)
    return t


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="guienv-train")
    sub = p.add_subparsers(dest="command", required=True)
    add_train_args(sub)
    args = p.parse_args(["train", *(argv if argv is not None else sys.argv[1:])])
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
