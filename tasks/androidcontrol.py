"""AndroidControl episodes: the release's TFRecord shards and the two common JSON conversions.

AndroidControl (Li et al., "On the Effects of Data Scale on UI Control Agents", arXiv 2406.03679;
``google-research/google-research: android_control/README.md``; REFERENCE.md section 6).

**Release format.** GZIP TFRecord shards of ``tf.train.Example`` protos, one episode each, with
features ``episode_id`` (int64), ``goal`` (bytes), ``screenshots`` (PNG bytes),
``screenshot_widths``/``screenshot_heights`` (int64), ``accessibility_trees`` (serialized
``android_env.AndroidAccessibilityForest``), ``actions`` (JSON strings, one fewer than screenshots)
and ``step_instructions`` (one per action). Step ``i`` is screenshot ``i`` plus action ``i``; the
last screenshot (the screen after the last action) is kept in ``Episode.extra["final_image"]``.

Actions map to :class:`guienv.actions.Action` in the pixel frame: ``click``/``long_press`` (x, y),
``scroll`` -> ``ActionType.SCROLL`` keeping AndroidControl's direction, which is the direction the
**content** moves ("scroll down" = finger moves up), ``open_app`` (app_name), ``input_text``
(text), ``type`` (x, y, text: click then type; kept as a ``type`` action with a point),
``navigate_home``, ``navigate_back``, ``wait`` and ``keyboard_enter``. The JSON is kept verbatim
in ``Step.raw_action``.

**Candidate boxes** (what ``rewards.action_match`` counts as hitting the target). The public
conversions (UI-S1, InfiGUI-R1, both following Qwen2.5-VL's evaluation) carry ``candidate_bbox``:
boxes of accessibility elements that contain the ground-truth point, a few per step; their exact
filter is unpublished. guienv's rule (``candidate_mode``):

* ``"interactive"`` (default): visible elements with a positive area that contain the point and
  are clickable, editable, checkable or scrollable;
* ``"all"``: every visible element with a positive area that contains the point;
* ``"leaf"``: only the smallest such element.

In every mode boxes covering at least 95% of the screen are dropped (window roots and full-screen
containers would make any click "correct"), duplicates are merged and boxes are sorted smallest
first. For ``open_app`` the candidates are elements whose text or content description equals the
app name (the launcher icon; the Qwen/InfiGUI protocol accepts a click on the first one).

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

**UI-R1 JSON** (``lll6gg/UI-R1: dataset/ac_test.json``): a list of per-step records
``{"image": "episode_<id>-screenshot_<i>.png", "gt": <AndroidControl action JSON>, "task": <step
instruction>}``. Steps are grouped into episodes by an ``episode_id`` field when present, else
by the ``episode_<id>-screenshot_<i>`` file name, and ordered by the screenshot index; records
with neither become one-step episodes. The file has no goal (``Episode.goal`` is ``""`` unless a
record carries ``goal``), keeps only a subset of each episode's steps
(``Episode.extra["step_indices"]`` lists which) and has no candidate boxes.
"""

from __future__ import annotations

import glob as globlib
import io
import json
import logging
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any, Literal, overload

from PIL import Image, UnidentifiedImageError

from guienv.actions import OPPOSITE, Action, ActionType, Box4
from guienv.errors import DataError
from guienv.io import decode_image, encode_png, image_size, resolve_inside
from guienv.types import Episode, ImageRef, Step, UIElement
from tasks.tfrecord import RecordReader, decode_example, encode_example, iter_records, write_records

OnError = Literal["raise", "skip"]
CandidateMode = Literal["interactive", "all", "leaf"]
RELEASE_FEATURES = (
    "episode_id",
    "goal",
    "screenshots",
    "screenshot_widths",
    "screenshot_heights",
    "accessibility_trees",
    "actions",
    "step_instructions",
)
SPLIT_NAMES = ("train", "validation", "test")
SUBSPLIT_NAMES = ("IDD", "app_unseen", "task_unseen", "category_unseen")
WHOLE_SCREEN_FRACTION = 0.95
UI_S1_WAIT_SECONDS = 2  # UI-S1 writes every AndroidControl wait as {"action": "wait", "time": 2}
# Shards a directory is searched for; the release names them android_control-00000-of-00020.
SHARD_PATTERNS = ("*tfrecord*", "*.gz", "android_control-*-of-*")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
logger = logging.getLogger(__name__)
_UI_R1_NAME = re.compile(r"episode_([^/\\]+?)-screenshot_(\d+)\.\w+$")


