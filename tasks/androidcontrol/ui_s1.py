"""UI-S1's AndroidControl conversion: one JSONL line per episode, Qwen mobile_use actions.

**UI-S1 JSONL** (``X-PLUG/MobileAgent: UI-S1/datasets/android_control_evaluation_std.jsonl``), one
episode per line: ``{"goal", "is_successful", "steps": [{"action_content", "screenshot",
"step_instruction", "check_options"}], "episode_id"}``. ``action_content`` is Qwen's mobile_use
call: ``click``/``long_press`` (``coordinate``), ``type`` (``text``), ``open`` (``text``),
``swipe`` (``coordinate`` -> ``coordinate2``, the **finger** path), ``system_button`` (``button``
Back/Home/Enter), ``wait`` (``time``), ``terminate`` (``status``). ``check_options`` repeats the
action plus ``candidate_bbox`` for clicks (and sometimes for ``open``) and, for swipes, the
original AndroidControl ``direction``. UI-S1's converter draws vertical swipes against the
content direction (content ``down`` -> finger from 3/4 to 1/4 of the height) but horizontal ones
*with* it (``left`` -> finger from 3/4 to 1/4 of the width), so its horizontal paths contradict
the step instructions ("Swipe right to view the size" with direction ``left`` and a leftward
path); its own evaluator remarks, the other way round, that the vertical ones look inverted. This loader reads the scroll direction from
``check_options.direction`` and, when that is missing, inverts that drawing rule; the writer
reproduces it exactly. Screenshot paths in the real file are absolute (``/datasets/...``):
they are looked up under ``image_root`` by their trailing parts (``images/8193_0.png``, then
``8193_0.png``...), never outside it. UI-S1 has no screen sizes; they are read from the PNG
headers. ``long_press``'s ``time`` is not mapped (AndroidControl records no duration).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from guienv.actions import OPPOSITE, Action, ActionType, Box4
from guienv.errors import DataError
from guienv.io import resolve_inside, write_jsonl
from guienv.types import Episode, Step
from tasks.androidcontrol.actions import json_number, string_field
from tasks.androidcontrol.common import file_step, resolve_image, write_image

UI_S1_WAIT_SECONDS = 2  # UI-S1 writes every AndroidControl wait as {"action": "wait", "time": 2}


# -- UI-S1 JSONL ----------------------------------------------------------------------------------
def _finger_direction(start: Sequence[float], end: Sequence[float]) -> str:
    dx, dy = float(end[0]) - float(start[0]), float(end[1]) - float(start[1])
    if dx == 0 and dy == 0:
        raise ValueError("swipe start and end are the same point")
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def ui_s1_swipe(direction: str, width: int, height: int) -> tuple[list[float], list[float]]:
    """UI-S1's finger swipe for an AndroidControl scroll ``direction`` (see the module docstring):
    vertical against the content direction, horizontal along it, spanning the middle half."""
    w, h = float(width), float(height)
    paths = {
        "down": ([w / 2, h * 3 / 4], [w / 2, h / 4]),
        "up": ([w / 2, h / 4], [w / 2, h * 3 / 4]),
        "left": ([w * 3 / 4, h / 2], [w / 4, h / 2]),
        "right": ([w / 4, h / 2], [w * 3 / 4, h / 2]),
    }
    return paths[direction]


def _ui_s1_scroll_direction(start: Sequence[float], end: Sequence[float]) -> str:
    finger = _finger_direction(start, end)
    return OPPOSITE[finger] if finger in ("up", "down") else finger


def _point_of(raw: Mapping[str, Any], key: str) -> tuple[float, float]:
    v = raw.get(key)
    if not (isinstance(v, (list, tuple)) and len(v) == 2):
        raise ValueError(f"{key!r} must be [x, y], got {v!r}")
    out = []
    for c in v:
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c):
            raise ValueError(f"{key!r} must be two finite numbers, got {v!r}")
        out.append(float(c))
    return out[0], out[1]


def action_from_ui_s1(content: Mapping[str, Any], check: Mapping[str, Any] | None = None) -> Action:
    """A UI-S1 ``action_content`` (with its ``check_options``) as a pixel-frame :class:`Action`."""
    if not isinstance(content, Mapping):
        raise ValueError(f"action_content must be an object, got {type(content).__name__}")
    check = check if isinstance(check, Mapping) else {}
    kind = content.get("action")
    if kind in ("click", "long_press"):
        return Action(ActionType(kind), point=_point_of(content, "coordinate"))
    if kind == "type":
        point = _point_of(content, "coordinate") if "coordinate" in content else None
        return Action.type_text(string_field(content, "text"), point=point)
    if kind == "open":
        return Action.open_app(string_field(content, "text"))
    if kind == "swipe":
        direction = check.get("direction", content.get("direction"))
        if direction is None:
            direction = _ui_s1_scroll_direction(_point_of(content, "coordinate"), _point_of(content, "coordinate2"))
        return Action.scroll(str(direction))
    if kind == "system_button":
        button = string_field(content, "button").strip().lower()
        mapping = {"back": "navigate_back", "home": "navigate_home", "enter": "keyboard_enter"}
        if button not in mapping:
            raise ValueError(f"system_button {content.get('button')!r} has no AndroidControl counterpart")
        return Action.simple(mapping[button])
    if kind == "wait":
        return Action.simple("wait")
    if kind == "terminate":
        status = str(content.get("status", "success")).strip().lower()
        return Action.finish("complete" if status == "success" else "infeasible")
    raise ValueError(f"unknown UI-S1 action {kind!r}")


def _box_list(value: Any) -> tuple[Box4, ...]:
    if not isinstance(value, list):
        raise ValueError(f"candidate_bbox must be a list of [x1, y1, x2, y2], got {value!r}")
    out = []
    for b in value:
        if not (isinstance(b, list) and len(b) == 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in b)):
            raise ValueError(f"candidate box must be [x1, y1, x2, y2], got {b!r}")
        x1, y1, x2, y2 = (float(v) for v in b)
        if x2 < x1 or y2 < y1:
            raise ValueError(f"candidate box has x2 < x1 or y2 < y1: {b!r}")
        out.append((x1, y1, x2, y2))
    return tuple(out)


def _ints(values: Iterable[float]) -> list[int | float]:
    return [json_number(v) for v in values]


def ui_s1_step_record(step: Step, screenshot: str) -> dict[str, Any]:
    """One UI-S1 step object for ``step`` (pixel frame), its image stored at ``screenshot``."""
    a = step.action
    t = a.type
    if t in (ActionType.CLICK, ActionType.LONG_PRESS):
        content = {"action": t.value, "coordinate": _ints(a.point)}
        check = {"action": t.value, "candidate_bbox": [_ints(b) for b in step.candidates], "coordinate": _ints(a.point)}
    elif t is ActionType.TYPE:
        content = {"action": "type", "text": a.text}
        check = dict(content)
        if a.point is not None:  # guienv extension: AndroidControl's click-then-type `type` action
            content["coordinate"] = check["coordinate"] = _ints(a.point)
            check["candidate_bbox"] = [_ints(b) for b in step.candidates]
    elif t is ActionType.OPEN_APP:
        content = {"action": "open", "text": a.text}
        check = dict(content)
        if step.candidates:
            check["candidate_bbox"] = [_ints(b) for b in step.candidates]
    elif t in (ActionType.SCROLL, ActionType.SWIPE):
        # A finger swipe becomes the AndroidControl scroll it performs (content moves opposite).
        direction = a.direction if t is ActionType.SCROLL else OPPOSITE[a.swipe_direction()]
        start, end = ui_s1_swipe(direction, step.width, step.height)
        content = {"action": "swipe", "coordinate": start, "coordinate2": end}
        check = {"action": "swipe", "direction": direction}
    elif t in (ActionType.NAVIGATE_BACK, ActionType.NAVIGATE_HOME, ActionType.KEYBOARD_ENTER):
        button = {"navigate_back": "Back", "navigate_home": "Home", "keyboard_enter": "Enter"}[t.value]
        content = {"action": "system_button", "button": button}
        check = dict(content)
    elif t is ActionType.WAIT:
        content = {"action": "wait", "time": UI_S1_WAIT_SECONDS}
        check = dict(content)
    elif t is ActionType.FINISH:
        content = {"action": "terminate", "status": "success" if a.status == "complete" else "failure"}
        check = dict(content)
    else:
        raise ValueError(f"UI-S1 has no {t.value} action")
    return {"action_content": content, "screenshot": screenshot, "step_instruction": step.instruction or "", "check_options": check}


def _json_id(eid: str) -> int | str:
    return int(eid) if re.fullmatch(r"-?\d+", eid) else eid


def write_ui_s1_jsonl(episodes: Iterable[Episode], path: str | os.PathLike, *, image_dir: str = "images") -> int:
    """Write ``episodes`` as UI-S1 JSONL; screenshots go to ``<jsonl dir>/<image_dir>/<id>_<i>.png``
    (UI-S1's naming) and are referenced relative to the JSONL file. Returns episodes written."""
    path = Path(path)
    root = path.parent

    def rows() -> Iterator[dict[str, Any]]:
        for ep in episodes:
            steps = []
            for i, step in enumerate(ep.steps):
                rel = str(PurePosixPath(image_dir) / f"{ep.id}_{i}.png")
                write_image(step.image, resolve_inside(root, rel, where=str(path)))
                steps.append(ui_s1_step_record(step, rel))
            yield {"goal": ep.goal, "is_successful": bool(ep.extra.get("is_successful", True)), "steps": steps,
                   "episode_id": _json_id(ep.id)}

    return write_jsonl(path, rows())




# -- reading ----------------------------------------------------------------------------------------
def parse_ui_s1_episode(obj: Any, *, path: str, record: Any, root: Path, fallback_id: str) -> Episode:
    def err(msg: str, field_name: str | None = None, rec: Any = record) -> DataError:
        return DataError(path, msg, record=rec, field=field_name)

    if not isinstance(obj, Mapping):
        raise err(f"an episode is a JSON object, got {type(obj).__name__}")
    raw_id = obj.get("episode_id", fallback_id)
    if isinstance(raw_id, bool) or not isinstance(raw_id, (int, str)):
        raise err(f"episode_id must be an integer or string, got {raw_id!r}", "episode_id")
    eid = str(raw_id)
    rec = f"{record} (episode {eid})"
    goal = obj.get("goal")
    if not isinstance(goal, str):
        raise err(f"goal must be a string, got {goal!r}", "goal", rec)
    raw_steps = obj.get("steps")
    if not isinstance(raw_steps, list):
        raise err(f"steps must be a list, got {type(raw_steps).__name__}", "steps", rec)
    steps = []
    for i, s in enumerate(raw_steps):
        if not isinstance(s, Mapping):
            raise err("a step is a JSON object", f"steps[{i}]", rec)
        check = s.get("check_options", {})
        if not isinstance(check, Mapping):
            raise err("check_options must be an object", f"steps[{i}].check_options", rec)
        try:
            action = action_from_ui_s1(s.get("action_content"), check)
        except ValueError as exc:
            raise err(f"bad action {s.get('action_content')!r}: {exc}", f"steps[{i}].action_content", rec) from exc
        try:
            cands = _box_list(check["candidate_bbox"]) if "candidate_bbox" in check else ()
        except ValueError as exc:
            raise err(str(exc), f"steps[{i}].check_options.candidate_bbox", rec) from exc
        instruction = s.get("step_instruction")
        if instruction is not None and not isinstance(instruction, str):
            raise err("step_instruction must be a string", f"steps[{i}].step_instruction", rec)
        fname = f"steps[{i}].screenshot"
        where = f"{path}, record {rec}, field {fname!r}"
        image = resolve_image(root, s.get("screenshot"), where, fname)
        raw = {"action_content": dict(s["action_content"]), "check_options": dict(check)}
        steps.append(file_step(image, action, raw, instruction, cands, where))
    extra = {"source": path, "record": record, "format": "ui-s1"}
    if "is_successful" in obj:
        extra["is_successful"] = obj["is_successful"]
    return Episode(id=eid, goal=goal, steps=tuple(steps), extra=extra)
