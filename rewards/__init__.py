"""Rewards and metrics: GUI-G1 grounding rewards, action matching under named AndroidControl
protocols, format rewards, composite (configurable) rewards, TRL reward functions and the
offline scoring of prediction files."""

from rewards.action_match import PROTOCOLS, StepVerdict, match_step
from rewards.composite import PRESETS, CompositeConfig, CompositeResult, CompositeReward, TermConfig
from rewards.format import FormatSpec, check_format, format_reward
from rewards.grounding import (
    GroundingReward,
    GroundingWeights,
    PointReward,
    difficulty_weights,
    grounding_reward,
    gui_g1_filter,
    gui_g1_reward,
    gui_g1_rewards,
    point_reward,
)
from rewards.metrics import GroundingRecord, StepRecord, androidcontrol_metrics, screenspot_metrics
from rewards.scoring import score
from rewards.trl import composite_reward_func, grounding_reward_func

__all__ = [
    "PRESETS",
    "PROTOCOLS",
    "CompositeConfig",
    "CompositeResult",
    "CompositeReward",
    "FormatSpec",
    "GroundingRecord",
    "GroundingReward",
    "GroundingWeights",
    "PointReward",
    "StepRecord",
    "StepVerdict",
    "TermConfig",
    "androidcontrol_metrics",
    "check_format",
    "composite_reward_func",
    "difficulty_weights",
    "format_reward",
    "grounding_reward",
    "grounding_reward_func",
    "gui_g1_filter",
    "gui_g1_reward",
    "gui_g1_rewards",
    "match_step",
    "point_reward",
    "score",
    "screenspot_metrics",
]
