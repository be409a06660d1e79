"""The AndroidControl release: TFRecord shards of ``tf.train.Example`` protos with accessibility-tree protos.

AndroidControl (Li et al., "On the Effects of Data Scale on UI Control Agents", arXiv 2406.03679;
``google-research/google-research: android_control/README.md``).

GZIP TFRecord shards of ``tf.train.Example`` protos, one episode each, with
features ``episode_id`` (int64), ``goal`` (bytes), ``screenshots`` (PNG bytes),
``screenshot_widths``/``screenshot_heights`` (int64), ``accessibility_trees`` (serialized
``android_env.AndroidAccessibilityForest``), ``actions`` (JSON strings, one fewer than screenshots)
and ``step_instructions`` (one per action). Step ``i`` is screenshot ``i`` plus action ``i``; the
last screenshot (the screen after the last action) is kept in ``Episode.extra["final_image"]``.

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
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from PIL import Image, UnidentifiedImageError

from guienv.actions import Action, ActionType, Box4
from guienv.errors import DataError
from guienv.io import loads_json
from guienv.types import Episode, ImageRef, Step, UIElement
from tasks.androidcontrol.actions import action_from_androidcontrol, action_to_androidcontrol
from tasks.androidcontrol.common import CandidateMode, png_of
from tasks.tfrecord import encode_example, write_records

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
WHOLE_SCREEN_FRACTION = 0.95


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
        raw = loads_json(actions[i], path, record=rec_label, field=fname)  # UTF-8, syntax and depth checked
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
    shots = [png_of(s.image) for s in episode.steps] + [png_of(final)]
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