# -- dataset --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Lazy:
    """Where to re-read one release episode (``lazy=True``)."""

    id: str
    path: str
    index: int
    offset: int
    split: str | None
    subsplits: tuple[str, ...]
    with_elements: bool
    candidate_mode: str


class EpisodeDataset(Sequence[Episode]):
    """A sequence of :class:`~guienv.types.Episode`.

    ``skipped`` holds one ``(where, reason)`` pair per record (or unreadable file remainder) left
    out under ``on_error="skip"``, as ``tasks.screenspot`` does; ``where`` names file, record and
    field. With ``lazy=True`` release episodes are indexed at load time (every
    record is fully parsed and checked once) and re-read from their shard on access.
    """

    def __init__(
        self, entries: Sequence[Episode | _Lazy], skipped: Sequence[tuple[str, str]] = (), sources: Sequence[str] = ()
    ):
        self._entries = list(entries)
        self.skipped: list[tuple[str, str]] = list(skipped)
        self.sources: list[str] = list(sources)
        self._reader = RecordReader()
        self._index = {e.id: i for i, e in enumerate(self._entries)}

    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, i: int) -> Episode: ...
    @overload
    def __getitem__(self, i: slice) -> list[Episode]: ...
    def __getitem__(self, i: int | slice) -> Episode | list[Episode]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        entry = self._entries[i]
        return entry if isinstance(entry, Episode) else self._materialize(entry)

    def _materialize(self, ref: _Lazy) -> Episode:
        data = self._reader.read(ref.path, ref.index, ref.offset)
        features = decode_example(data, path=ref.path, record=ref.index)
        return parse_release_episode(
            features,
            path=ref.path,
            record=ref.index,
            split=ref.split,
            subsplits=ref.subsplits,
            with_elements=ref.with_elements,
            candidate_mode=ref.candidate_mode,  # type: ignore[arg-type]
        )

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self._entries]

    def index_of(self, episode_id: str | int) -> int:
        try:
            return self._index[str(episode_id)]
        except KeyError:
            raise KeyError(f"no episode with id {episode_id!r}") from None

    def split_of(self, i: int) -> str | None:
        return self._entries[i].split

    def close(self) -> None:
        self._reader.close()

    def __repr__(self) -> str:
        lazy = sum(isinstance(e, _Lazy) for e in self._entries)
        return f"EpisodeDataset({len(self)} episodes, {lazy} lazy, {len(self.skipped)} skipped)"


# -- actions --------------------------------------------------------------------------------------
def _number(raw: Mapping[str, Any], key: str) -> float:
    v = raw.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"{key!r} must be a finite number, got {v!r}")
    return float(v)


def _string(raw: Mapping[str, Any], key: str) -> str:
    v = raw.get(key)
    if not isinstance(v, str):
        raise ValueError(f"{key!r} must be a string, got {v!r}")
    return v


