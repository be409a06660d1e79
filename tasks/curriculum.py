"""Easy-to-hard curriculum for GRPO on GUI tasks (CRAFT-GUI, arXiv 2508.11360).

CRAFT-GUI trains with GRPO on tasks ordered by difficulty (stages of short, medium and long
trajectories). The paper has no public code; guienv implements the curriculum as a general
mechanism in three parts:

1. **Difficulty per task** (:func:`task_difficulty`, :func:`difficulty_scores`): the trajectory
   length (steps; 1 for one-step grounding), the target's relative size (GT box area / screen area,
   ScreenSpot-Pro's measure: small targets are hard) and, optionally, the base model's pass rate
   over ``k`` samples (GUI-G1, arXiv 2505.15810, samples 8 answers per task with the base model).
   Each component is mapped to ``[0, 1]`` over the dataset (min-max; size on a log scale,
   ``-log(size)``; pass rate as ``1 - p``) and the score is their weighted mean
   (:class:`DifficultyConfig`; components a task lacks are left out of its mean).
2. **Stages**: tasks sorted by score (ties by index) and cut into ``stages`` equal-count
   quantiles, or at explicit score ``thresholds``.
3. **Promotion rule** (:class:`Curriculum`): training draws batches from the current stage; after
   each step the stage's metric (mean reward or accuracy of that step) joins a window of the last
   ``window`` steps. The curriculum advances when the window is full, the stage has run at least
   ``min_steps`` steps and the window's mean reaches ``promote_threshold`` -- or, whatever the
   reward, after ``max_steps`` steps in the stage (the step budget). The last stage never ends.

``mode="random"`` is the ablation baseline: one stage holding every task in random order, the same
sampler and batch sizes, no promotion. ``mode="staged"`` with ``cumulative=True`` samples from
stages ``0..k`` once stage ``k`` is reached; ``replay`` mixes that fraction of each batch from
earlier stages.

Sampling inside a stage walks a shuffled permutation (a new one each pass), so every task of a
stage is seen once before any repeats. ``variance_sampling = lambda`` draws that fraction of each
batch by MMR1's variance-aware sampling (arXiv 2509.21268, outcome-variance part of its Variance
Promotion Score): task weight ``p (1 - p)`` with ``p = (hits + 1) / (n + 2)`` the task's smoothed
success rate from the rollouts seen so far, so tasks whose groups are likely to disagree (non-zero
GRPO advantage) come up more often.

Everything the sampler needs to continue exactly -- stage, steps in stage, metric window,
permutations and cursors, per-task statistics and the numpy generator's state -- is in
:meth:`Curriculum.state_dict` (JSON-serialisable), which training checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np

from guienv.config import load_config
from guienv.types import Episode, GroundingSample, Step

MODES = ("staged", "random")
METRICS = ("reward", "accuracy")


# -- difficulty ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TaskDifficulty:
    """What makes one task hard: ``steps`` (trajectory length), ``relative_size`` (target box area
    / screen area, the mean over the steps that have a target; None when none has) and
    ``pass_rate`` (base-model success rate over k samples; None until measured)."""

    steps: int = 1
    relative_size: float | None = None
    pass_rate: float | None = None


def _box_size(box: Any, width: float, height: float) -> float | None:
    if box is None or not width or not height:
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    return max(x2 - x1, 0.0) * max(y2 - y1, 0.0) / (float(width) * float(height))


def task_difficulty(task: Any, pass_rate: float | None = None) -> TaskDifficulty:
    """Difficulty record of a :class:`~guienv.types.GroundingSample` (1 step, its box), a
    :class:`~guienv.types.Step` (1 step, its first candidate box) or an
    :class:`~guienv.types.Episode` (its steps; mean target size over steps with a candidate box)."""
    if isinstance(task, GroundingSample):
        return TaskDifficulty(1, _box_size(task.box, task.width, task.height), pass_rate)
    if isinstance(task, Step):
        size = _box_size(task.candidates[0], task.width, task.height) if task.candidates else None
        return TaskDifficulty(1, size, pass_rate)
    if isinstance(task, Episode):
        sizes = [_box_size(s.candidates[0], s.width, s.height) for s in task.steps if s.candidates]
        sizes = [s for s in sizes if s is not None]
        return TaskDifficulty(len(task.steps), float(np.mean(sizes)) if sizes else None, pass_rate)
    raise TypeError(f"no difficulty for {type(task).__name__}; pass a GroundingSample, Step or Episode")


@dataclass(frozen=True)
class DifficultyConfig:
    """Weights of the difficulty components (a component with weight 0 is ignored)."""

    steps: float = 1.0
    size: float = 1.0
    pass_rate: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not (isinstance(v, (int, float)) and v >= 0 and math.isfinite(v)):
                raise ValueError(f"DifficultyConfig.{f.name} must be a non-negative number, got {v!r}")
        if self.steps + self.size + self.pass_rate <= 0:
            raise ValueError("DifficultyConfig needs at least one positive weight")


def _minmax(values: np.ndarray) -> np.ndarray:
    """Map finite values to [0, 1]; NaN stays NaN (missing); a constant column maps to 0."""
    ok = np.isfinite(values)
    out = np.full(values.shape, np.nan)
    if ok.any():
        lo, hi = values[ok].min(), values[ok].max()
        out[ok] = (values[ok] - lo) / (hi - lo) if hi > lo else 0.0
    return out


def difficulty_scores(records: Sequence[TaskDifficulty], config: DifficultyConfig = DifficultyConfig()) -> np.ndarray:
    """One score in ``[0, 1]`` per task (higher = harder); see the module docstring."""
    n = len(records)
    if n == 0:
        return np.zeros(0)
    steps = np.array([r.steps for r in records], dtype=np.float64)
    size = np.array([r.relative_size if r.relative_size is not None else np.nan for r in records], dtype=np.float64)
    if (size[np.isfinite(size)] <= 0).any():
        size = np.where(size > 0, size, np.nan)  # a zero-area target has no log size: treat as missing
    passed = np.array([r.pass_rate if r.pass_rate is not None else np.nan for r in records], dtype=np.float64)
    comps = [(config.steps, _minmax(steps)), (config.size, _minmax(-np.log(size))), (config.pass_rate, 1.0 - passed)]
    num = np.zeros(n)
    den = np.zeros(n)
    for w, c in comps:
        if w > 0:
            ok = np.isfinite(c)
            num += np.where(ok, w * np.nan_to_num(c), 0.0)
            den += np.where(ok, w, 0.0)
    return np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)


def split_stages(scores: np.ndarray, stages: int = 3, thresholds: Sequence[float] | None = None) -> list[np.ndarray]:
    """Task indices of each stage, easiest first: equal-count quantiles of the scores (stable
    sort, ties by index), or cuts at ``thresholds`` (a task with ``score < t_k`` is before cut k).
    Empty stages are dropped."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(scores, kind="stable")
    if thresholds is not None:
        t = np.asarray(sorted(thresholds), dtype=np.float64)
        stage_of = np.searchsorted(t, scores, side="right")
        groups = [np.sort(np.flatnonzero(stage_of == k)) for k in range(len(t) + 1)]
    else:
        if stages < 1:
            raise ValueError(f"stages must be >= 1, got {stages}")
        groups = [np.sort(g) for g in np.array_split(order, min(stages, max(len(order), 1)))]
    return [g.astype(np.int64) for g in groups if len(g)]


