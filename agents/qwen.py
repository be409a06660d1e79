"""Vision-language policy: any Qwen2.5-VL or Qwen2-VL checkpoint through ``transformers``.

The model's coordinate frame is explicit (see :mod:`guienv.vlm` for the sources): Qwen2.5-VL answers in absolute
pixels of the smart-resized image it was shown (``Frame.RESIZED`` with this agent's min/max pixels),
Qwen2-VL on the 0-1000 grid (``Frame.GRID1000``). Every parsed action is mapped back to the original
screenshot's pixels before it leaves the agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.decoding import decoding_kwargs
from agents.protocol import check_infos
from guienv.actions import Action
from guienv.frames import QWEN_MIN_PIXELS, Frame, Resize, Screen
from guienv.parsing import read_action
from guienv.prompts import observation_messages, step_images
from guienv.vlm import generate, load_vlm


@dataclass
class QwenAgentConfig:
    model: str = "Qwen/Qwen2.5-VL-3B-Instruct"  # hub id or local folder
    template: str = "gui-g1"
    min_pixels: int = QWEN_MIN_PIXELS
    max_pixels: int = 1280 * 28 * 28
    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    dtype: str = "auto"  # auto | bfloat16 | float16 | float32
    device: str | None = None  # default: cuda if available else cpu
    attn_implementation: str | None = "sdpa"
    frame: str | None = None  # override the family's frame
    image_backend: str = "auto"  # pil | torchvision | auto (torchvision preprocesses on the GPU)
    cache: str = "dynamic"  # KV cache: dynamic | static (agents.decoding)
    compile: bool = False  # torch.compile the decode step (static cache only; pays off on a GPU)
    generate_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to model.generate
    # the sampled tokens' log-probs in Generation.logprobs; guienv eval turns them off (it never
    # reads them, and they keep a vocabulary-wide row of scores per generated token)
    logprobs: bool = True


@dataclass
class Generation:
    """One sampled answer: the parsed action (pixel frame of the original screenshot), the raw
    text, the generated token ids (eos included, padding excluded) and their log-probabilities
    under the sampling distribution (``log_softmax(logits / temperature)``; temperature 1 when
    greedy; empty when the agent's ``logprobs`` is off)."""

    action: Action
    text: str
    token_ids: list[int]
    logprobs: list[float]
    frame: Frame
    extra: dict[str, Any] = field(default_factory=dict)


class QwenAgent:
    name = "qwen"

    def __init__(self, cfg: QwenAgentConfig | None = None, **overrides: Any):
        cfg = cfg or QwenAgentConfig()
        for k, v in overrides.items():
            setattr(cfg, k, v)
        self.cfg = cfg
        self.decoding = decoding_kwargs(cfg.cache, cfg.compile)  # checked before the model loads
        # Pixel bounds are the agent's: they define the resized frame the model answers in.
        self.vlm = load_vlm(cfg.model, dtype=cfg.dtype, device=cfg.device, attn_implementation=cfg.attn_implementation,
                            min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels, image_backend=cfg.image_backend)
        self.frame = Frame(cfg.frame) if cfg.frame else self.vlm.frame
        self.device = str(self.vlm.device)
        self.model = self.vlm.model
        self.tokenizer = self.vlm.tokenizer
        self.image_processor = self.vlm.image_processor
        self.resize = Resize(min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
        self.merge_size = self.vlm.merge_size

    # -- prompting ----------------------------------------------------------------------------
    def prompt(self, obs: Mapping[str, Any]) -> str:
        """The chat-template text for ``obs`` (:func:`guienv.prompts.observation_messages`, the
        builder training uses too)."""
        msgs = observation_messages(self.cfg.template, obs)
        return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    def inputs(self, observations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return self.vlm.inputs([self.prompt(o) for o in observations], [step_images(o) for o in observations])

    # -- acting -------------------------------------------------------------------------------
    def generate(self, observations: Sequence[Mapping[str, Any]]) -> list[Generation]:
        """Batched generation (left padding) for a list of observations."""
        if not observations:
            return []
        cfg = self.cfg
        out = generate(self.vlm, self.inputs(observations), max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                       top_p=cfg.top_p, logprobs=cfg.logprobs, **{**self.decoding, **cfg.generate_kwargs})
        results = []
        for obs, ids, text, lp in zip(observations, out.token_ids, out.texts, out.logprobs or [[] for _ in observations]):
            h, w = np.asarray(obs["screenshot"]).shape[:2]
            action = read_action(text, Screen(w, h, self.resize), self.frame)
            results.append(Generation(action, text, ids, lp, self.frame))
        return results

    def to_pixels(self, action: Action, width: int, height: int) -> Action:
        """Map an action in the model's frame back to the original screenshot's pixels."""
        return read_action(action, Screen(width, height, self.resize))

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Action:
        return self.generate([observation])[0].action

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]]) -> list[Action]:
        check_infos(observations, infos)  # the model reads observations only
        return [g.action for g in self.generate(observations)]
