"""Prompt templates by name.

Each template turns an observation into chat messages (one image slot) and names the coordinate
frame its answers are expected in relative to the model family (REFERENCE.md sections 1-2, 6).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Messages = list[dict[str, Any]]


def _user(text: str, image_first: bool = True) -> Messages:
    content = [{"type": "image"}, {"type": "text", "text": text}]
    return [{"role": "user", "content": content if image_first else content[::-1]}]


def _gui_g1_text(obs: Mapping[str, Any]) -> str:
    return f"Grounding instruction is: {obs['instruction']}. Report the bbox coordinates in JSON format."


def gui_g1(obs: Mapping[str, Any]) -> Messages:
    """GUI-G1's fast grounding template (no chain of thought); answer ``[{"bbox_2d": [...]}]``."""
    return _user(_gui_g1_text(obs))


def gui_g1_text_first(obs: Mapping[str, Any]) -> Messages:
    """GUI-G1's template with the instruction before the screenshot.

    Same words and answer. Models trained from scratch (the tiny demo model) learn grounding much
    faster this way: with the image last, the M-RoPE offset between the answer tokens and each
    image row no longer depends on the instruction's length, and the image tokens can attend to
    the instruction (causal attention). Pretrained Qwen2.5-VL checkpoints expect ``gui-g1``."""
    return _user(_gui_g1_text(obs), image_first=False)


ANDROID_ACTIONS = (
    'Answer with one JSON action: {"action": "click", "coordinate": [x, y]}, '
    '{"action": "long_press", "coordinate": [x, y]}, {"action": "swipe", "coordinate": [x, y], '
    '"coordinate2": [x, y]}, {"action": "type", "text": "..."}, {"action": "open", "text": "app"}, '
    '{"action": "system_button", "button": "Back|Home|Enter"}, {"action": "wait"}, '
    '{"action": "terminate", "status": "success|failure"}.'
)


def androidcontrol_low(obs: Mapping[str, Any]) -> Messages:
    """AndroidControl low-level: goal + the step instruction."""
    return _user(
        f"Goal: {obs['goal']}\nStep instruction: {obs['instruction']}\n"
        f"Previous actions:\n{obs.get('history') or '(none)'}\n{ANDROID_ACTIONS}"
    )


def androidcontrol_high(obs: Mapping[str, Any]) -> Messages:
    """AndroidControl high-level: goal + action history only."""
    return _user(f"Goal: {obs['goal']}\nPrevious actions:\n{obs.get('history') or '(none)'}\n{ANDROID_ACTIONS}")


def synthapp(obs: Mapping[str, Any]) -> Messages:
    """SynthApp tasks: the goal; answer with one action (a click point for grounding tasks)."""
    return _user(f"Task: {obs['instruction']}\n{ANDROID_ACTIONS}")


TEMPLATES: dict[str, Callable[[Mapping[str, Any]], Messages]] = {
    "gui-g1": gui_g1,
    "gui-g1-text-first": gui_g1_text_first,
    "androidcontrol-low": androidcontrol_low,
    "androidcontrol-high": androidcontrol_high,
    "synthapp": synthapp,
}


def render(template: str, obs: Mapping[str, Any]) -> Messages:
    if template not in TEMPLATES:
        raise ValueError(f"unknown prompt template {template!r}; known: {sorted(TEMPLATES)}")
    return TEMPLATES[template](obs)
