"""GUI-G1's own answer reader, rule for rule (the ``strict`` parser of the ``gui-g1`` reward preset).

Source: Zhou et al., "GUI-G1: Understanding R1-Zero-Like Training for Visual Grounding in GUI
Agents", arXiv 2505.15810; repository ``Yuqi-Zhou/GUI-G1``, file
``src/open-r1-multimodal/src/open_r1/grpo_rec.py`` (``parse_json`` and the ``hit``/``iou``/``box``
reward functions). Its rules, which :func:`read_gui_g1_box` reproduces:

1. If some line of the completion is exactly ```` ```json ```` (no leading/trailing spaces), the
   text is what follows that first such line, up to the next ```` ``` ````; otherwise the whole
   completion is used. Nothing else is unwrapped: ``<answer>`` tags, ``<think>`` blocks, prose, an
   unlabelled ```` ``` ```` fence or ```` ```JSON ```` all make the answer unreadable.
2. That text is read as one **Python literal** (``ast.literal_eval``): ``true``/``false``/``null``
   (JSON spellings) are not Python literals, so JSON using them is unreadable; single quotes and
   tuples are fine.
3. The box is ``value[0]["bbox_2d"]``: the first element's ``bbox_2d`` (a dict keyed 0 works too,
   as indexing does); only its first four entries are used (longer lists are accepted).

Anything else scores 0 on every GUI-G1 term (the reference wraps each term in a bare ``except``).
guienv reads the first four entries as numbers (``int``/``float``; ``bool`` counts as 0/1 as in
Python arithmetic); other entry types score 0 (the reference would score some of them, e.g.
``complex`` in its box term: no grounding model writes those).

The lenient reader (:func:`guienv.parsing.parse_action`) accepts far more (tags, prose, JSON,
points); it is the ``lenient`` parser of :class:`rewards.composite.CompositeConfig`.
"""

from __future__ import annotations

import ast
import math
from typing import Any

from guienv.parsing.values import MAX_CHARS

FENCE = "```json"


def gui_g1_answer_text(text: str) -> str:
    """The part of ``text`` GUI-G1 reads as a literal (rule 1 of the module doc)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line == FENCE:
            return "\n".join(lines[i + 1 :]).split("```")[0]
    return text


def read_gui_g1_box(text: Any) -> tuple[float, float, float, float] | None:
    """The ``(x1, y1, x2, y2)`` GUI-G1's reward functions would read from ``text``, or None when
    they would score it 0 as unreadable. The numbers are returned as written (not validated: an
    inverted or non-finite box is the scorer's business). Never raises."""
    if not isinstance(text, str) or len(text) > MAX_CHARS:
        return None
    try:
        value = ast.literal_eval(gui_g1_answer_text(text))
        box = value[0]["bbox_2d"]
        nums = [box[i] for i in range(4)]
    except Exception:  # noqa: BLE001 - the reference's rule: any failure is an unreadable answer
        return None
    if not all(isinstance(v, (int, float)) for v in nums):
        return None
    try:
        out = tuple(float(v) for v in nums)
    except OverflowError:  # an integer beyond float range
        return None
    return out if all(not math.isnan(v) for v in out) else None  # type: ignore[return-value]
