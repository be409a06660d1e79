"""Baseline agents: random, mean-click, oracle, and the ALFWorld expert (``ExpertPlanAgent``).

The oracle acts from the ground truth an env puts in ``info`` and must score 100% on every offline
benchmark: it checks the env and metric plumbing, not a model. The random agent is the floor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from agents.miniwob_oracle import ORACLE_TASKS, OracleError, oracle_action
from agents.protocol import check_infos
from guienv.actions import DIRECTIONS, Action, ActionType, Frame
from guienv.geometry import point_in_box


class _Batched:
    """``act_batch``: one :meth:`act` per observation (the evaluation loop calls agents in batches)."""

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]]) -> list[Action]:
        return [self.act(o, i) for o, i in zip(observations, check_infos(observations, infos))]


class OracleAgent(_Batched):
    """Acts from the ground truth: ``info["oracle_action"]`` (SynthApp), ``info["gt_action"]``
    (AndroidControl), the centre of ``info["bbox"]`` (ScreenSpot), or for MiniWoB++ the DOM
    element boxes in the observation (:mod:`agents.miniwob_oracle`); pixel frame."""

    name = "oracle"

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Action:
        for key in ("oracle_action", "gt_action"):
            if info.get(key) is not None:
                return Action.from_dict(info[key])
        if info.get("bbox") is not None:
            x1, y1, x2, y2 = (float(v) for v in info["bbox"])
            return Action.click((x1 + x2) / 2, (y1 + y2) / 2)
        if "elements" in observation and info.get("task") is not None:
            if info["task"] in ORACLE_TASKS:
                try:
                    return oracle_action(info["task"], observation, info)
                except OracleError as exc:
                    return Action.invalid(f"oracle: {exc}")
        return Action.invalid("oracle: info holds no ground truth (oracle_action, gt_action or bbox)")


class RandomAgent(_Batched):
    """Uniform random clicks (normalized frame), with other action types mixed in for
    multi-step envs at rate ``other_rate``."""

    name = "random"

    def __init__(self, seed: int | None = None, other_rate: float = 0.0):
        self.rng = np.random.default_rng(seed)
        self.other_rate = other_rate

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Action:
        if self.other_rate and self.rng.random() < self.other_rate:
            kind = self.rng.choice(["scroll", "type", "navigate_back", "wait"])
            if kind == "scroll":
                return Action.scroll(str(self.rng.choice(DIRECTIONS)))
            if kind == "type":
                return Action.type_text("hello")
            return Action.simple(ActionType(kind))
        x, y = self.rng.random(2)
        return Action.click(float(x), float(y), frame=Frame.NORMALIZED)


class MeanClickAgent(_Batched):
    """Always clicks one fixed point (normalized frame), by default the mean target centre of a
    training set (:meth:`fit`): the best a policy that ignores the screenshot does with one point,
    about. A trained model must beat it to show it reads the image."""

    name = "mean-click"

    def __init__(self, x: float = 0.5, y: float = 0.5):
        self.x, self.y = float(x), float(y)

    @classmethod
    def fit(cls, samples: Sequence[Any]) -> MeanClickAgent:
        """From :class:`~guienv.types.GroundingSample`-like objects (``box``, ``width``, ``height``)."""
        if not samples:
            raise ValueError("MeanClickAgent.fit needs at least one sample")
        c = np.mean([[(s.box[0] + s.box[2]) / 2 / s.width, (s.box[1] + s.box[3]) / 2 / s.height] for s in samples], axis=0)
        return cls(float(c[0]), float(c[1]))

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Action:
        return Action.click(self.x, self.y, frame=Frame.NORMALIZED)

    def accuracy(self, samples: Sequence[Any]) -> float:
        """Fraction of ``samples`` whose box holds the fixed point (ScreenSpot's hit test)."""
        if not samples:
            return float("nan")
        return float(np.mean([point_in_box((self.x * s.width, self.y * s.height), s.box) for s in samples]))


class ExpertPlanAgent(_Batched):
    """Plays the engine planner's next command, ``info["expert_plan"][0]``, as
    ``<action>cmd</action>`` (ALFWorld with ``expert_plan=True``: TextWorld's ``policy_commands``,
    the handcoded expert of ALFWorld, Shridhar et al., arXiv 2010.03768). With an empty plan it
    plays ``fallback`` (``"look"``, always admissible in ALFWorld), or the first admissible command
    when ``fallback`` is not admissible. Text actions: for text envs only."""

    name = "expert"
    needs_expert_plan = True  # guienv eval makes the env with expert_plan=True

    def __init__(self, fallback: str = "look"):
        self.fallback = fallback

    def act(self, observation: Any, info: Mapping[str, Any]) -> str:
        plan = info.get("expert_plan") or []
        if plan and isinstance(plan[0], str):
            return f"<action>{plan[0]}</action>"
        admissible = list(info.get("admissible_commands") or [])
        if admissible and self.fallback not in admissible:
            return f"<action>{admissible[0]}</action>"
        return f"<action>{self.fallback}</action>"


AGENTS = {"oracle": OracleAgent, "random": RandomAgent, "mean-click": MeanClickAgent}  # screen-env baselines
TEXT_AGENTS = {"expert": ExpertPlanAgent}  # text-env baselines (text actions)
