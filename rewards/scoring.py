"""Score a predictions JSONL (``guienv score``, :mod:`guienv.run.score`) against AndroidControl or a ScreenSpot-family benchmark.

Data is read with the public loaders (:func:`tasks.androidcontrol.load_androidcontrol`,
:func:`tasks.screenspot.load_screenspot`); predictions are one JSON object per line:

AndroidControl
    ``{"episode_id": <id> | "episode_index": <int>, "step_index": <int>, "action": <guienv action
    JSON>}`` or the same with ``"text": <raw model output>`` and optionally ``"frame"`` (``pixel``,
    ``normalized``, ``grid1000`` or ``resized``; default ``--frame``). Steps are judged with
    :func:`rewards.action_match.match_step` under ``--protocol`` (``infigui``,
    ``qwen-content-direction`` = ``qwen``, ``os-atlas``, ``plain``, ``gui-r1``; see that module for
    what each means and its scroll convention). Under ``infigui`` a ``"text"`` prediction is read
    with InfiGUI-R1's own extraction (:mod:`guienv.parsing.infigui`), in the frame of the line
    (the reference's is ``resized``); an ``"action"`` object is judged as the call it stands for.
ScreenSpot (v1, v2, Pro, GUI-G1 JSON, parquet)
    ``{"id": <sample id> | "index": <int>, "action": ...}`` or ``"text"``/``"frame"``. A sample is
    right when the predicted point (a click/long-press point, or a box answer's centre) lies in
    the GT box, bounds inclusive; anything else, including unparsable text, is wrong.

Missing predictions count as wrong and are reported (``missing``); a duplicate or unknown key, a
line that is not a JSON object, a bad ``frame`` or a malformed ``action`` object raises
:class:`guienv.errors.DataError` naming the predictions file, the line and the field.
Model text is only parsed (never executed). ``resized`` coordinates are mapped back with
Qwen2.5-VL's smart resize using ``--min-pixels``/``--max-pixels``.

Outputs in ``--out``: ``metrics.json`` (see :mod:`rewards.metrics`) and ``verdicts.jsonl`` (one
line per step / sample, missing ones included).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from guienv.actions import Action, ActionType
from guienv.config import check_pixel_range
from guienv.errors import DataError
from guienv.frames import Frame, Resize, Screen, resolve_pixels
from guienv.geometry import point_in_box
from guienv.io import iter_jsonl, write_jsonl
from guienv.parsing import parse_action, read_action
from guienv.parsing.infigui import InfiguiParseError, parse_infigui_call
from rewards.action_match import ALIASES, PROTOCOLS, StepVerdict, match_infigui, match_step, protocol_name
from rewards.metrics import GroundingRecord, StepRecord, androidcontrol_metrics, screenspot_metrics
from tasks.androidcontrol import load_androidcontrol
from tasks.screenspot import load_screenspot

BENCHMARKS = ("androidcontrol", "screenspot")
SCREENSPOT_PROTOCOLS = ("point-in-box",)
DEFAULT_PROTOCOL = {"androidcontrol": "qwen", "screenspot": "point-in-box"}


# -- predictions file -------------------------------------------------------------------------
def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every non-blank line; DataError for anything else."""
    if not path.exists():
        raise DataError(path, "predictions file not found")
    return iter_jsonl(path)


def _int_field(obj: Mapping[str, Any], key: str, path: Path, no: int) -> int:
    v = obj.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            return int(v)
        raise DataError(path, f"must be an integer, got {v!r}", record=f"line {no}", field=key)
    return v


def _text_frame(obj: Mapping[str, Any], path: Path, no: int, default_frame: Frame) -> Frame:
    if obj.get("frame") is None:
        return default_frame
    try:
        return Frame(obj["frame"])
    except ValueError as exc:
        raise DataError(path, f"unknown frame {obj['frame']!r}; known: {[f.value for f in Frame]}",
                        record=f"line {no}", field="frame") from exc


