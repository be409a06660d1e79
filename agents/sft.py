"""Supervised warm-up before GRPO: teacher-forced cross-entropy on the ground-truth answer.

R1-style GUI training usually starts RL from an instruction-tuned model; a random-init or weak
model first needs to learn the answer *format* or every GRPO group scores 0 (zero variance, no
signal). ``sft_steps`` of plain next-token cross-entropy on the ground-truth answer, written in the
exact format and coordinate frame the prompt template asks for, fix that:

* grounding + ``gui-g1`` template: GUI-G1's ``[{"bbox_2d": [x1, y1, x2, y2]}]`` (arXiv
  2505.15810; repository ``Yuqi-Zhou/GUI-G1``, ``src/open-r1-multimodal/src/open_r1/grpo_rec.py``)
  with the GT box in the model's frame (Qwen2.5-VL: pixels of the smart-resized image);
* other templates: Qwen's ``mobile_use`` JSON action (``{"action": "click", "coordinate": [x, y]}``;
  a grounding target becomes a click at the box centre), ``scroll`` written as the finger swipe
  that performs it (:func:`guienv.actions.scroll_to_swipe`).

The answer ends with the tokenizer's EOS (``<|im_end|>``), which is part of the target. The loss is
the token mean over the global batch (same distributed scaling as :mod:`agents.grpo`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agents.distributed import DistInfo
from agents.micro_batch import gradient_sync, micro_batches
from agents.policy import Policy
from agents.train_prompts import TrainPrompt
from guienv.actions import Action, ActionType, scroll_to_swipe
from guienv.frames import Frame, Resize, Screen
from guienv.types import GroundingSample, Step

if TYPE_CHECKING:
    import torch


@dataclass
class SFTConfig:
    """SFT warm-up settings (YAML block ``sft:``); ``steps = 0`` skips the warm-up."""

    steps: int = 0
    batch_size: int = 8  # global
    micro_batch_size: int = 8
    lr: float = 1e-4
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    warmup_steps: int = 0
    schedule: str = "constant"  # constant | cosine (decays to 0 at the last SFT step)
    adam_betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"sft.schedule must be 'constant' or 'cosine', got {self.schedule!r}")


def _r(v: float) -> int:
    return int(round(v))


def action_answer(action: Action, screen: Screen, frame: Frame) -> str:
    """``action`` (any frame of ``screen``) as a Qwen ``mobile_use`` JSON answer in ``frame``."""
    if action.type is ActionType.SCROLL:
        action = scroll_to_swipe(action, screen)
    a = action.to_frame(frame, screen) if action.frame is not frame else action
    t = a.type
    pt = lambda p: [_r(p[0]), _r(p[1])]  # noqa: E731
    if t in (ActionType.CLICK, ActionType.LONG_PRESS):
        d: dict[str, Any] = {"action": t.value, "coordinate": pt(a.point)}
    elif t is ActionType.BOX:
        d = {"action": "click", "coordinate": pt(a.target)}
    elif t is ActionType.SWIPE:
        if a.point is None or a.end is None:
            raise ValueError("a swipe answer needs start and end points")
        d = {"action": "swipe", "coordinate": pt(a.point), "coordinate2": pt(a.end)}
    elif t is ActionType.TYPE:
        d = {"action": "type", "text": a.text}
    elif t is ActionType.OPEN_APP:
        d = {"action": "open", "text": a.text}
    elif t in (ActionType.NAVIGATE_BACK, ActionType.NAVIGATE_HOME, ActionType.KEYBOARD_ENTER):
        d = {"action": "system_button", "button": {"navigate_back": "Back", "navigate_home": "Home", "keyboard_enter": "Enter"}[t.value]}
    elif t is ActionType.WAIT:
        d = {"action": "wait"}
    elif t is ActionType.FINISH:
        d = {"action": "terminate", "status": "success" if a.status == "complete" else "failure"}
    else:
        raise ValueError(f"no answer format for a {t.value} action")
    return json.dumps(d)


def target_answer(task: TrainPrompt, frame: Frame, resize: Resize) -> str:
    """The ground-truth answer of ``task`` in the format its template asks for."""
    tgt = task.target
    screen = Screen(int(tgt.width), int(tgt.height), resize)
    if isinstance(tgt, GroundingSample):
        box = Action.box_answer(tgt.box).to_frame(frame, screen).box
        if task.template.startswith("gui-g1"):
            return json.dumps([{"bbox_2d": [_r(v) for v in box]}])
        return action_answer(Action.box_answer(tgt.box), screen, frame)
    if isinstance(tgt, Step):
        return action_answer(tgt.action, screen, frame)
    raise TypeError(f"task {task.id}: no SFT answer for a {type(tgt).__name__} target")


class SFTTrainer:
    """Cross-entropy warm-up steps on :class:`~agents.train_prompts.TrainPrompt` prompts."""

    def __init__(self, policy: Policy, config: SFTConfig, tasks: Sequence[TrainPrompt], optimizer: torch.optim.Optimizer, *,
                 dist: DistInfo | None = None, train_model: Any = None, autocast: torch.dtype | None = None):
        self.policy = policy
        self.config = config
        self.tasks = list(tasks)
        self.optimizer = optimizer
        self.dist = dist or DistInfo(device=str(policy.device))
        self.train_model = train_model if train_model is not None else policy.model
        self.autocast = autocast
        tok = policy.tokenizer
        self._answers: dict[int, list[int]] = {}
        self._eos = [int(tok.eos_token_id)]

    def prompt(self, i: int) -> Any:
        """The encoded prompt of sample ``i``."""
        return self.policy.encode(self.tasks[i])

    def answer_ids(self, i: int) -> list[int]:
        if i not in self._answers:
            text = target_answer(self.tasks[i], self.policy.frame, self.policy.resize)
            self._answers[i] = self.policy.tokenizer(text, add_special_tokens=False)["input_ids"] + self._eos
        return self._answers[i]

    def step(self, sampler: Callable[[int], list[int]]) -> dict[str, float]:
        import torch

        cfg, d = self.config, self.dist
        ids = sampler(cfg.batch_size)
        lo, hi = d.shard(len(ids))
        mine = ids[lo:hi]
        answers = [self.answer_ids(i) for i in mine]
        n_tok = float(sum(len(a) for a in answers))
        (glob_tok,) = d.all_reduce_sum([n_tok])
        mbs = micro_batches(len(mine), cfg.micro_batch_size)
        self.train_model.train()
        self.optimizer.zero_grad(set_to_none=True)
        total = correct = 0.0
        for j, mb in enumerate(mbs):
            last = j == len(mbs) - 1
            with gradient_sync(self.train_model, last), (torch.autocast(self.policy.device.type, dtype=self.autocast) if self.autocast else contextlib.nullcontext()):
                prompts = [self.prompt(mine[r]) for r in mb]
                logp, mask = self.policy.token_logprobs(self.train_model, prompts, [answers[r] for r in mb])
                loss_sum = -(logp * mask).sum()
                (loss_sum / glob_tok * d.world).backward()
                total += float(loss_sum.detach())
                with torch.no_grad():  # token accuracy proxy: every answer token has logp > log(0.5)
                    correct += float(((logp > -0.6931).float() * mask).sum())
        params = [p for p in self.policy.model.parameters() if p.requires_grad]
        gn = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm if cfg.max_grad_norm is not None else float("inf"))
        self.optimizer.step()
        total, correct = d.all_reduce_sum([total, correct])
        return {"sft_loss": total / glob_tok, "sft_token_acc": correct / glob_tok, "grad_norm": float(gn),
                "lr": float(self.optimizer.param_groups[0]["lr"])}


class DemoSFTTrainer(SFTTrainer):
    """The warm-up on expert demonstrations of multi-turn tasks (:class:`agents.experts.Demonstration`:
    an encoded prompt and the answer text): same loss and batching as :class:`SFTTrainer`."""

    def prompt(self, i: int) -> Any:
        return self.tasks[i].prompt

    def answer_ids(self, i: int) -> list[int]:
        if i not in self._answers:
            ids = self.policy.tokenizer(self.tasks[i].answer, add_special_tokens=False)["input_ids"]
            self._answers[i] = list(ids) + self._eos
        return self._answers[i]
