"""Agents and their training: the :class:`Agent` protocol, the Qwen-VL and API policies, baselines,
step-level advantage estimators (GRPO, SALT, GiGPO), rollouts, env pools, the multi-turn rollout
engine, and the GRPO (single-step and multi-turn) and SFT trainers.

Importing the package stays cheap (no torch): the GRPO loss (:mod:`agents.grpo_loss`) and the
model code import torch where they run.
"""

from agents.advantages import GRPOAdvantageConfig, estimate, grpo_advantages, make_config
from agents.api import ApiAgent, ApiAgentConfig
from agents.baselines import MeanClickAgent, OracleAgent, RandomAgent
from agents.env_pool import EnvPool, EnvResult, EnvSpec, make_pool
from agents.experts import Demonstration, collect_demonstrations, make_expert
from agents.gigpo import GiGPOConfig, gigpo_advantages
from agents.grpo import GRPOTrainer, GRPOTrainerConfig, Rollout
from agents.multiturn import EpisodeTask, MultiTurnConfig, MultiTurnRollout, RolloutEngine, Turn
from agents.multiturn_trainer import MultiTurnTrainer, RolloutFailure, turn_rows
from agents.policy import Policy
from agents.policy_agent import PolicyAgent, TextAgent, TextAgentConfig
from agents.protocol import Agent
from agents.qwen import Generation, QwenAgent, QwenAgentConfig
from agents.rollout import Group, RolloutStep, Trajectory, rollout_group, rollout_groups, rollout_vector
from agents.salt import SALTConfig, salt_advantages
from agents.sft import DemoSFTTrainer, SFTConfig, SFTTrainer
from agents.step_batch import StepBatch, split_by_trajectory
from agents.text_policy import TextPolicy, load_text_policy

__all__ = [
    "Agent",
    "ApiAgent",
    "ApiAgentConfig",
    "DemoSFTTrainer",
    "Demonstration",
    "EnvPool",
    "EnvResult",
    "EnvSpec",
    "EpisodeTask",
    "GRPOAdvantageConfig",
    "GRPOTrainer",
    "GRPOTrainerConfig",
    "Generation",
    "GiGPOConfig",
    "Group",
    "MeanClickAgent",
    "MultiTurnConfig",
    "MultiTurnRollout",
    "MultiTurnTrainer",
    "OracleAgent",
    "Policy",
    "PolicyAgent",
    "QwenAgent",
    "QwenAgentConfig",
    "RandomAgent",
    "Rollout",
    "RolloutEngine",
    "RolloutFailure",
    "RolloutStep",
    "SALTConfig",
    "SFTConfig",
    "SFTTrainer",
    "StepBatch",
    "TextAgent",
    "TextAgentConfig",
    "TextPolicy",
    "Trajectory",
    "Turn",
    "collect_demonstrations",
    "estimate",
    "gigpo_advantages",
    "grpo_advantages",
    "load_text_policy",
    "make_config",
    "make_expert",
    "make_pool",
    "rollout_group",
    "rollout_groups",
    "rollout_vector",
    "salt_advantages",
    "split_by_trajectory",
    "turn_rows",
]
