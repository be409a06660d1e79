"""Training prompts: what one GRPO/SFT sample shows the model and what its reward scores against.

The text fields come from the same builders the envs use (:func:`guienv.prompts.history_text`) and
:meth:`agents.policy.Policy.messages` renders them with :func:`guienv.prompts.step_messages`, the
function ``guienv eval``'s agents prompt with: training and evaluation see the same prompt for the
same step (``tests/guienv/test_prompts.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from guienv.frames import Frame, Resize, Screen
from guienv.prompts import history_text


@dataclass(frozen=True)
class TrainPrompt:
    """One training prompt: ``images`` (ImageRef or arrays; the last is the screen acted on, earlier
    ones are previous screens shown first), the template's text ``fields`` (``instruction``,
    ``goal``, ``history``), the ``target`` a reward scores against (a GroundingSample or Step),
    the template name and a per-sample loss ``weight``."""

    id: str
    images: tuple[Any, ...]
    fields: Mapping[str, str]
    target: Any
    template: str = "gui-g1"
    weight: float = 1.0
    goal: str = ""
    history: tuple[Any, ...] = ()  # recorded actions before this step (hybrid judge context)

    def load_images(self) -> list[np.ndarray]:
        return [np.asarray(im.load() if hasattr(im, "load") else im) for im in self.images]


def grounding_prompt(sample: Any, weight: float = 1.0, template: str = "gui-g1") -> TrainPrompt:
    """A :class:`~guienv.types.GroundingSample` as a one-image prompt."""
    return TrainPrompt(sample.id, (sample.image,), {"instruction": sample.instruction}, sample, template, float(weight))


def episode_prompts(episode: Any, template: str = "androidcontrol-low", history_images: int = 0, *,
                    frame: Frame | str = Frame.PIXEL, resize: Resize | None = None) -> list[TrainPrompt]:
    """One prompt per step of an :class:`~guienv.types.Episode`: the goal, the step instruction, the
    recorded actions so far as :func:`~guienv.prompts.history_text` in ``frame`` (the policy's
    frame; ``resize`` its pixel bounds) and, with ``history_images = k``, the k previous screenshots
    as extra images (multi-image prompt). ``mode="high"`` templates ignore the instruction, as the
    AndroidControl env in high mode leaves it empty."""
    out = []
    steps = episode.steps
    resize = resize or Resize()
    screens = [Screen(s.width, s.height, resize) for s in steps]
    for i, step in enumerate(steps):
        prev = [s.image for s in steps[max(0, i - history_images):i]] if history_images else []
        hist = tuple(s.action for s in steps[:i])
        fields = {"goal": episode.goal, "instruction": step.instruction or "",
                  "history": history_text(hist, screens[:i], frame)}
        out.append(TrainPrompt(f"{episode.id}:{i}", tuple(prev) + (step.image,), fields, step, template, 1.0,
                               episode.goal, hist))
    return out