def _prediction(obj: Mapping[str, Any], path: Path, no: int, default_frame: Frame) -> Action:
    """The prediction's action, in its own frame (``invalid`` for unreadable model text)."""
    if "action" in obj and obj["action"] is not None:
        try:
            return Action.from_dict(obj["action"])
        except (KeyError, ValueError, TypeError) as exc:
            raise DataError(path, f"not a guienv action JSON object ({exc})", record=f"line {no}", field="action") from exc
    if "text" in obj:
        text = obj["text"]
        if not isinstance(text, str):
            raise DataError(path, f"must be a string, got {type(text).__name__}", record=f"line {no}", field="text")
        return parse_action(text, frame=_text_frame(obj, path, no, default_frame))
    raise DataError(path, "needs an 'action' (guienv action JSON) or a 'text' (model output) field", record=f"line {no}")


def _to_pixel(action: Action, width: int, height: int, resize: Resize) -> Action:
    return read_action(action, Screen(int(width), int(height), resize))


# -- AndroidControl ---------------------------------------------------------------------------
def _score_androidcontrol(episodes: Any, pred_path: Path, protocol: str, frame: Frame, resize: Resize):
    ids = [str(e.id) for e in episodes]
    index_of = {eid: i for i, eid in enumerate(ids)}
    preds: dict[tuple[int, int], tuple[int, Action]] = {}
    texts: dict[tuple[int, int], tuple[str, Frame]] = {}  # raw model text, for infigui's own extraction
    for no, obj in _lines(pred_path):
        if "episode_id" in obj and obj["episode_id"] is not None:
            eid = str(obj["episode_id"])
            if eid not in index_of:
                raise DataError(pred_path, f"unknown episode id {eid!r}", record=f"line {no}", field="episode_id")
            ei = index_of[eid]
        elif "episode_index" in obj:
            ei = _int_field(obj, "episode_index", pred_path, no)
            if not 0 <= ei < len(ids):
                raise DataError(pred_path, f"episode index {ei} out of range (0..{len(ids) - 1})", record=f"line {no}", field="episode_index")
        else:
            raise DataError(pred_path, "needs 'episode_id' or 'episode_index'", record=f"line {no}")
        si = _int_field(obj, "step_index", pred_path, no)
        n_steps = len(episodes[ei].steps)
        if not 0 <= si < n_steps:
            raise DataError(pred_path, f"step index {si} out of range for episode {ids[ei]} ({n_steps} steps)",
                            record=f"line {no}", field="step_index")
        if (ei, si) in preds:
            raise DataError(pred_path, f"duplicate prediction for episode {ids[ei]} step {si} (first on line {preds[(ei, si)][0]})",
                            record=f"line {no}")
        preds[(ei, si)] = (no, _prediction(obj, pred_path, no, frame))
        if obj.get("action") is None and isinstance(obj.get("text"), str):
            texts[(ei, si)] = (obj["text"], _text_frame(obj, pred_path, no, frame))

    records: list[StepRecord] = []
    rows: list[dict[str, Any]] = []
    for ei, ep in enumerate(episodes):
        for si, step in enumerate(ep.steps):
            gt_type = step.action.type.value
            if (ei, si) in preds:
                raw = preds[(ei, si)][1]
                action = _to_pixel(raw, step.width, step.height, resize)
                if ALIASES.get(protocol, protocol) == "infigui" and (ei, si) in texts:
                    # The reference reads model text with its own extraction, not guienv's parser.
                    text, text_frame = texts[(ei, si)]
                    try:
                        args = parse_infigui_call(text)
                    except InfiguiParseError:
                        args = None
                    verdict = match_infigui(args, step, text_frame, resize)
                else:
                    # qwen scales distances by the image size the model saw: the resized one if any.
                    verdict = match_step(action, step, protocol, resize=resize if raw.frame is Frame.RESIZED else None)
                missing = False
            else:
                action = None
                verdict = StepVerdict(False, False, None, "no prediction", gt_type, "")
                missing = True
            records.append(StepRecord(ids[ei], si, verdict, gt_type, ep.split, ep.subsplit, missing))
            rows.append({
                "episode_id": ids[ei], "episode_index": ei, "step_index": si,
                "split": ep.split, "subsplit": ep.subsplit,
                "gt_type": gt_type, "pred_type": verdict.pred_type or None,
                "type_match": verdict.type_match, "exact_match": verdict.exact_match,
                "grounding": verdict.grounding, "reason": verdict.reason, "missing": missing,
                "prediction": action.to_dict() if action is not None else None,
            })
    return androidcontrol_metrics(records), rows