def action_from_androidcontrol(raw: Mapping[str, Any]) -> Action:
    """An AndroidControl action JSON object as a pixel-frame :class:`Action`; ``ValueError`` if it
    is not one."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"an action is a JSON object, got {type(raw).__name__}")
    t = raw.get("action_type")
    if t in ("click", "long_press"):
        return Action(ActionType(t), point=(_number(raw, "x"), _number(raw, "y")))
    if t == "scroll":
        return Action.scroll(_string(raw, "direction"))
    if t == "open_app":
        return Action.open_app(_string(raw, "app_name"))
    if t == "input_text":
        return Action.type_text(_string(raw, "text"))
    if t == "type":
        return Action.type_text(_string(raw, "text"), point=(_number(raw, "x"), _number(raw, "y")))
    if t in ("navigate_home", "navigate_back", "wait", "keyboard_enter"):
        return Action.simple(t)
    raise ValueError(f"unknown action_type {t!r}")


def _num_out(v: float) -> int | float:
    return int(v) if float(v).is_integer() else float(v)


def action_to_androidcontrol(action: Action) -> dict[str, Any]:
    """The AndroidControl action JSON of a pixel-frame ``action`` (inverse of
    :func:`action_from_androidcontrol`). A finger ``swipe`` becomes a ``scroll`` in the opposite
    (content) direction; actions AndroidControl has no form for raise ``ValueError``."""
    if action.frame.value != "pixel" and action.point is not None:
        raise ValueError(f"convert the action to the pixel frame first (got {action.frame.value})")
    t = action.type
    if t in (ActionType.CLICK, ActionType.LONG_PRESS):
        x, y = action.point
        return {"action_type": t.value, "x": _num_out(x), "y": _num_out(y)}
    if t is ActionType.SCROLL:
        return {"action_type": "scroll", "direction": action.direction}
    if t is ActionType.SWIPE:
        return {"action_type": "scroll", "direction": OPPOSITE[action.swipe_direction()]}
    if t is ActionType.OPEN_APP:
        return {"action_type": "open_app", "app_name": action.text}
    if t is ActionType.TYPE:
        if action.point is not None:
            x, y = action.point
            return {"action_type": "type", "text": action.text, "x": _num_out(x), "y": _num_out(y)}
        return {"action_type": "input_text", "text": action.text}
    if t in (ActionType.NAVIGATE_HOME, ActionType.NAVIGATE_BACK, ActionType.WAIT, ActionType.KEYBOARD_ENTER):
        return {"action_type": t.value}
    raise ValueError(f"AndroidControl has no {t.value} action")


# -- accessibility trees ---------------------------------------------------------------------------
def _forest_pb2():
    # Importing only the generated proto module keeps android_env's emulator stack unloaded.
    from android_env.proto.a11y import android_accessibility_forest_pb2

    return android_accessibility_forest_pb2


def elements_from_forest(data: bytes) -> tuple[UIElement, ...]:
    """Every node of every window of a serialized ``AndroidAccessibilityForest``, in proto order.

    Raises ``google.protobuf.message.DecodeError`` on bytes that are not such a proto."""
    forest = _forest_pb2().AndroidAccessibilityForest.FromString(data)
    out = []
    for window in forest.windows:
        for n in window.tree.nodes:
            r = n.bounds_in_screen
            out.append(
                UIElement(
                    box=(float(r.left), float(r.top), float(r.right), float(r.bottom)),
                    text=n.text or None,
                    content_description=n.content_description or None,
                    resource_id=n.view_id_resource_name or None,
                    class_name=n.class_name or None,
                    clickable=n.is_clickable,
                    editable=n.is_editable,
                    scrollable=n.is_scrollable,
                    checkable=n.is_checkable,
                    checked=n.is_checked,
                    visible=n.is_visible_to_user,
                )
            )
    return tuple(out)


def forest_from_elements(elements: Sequence[UIElement], width: int, height: int) -> bytes:
    """A serialized ``AndroidAccessibilityForest``: one application window covering the screen
    whose tree holds ``elements`` as flat nodes (boxes rounded to whole pixels)."""
    pb = _forest_pb2()
    from android_env.proto.a11y import android_accessibility_window_info_pb2 as win_pb2

    forest = pb.AndroidAccessibilityForest()
    window = forest.windows.add()
    window.id = 0
    window.window_type = win_pb2.AndroidAccessibilityWindowInfo.TYPE_APPLICATION
    window.is_active = True
    b = window.bounds_in_screen
    b.left, b.top, b.right, b.bottom = 0, 0, int(width), int(height)
    for i, e in enumerate(elements):
        node = window.tree.nodes.add()
        node.unique_id = i
        r = node.bounds_in_screen
        r.left, r.top, r.right, r.bottom = (round(v) for v in e.box)
        node.text = e.text or ""
        node.content_description = e.content_description or ""
        node.view_id_resource_name = e.resource_id or ""
        node.class_name = e.class_name or ""
        node.is_clickable = e.clickable
        node.is_editable = e.editable
        node.is_scrollable = e.scrollable
        node.is_checkable = e.checkable
        node.is_checked = e.checked
        node.is_visible_to_user = e.visible
        node.is_enabled = True
    return forest.SerializeToString()


def candidate_boxes(
    action: Action, elements: Sequence[UIElement], width: int, height: int, mode: CandidateMode = "interactive"
) -> tuple[Box4, ...]:
    """Element boxes that count as the target of ``action`` (see the module docstring)."""
    if mode not in ("interactive", "all", "leaf"):
        raise ValueError(f"candidate_mode must be 'interactive', 'all' or 'leaf', got {mode!r}")
    screen_area = float(width) * float(height)

    def usable(e: UIElement) -> bool:
        x1, y1, x2, y2 = e.box
        area = (x2 - x1) * (y2 - y1)
        return e.visible and x2 > x1 and y2 > y1 and area < WHOLE_SCREEN_FRACTION * screen_area

    if action.type is ActionType.OPEN_APP:
        name = (action.text or "").strip().lower()
        found = [
            e.box
            for e in elements
            if usable(e) and name and name in {(e.text or "").strip().lower(), (e.content_description or "").strip().lower()}
        ]
    elif action.point is not None and action.type in (ActionType.CLICK, ActionType.LONG_PRESS, ActionType.TYPE):
        x, y = action.point
        found = [
            e.box
            for e in elements
            if usable(e)
            and e.box[0] <= x <= e.box[2]
            and e.box[1] <= y <= e.box[3]
            and (mode != "interactive" or e.clickable or e.editable or e.checkable or e.scrollable)
        ]
    else:
        return ()
    if action.type is ActionType.OPEN_APP:
        unique = list(dict.fromkeys(found))  # tree order: the protocols click on the first one
    else:
        unique = sorted(set(found), key=lambda b: ((b[2] - b[0]) * (b[3] - b[1]), b))
    return tuple(unique[:1] if mode == "leaf" else unique)


# -- release parsing ----------------------------------------------------------------------------------
def _feature(features: Mapping[str, list], name: str, kind: type, err) -> list:
    if name not in features:
        raise err(f"missing feature {name!r}", name)
    values = features[name]
    if values and not all(isinstance(v, kind) for v in values):
        raise err(f"feature {name!r} must be a {'bytes' if kind is bytes else 'int64'} list", name)
    return values


_IMAGE_ERRORS = (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError)


def _checked_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of encoded image bytes after Pillow's structural check (PNG: every
    chunk's CRC), without decoding the pixels."""
    with Image.open(io.BytesIO(data)) as img:
        size = img.size
        img.verify()
    return size


