"""Vision-language policy: any Qwen2.5-VL or Qwen2-VL checkpoint through ``transformers``.

The model's coordinate frame is explicit (REFERENCE.md section 1): Qwen2.5-VL answers in absolute
pixels of the smart-resized image it was shown (``Frame.RESIZED`` with this agent's min/max pixels),
Qwen2-VL on the 0-1000 grid (``Frame.GRID1000``). Every parsed action is mapped back to the original
screenshot's pixels before it leaves the agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agents.protocol import check_infos
from guienv.actions import Action
from guienv.frames import QWEN_MIN_PIXELS, Frame, Resize, Screen

FAMILY_FRAMES = {"qwen2_5_vl": Frame.RESIZED, "qwen2_vl": Frame.GRID1000}


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
    generate_kwargs: dict[str, Any] = field(default_factory=dict)  # passed to model.generate


@dataclass
class Generation:
    """One sampled answer: the parsed action (pixel frame of the original screenshot), the raw
    text, the generated token ids (eos included, padding excluded) and their log-probabilities
    under the sampling distribution (``log_softmax(logits / temperature)``; temperature 1 when
    greedy)."""

    action: Action
    text: str
    token_ids: list[int]
    logprobs: list[float]
    frame: Frame
    extra: dict[str, Any] = field(default_factory=dict)


class QwenAgent:
    name = "qwen"

    def __init__(self, cfg: QwenAgentConfig | None = None, **overrides: Any):
        import torch
        from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer

        from guienv.vlm import make_image_processor

        cfg = cfg or QwenAgentConfig()
        for k, v in overrides.items():
            setattr(cfg, k, v)
        self.cfg = cfg
        hf_cfg = AutoConfig.from_pretrained(cfg.model)
        if hf_cfg.model_type not in FAMILY_FRAMES:
            raise ValueError(
                f"{cfg.model}: model_type {hf_cfg.model_type!r} is not a Qwen2-VL/Qwen2.5-VL checkpoint"
            )
        self.frame = Frame(cfg.frame) if cfg.frame else FAMILY_FRAMES[hf_cfg.model_type]
        self.device = cfg.device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = {"auto": "auto", "bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[cfg.dtype]
        kwargs: dict[str, Any] = {"dtype": dtype}
        if cfg.attn_implementation:
            kwargs["attn_implementation"] = cfg.attn_implementation
        self.model = AutoModelForImageTextToText.from_pretrained(cfg.model, **kwargs).to(self.device).eval()
        self.tokenizer = AutoTokenizer.from_pretrained(cfg.model, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Pixel bounds are the agent's: they define the resized frame the model answers in.
        self.image_processor = make_image_processor(cfg.min_pixels, cfg.max_pixels, backend=cfg.image_backend)
        self.resize = Resize(min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
        self.merge_size = getattr(hf_cfg.vision_config, "spatial_merge_size", 2)

    # -- prompting ----------------------------------------------------------------------------
    def prompt(self, obs: Mapping[str, Any]) -> str:
        from guienv.prompts import render

        return self.tokenizer.apply_chat_template(render(self.cfg.template, obs), tokenize=False, add_generation_prompt=True)

    def inputs(self, observations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        from guienv.vlm import build_inputs

        prompts = [self.prompt(o) for o in observations]
        images = [[np.asarray(o["screenshot"])] for o in observations]
        batch = build_inputs(self.tokenizer, self.image_processor, prompts, images, self.merge_size, device=self.device)
        return {k: v.to(self.device) for k, v in batch.items()}

    # -- acting -------------------------------------------------------------------------------
    def generate(self, observations: Sequence[Mapping[str, Any]]) -> list[Generation]:
        """Batched generation (left padding) for a list of observations."""
        import torch

        from guienv.parsing import parse_action

        if not observations:
            return []
        batch = self.inputs(observations)
        sample = self.cfg.temperature > 0
        gen_kwargs: dict[str, Any] = dict(
            max_new_tokens=self.cfg.max_new_tokens,
            do_sample=sample,
            return_dict_in_generate=True,
            output_logits=True,
            pad_token_id=self.tokenizer.pad_token_id,
        )
        if sample:
            gen_kwargs.update(temperature=self.cfg.temperature, top_p=self.cfg.top_p)
        gen_kwargs.update(self.cfg.generate_kwargs)
        with torch.inference_mode():
            out = self.model.generate(**batch, **gen_kwargs)
        prompt_len = batch["input_ids"].shape[1]
        new = out.sequences[:, prompt_len:]
        logits = torch.stack(out.logits, dim=1).float()  # (B, T, V), raw (unprocessed) logits
        logp = torch.log_softmax(logits / (self.cfg.temperature if sample else 1.0), dim=-1)
        tok_logp = logp.gather(-1, new.unsqueeze(-1)).squeeze(-1)
        eos = set(np.atleast_1d(self.model.generation_config.eos_token_id or []).tolist())
        eos.add(self.tokenizer.eos_token_id)
        results = []
        for i, obs in enumerate(observations):
            ids = new[i].tolist()
            n = len(ids)
            for j, t in enumerate(ids):
                if t in eos:
                    n = j + 1
                    break
            ids = ids[:n]
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            h, w = np.asarray(obs["screenshot"]).shape[:2]
            action = self.to_pixels(parse_action(text, frame=self.frame), w, h)
            results.append(Generation(action, text, ids, tok_logp[i, :n].tolist(), self.frame))
        return results

    def to_pixels(self, action: Action, width: int, height: int) -> Action:
        """Map an action in the model's frame back to the original screenshot's pixels."""
        if not action.is_valid:
            return action
        return action.to_frame(Frame.PIXEL, Screen(width, height, self.resize))

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Action:
        return self.generate([observation])[0].action

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]]) -> list[Action]:
        check_infos(observations, infos)  # the model reads observations only
        return [g.action for g in self.generate(observations)]