# -- ScreenSpot -------------------------------------------------------------------------------
def _grounding_point(action: Action):
    if action.is_valid and action.type in (ActionType.CLICK, ActionType.LONG_PRESS, ActionType.BOX):
        return action.target
    return None


def _score_screenspot(samples: Any, pred_path: Path, frame: Frame, resize: Resize):
    ids = [str(s.id) for s in samples]
    index_of: dict[str, int] = {}
    for i, sid in enumerate(ids):
        index_of.setdefault(sid, i)
    if len(index_of) != len(ids):
        dup = next(s for s in ids if ids.count(s) > 1)
        raise DataError(getattr(samples, "path", "<data>"), f"sample id {dup!r} occurs more than once; address predictions by 'index'")
    preds: dict[int, tuple[int, Action]] = {}
    for no, obj in _lines(pred_path):
        if "id" in obj and obj["id"] is not None:
            sid = str(obj["id"])
            if sid not in index_of:
                raise DataError(pred_path, f"unknown sample id {sid!r}", record=f"line {no}", field="id")
            i = index_of[sid]
        elif "index" in obj:
            i = _int_field(obj, "index", pred_path, no)
            if not 0 <= i < len(ids):
                raise DataError(pred_path, f"sample index {i} out of range (0..{len(ids) - 1})", record=f"line {no}", field="index")
        else:
            raise DataError(pred_path, "needs 'id' or 'index'", record=f"line {no}")
        if i in preds:
            raise DataError(pred_path, f"duplicate prediction for sample {ids[i]!r} (first on line {preds[i][0]})", record=f"line {no}")
        preds[i] = (no, _prediction(obj, pred_path, no, frame))

    records: list[GroundingRecord] = []
    rows: list[dict[str, Any]] = []
    for i, s in enumerate(samples):
        group = s.extra.get("group") if isinstance(s.extra, Mapping) else None
        if i in preds:
            action = _to_pixel(preds[i][1], s.width, s.height, resize)
            point = _grounding_point(action)
            correct = point_in_box(point, s.box)
            reason = "" if correct else (
                f"invalid action: {action.reason}" if not action.is_valid
                else f"{action.type.value} has no point" if point is None else "point outside the box")
            missing, parsed = False, action.is_valid
        else:
            point, correct, reason, missing, parsed = None, False, "no prediction", True, False
        records.append(GroundingRecord(ids[i], correct, s.data_type, s.split, s.platform,
                                       str(group) if group is not None else None, parsed, missing))
        rows.append({
            "id": ids[i], "index": i, "split": s.split, "platform": s.platform, "data_type": s.data_type,
            "group": group, "correct": correct, "point": list(point) if point is not None else None,
            "box": list(s.box), "reason": reason, "missing": missing,
        })
    return screenspot_metrics(records), rows