def _utf8(b: bytes, err, field_name: str) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise err(f"not UTF-8 text ({exc})", field_name) from exc


def parse_release_episode(
    features: Mapping[str, list],
    *,
    path: str | os.PathLike,
    record: int,
    split: str | None = None,
    subsplits: Sequence[str] = (),
    with_elements: bool = True,
    candidate_mode: CandidateMode = "interactive",
) -> Episode:
    """One decoded AndroidControl ``tf.train.Example`` (as from :func:`tasks.tfrecord.decode_example`)
    as an :class:`Episode`; every problem raises :class:`DataError` naming file, record and field."""
    path = str(path)
    ids = features.get("episode_id")
    eid = str(ids[0]) if isinstance(ids, list) and len(ids) == 1 and isinstance(ids[0], int) else None
    rec_label = record if eid is None else f"{record} (episode {eid})"

    def err(msg: str, field_name: str | None = None) -> DataError:
        return DataError(path, msg, record=rec_label, field=field_name)

    ids = _feature(features, "episode_id", int, err)
    if len(ids) != 1:
        raise err(f"episode_id must hold one int64, got {len(ids)}", "episode_id")
    goal_list = _feature(features, "goal", bytes, err)
    if len(goal_list) != 1:
        raise err(f"goal must hold one string, got {len(goal_list)}", "goal")
    goal = _utf8(goal_list[0], err, "goal")
    shots = _feature(features, "screenshots", bytes, err)
    widths = _feature(features, "screenshot_widths", int, err)
    heights = _feature(features, "screenshot_heights", int, err)
    trees = _feature(features, "accessibility_trees", bytes, err)
    actions = _feature(features, "actions", bytes, err)
    instructions = _feature(features, "step_instructions", bytes, err)
    n = len(shots)
    if n == 0:
        raise err("an episode needs at least one screenshot", "screenshots")
    for name, values in (("screenshot_widths", widths), ("screenshot_heights", heights), ("accessibility_trees", trees)):
        if len(values) != n:
            raise err(f"{name} has {len(values)} entries for {n} screenshots", name)
    if len(actions) != n - 1:
        raise err(f"{len(actions)} actions for {n} screenshots (expected len(screenshots) - 1 = {n - 1})", "actions")
    if len(instructions) != n - 1:
        raise err(f"{len(instructions)} step instructions for {len(actions)} actions", "step_instructions")

    from google.protobuf.message import DecodeError

    images, sizes, elements = [], [], []
    for i in range(n):
        fname = f"screenshots[{i}]"
        where = f"{path}, record {rec_label}, field {fname!r}"
        ref = ImageRef(data=shots[i], where=where)
        try:
            size = _checked_size(shots[i])
        except _IMAGE_ERRORS as exc:
            raise err(f"undecodable screenshot ({exc})", fname) from exc
        if size != (widths[i], heights[i]):
            raise err(f"screenshot {i} is {size[0]}x{size[1]} but screenshot_widths/heights say "
                      f"{widths[i]}x{heights[i]}", f"screenshot_widths[{i}]")
        try:
            els = elements_from_forest(trees[i])
        except DecodeError as exc:
            raise err(f"not an AndroidAccessibilityForest proto ({exc})", f"accessibility_trees[{i}]") from exc
        images.append(ref)
        sizes.append(size)
        elements.append(els)

    steps = []
    for i in range(n - 1):
        fname = f"actions[{i}]"
        try:
            raw = json.loads(_utf8(actions[i], err, fname))
        except json.JSONDecodeError as exc:
            raise err(f"action is not JSON ({exc})", fname) from exc
        try:
            action = action_from_androidcontrol(raw)
        except ValueError as exc:
            raise err(f"bad action {raw!r}: {exc}", fname) from exc
        w, h = sizes[i]
        steps.append(
            Step(
                image=images[i],
                width=w,
                height=h,
                action=action,
                raw_action=dict(raw),
                instruction=_utf8(instructions[i], err, f"step_instructions[{i}]"),
                candidates=candidate_boxes(action, elements[i], w, h, candidate_mode),
                elements=elements[i] if with_elements else (),
            )
        )
    extra = {
        "source": path,
        "record": record,
        "final_image": images[-1],
        "final_size": sizes[-1],
        "final_elements": elements[-1] if with_elements else (),
        "subsplits": tuple(subsplits),
    }
    return Episode(
        id=str(ids[0]),
        goal=goal,
        steps=tuple(steps),
        split=split,
        subsplit=subsplits[0] if subsplits else None,
        extra=extra,
    )


