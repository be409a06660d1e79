"""Training prompts: what one GRPO/SFT sample shows the model and what its reward scores against."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from guienv.actions import Action


@dataclass(frozen=True)
class Task:
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


def grounding_task(sample: Any, weight: float = 1.0, template: str = "gui-g1") -> Task:
    """A :class:`~guienv.types.GroundingSample` as a one-image task."""
    return Task(sample.id, (sample.image,), {"instruction": sample.instruction}, sample, template, float(weight))


def _history_text(actions: Sequence[Action]) -> str:
    import json

    return "\n".join(f"{i + 1}. {json.dumps(a.to_dict())}" for i, a in enumerate(actions))


def episode_tasks(episode: Any, template: str = "androidcontrol-low", history_images: int = 0) -> list[Task]:
    """One task per step of an :class:`~guienv.types.Episode`: the goal, the step instruction, the
    recorded actions so far as text and, with ``history_images = k``, the k previous screenshots as
    extra images (multi-image prompt)."""
    out = []
    steps = episode.steps
    for i, step in enumerate(steps):
        prev = [s.image for s in steps[max(0, i - history_images):i]] if history_images else []
        hist = tuple(s.action for s in steps[:i])
        fields = {"goal": episode.goal, "instruction": step.instruction or "", "history": _history_text(hist)}
        out.append(Task(f"{episode.id}:{i}", tuple(prev) + (step.image,), fields, step, template, 1.0, episode.goal, hist))
    return out
