"""Prompt templates by name, and the one builder of a step's prompt.

Each template turns a step's text fields into chat messages with one image slot (the screen acted
on); the text templates (``text``, ``alfworld``) turn a text env's view
(:class:`guienv.history.History`) into messages without one. :func:`step_messages` adds the slots and intro sentence of previous screens, and
:func:`history_text` writes the action history; training (``agents.train_prompts`` +
``agents.policy.Policy.messages``), the AndroidControl env observation (what ``guienv eval`` prompts
from) and the agents (``agents.qwen.QwenAgent.prompt``, ``agents.api.ApiAgent.messages``) all build
their prompts with these functions, so a model trained with ``guienv train`` sees the same prompt
under ``guienv eval`` (before, training numbered the history in pixels and the env wrote unnumbered
lines in its ``text_frame``). See ``docs/prompts.md``.

Sources: GUI-G1's grounding prompt (Zhou et al., "GUI-G1: Understanding R1-Zero-Like Training for
Visual Grounding in GUI Agents", arXiv 2505.15810; repository ``Yuqi-Zhou/GUI-G1``,
``src/open-r1-multimodal/src/open_r1/grpo_rec.py``); AndroidControl's low/high settings (Li et al.,
"On the Effects of Data Scale on UI Control Agents", arXiv 2406.03679); the coordinate
frames of Qwen2.5-VL / Qwen2-VL answers (repository ``QwenLM/Qwen2.5-VL``,
``qwen-vl-utils/src/qwen_vl_utils/vision_process.py`` ``smart_resize``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from guienv.actions import Action
from guienv.frames import Frame, Screen

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
    """SynthApp tasks: the goal, then "Previous actions:" (the view's ``history``) and the invalid
    action ``feedback`` when the view has them; answer with one action (a click point for
    grounding tasks). Without history and feedback the text is the one-step prompt."""
    parts = [f"Task: {obs['instruction']}"]
    if obs.get("history"):
        parts.append(f"Previous actions:\n{obs['history']}")
    if obs.get("feedback"):
        parts.append(str(obs["feedback"]))
    return _user("\n".join(parts + [ANDROID_ACTIONS]))


def synthapp_short(obs: Mapping[str, Any]) -> Messages:
    """:func:`synthapp`'s task, history and feedback without the list of action formats, the
    screenshot after the text (what :func:`gui_g1_text_first` does for grounding). For models
    trained from scratch (the tiny CPU model, ``configs/multiturn_synthapp.yaml``): the prompt is a
    third as long and the warm-up teaches the answer format. Pretrained checkpoints keep ``synthapp``."""
    parts = [f"Task: {obs['instruction']}"]
    if obs.get("history"):
        parts.append(f"Previous actions:\n{obs['history']}")
    if obs.get("feedback"):
        parts.append(str(obs["feedback"]))
    return _user("\n".join(parts + ["Answer with one JSON action."]), image_first=False)


# -- text envs (views of guienv.history.History: observation, task, admissible_commands, history, step)
def _text_user(text: str) -> Messages:
    return [{"role": "user", "content": [{"type": "text", "text": text}]}]


def _history_pairs(history: Any, step: int) -> str:
    """verl-agent's history lines: ``[Observation k: '...', Action k: '...']`` numbered by the
    absolute step (the last pair is step ``step``)."""
    pairs = list(history or ())
    return "".join(f"\n[Observation {step - len(pairs) + i + 1}: '{o}', Action {step - len(pairs) + i + 1}: '{a}']"
                   for i, (o, a) in enumerate(pairs))


# The closing part both of verl-agent's ALFWorld prompts share.
_ALFWORLD_TURN = (
    "Your admissible actions of the current situation are: [{admissible}].\n\n"
    "Now it's your turn to take an action.\n"
    "You should first reason step-by-step about the current situation. This reasoning process MUST be "
    "enclosed within <think> </think> tags.\n"
    "Once you've finished your reasoning, you should choose an admissible action for current step and "
    "present it within <action> </action> tags."
)
ALFWORLD_PROMPT_NO_HISTORY = (
    "You are an expert agent operating in the ALFRED Embodied Environment.\n"
    "Your current observation is: {observation}\n"
    + _ALFWORLD_TURN
)
ALFWORLD_PROMPT = (
    "You are an expert agent operating in the ALFRED Embodied Environment. Your task is to: {task}\n"
    "Prior to this step, you have already taken {step} step(s). Below are the most recent {n_history} "
    "observations and the corresponding actions you took: {history}\n"
    "You are now at step {current} and your current observation is: {observation}\n"
    + _ALFWORLD_TURN
)


def alfworld_prompt(task: str, observation: str, admissible: Sequence[str], history: Sequence[tuple[str, str]] = (),
                    step: int = 0) -> str:
    """verl-agent's ALFWorld prompt (repository ``langfengQ/verl-agent``,
    ``agent_system/environments/prompts/alfworld.py``: ``ALFWORLD_TEMPLATE_NO_HIS`` at step 0,
    ``ALFWORLD_TEMPLATE`` after), ``<think>``/``<action>`` format; ``history`` is the recent
    ``(observation, action)`` pairs, ``step`` the steps taken so far."""
    adm = ", ".join(f"'{a}'" for a in admissible)
    if step == 0:
        return ALFWORLD_PROMPT_NO_HISTORY.format(observation=observation, admissible=adm)
    return ALFWORLD_PROMPT.format(task=task, step=step, n_history=len(history), history=_history_pairs(history, step),
                                  current=step + 1, observation=observation, admissible=adm)


def _text_view(view: Mapping[str, Any]) -> tuple[str, list[str], int]:
    if not isinstance(view.get("observation"), str):
        raise ValueError("text templates need a text view (guienv.history.History of a text env) with a string "
                         f"'observation', got {type(view.get('observation')).__name__}")
    step = view.get("step") or 0
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"text view 'step' must be a non-negative integer, got {step!r}")
    return view["observation"], [str(a) for a in view.get("admissible_commands") or ()], step


def alfworld(view: Mapping[str, Any]) -> Messages:
    """ALFWorld: :func:`alfworld_prompt` of a text view, then the invalid-action ``feedback``."""
    obs, admissible, step = _text_view(view)
    text = alfworld_prompt(str(view.get("task") or ""), obs, admissible, list(view.get("history") or ()), step)
    if view.get("feedback"):
        text = f"{view['feedback']}\n{text}"
    return _text_user(text)


def text(view: Mapping[str, Any]) -> Messages:
    """A generic text env (the MDP env, WebShop): task, recent history (verl-agent's numbered
    pairs), the current observation, the admissible actions; answer with ``<action>name</action>``."""
    obs, admissible, step = _text_view(view)
    parts = []
    if view.get("task"):
        parts.append(f"Task: {view['task']}")
    history = list(view.get("history") or ())
    if history:
        parts.append(f"Your most recent {len(history)} observation(s) and action(s):{_history_pairs(history, step)}")
    parts.append(f"Step {step + 1}. Current observation: {obs}")
    if admissible:
        parts.append("Admissible actions: [" + ", ".join(f"'{a}'" for a in admissible) + "].")
    if view.get("feedback"):
        parts.append(str(view["feedback"]))
    parts.append("Answer with one admissible action inside <action> </action> tags, e.g. "
                 f"<action>{admissible[0] if admissible else 'name'}</action>.")
    return _text_user("\n".join(parts))


TEMPLATES: dict[str, Callable[[Mapping[str, Any]], Messages]] = {
    "gui-g1": gui_g1,
    "gui-g1-text-first": gui_g1_text_first,
    "androidcontrol-low": androidcontrol_low,
    "androidcontrol-high": androidcontrol_high,
    "synthapp": synthapp,
    "synthapp-short": synthapp_short,
}
# Templates of text views (guienv.history.History of a text env): no image slot.
TEXT_TEMPLATES: dict[str, Callable[[Mapping[str, Any]], Messages]] = {"text": text, "alfworld": alfworld}


def render(template: str, obs: Mapping[str, Any]) -> Messages:
    """``template``'s messages for the text fields in ``obs`` (one image slot; none for the text
    templates :data:`TEXT_TEMPLATES`)."""
    fn = TEMPLATES.get(template) or TEXT_TEMPLATES.get(template)
    if fn is None:
        raise ValueError(f"unknown prompt template {template!r}; known: {sorted(TEMPLATES) + sorted(TEXT_TEMPLATES)}")
    return fn(obs)


# -- history and previous screens ------------------------------------------------------------------
def history_text(actions: Sequence[Action], screens: Sequence[Screen], frame: Frame | str = Frame.PIXEL) -> str:
    """The earlier actions of an episode as prompt text: one numbered line per action, oldest
    first, ``"1. {guienv action JSON}"``, coordinates in ``frame`` of the action's own screen
    (``screens[i]``, its size and resize rule); ``""`` without actions.

    ``frame`` is the frame the policy answers in (``Frame.RESIZED`` for Qwen2.5-VL, with the
    agent's pixel bounds in the screens' :class:`~guienv.frames.Resize`), so the history reads like
    the model's own answers. Numbers make the order explicit and let a long history be referred
    to by step."""
    if len(actions) != len(screens):
        raise ValueError(f"history_text needs one screen per action, got {len(actions)} actions, {len(screens)} screens")
    frame = Frame(frame)
    lines = []
    for i, (action, screen) in enumerate(zip(actions, screens)):
        if action.is_valid and (action.point or action.end or action.box):  # only coordinates carry a frame
            action = action.to_frame(frame, screen)
        lines.append(f"{i + 1}. {json.dumps(action.to_dict(), ensure_ascii=False)}")
    return "\n".join(lines)


def previous_screens_intro(n: int) -> str:
    """The sentence after ``n`` previous screens, before the template's own content."""
    return f"(The {n} image(s) above are the previous screens, oldest first; the next image is the current screen.)"