# -- the schedule -------------------------------------------------------------------------------
@dataclass
class CurriculumConfig:
    """Curriculum settings (YAML block ``curriculum:``); see the module docstring."""

    mode: str = "staged"  # staged | random (ablation baseline)
    stages: int = 3
    thresholds: list[float] | None = None
    difficulty: DifficultyConfig = field(default_factory=DifficultyConfig)
    metric: str = "reward"  # reward | accuracy: what the promotion rule watches
    promote_threshold: float = 0.6
    window: int = 4
    min_steps: int = 1
    max_steps: int | None = 50  # step budget per stage (None: only the threshold promotes)
    cumulative: bool = False
    replay: float = 0.0
    variance_sampling: float = 0.0
    pass_rate_samples: int = 0  # k answers per task from the base model for the pass-rate component
    seed: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.difficulty, Mapping):  # a YAML block: keys and types checked like every config
            self.difficulty = load_config(DifficultyConfig, self.difficulty, "<curriculum>", "curriculum.difficulty")
        if self.mode not in MODES:
            raise ValueError(f"curriculum mode must be one of {MODES}, got {self.mode!r}")
        if self.metric not in METRICS:
            raise ValueError(f"curriculum metric must be one of {METRICS}, got {self.metric!r}")
        if self.window < 1 or self.min_steps < 0 or self.stages < 1:
            raise ValueError("curriculum window and stages must be >= 1 and min_steps >= 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"curriculum max_steps must be >= 1 or null, got {self.max_steps}")
        for name in ("replay", "variance_sampling"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"curriculum {name} must be in [0, 1], got {v}")
        if self.pass_rate_samples < 0:
            raise ValueError("curriculum pass_rate_samples must be >= 0")
        if self.difficulty.pass_rate > 0 and self.pass_rate_samples < 1 and self.mode == "staged":
            raise ValueError("difficulty.pass_rate > 0 needs pass_rate_samples >= 1 (answers sampled per task)")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "<config>", prefix: str = "curriculum") -> CurriculumConfig:
        """The ``curriculum:`` block of a config file, checked by :func:`guienv.config.load_config`."""
        return load_config(cls, data, where, prefix)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Curriculum:
    """Staged (or random-order) task sampler with a promotion rule; see the module docstring.

    ``scores`` are per-task difficulty scores (any real numbers, higher = harder)."""

    def __init__(self, scores: Sequence[float] | np.ndarray, config: CurriculumConfig | None = None):
        self.config = config or CurriculumConfig()
        self.scores = np.asarray(scores, dtype=np.float64)
        n = len(self.scores)
        if n == 0:
            raise ValueError("a curriculum needs at least one task")
        cfg = self.config
        if cfg.mode == "random":
            self.stage_members = [np.arange(n, dtype=np.int64)]
        else:
            self.stage_members = split_stages(self.scores, cfg.stages, cfg.thresholds)
        self.rng = np.random.default_rng(cfg.seed)
        self.stage = 0
        self.steps_in_stage = 0
        self.total_steps = 0
        self.recent: list[float] = []
        self.history: list[dict[str, Any]] = []  # promotions: {"step", "stage", "why", "metric"}
        self._perm: dict[int, list[int]] = {}
        self._cursor: dict[int, int] = {}
        self.hits = np.zeros(n, dtype=np.float64)
        self.trials = np.zeros(n, dtype=np.float64)

    # -- sampling -------------------------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.stage_members)

    def pool(self) -> np.ndarray:
        """Tasks the current stage samples from (with ``cumulative``, every stage so far)."""
        if self.config.cumulative:
            return np.concatenate(self.stage_members[: self.stage + 1])
        return self.stage_members[self.stage]

    def _walk(self, key: int, members: np.ndarray, n: int) -> list[int]:
        """Next ``n`` tasks of a shuffled pass over ``members`` (reshuffled when a pass ends)."""
        out: list[int] = []
        while len(out) < n:
            perm = self._perm.get(key)
            cur = self._cursor.get(key, 0)
            if perm is None or cur >= len(perm):
                perm = [int(v) for v in self.rng.permutation(members)]
                self._perm[key], cur = perm, 0
            take = min(n - len(out), len(perm) - cur)
            out += perm[cur : cur + take]
            self._cursor[key] = cur + take
        return out

    def next_batch(self, n: int) -> list[int]:
        """``n`` task indices for the next step."""
        if n < 1:
            raise ValueError(f"batch size must be >= 1, got {n}")
        cfg = self.config
        n_replay = int(round(cfg.replay * n)) if self.stage > 0 and not cfg.cumulative else 0
        n_var = int(round(cfg.variance_sampling * (n - n_replay)))
        n_walk = n - n_replay - n_var
        key = -1 if cfg.cumulative else self.stage  # the cumulative pool has its own pass
        pool = self.pool()
        batch = self._walk(key, pool, n_walk) if n_walk else []
        if n_var:
            p = (self.hits[pool] + 1.0) / (self.trials[pool] + 2.0)
            w = p * (1.0 - p)
            batch += [int(v) for v in self.rng.choice(pool, size=n_var, replace=len(pool) < n_var, p=w / w.sum())]
        if n_replay:
            earlier = np.concatenate(self.stage_members[: self.stage])
            batch += [int(v) for v in self.rng.choice(earlier, size=n_replay, replace=True)]
        return batch

    # -- promotion ------------------------------------------------------------------------------
    def record(self, metric: float, tasks: Iterable[int] = (), hits: Iterable[float] = (),
               trials: Iterable[float] = ()) -> bool:
        """Record one training step: ``metric`` (the batch's mean reward or accuracy, whichever
        ``config.metric`` names) and optional per-task success counts. Returns True when the
        curriculum advanced to the next stage."""
        cfg = self.config
        for t, h, k in zip(tasks, hits, trials):
            self.hits[int(t)] += float(h)
            self.trials[int(t)] += float(k)
        self.total_steps += 1
        self.steps_in_stage += 1
        self.recent = (self.recent + [float(metric)])[-cfg.window:]
        if self.stage >= self.num_stages - 1:
            return False
        why = None
        if len(self.recent) >= cfg.window and self.steps_in_stage >= cfg.min_steps \
                and float(np.mean(self.recent)) >= cfg.promote_threshold:
            why = "threshold"
        elif cfg.max_steps is not None and self.steps_in_stage >= cfg.max_steps:
            why = "budget"
        if why is None:
            return False
        self.history.append({"step": self.total_steps, "stage": self.stage + 1, "why": why,
                             "metric": float(np.mean(self.recent))})
        self.stage += 1
        self.steps_in_stage = 0
        self.recent = []
        return True

    def stage_difficulty(self) -> float:
        """Mean score of the current pool (logged)."""
        return float(self.scores[self.pool()].mean())

    # -- checkpointing --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "n_tasks": len(self.scores),
            "stage_sizes": [len(m) for m in self.stage_members],
            "stage": self.stage,
            "steps_in_stage": self.steps_in_stage,
            "total_steps": self.total_steps,
            "recent": list(self.recent),
            "history": list(self.history),
            "perm": {str(k): v for k, v in self._perm.items()},
            "cursor": {str(k): v for k, v in self._cursor.items()},
            "hits": self.hits.tolist(),
            "trials": self.trials.tolist(),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if state["n_tasks"] != len(self.scores) or state["stage_sizes"] != [len(m) for m in self.stage_members]:
            raise ValueError(
                f"curriculum state is for {state['n_tasks']} tasks in stages {state['stage_sizes']}, "
                f"this curriculum has {len(self.scores)} tasks in {[len(m) for m in self.stage_members]}"
            )
        self.stage = int(state["stage"])
        self.steps_in_stage = int(state["steps_in_stage"])
        self.total_steps = int(state["total_steps"])
        self.recent = [float(v) for v in state["recent"]]
        self.history = [dict(h) for h in state["history"]]
        self._perm = {int(k): [int(x) for x in v] for k, v in state["perm"].items()}
        self._cursor = {int(k): int(v) for k, v in state["cursor"].items()}
        self.hits = np.asarray(state["hits"], dtype=np.float64)
        self.trials = np.asarray(state["trials"], dtype=np.float64)
        self.rng.bit_generator.state = state["rng"]