# -- entry points -----------------------------------------------------------------------------
def score(
    benchmark: str,
    data: str | os.PathLike | list,
    predictions: str | os.PathLike,
    protocol: str | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    frame: Frame | str = Frame.PIXEL,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    splits: str | os.PathLike | None = None,
    subsplits: str | os.PathLike | None = None,
    pixel_keys: tuple[str, str] = ("min_pixels", "max_pixels"),
) -> dict[str, Any]:
    """Score ``predictions`` (JSONL) on ``benchmark`` data; write ``metrics.json`` and
    ``verdicts.jsonl`` to ``out_dir`` when given. Returns the metrics dict. ``pixel_keys`` name the
    bounds in errors (the CLI's ``--min-pixels``/``--max-pixels``).

    ``min_pixels``/``max_pixels`` left None take the published evaluation's settings
    (:func:`guienv.frames.reference_resize`; ScreenSpot: ScreenSpot-Pro's Qwen2.5-VL evaluation),
    else qwen-vl-utils' defaults; ``resize_source`` in the metrics says which."""
    if benchmark not in BENCHMARKS:
        raise ValueError(f"benchmark must be one of {BENCHMARKS}, got {benchmark!r}")
    protocol = protocol or DEFAULT_PROTOCOL[benchmark]
    known = sorted(PROTOCOLS) if benchmark == "androidcontrol" else list(SCREENSPOT_PROTOCOLS)
    if protocol not in known:
        raise ValueError(f"unknown protocol {protocol!r} for {benchmark}; known: {known}")
    frame = Frame(frame)
    min_pixels, max_pixels, source = resolve_pixels(benchmark, min_pixels, max_pixels)
    check_pixel_range(min_pixels, max_pixels, pixel_keys)  # else every resized-frame prediction would score wrong
    resize = Resize(min_pixels=min_pixels, max_pixels=max_pixels)
    pred_path = Path(predictions)
    if benchmark == "androidcontrol":
        episodes = load_androidcontrol(data, splits=splits, subsplits=subsplits)
        metrics, rows = _score_androidcontrol(episodes, pred_path, protocol, frame, resize)
    else:
        samples = load_screenspot(data)
        metrics, rows = _score_screenspot(samples, pred_path, frame, resize)
    metrics = {
        "benchmark": benchmark, "protocol": protocol, "data": str(data), "predictions": str(pred_path),
        "frame": frame.value, "min_pixels": min_pixels, "max_pixels": max_pixels,
        "resize_source": source, **metrics,
    }
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        write_jsonl(out / "verdicts.jsonl", rows)
    return metrics


def _fmt(v: Any) -> str:
    return "   -  " if v is None else f"{100 * v:6.2f}"


def summary_table(metrics: Mapping[str, Any]) -> str:
    """A short human-readable table of ``metrics`` (percentages)."""
    lines = [f"{metrics['benchmark']} / protocol={protocol_name(metrics['protocol'])}"]
    if "resize_source" in metrics:
        lines.append(f"resize: min_pixels={metrics['min_pixels']} max_pixels={metrics['max_pixels']} ({metrics['resize_source']})")
    if metrics["benchmark"] == "androidcontrol":
        lines.append(f"{'slice':<24} {'steps':>6} {'type':>6} {'ground':>6} {'SR':>6} {'episode':>7} {'missing':>7}")
        rows = [("overall", metrics["overall"])]
        for key in ("by_split", "by_subsplit"):
            rows += [(f"{key[3:]}={k}", v) for k, v in metrics.get(key, {}).items()]
        for name, m in rows:
            lines.append(f"{name:<24} {m['steps']:>6} {_fmt(m['type_accuracy'])} {_fmt(m['grounding_accuracy'])} "
                         f"{_fmt(m['step_success_rate'])} {_fmt(m['episode_success_rate']):>7} {m['missing']:>7}")
    else:
        lines.append(f"{'slice':<24} {'n':>6} {'text':>6} {'icon':>6} {'all':>6} {'missing':>7}")
        rows = [("overall", metrics["overall"])]
        for key in ("by_split", "by_group"):
            rows += [(f"{key[3:]}={k}", v) for k, v in metrics.get(key, {}).items()]
        for name, m in rows:
            lines.append(f"{name:<24} {m['samples']:>6} {_fmt(m['text_accuracy'])} {_fmt(m['icon_accuracy'])} "
                         f"{_fmt(m['accuracy'])} {m['missing']:>7}")
        lines.append(f"macro average over (split, type) cells: {_fmt(metrics['overall']['macro_accuracy']).strip()}")
    return "\n".join(lines)