def step_messages(template: str, fields: Mapping[str, Any], previous_screens: int = 0) -> Messages:
    """The chat messages of one step: ``template`` rendered with ``fields`` (``instruction``,
    ``goal``, ``history``) and, with ``previous_screens = k > 0``, k image slots plus
    :func:`previous_screens_intro` first in the last user turn (the acted-on screen keeps the
    template's slot). Images fill the slots in order: previous screens oldest first, then the
    current one (:func:`step_images`)."""
    msgs = render(template, fields)
    if previous_screens > 0 and template in TEXT_TEMPLATES:
        raise ValueError(f"template {template!r} is for text views and has no image slots; got {previous_screens} "
                         "previous screens")
    if previous_screens > 0:
        user = msgs[-1]
        intro = [{"type": "image"}] * previous_screens + [{"type": "text", "text": previous_screens_intro(previous_screens)}]
        msgs = msgs[:-1] + [{**user, "content": intro + list(user["content"])}]
    return msgs


def observation_messages(template: str, obs: Mapping[str, Any]) -> Messages:
    """:func:`step_messages` for an env observation or a :class:`guienv.history.History` view (its
    ``previous_screenshots``, when present, count as previous screens; a text view has none)."""
    return step_messages(template, obs, len(obs.get("previous_screenshots") or ()))


def step_images(obs: Mapping[str, Any]) -> list[np.ndarray]:
    """An observation's images in slot order: ``previous_screenshots`` (oldest first), then
    ``screenshot``; ``[]`` for a text view (no ``screenshot``)."""
    if "screenshot" not in obs:
        return []
    return [np.asarray(im) for im in obs.get("previous_screenshots") or ()] + [np.asarray(obs["screenshot"])]