# -- release writing ------------------------------------------------------------------------------
def _png_bytes(ref: ImageRef) -> bytes:
    if ref.data is not None:
        data = bytes(ref.data)
    else:
        data = Path(ref.path).read_bytes()
    if data.startswith(PNG_MAGIC):
        return data
    return encode_png(decode_image(data, ref.where))


def episode_features(episode: Episode, *, missing_final: Literal["error", "repeat_last"] = "error") -> dict[str, list]:
    """The release features of ``episode`` (``{name: values}`` for
    :func:`tasks.tfrecord.encode_example`).

    The screen after the last action comes from ``extra["final_image"]`` (and
    ``final_elements``); conversions lack it, so ``missing_final="repeat_last"`` repeats the last
    step's screen instead of raising ``ValueError``. The trees are built from ``Step.elements``;
    candidate boxes are not stored (the release has no such field; readers derive them from the
    trees), so episodes without elements export with empty trees and read back without candidates.
    """
    try:
        eid = int(episode.id)
    except ValueError:
        raise ValueError(f"AndroidControl episode ids are integers, got {episode.id!r}") from None
    if not episode.steps:
        raise ValueError(f"episode {episode.id} has no steps")
    final = episode.extra.get("final_image")
    if final is not None:
        final_els = tuple(episode.extra.get("final_elements", ()))
        fw, fh = episode.extra.get("final_size") or final.size()
    elif missing_final == "repeat_last":
        last = episode.steps[-1]
        final, final_els, fw, fh = last.image, last.elements, last.width, last.height
    else:
        raise ValueError(
            f"episode {episode.id} has no extra['final_image'] (the screen after the last action); "
            "pass missing_final='repeat_last' to repeat the last step's screen"
        )
    shots = [_png_bytes(s.image) for s in episode.steps] + [_png_bytes(final)]
    widths = [s.width for s in episode.steps] + [int(fw)]
    heights = [s.height for s in episode.steps] + [int(fh)]
    trees = [forest_from_elements(s.elements, s.width, s.height) for s in episode.steps]
    trees.append(forest_from_elements(final_els, int(fw), int(fh)))
    actions = [json.dumps(action_to_androidcontrol(s.action), ensure_ascii=False).encode("utf-8") for s in episode.steps]
    instructions = [(s.instruction or "").encode("utf-8") for s in episode.steps]
    return {
        "episode_id": [eid],
        "goal": [episode.goal.encode("utf-8")],
        "screenshots": shots,
        "screenshot_widths": widths,
        "screenshot_heights": heights,
        "accessibility_trees": trees,
        "actions": actions,
        "step_instructions": instructions,
    }


def write_androidcontrol_tfrecord(
    episodes: Iterable[Episode],
    path: str | os.PathLike,
    *,
    gzip: bool = True,
    missing_final: Literal["error", "repeat_last"] = "error",
) -> int:
    """Write ``episodes`` as one AndroidControl release shard (GZIP TFRecord of ``tf.train.Example``
    with real ``AndroidAccessibilityForest`` protos built from ``Step.elements``). Returns the
    number of episodes written."""
    return write_records(path, (encode_example(episode_features(e, missing_final=missing_final)) for e in episodes), gzip=gzip)


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
        return Action.type_text(_string(content, "text"), point=point)
    if kind == "open":
        return Action.open_app(_string(content, "text"))
    if kind == "swipe":
        direction = check.get("direction", content.get("direction"))
        if direction is None:
            direction = _ui_s1_scroll_direction(_point_of(content, "coordinate"), _point_of(content, "coordinate2"))
        return Action.scroll(str(direction))
    if kind == "system_button":
        button = _string(content, "button").strip().lower()
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
    return [_num_out(v) for v in values]


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


