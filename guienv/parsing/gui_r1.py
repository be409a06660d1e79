"""GUI-R1's own answer reader, rule for rule (the parser of the ``gui-r1`` reward preset).

Source: Luo et al., "GUI-R1: A Generalist R1-Style Vision-Language Action Model For GUI Agents",
arXiv 2504.10458; repository ``ritzz-ai/GUI-R1``, file ``verl/utils/reward_score/r1gui.py``
(``extract_action``, ``extract_input_text``, ``extract_coord``, ``r1gui_format_reward``). Its
answers look like ``<think>...</think><answer>[{'action': 'click', 'point': [x, y],
'input_text': 'no input text'}]</answer>``. The rules :func:`read_gui_r1` reproduces:

* Only the first ``<answer>...</answer>`` is read (no tag: action ``"no action"``, point
  ``(0, 0)``: the reference's fallback pattern does not compile, so it always falls back).
* The action is the first ``'action': '<word>'`` -- **single quotes only**, so JSON answers with
  double quotes have action ``"no action"``; the text is the first ``'input_text': '...'``
  (default ``"no input text"``).
* The point is read by the pattern ``{ ... [<int>, <int>] ... }`` on the answer (greedy: the
  last such pair on the line that still has a ``}`` after it); **non-negative integers only**;
  none found: ``(0, 0)``, which the reference then compares like any point.

:func:`gui_r1_format_ok` is the format rule: the whole completion is ``<think>...</think>``,
optional whitespace, ``<answer>...</answer>`` (nothing before or after), and the answer is a list
of dicts, each with a string ``action``, an ``int`` ``point[0]`` and ``point[1]`` and a string
``input_text``; ``type``/``select``/``open_app`` need a text other than ``"no input text"``,
``scroll`` one of ``left``/``right``/``up``/``down``. (An empty list passes.)

Two deliberate differences: the reference ``eval``-s the answer; guienv reads it with
``ast.literal_eval`` (never evaluates model text), which differs only for non-literal
expressions. And answers longer than ``MAX_ANSWER`` characters are unreadable here (the point
pattern backtracks polynomially on hostile text); GUI-R1's completions are far shorter.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Any

MAX_ANSWER = 2_000  # characters of <answer> content searched with the reference's patterns
NO_ACTION = "no action"
NO_TEXT = "no input text"
_ACTION = re.compile(r"'action':\s*'(\w+)'")
_TEXT = re.compile(r"'input_text':\s*'(.*?)'")
_POINT = re.compile(r"\{.*\[(\d+),\s*(\d+)]\s*.*\}")
_SCROLL_TEXTS = ("left", "right", "up", "down")


@dataclass(frozen=True)
class GuiR1Answer:
    """What GUI-R1's reward reads from a completion (see the module doc)."""

    action: str = NO_ACTION  # lower-cased action name
    point: tuple[int, int] = (0, 0)
    input_text: str = NO_TEXT
    point_found: bool = False


def _answer(text: str) -> str | None:
    a = text.find("<answer>")
    if a < 0:
        return None
    b = text.find("</answer>", a + 8)
    return None if b < 0 else text[a + 8 : b].strip()


def read_gui_r1(text: Any) -> GuiR1Answer:
    """GUI-R1's reading of ``text``; never raises."""
    if not isinstance(text, str):
        return GuiR1Answer()
    answer = _answer(text)
    if answer is None or len(answer) > MAX_ANSWER:
        return GuiR1Answer()
    m = _ACTION.search(answer)
    t = _TEXT.search(answer)
    p = _POINT.search(answer)
    point = (int(p.group(1)), int(p.group(2))) if p else (0, 0)
    return GuiR1Answer(m.group(1).lower() if m else NO_ACTION, point, t.group(1) if t else NO_TEXT, p is not None)


def _outer_ok(text: str) -> bool:
    """``<think>.*?</think>\\s*<answer>.*?</answer>`` matches the whole text (linear scan)."""
    if not (text.startswith("<think>") and text.endswith("</answer>")):
        return False
    end = len(text) - len("</answer>")
    pos = len("<think>")
    while True:
        i = text.find("</think>", pos)
        if i < 0:
            return False
        j = i + len("</think>")
        while j < len(text) and text[j].isspace():
            j += 1
        if text.startswith("<answer>", j) and j + len("<answer>") <= end:
            return True
        pos = i + 1


def gui_r1_format_ok(text: Any) -> bool:
    """GUI-R1's 0/1 format rule (see the module doc); never raises."""
    if not isinstance(text, str) or not _outer_ok(text):
        return False
    answer = _answer(text)
    if answer is None or len(answer) > MAX_ANSWER:
        return False
    try:
        actions = ast.literal_eval(answer)
        if not isinstance(actions, list):
            return False
        for a in actions:
            if not isinstance(a, dict) or not all(k in a for k in ("action", "point", "input_text")):
                return False
            if not isinstance(a["action"], str) or not isinstance(a["input_text"], str):
                return False
            if not (isinstance(a["point"][0], int) and isinstance(a["point"][1], int)):
                return False
            if a["action"] in ("type", "select", "open_app") and a["input_text"] == NO_TEXT:
                return False
            if a["action"] == "scroll" and a["input_text"] not in _SCROLL_TEXTS:
                return False
        return True
    except Exception:  # noqa: BLE001 - the reference's rule: any failure fails the format
        return False
