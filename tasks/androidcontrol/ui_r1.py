"""UI-R1's AndroidControl conversion: a JSON list of per-step records.

**UI-R1 JSON** (``lll6gg/UI-R1: dataset/ac_test.json``): a list of per-step records
``{"image": "episode_<id>-screenshot_<i>.png", "gt": <AndroidControl action JSON>, "task": <step
instruction>}``. Steps are grouped into episodes by an ``episode_id`` field when present, else
by the ``episode_<id>-screenshot_<i>`` file name, and ordered by the screenshot index; records
with neither become one-step episodes. The file has no goal (``Episode.goal`` is ``""`` unless a
record carries ``goal``), keeps only a subset of each episode's steps
(``Episode.extra["step_indices"]`` lists which) and has no candidate boxes.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from guienv.errors import DataError
from guienv.io import resolve_inside
from guienv.types import Episode
from tasks.androidcontrol.actions import action_from_androidcontrol, action_to_androidcontrol
from tasks.androidcontrol.common import file_step, resolve_image, write_image

_UI_R1_NAME = re.compile(r"episode_([^/\\]+?)-screenshot_(\d+)\.\w+$")


def write_ui_r1_json(episodes: Iterable[Episode], path: str | os.PathLike, *, image_dir: str | os.PathLike | None = None) -> int:
    """Write ``episodes`` as a UI-R1 ``ac_test.json``-style list; screenshots go to ``image_dir``
    (default: the JSON file's directory; load with ``image_root=image_dir``) as
    ``episode_<id>-screenshot_<i>.png``. Returns the number of step records."""
    path = Path(path)
    image_root = Path(image_dir) if image_dir is not None else path.parent
    records = []
    for ep in episodes:
        for i, step in enumerate(ep.steps):
            name = f"episode_{ep.id}-screenshot_{i}.png"
            write_image(step.image, resolve_inside(image_root, name, where=str(path)))
            records.append({"image": name, "gt": action_to_androidcontrol(step.action), "task": step.instruction or ""})
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    return len(records)




def _ui_r1_key(rec: Mapping[str, Any], idx: int, stem: str) -> tuple[str, int]:
    """(episode id, step order) of a UI-R1 record."""
    image = rec.get("image")
    m = _UI_R1_NAME.search(image) if isinstance(image, str) else None
    if "episode_id" in rec and not isinstance(rec["episode_id"], bool) and isinstance(rec["episode_id"], (int, str)):
        order = rec.get("step_id", int(m.group(2)) if m else idx)
        return str(rec["episode_id"]), order if isinstance(order, int) and not isinstance(order, bool) else idx
    if m:
        return m.group(1), int(m.group(2))
    return f"{stem}[{idx}]", 0


def parse_ui_r1_records(
    records: list[tuple[int, Any]], *, path: str, root: Path, skip: Callable[..., None]
) -> list[Episode]:
    """The episodes of a file's UI-R1 step records. A bad record costs its whole episode, so
    ``skip(error, records=, episodes=)`` (raising or collecting) is told how many steps went."""
    stem = Path(path).name
    groups: dict[str, list[tuple[int, int, Mapping]]] = {}
    for idx, rec in records:
        if not isinstance(rec, Mapping):
            # no episode key to group it by: one record lost, its episode (if any) loads without it
            skip(DataError(path, f"a UI-R1 record is a JSON object, got {type(rec).__name__}", record=idx), episodes=0)
            continue
        eid, order = _ui_r1_key(rec, idx, stem)
        groups.setdefault(eid, []).append((order, idx, rec))
    episodes = []
    for eid, items in groups.items():
        items.sort(key=lambda t: (t[0], t[1]))
        try:
            steps, orders, goal = [], [], ""
            for order, idx, rec in items:
                rlabel = f"{idx} (episode {eid})"
                try:
                    action = action_from_androidcontrol(rec.get("gt"))
                except ValueError as exc:
                    raise DataError(path, f"bad action {rec.get('gt')!r}: {exc}", record=rlabel, field="gt") from exc
                task = rec.get("task")
                if task is not None and not isinstance(task, str):
                    raise DataError(path, "task must be a string", record=rlabel, field="task")
                if isinstance(rec.get("goal"), str):
                    goal = rec["goal"]
                where = f"{path}, record {rlabel}, field 'image'"
                image = resolve_image(root, rec.get("image"), where, "image")
                steps.append(file_step(image, action, dict(rec["gt"]), task, (), where))
                orders.append(order)
        except DataError as e:
            lost = DataError(e.path, f"{e.detail} (episode {eid} dropped: all {len(items)} records of it)",
                             record=e.record, field=e.field)
            lost.__cause__ = e
            skip(lost, records=len(items), episodes=1)
            continue
        episodes.append(Episode(id=eid, goal=goal, steps=tuple(steps),
                                extra={"source": path, "format": "ui-r1", "step_indices": tuple(orders)}))
    return episodes
