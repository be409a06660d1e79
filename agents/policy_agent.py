"""A trainable policy as an :class:`~agents.protocol.Agent`: what ``guienv eval``'s episode loop and
the trainer's held-out evaluation act through.

:class:`PolicyAgent` prompts a :class:`~agents.policy.Policy` (vision) or
:class:`~agents.text_policy.TextPolicy` with the builders :class:`~agents.qwen.QwenAgent` uses
(:func:`guienv.prompts.observation_messages`, :func:`guienv.prompts.step_images`), so a trained
policy is evaluated on exactly the prompt it was trained on. A vision policy's text is read into an
action in its coordinate frame (:func:`guienv.parsing.read_action`, mapped back to the screenshot's
pixels); a text policy's action is its text, which the text envs parse themselves (ALFWorld's and
WebShop's ``<action>...</action>`` commands, verl-agent's format: repository
``langfengQ/verl-agent``, ``agent_system/environments/env_package/alfworld/projection.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.policy import Encoded
from agents.protocol import check_infos
from agents.qwen import Generation
from agents.text_policy import load_text_policy
from guienv.actions import Action
from guienv.frames import Screen
from guienv.parsing import read_action
from guienv.prompts import observation_messages, step_images

__all__ = ["PolicyAgent", "TextAgent", "TextAgentConfig"]


class PolicyAgent:
    """``policy`` prompted with ``template`` (a :mod:`guienv.prompts` template name), sampling at
    ``temperature`` (0: greedy) up to ``max_new_tokens``; one batched generation per call."""

    name = "policy"

    def __init__(self, policy: Any, template: str, *, max_new_tokens: int = 64, temperature: float = 0.0):
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        self.policy = policy
        self.template = template
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.frame = policy.frame  # guienv eval writes the history in the agent's frame

    @property
    def resize(self) -> Any:
        return self.policy.resize

    # -- prompting ------------------------------------------------------------------------------
    def messages(self, obs: Mapping[str, Any]) -> list[dict[str, Any]]:
        return observation_messages(self.template, obs)

    def prompt(self, obs: Mapping[str, Any]) -> str:
        """The chat-template text for ``obs`` (as :meth:`agents.qwen.QwenAgent.prompt`)."""
        return self.policy.tokenizer.apply_chat_template(self.messages(obs), tokenize=False, add_generation_prompt=True)

    def encode(self, obs: Mapping[str, Any]) -> Encoded:
        images = step_images(obs) if self.policy.is_vision else ()
        return self.policy.encode_messages(self.messages(obs), images)

    # -- acting ---------------------------------------------------------------------------------
    def generate(self, observations: Sequence[Mapping[str, Any]]) -> list[Generation]:
        """One completion per observation: raw text, action, token ids and their log-probs under the
        sampling distribution (:meth:`agents.policy.Policy.sample_logprobs`)."""
        if not observations:
            return []
        pol = self.policy
        ids, lps = pol.sample_logprobs([self.encode(o) for o in observations], temperature=self.temperature,
                                       max_new_tokens=self.max_new_tokens)
        out = []
        for obs, tok, lp in zip(observations, ids, lps):
            text = pol.decode(tok)
            if pol.is_vision:
                h, w = np.asarray(obs["screenshot"]).shape[:2]
                action: Any = read_action(text, Screen(w, h, pol.resize), pol.frame)
            else:
                action = text
            out.append(Generation(action, text, tok, lp, pol.frame))
        return out

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Action | str:
        return self.generate([observation])[0].action

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]]) -> list[Action | str]:
        check_infos(observations, infos)  # the model reads observations only
        return [g.action for g in self.generate(observations)]


@dataclass
class TextAgentConfig:
    model: str = ""  # local folder or hub id of a causal-LM chat model
    template: str = "text"
    max_new_tokens: int = 64
    temperature: float = 0.0  # 0 = greedy
    device: str | None = None  # default: cuda if available else cpu
    dtype: str = "auto"


class TextAgent(PolicyAgent):
    """A text chat model for ``guienv eval`` of the text envs: :func:`~agents.text_policy.load_text_policy`
    + :class:`PolicyAgent`."""

    name = "text"

    def __init__(self, cfg: TextAgentConfig | None = None, **overrides: Any):
        cfg = cfg or TextAgentConfig()
        for k, v in overrides.items():
            setattr(cfg, k, v)
        if not cfg.model:
            raise ValueError("TextAgentConfig.model is required (a model folder or hub id)")
        self.cfg = cfg
        super().__init__(load_text_policy(cfg.model, device=cfg.device, dtype=cfg.dtype), cfg.template,
                         max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature)