def _write_image(ref: ImageRef, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(_png_bytes(ref))


def _json_id(eid: str) -> int | str:
    return int(eid) if re.fullmatch(r"-?\d+", eid) else eid


def write_ui_s1_jsonl(episodes: Iterable[Episode], path: str | os.PathLike, *, image_dir: str = "images") -> int:
    """Write ``episodes`` as UI-S1 JSONL; screenshots go to ``<jsonl dir>/<image_dir>/<id>_<i>.png``
    (UI-S1's naming) and are referenced relative to the JSONL file. Returns episodes written."""
    path = Path(path)
    root = path.parent
    count = 0
    with open(path, "w", encoding="utf-8") as f:
        for ep in episodes:
            steps = []
            for i, step in enumerate(ep.steps):
                rel = str(PurePosixPath(image_dir) / f"{ep.id}_{i}.png")
                _write_image(step.image, resolve_inside(root, rel, where=str(path)))
                steps.append(ui_s1_step_record(step, rel))
            obj = {"goal": ep.goal, "is_successful": bool(ep.extra.get("is_successful", True)), "steps": steps,
                   "episode_id": _json_id(ep.id)}
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
            count += 1
    return count


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
            _write_image(step.image, resolve_inside(image_root, name, where=str(path)))
            records.append({"image": name, "gt": action_to_androidcontrol(step.action), "task": step.instruction or ""})
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False), encoding="utf-8")
    return len(records)


# -- loading --------------------------------------------------------------------------------------------
def _where_reason(e: DataError) -> tuple[str, str]:
    where = e.path
    if e.record is not None:
        where += f", record {e.record}"
    if e.field is not None:
        where += f", field {e.field!r}"
    return where, e.detail


def _resolve_image(root: Path, ref: Any, where: str, field_name: str) -> Path:
    if not isinstance(ref, str) or not ref:
        raise DataError(where, f"screenshot path must be a non-empty string, got {ref!r}", field=field_name)
    p = PurePosixPath(ref.replace("\\", "/"))
    if not p.is_absolute():
        return resolve_inside(root, str(p), where=where, field=field_name)
    parts = p.parts[1:]
    for k in range(len(parts)):
        cand = resolve_inside(root, str(PurePosixPath(*parts[k:])), where=where, field=field_name)
        if cand.is_file():
            return cand
    raise DataError(where, f"absolute screenshot path {ref!r}: none of its trailing parts is a file under "
                    f"image_root {root}", field=field_name)


def _file_step(
    image_path: Path, action: Action, raw: dict, instruction: str | None, candidates: tuple[Box4, ...], where: str
) -> Step:
    w, h = image_size(image_path, where)
    return Step(image=ImageRef(path=image_path, where=where), width=w, height=h, action=action,
                raw_action=raw, instruction=instruction, candidates=candidates)


def _parse_ui_s1(obj: Any, *, path: str, record: Any, root: Path, fallback_id: str) -> Episode:
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
        image = _resolve_image(root, s.get("screenshot"), where, fname)
        raw = {"action_content": dict(s["action_content"]), "check_options": dict(check)}
        steps.append(_file_step(image, action, raw, instruction, cands, where))
    extra = {"source": path, "record": record, "format": "ui-s1"}
    if "is_successful" in obj:
        extra["is_successful"] = obj["is_successful"]
    return Episode(id=eid, goal=goal, steps=tuple(steps), extra=extra)


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


def _parse_ui_r1(records: list[tuple[int, Any]], *, path: str, root: Path, on_error: OnError, skipped: list) -> list[Episode]:
    stem = Path(path).name
    groups: dict[str, list[tuple[int, int, Mapping]]] = {}
    for idx, rec in records:
        if not isinstance(rec, Mapping):
            e = DataError(path, f"a UI-R1 record is a JSON object, got {type(rec).__name__}", record=idx)
            if on_error == "raise":
                raise e
            skipped.append(e)
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
                image = _resolve_image(root, rec.get("image"), where, "image")
                steps.append(_file_step(image, action, dict(rec["gt"]), task, (), where))
                orders.append(order)
        except DataError as e:
            if on_error == "raise":
                raise
            skipped.append(e)
            continue
        episodes.append(Episode(id=eid, goal=goal, steps=tuple(steps),
                                extra={"source": path, "format": "ui-r1", "step_indices": tuple(orders)}))
    return episodes


