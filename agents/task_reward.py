"""Scoring a training prompt's completions: the composite reward, or CRAFT-GUI's hybrid for steps."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agents.train_prompts import TrainPrompt
from guienv.actions import Action, ActionType
from guienv.frames import Frame
from guienv.geometry import point_in_box
from guienv.types import GroundingSample, Step
from rewards.action_match import match_step
from rewards.composite import CompositeReward, composite_config
from rewards.grounding import predicted_box
from rewards.hybrid import HybridItem


@dataclass
class Scored:
    """One completion's reward and the diagnostics logged for it."""

    reward: float
    terms: dict[str, float]
    correct: bool  # click accuracy (grounding) or exact step match
    parsed: bool
    area_ratio: float = float("nan")  # predicted box area / screen area (box answers)
    size_ratio: float = float("nan")  # predicted box area / GT box area (box answers)
    action: Action | None = None


class TaskReward:
    """Scores completions against their task's target.

    ``composite``: a :class:`~rewards.composite.CompositeReward` (preset name, mapping or config);
    its ``frame``/``min_pixels``/``max_pixels`` are set to the policy's, so the model's answers are
    read in the frame it was shown. ``hybrid``: an optional :class:`~rewards.hybrid.HybridReward`
    used instead for :class:`~guienv.types.Step` targets (CRAFT-GUI's rules + judge).
    ``protocol``: the step-matching protocol behind the ``correct`` flag of Step targets."""

    def __init__(self, composite: Any = "gui-g1", policy_frame: Frame | None = None, resize: Any = None,
                 hybrid: Any = None, protocol: str = "plain"):
        cfg = composite_config(composite)
        if policy_frame is not None:
            cfg.frame = Frame(policy_frame).value
        if resize is not None:
            cfg.min_pixels, cfg.max_pixels = resize.min_pixels, resize.max_pixels
        self.composite = CompositeReward(cfg)
        self.hybrid = hybrid
        self.protocol = protocol

    def score(self, texts: Sequence[str], tasks: Sequence[TrainPrompt]) -> list[Scored]:
        out: list[Scored] = []
        hybrid_rows: list[int] = []
        for text, task in zip(texts, tasks, strict=True):
            tgt = task.target
            res = self.composite(text, tgt)
            act = res.action
            if isinstance(tgt, GroundingSample):
                ok = act.is_valid and act.type in (ActionType.CLICK, ActionType.LONG_PRESS, ActionType.BOX) \
                    and point_in_box(act.target, tgt.box)
                area = size = float("nan")
                if act.is_valid and act.type is ActionType.BOX:
                    b = predicted_box(act)
                    a = max(b[2] - b[0], 0.0) * max(b[3] - b[1], 0.0)
                    area = a / float(tgt.width * tgt.height)
                    gt = max(tgt.box[2] - tgt.box[0], 0.0) * max(tgt.box[3] - tgt.box[1], 0.0)
                    size = a / gt if gt > 0 else float("nan")
                out.append(Scored(res.total, dict(res.terms), bool(ok), act.is_valid, area, size, act))
            elif isinstance(tgt, Step):
                ok = match_step(act, tgt, self.protocol).exact_match
                out.append(Scored(res.total, dict(res.terms), bool(ok), act.is_valid, action=act))
                if self.hybrid is not None:
                    hybrid_rows.append(len(out) - 1)
            else:
                raise TypeError(f"task {task.id}: no reward for a {type(tgt).__name__} target")
        if hybrid_rows:
            items = [HybridItem(out[i].action, tasks[i].target, tasks[i].goal, tuple(tasks[i].history), tasks[i].id)
                     for i in hybrid_rows]
            for i, r in zip(hybrid_rows, self.hybrid.score_batch(items), strict=True):
                out[i].terms.update({"hybrid": r.reward, "rule": r.rule_score, "judged": float(r.source == "judge")})
                out[i].reward = r.reward
        return out
