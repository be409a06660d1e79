"""The ``guienv train`` YAML file as dataclasses: one block per class below.

``model`` (:class:`ModelConfig`, LoRA via peft as an option), ``data`` (:class:`DataConfig`),
``reward`` (:class:`RewardConfig`), ``curriculum`` (:class:`~tasks.curriculum.CurriculumConfig`),
``grpo`` (:class:`~agents.grpo.GRPOTrainerConfig`), ``sft`` (:class:`~agents.sft.SFTConfig`) and
``train`` (:class:`RunConfig`), and for multi-turn training online (``data.source: env``)
``multiturn`` (:class:`~agents.multiturn.MultiTurnConfig`); ``generation``
(:class:`~agents.engines.EngineConfig`: who samples rollouts, transformers or a colocated vLLM). Every key is optional. The file is read through
:func:`guienv.config.load_yaml`, so unknown keys and wrong types (``train.steps=ten``,
``train.steps=1.5``) are errors naming the file and the dotted key when the file loads, before any
model does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from agents.engines import EngineConfig
from agents.grpo import PRECISIONS, GRPOTrainerConfig
from agents.multiturn import MultiTurnConfig
from agents.sft import SFTConfig
from guienv.config import ConfigValueError, check_pixel_range, config_to_dict, load_config, load_yaml
from guienv.frames import QWEN_MIN_PIXELS
from tasks.curriculum import CurriculumConfig

__all__ = ["DataConfig", "LoraConfig", "ModelConfig", "RewardConfig", "RunConfig", "TrainConfig"]

SOURCES = ("synthapp", "screenspot", "androidcontrol", "env")
MODEL_KINDS = ("vl", "text")
LANGUAGE_LINEARS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


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
    Qwen2.5-VL built into ``DIR/tiny-model``, :mod:`agents.tiny_model`). ``kind``: ``vl`` (a
    vision-language policy, screen envs) or ``text`` (a causal LM chat model such as Qwen2.5-Instruct
    for text envs, multi-turn training only; ``tiny`` then builds the tiny text model into
    ``DIR/tiny-text-model``). ``precision``: ``fp32``, ``bf16`` (bf16 weights) or ``bf16-mixed``
    (fp32 weights, bf16 autocast)."""

    path: str = "tiny"
    kind: str = "vl"
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
        if self.kind not in MODEL_KINDS:
            raise ConfigValueError("kind", f"must be one of {MODEL_KINDS}, got {self.kind!r}")
        check_pixel_range(self.min_pixels, self.max_pixels)


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
    drop tasks it gets all right or all wrong.
    ``env`` (multi-turn training online, :mod:`guienv.run.train_env`): episodes of the Gymnasium env
    ``env_id`` made with ``env_kwargs``; ``train_size`` training tasks and ``eval_size`` held-out
    ones (SynthApp: app tasks of dataset ``seed`` / ``seed + 1000`` with ``steps`` actions, cycled
    over the list; ALFWorld: the env's games in turn; other envs: reset seeds), ``options`` added to
    every reset; ``expert`` plays the SFT warm-up's demonstrations (``auto``: by env id, see
    :mod:`agents.experts`; ``none``)."""

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
    env_id: str | None = None
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    steps: list[int] = field(default_factory=lambda: [2, 3, 4])
    options: dict[str, Any] = field(default_factory=dict)
    expert: str = "auto"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"data source must be one of {SOURCES}, got {self.source!r}")
        if self.source == "env":
            if not self.env_id:
                raise ConfigValueError("env_id", "data.source env needs data.env_id (e.g. guienv/SynthApp-v0)")
            if not self.steps or any(int(k) < 1 for k in self.steps):
                raise ConfigValueError("steps", f"must be a non-empty list of positive lengths, got {self.steps!r}")
            if self.train_size < 1:
                raise ConfigValueError("train_size", f"must be >= 1, got {self.train_size}")
            return
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
    torch_threads: int | None = None  # CPU threads (None: torch's default); see guienv.run.threads

    def __post_init__(self) -> None:
        if self.torch_threads is not None and (isinstance(self.torch_threads, bool) or not isinstance(self.torch_threads, int)
                                               or self.torch_threads < 1):
            raise ConfigValueError("torch_threads", f"must be a positive integer or null, got {self.torch_threads!r}")
        if self.distributed not in ("auto", "ddp", "fsdp", "none"):
            raise ValueError(f"train.distributed must be auto, ddp, fsdp or none, got {self.distributed!r}")
        if self.steps < 0 or self.save_every < 1 or self.keep_checkpoints < 1:
            raise ValueError("train.steps must be >= 0, save_every and keep_checkpoints >= 1")
        for key, low in (("eval_every", 0), ("eval_batch_size", 1)):
            if getattr(self, key) < low:
                raise ConfigValueError(key, f"must be >= {low}, got {getattr(self, key)}")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    reward: RewardConfig = field(default_factory=RewardConfig)
    curriculum: CurriculumConfig = field(default_factory=CurriculumConfig)
    grpo: GRPOTrainerConfig = field(default_factory=GRPOTrainerConfig)
    sft: SFTConfig = field(default_factory=SFTConfig)
    train: RunConfig = field(default_factory=RunConfig)
    multiturn: MultiTurnConfig = field(default_factory=MultiTurnConfig)
    generation: EngineConfig = field(default_factory=EngineConfig)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "<train config>") -> TrainConfig:
        """The config from a mapping (parsed YAML); ``where`` names its source in errors."""
        return load_config(cls, data, where)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, overrides: Sequence[str] = ()) -> TrainConfig:
        """The config from a YAML file after ``key.sub=value`` overrides (``--set``)."""
        return load_yaml(cls, path, overrides)

    def __post_init__(self) -> None:
        if self.model.kind == "text" and self.data.source != "env":
            raise ConfigValueError("model.kind", "a text policy trains on env tasks only (data.source: env)")
        # The warm-up's counts, checked here: a negative sft.steps would shorten the GRPO phase.
        for key, low in (("steps", 0), ("batch_size", 1), ("micro_batch_size", 1), ("warmup_steps", 0)):
            value = getattr(self.sft, key, low)
            if isinstance(value, int) and value < low:
                raise ConfigValueError(f"sft.{key}", f"must be >= {low}, got {value}")

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)