def _read_id_lists(path: str | os.PathLike, what: str) -> dict[str, list[str]]:
    try:
        obj = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"cannot read the {what} file ({exc})") from exc
    if not isinstance(obj, Mapping):
        raise DataError(path, f"the {what} file must be a JSON object of id lists")
    out = {}
    for name, ids in obj.items():
        if not isinstance(ids, list) or not all(isinstance(i, (int, str)) and not isinstance(i, bool) for i in ids):
            raise DataError(path, "must be a list of episode ids", field=str(name))
        out[str(name)] = [str(i) for i in ids]
    return out


def _split_maps(splits: Any, subsplits: Any) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    split_of: dict[str, str] = {}
    if splits is not None:
        for name, ids in _read_id_lists(splits, "splits").items():
            for i in ids:
                if i in split_of and split_of[i] != name:
                    raise DataError(splits, f"episode {i} is in both {split_of[i]!r} and {name!r}", field=name)
                split_of[i] = name
    sub_of: dict[str, tuple[str, ...]] = {}
    if subsplits is not None:
        for name, ids in _read_id_lists(subsplits, "test subsplits").items():
            for i in ids:
                if name not in sub_of.get(i, ()):
                    sub_of[i] = sub_of.get(i, ()) + (name,)
    return split_of, sub_of


def _expand(paths: Any) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted({q for pat in SHARD_PATTERNS for q in p.glob(pat) if q.is_file()})
            if not found:
                raise DataError(p, f"directory holds no shards (looked for {', '.join(SHARD_PATTERNS)})")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif any(c in str(item) for c in "*?["):
            found = sorted(Path(q) for q in globlib.glob(str(item)) if Path(q).is_file())
            if not found:
                raise DataError(item, "glob matches no files")
            out.extend(found)
        else:
            raise DataError(item, "no such file or directory")
    return out


def _json_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".json": "json"}.get(suffix)


def _iter_json_source(path: Path) -> Iterator[tuple[Any, Any]]:
    """(record label, parsed object) of a .jsonl (per line) or .json (list items or one object)."""
    if _json_kind(path) == "jsonl":
        with open(path, encoding="utf-8") as f:
            for ln, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    yield f"line {ln}", json.loads(line)
                except json.JSONDecodeError as exc:
                    yield f"line {ln}", DataError(path, f"invalid JSON ({exc})", record=f"line {ln}")
        return
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(path, f"invalid JSON ({exc})") from exc
    if isinstance(obj, list):
        yield from enumerate(obj)
    else:
        yield 0, obj


