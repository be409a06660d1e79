"""Scripted MiniWoB++ solvers that read target boxes from the DOM elements of the observation.

``oracle_action(task, obs)`` returns the next :class:`~guienv.actions.Action` (pixel frame of the
observation's screenshot) for ``click-button``, ``click-link``, ``click-checkboxes``,
``enter-text`` and ``focus-text``. It reads only ``obs["instruction"]`` (the ``#query``
utterance) and ``obs["elements"]`` (the JSON element list of :mod:`guienv.envs.appium_base`), so
it is an upper bound for agents that see the same observation, and a check that element boxes,
screenshot pixels and the driver's coordinates line up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from guienv.actions import Action

ORACLE_TASKS = ("click-button", "click-link", "click-checkboxes", "enter-text", "focus-text")


class OracleError(ValueError):
    """The observation does not contain what the solver needs (a wrong task or a broken page)."""


def _elements(obs: Mapping[str, Any]) -> list[dict[str, Any]]:
    return json.loads(obs["elements"])


def _centre(e: Mapping[str, Any]) -> tuple[float, float]:
    x1, y1, x2, y2 = e["box"]
    return (x1 + x2) / 2, (y1 + y2) / 2


def _quoted(utterance: str, task: str) -> str:
    m = re.search(r'"(.*)"', utterance)
    if not m:
        raise OracleError(f"{task}: no quoted target in the instruction {utterance!r}")
    return m.group(1)


def _click(e: Mapping[str, Any]) -> Action:
    return Action.click(*_centre(e))


def _find(elements, task: str, what: str, pred: Callable[[dict], bool]) -> dict[str, Any]:
    for e in elements:
        if pred(e):
            return e
    raise OracleError(f"{task}: no element for {what} among {len(elements)} elements")


def _click_button(obs) -> Action:
    target = _quoted(obs["instruction"], "click-button")
    els = _elements(obs)
    return _click(_find(els, "click-button", f"button {target!r}", lambda e: e["tag"] == "button" and e["text"] == target))


def _click_link(obs) -> Action:
    target = _quoted(obs["instruction"], "click-link")
    els = _elements(obs)
    return _click(_find(els, "click-link", f"link {target!r}",
                        lambda e: "alink" in e["classes"].split() and e["text"] == target))


def _click_checkboxes(obs) -> Action:
    m = re.match(r"Select (.*) and click Submit\.?$", obs["instruction"])
    if not m:
        raise OracleError(f"click-checkboxes: cannot read {obs['instruction']!r}")
    wanted = set() if m.group(1) == "nothing" else {w.strip() for w in m.group(1).split(",") if w.strip()}
    els = _elements(obs)
    for e in els:
        if e["tag"] == "label" and e["checkable"] and (e["text"] in wanted) != e["checked"]:
            return _click(e)
    return _click(_find(els, "click-checkboxes", "the Submit button", lambda e: e["tag"] == "button" and e["text"] == "Submit"))


def _enter_text(obs) -> Action:
    target = _quoted(obs["instruction"], "enter-text")
    els = _elements(obs)
    field = _find(els, "enter-text", "the text field", lambda e: e["editable"])
    if field["value"] != target:
        return Action.type_text(target, point=_centre(field))
    return _click(_find(els, "enter-text", "the Submit button", lambda e: e["tag"] == "button" and e["text"] == "Submit"))


def _focus_text(obs) -> Action:
    return _click(_find(_elements(obs), "focus-text", "the text field", lambda e: e["editable"]))


_SOLVERS = {
    "click-button": _click_button,
    "click-link": _click_link,
    "click-checkboxes": _click_checkboxes,
    "enter-text": _enter_text,
    "focus-text": _focus_text,
}


def oracle_action(task: str, obs: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> Action:
    """Next action of the scripted solver of ``task`` (raises :class:`OracleError` if unsolvable)."""
    try:
        solver = _SOLVERS[task]
    except KeyError:
        raise OracleError(f"no oracle for MiniWoB task {task!r}; have {ORACLE_TASKS}") from None
    return solver(obs)
