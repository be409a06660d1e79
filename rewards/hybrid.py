"""CRAFT-GUI's hybrid reward: rules decide where they can, a judge model elsewhere.

CRAFT-GUI ("CRAFT-GUI: Curriculum-Reinforced Agent For GUI Tasks", arXiv 2508.11360, the reward
section; no public code) trains with GRPO on a reward
that combines rule-based signals (action type, coordinate hit, text match, format) with a judge
model's evaluation. guienv's reading, per step::

    format   = 1 if the prediction parsed into a valid action else 0
    rule     = 1 if match_step(...).exact_match, type_only_score if only the type matched, else 0
    accuracy = rule                                                  (rules settled the step)
             = (rule_weight * rule + judge_weight * judge) / (rule_weight + judge_weight)
                                                                     (the judge was asked)
    reward   = format_weight * format + (1 - format_weight) * accuracy

``judge_mode`` says when the judge is asked: ``never``; ``always`` (every valid prediction); or
``uncertain`` (default), only where rules cannot settle the step: a ``type``/``open_app`` whose
text differs from the ground truth but is not clearly wrong (a shared word, or string similarity
of at least ``text_min_similarity``), ``open_app`` against tapping the app's icon (either way
round), and ``scroll`` against ``swipe`` (either way round: the content/finger direction
conventions are easy to mix up, and the judge sees the finger path drawn). Rules use
:func:`rewards.action_match.match_step` with a named ``protocol``; a prediction the protocol
already accepts is never sent to the judge in ``uncertain`` mode.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from guienv.actions import Action, ActionType
from guienv.config import load_config, read_yaml
from guienv.parsing import as_action
from guienv.types import Episode, Step
from rewards.action_match import StepVerdict, match_step
from rewards.judge import Judge, JudgeConfig, JudgeRequest, JudgeResult

JUDGE_MODES = ("uncertain", "always", "never")


@dataclass(frozen=True)
class HybridConfig:
    """Hybrid reward settings; ``judge`` holds the :class:`~rewards.judge.JudgeConfig` (YAML: a
    nested ``judge:`` mapping)."""

    protocol: str = "plain"
    judge_mode: str = "uncertain"  # uncertain | always | never
    format_weight: float = 0.1
    rule_weight: float = 0.0
    judge_weight: float = 1.0
    type_only_score: float = 0.0
    text_min_similarity: float = 0.3
    judge_text: bool = True
    judge_open_app_vs_click: bool = True
    judge_scroll_vs_swipe: bool = True
    use_step_instruction: bool = True  # low-level setting; False for high-level (goal + history)
    show_reference: bool = False  # also show the judge the recorded action
    judge: JudgeConfig | None = None

    def __post_init__(self) -> None:
        if self.judge_mode not in JUDGE_MODES:
            raise ValueError(f"judge_mode must be one of {JUDGE_MODES}, got {self.judge_mode!r}")
        for name in ("format_weight", "type_only_score", "text_min_similarity"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be in [0, 1], got {v!r}")
        if self.rule_weight < 0 or self.judge_weight < 0 or self.rule_weight + self.judge_weight <= 0:
            raise ValueError("rule_weight and judge_weight must be non-negative with a positive sum")
        if isinstance(self.judge, Mapping):
            object.__setattr__(self, "judge", JudgeConfig.from_dict(self.judge))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "<hybrid config>", prefix: str = "") -> HybridConfig:
        """Checked through :func:`guienv.config.load_config`; the ``judge`` block nests as ``judge.*``."""
        return load_config(cls, data, where, prefix)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> HybridConfig:
        return load_config(cls, read_yaml(path), str(path))


@dataclass(frozen=True)
class HybridItem:
    """One prediction to score: ``pred`` (an Action, action JSON or model text) for ``step``."""

    pred: Any
    step: Step
    goal: str
    history: tuple[Action | str, ...] = ()
    sample_id: str | None = None  # cache identity of (screen, context); derived when None

    @classmethod
    def from_episode(cls, episode: Episode, index: int, pred: Any) -> HybridItem:
        """Step ``index`` of ``episode``, its history the recorded actions before it."""
        steps = episode.steps
        if not 0 <= index < len(steps):
            raise IndexError(f"episode {episode.id!r} has {len(steps)} steps, no step {index}")
        history = tuple(s.action for s in steps[:index])
        return cls(pred, steps[index], episode.goal, history, f"{episode.id}:{index}")


@dataclass(frozen=True)
class HybridResult:
    reward: float
    accuracy: float
    format: float
    rule_score: float
    rule: StepVerdict
    source: str  # "rule" or "judge"
    uncertain: str = ""  # why the judge was asked
    judge: JudgeResult | None = None

    @property
    def flagged(self) -> bool:
        """The judge part is a configured fallback, not a judge answer."""
        return self.judge is not None and self.judge.flagged


@dataclass
class HybridStats:
    items: int = 0
    invalid: int = 0
    rule_settled: int = 0
    judge_asked: int = 0
    judge_flagged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def text_similarity(a: str | None, b: str | None) -> float:
    """difflib ratio of the lowercased, stripped strings (1.0 = equal)."""
    a, b = (a or "").strip().lower(), (b or "").strip().lower()
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def text_clearly_wrong(pred: str | None, gt: str | None, min_similarity: float) -> bool:
    """No shared word and string similarity below ``min_similarity`` (or an empty prediction)."""
    p, g = (pred or "").strip().lower(), (gt or "").strip().lower()
    if not p:
        return bool(g)
    if set(p.split()) & set(g.split()):
        return False
    return text_similarity(p, g) < min_similarity


def _sample_id(item: HybridItem) -> str:
    if item.sample_id is not None:
        return str(item.sample_id)
    step = item.step
    img = step.image
    src = str(img.path) if img.path is not None else hashlib.sha256(img.data).hexdigest()
    blob = json.dumps([item.goal, src, step.width, step.height, step.action.to_dict()], sort_keys=True, default=str)
    return "auto:" + hashlib.sha256(blob.encode("utf-8")).hexdigest()[:24]


class HybridReward:
    """Score batches of predictions (a GRPO group) with rules plus, where configured, a judge.

    ``judge`` defaults to ``Judge(config.judge)``; it is required unless ``judge_mode='never'``.
    All judge requests of a batch go through one :meth:`Judge.judge_batch` call (cache, dedupe,
    bounded concurrency)."""

    def __init__(self, config: HybridConfig | None = None, judge: Judge | None = None):
        self.config = config or HybridConfig()
        cfg = self.config
        self._own_judge = False
        if judge is None and cfg.judge_mode != "never":
            if cfg.judge is None:
                raise ValueError(f"judge_mode={cfg.judge_mode!r} needs a judge (HybridConfig.judge or judge=)")
            judge, self._own_judge = Judge(cfg.judge), True
        self.judge = judge
        self.stats = HybridStats()

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> HybridReward:
        return cls(HybridConfig.from_yaml(path))

    def rule_score(self, verdict: StepVerdict) -> float:
        if verdict.exact_match:
            return 1.0
        return self.config.type_only_score if verdict.type_match else 0.0

    def uncertainty(self, pred: Action, step: Step, verdict: StepVerdict) -> str:
        """Why rules cannot settle ``pred`` (empty when they can)."""
        cfg = self.config
        if not pred.is_valid or verdict.exact_match:
            return ""
        p, g = pred.type, step.action.type
        text_types = (ActionType.TYPE, ActionType.OPEN_APP)
        if cfg.judge_text and p is g and g in text_types:
            if not text_clearly_wrong(pred.text, step.action.text, cfg.text_min_similarity):
                return f"{g.value} text differs but may be a paraphrase"
            return ""
        if cfg.judge_open_app_vs_click and {p, g} == {ActionType.OPEN_APP, ActionType.CLICK}:
            return "open_app vs tapping the app icon"
        if cfg.judge_scroll_vs_swipe and {p, g} == {ActionType.SCROLL, ActionType.SWIPE}:
            return "scroll vs swipe"
        return ""

    def _combine(self, fmt: float, rule: float, judge: float | None) -> tuple[float, float]:
        cfg = self.config
        if judge is None:
            acc = rule
        else:
            acc = (cfg.rule_weight * rule + cfg.judge_weight * judge) / (cfg.rule_weight + cfg.judge_weight)
        return cfg.format_weight * fmt + (1.0 - cfg.format_weight) * acc, acc

    def score_batch(self, items: Sequence[HybridItem]) -> list[HybridResult]:
        cfg = self.config
        preds = [as_action(it.pred) for it in items]
        verdicts = [match_step(p, it.step, cfg.protocol) for p, it in zip(preds, items, strict=True)]
        reasons: list[str] = []
        requests: list[JudgeRequest] = []
        asked: list[int] = []
        for i, (p, it, v) in enumerate(zip(preds, items, verdicts, strict=True)):
            if not p.is_valid or cfg.judge_mode == "never":
                why = ""
            elif cfg.judge_mode == "always":
                why = "judge_mode=always"
            else:
                why = self.uncertainty(p, it.step, v)
            reasons.append(why)
            if why:
                step = it.step
                requests.append(JudgeRequest(
                    sample_id=_sample_id(it),
                    image=step.image,
                    action=p,
                    goal=it.goal,
                    instruction=step.instruction if cfg.use_step_instruction else None,
                    history=tuple(it.history),
                    reference=step.action if cfg.show_reference else None,
                    width=step.width,
                    height=step.height,
                ))
                asked.append(i)
        judged: dict[int, JudgeResult] = {}
        if requests:
            judged = dict(zip(asked, self.judge.judge_batch(requests), strict=True))
        out = []
        for i, (p, v) in enumerate(zip(preds, verdicts, strict=True)):
            fmt = 1.0 if p.is_valid else 0.0
            rule = self.rule_score(v)
            jr = judged.get(i)
            reward, acc = self._combine(fmt, rule, None if jr is None else jr.score)
            out.append(HybridResult(reward, acc, fmt, rule, v, "judge" if jr else "rule", reasons[i], jr))
        s = self.stats
        s.items += len(items)
        s.invalid += sum(1 for p in preds if not p.is_valid)
        s.judge_asked += len(judged)
        s.rule_settled += len(items) - len(judged)
        s.judge_flagged += sum(1 for r in judged.values() if r.flagged)
        return out

    def __call__(self, items: Sequence[HybridItem]) -> list[float]:
        return [r.reward for r in self.score_batch(items)]

    def close(self) -> None:
        if self._own_judge and self.judge is not None:
            self.judge.close()

    def __enter__(self) -> HybridReward:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