def load_androidcontrol(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    splits: str | os.PathLike | None = None,
    subsplits: str | os.PathLike | None = None,
    split: str | None = None,
    subsplit: str | None = None,
    on_error: OnError = "raise",
    with_elements: bool = True,
    candidate_mode: CandidateMode = "interactive",
    image_root: str | os.PathLike | None = None,
    lazy: bool = False,
) -> EpisodeDataset:
    """Load AndroidControl episodes.

    ``paths``: a file, a glob, a directory of shards (``SHARD_PATTERNS``: ``*tfrecord*``, ``*.gz``
    and the release's ``android_control-*-of-*``), or a list of these.
    ``.jsonl``/``.json`` files are read as the UI-S1 or UI-R1 conversion (told apart per record:
    ``steps`` vs ``gt``); anything else as a release shard (gzip or plain TFRecord, by magic).
    ``splits``/``subsplits``: ``splits.json`` / ``test_subsplits.json``; they set
    ``Episode.split`` and ``Episode.subsplit`` (the first subsplit listing the episode; all of them
    in ``extra["subsplits"]``). ``split``/``subsplit`` keep only matching episodes.
    ``on_error="skip"`` leaves out bad records (a framing error ends that file) and lists them in
    ``dataset.skipped`` (``(where, reason)`` pairs), logging a warning with the count. ``with_elements=False`` drops the
    accessibility elements after computing candidate boxes (memory). ``image_root``: where the
    JSON conversions' screenshot paths are resolved (default: the JSON file's directory).
    ``lazy=True`` keeps only an index of release episodes and re-reads them on access (memory:
    the test split's PNGs alone are gigabytes). A gzip stream seeks by decompressing, so reading
    lazily in index order costs one pass per shard but random order costs up to a shard per
    episode; ``gunzip`` the shards once (plain TFRecord, detected by magic) for O(1) seeks.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if split is not None and splits is None:
        raise ValueError("split= needs the splits file (splits=...)")
    if subsplit is not None and subsplits is None:
        raise ValueError("subsplit= needs the test subsplits file (subsplits=...)")
    split_of, sub_of = _split_maps(splits, subsplits)
    files = _expand(paths)
    entries: list[Episode | _Lazy] = []
    skipped: list[DataError] = []
    seen: dict[str, str] = {}

    def keep(eid: str) -> bool:
        if split is not None and split_of.get(eid) != split:
            return False
        return subsplit is None or subsplit in sub_of.get(eid, ())

    def add(entry: Episode | _Lazy, source: str) -> None:
        if entry.id in seen:
            e = DataError(source, f"duplicate episode id {entry.id} (first seen in {seen[entry.id]})")
            if on_error == "raise":
                raise e
            skipped.append(e)
            return
        seen[entry.id] = source
        entries.append(entry)

    for f in files:
        src = str(f)
        kind = _json_kind(f)
        if kind is None:
            try:
                for rec in iter_records(f):
                    try:
                        features = decode_example(rec.data, path=src, record=rec.index)
                        eid_list = features.get("episode_id") or [None]
                        eid = str(eid_list[0])
                        ep = parse_release_episode(
                            features, path=src, record=rec.index, split=split_of.get(eid),
                            subsplits=sub_of.get(eid, ()), with_elements=with_elements, candidate_mode=candidate_mode,
                        )
                    except DataError as e:
                        if on_error == "raise":
                            raise
                        skipped.append(e)
                        continue
                    if not keep(ep.id):
                        continue
                    if lazy:
                        add(_Lazy(ep.id, src, rec.index, rec.offset, ep.split, sub_of.get(ep.id, ()),
                                  with_elements, candidate_mode), src)
                    else:
                        add(ep, src)
            except DataError as e:  # framing / gzip error: the rest of this file is unreadable
                if on_error == "raise":
                    raise
                skipped.append(e)
            continue
        root = Path(image_root) if image_root is not None else f.parent
        try:
            items = list(_iter_json_source(f))
        except DataError as e:
            if on_error == "raise":
                raise
            skipped.append(e)
            continue
        r1_records: list[tuple[int, Any]] = []
        for label, obj in items:
            try:
                if isinstance(obj, DataError):
                    raise obj
                if isinstance(obj, Mapping) and "steps" in obj:
                    ep = _parse_ui_s1(obj, path=src, record=label, root=root, fallback_id=f"{f.name}[{label}]")
                elif isinstance(obj, Mapping) and "gt" in obj:
                    r1_records.append((label, obj))
                    continue
                else:
                    raise DataError(src, "neither a UI-S1 episode (with 'steps') nor a UI-R1 step (with 'gt')", record=label)
            except DataError as e:
                if on_error == "raise":
                    raise
                skipped.append(e)
                continue
            ep = replace(ep, split=split_of.get(ep.id), subsplit=(sub_of.get(ep.id) or (None,))[0])
            ep.extra["subsplits"] = sub_of.get(ep.id, ())
            if keep(ep.id):
                add(ep, src)
        if r1_records:
            for ep in _parse_ui_r1(r1_records, path=src, root=root, on_error=on_error, skipped=skipped):
                ep = replace(ep, split=split_of.get(ep.id), subsplit=(sub_of.get(ep.id) or (None,))[0])
                ep.extra["subsplits"] = sub_of.get(ep.id, ())
                if keep(ep.id):
                    add(ep, src)
    pairs = [_where_reason(e) for e in skipped]
    if pairs:
        logger.warning("load_androidcontrol: skipped %d bad record(s) (on_error='skip'); first: %s: %s",
                       len(pairs), *pairs[0])
    return EpisodeDataset(entries, pairs, [str(f) for f in files])


__all__ = [
    "EpisodeDataset",
    "SPLIT_NAMES",
    "SUBSPLIT_NAMES",
    "action_from_androidcontrol",
    "action_from_ui_s1",
    "action_to_androidcontrol",
    "candidate_boxes",
    "elements_from_forest",
    "episode_features",
    "forest_from_elements",
    "load_androidcontrol",
    "parse_release_episode",
    "ui_s1_step_record",
    "ui_s1_swipe",
    "write_androidcontrol_tfrecord",
    "write_ui_r1_json",
    "write_ui_s1_jsonl",
]
