"""InfiGUI-R1's extraction of a ``mobile_use`` call from model text, rule for rule.

Follows ``Reallm-Labs/InfiGUI-R1: eval/android_control/android_control.py`` (``compute_scores``,
run with ``--thinking``): keep the text after the last ``</think>``; take what follows the first
``<tool_call>``, or else the text from the first ``{"name": "mobile_use", "arguments":``; cut at
the first ``</tool_call>``, or else at ``<conclusion>`` and after the last ``}}``; read it with
Python's ``json`` (which also accepts ``NaN``/``Infinity``) and take its ``arguments``. Whatever
fails on the way is an error there, which the evaluator counts as a wrong step (no type match):
:func:`parse_infigui_call` raises :class:`InfiguiParseError` with the reason instead. Nothing of
the argument object is checked here: the evaluator checks fields only where it reads them
(:mod:`rewards.infigui`).
"""

from __future__ import annotations

import json
from typing import Any

CALL_PREFIX = '{"name": "mobile_use", "arguments":'


class InfiguiParseError(ValueError):
    """The reference evaluator fails on this text (it counts the step wrong)."""


def parse_infigui_call(text: str) -> Any:
    """The ``arguments`` value of the call in ``text``, as InfiGUI-R1's evaluator reads it."""
    pred = text
    if "</think>" in pred:
        pred = pred.split("</think>")[-1]
    if "<tool_call>" in pred:
        pred = pred.split("<tool_call>")[1]
    elif CALL_PREFIX in pred:
        pred = CALL_PREFIX + pred.split(CALL_PREFIX, 1)[1]
    else:
        raise InfiguiParseError("no <tool_call> and no mobile_use call object")
    if "</tool_call>" in pred:
        pred = pred.split("</tool_call>")[0]
    else:
        pred = pred.split("<conclusion>")[0]
        pred = pred.rsplit("}}", 1)[0] + "}}"
    try:
        call = json.loads(pred.strip())
    except (ValueError, RecursionError) as exc:
        raise InfiguiParseError(f"call is not JSON ({exc})") from exc
    if not isinstance(call, dict):
        raise InfiguiParseError(f"call is a {type(call).__name__}, not an object")
    if "arguments" not in call:
        raise InfiguiParseError("call has no 'arguments'")
    return call["arguments"]
