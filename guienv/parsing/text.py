"""Finding the action in free text: the ``<think>``/``<answer>``/``Action:`` wrappers, one linear
scan for bracketed spans and coordinate tags, and :func:`parse_action_detailed` /
:func:`parse_action`. See :mod:`guienv.parsing` for the formats and the decisions taken."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from guienv.actions import Action, ActionType
from guienv.frames import Frame
from guienv.parsing.formats import _UITARS_NAMES, _from_uitars, _from_value, _loads, _Recognised
from guienv.parsing.values import (
    _ASCII_LOWER,
    _CLOSE,
    _OPEN,
    _VALUE_START,
    MAX_ANSWER_BLOCKS,
    MAX_CANDIDATES,
    MAX_CHARS,
    MAX_DEPTH,
    _Bad,
    _box,
    _mk,
    _numbers,
)


@dataclass(frozen=True)
class ParseResult:
    """What :func:`parse_action_detailed` read from one model output."""

    action: Action
    format: str | None = None  # format that matched (see the module docstring); None: nothing recognised
    answer: str | None = None  # content of <answer>/<action> (or after UI-TARS' "Action:"), if any
    think: str | None = None  # content of <think> (or UI-TARS' "Thought:"), if any
    truncated: bool = False  # the output was longer than MAX_CHARS and was cut
    raw: str | None = None  # the piece of text the action (or the recognised attempt) came from


# -- scanning ---------------------------------------------------------------------------------
def _spans(text: str) -> list[tuple[int, int, int]]:
    """Maximal balanced bracket spans ``(start, end, depth)`` in text order, found in one pass.

    Quotes are honoured only inside brackets and only where a value can start (after one of
    ``[{(,:=``), so apostrophes in prose do not swallow the text. A closer with no matching
    opener is ignored; one matching a deeper opener closes the unclosed ones in between. When an
    outer bracket never closes, the complete spans inside it are returned instead.
    """
    out: list[tuple[int, int, int]] = []
    stack: list[list[Any]] = []  # [opener, start, max depth below, complete child spans]
    counts = {"(": 0, "[": 0, "{": 0}
    quote = ""
    escape = False
    prev = ""
    for i, c in enumerate(text):
        if quote:
            if escape:
                escape = False
            elif c == "\\":
                escape = True
            elif c == quote:
                quote = ""
                prev = c
            continue
        if c in _OPEN:
            stack.append([c, i, 0, []])
            counts[c] += 1
        elif c in _CLOSE:
            want = _CLOSE[c]
            if counts[want]:
                below = 0
                while True:
                    opener, start, sub, _ = stack.pop()
                    counts[opener] -= 1
                    below = max(below, sub + 1)
                    if opener == want:
                        break
                span = (start, i + 1, below)
                if stack:
                    stack[-1][2] = max(stack[-1][2], below)
                    stack[-1][3].append(span)
                else:
                    out.append(span)
                    if len(out) >= MAX_CANDIDATES:
                        return out
        elif c in "'\"" and stack and prev in _VALUE_START:
            quote = c
        if not c.isspace():
            prev = c
    for entry in stack:  # unclosed outer brackets: keep the complete spans inside them
        out.extend(entry[3])
    out.sort()
    return out[:MAX_CANDIDATES]


# Qwen-VL (SeeClick's base model) writes boxes as <box>(x1,y1),(x2,y2)</box> on the 0-1000 grid.
_TAGS = (("<|box_start|>", "<|box_end|>"), ("<point>", "</point>"), ("<bbox>", "</bbox>"), ("<box>", "</box>"))
_BARE_NUMBER = re.compile(r"-?\d+(?:\.\d*)?|-?\.\d+")


def _tag_spans(text: str, low: str) -> list[tuple[int, int, int, int]]:
    """Coordinate tags ``(start, end, content_start, content_end)``."""
    out = []
    for open_, close in _TAGS:
        pos = 0
        while len(out) < MAX_CANDIDATES:
            i = low.find(open_, pos)
            if i < 0:
                break
            j = low.find(close, i + len(open_))
            if j < 0:
                break
            out.append((i, j + len(close), i + len(open_), j))
            pos = j + len(close)
    return out


def _call_name(text: str, start: int) -> str:
    j = start
    while j > 0 and start - j < 40 and (text[j - 1].isalnum() or text[j - 1] == "_") and text[j - 1].isascii():
        j -= 1
    name = text[j:start]
    return name if name and not name[0].isdigit() else ""


@dataclass
class _Found:
    action: Action | None = None
    fmt: str | None = None
    raw: str | None = None


def _search(text: str, frame: Frame) -> tuple[_Found | None, _Found | None, str | None]:
    """(first valid structured action, first valid bare tuple, first reason) in ``text``."""
    low = text.translate(_ASCII_LOWER)
    spans = _spans(text)
    cands: list[tuple[int, int, str, Any]] = [(s, e, "span", d) for s, e, d in spans]
    for s, e, cs, ce in _tag_spans(text, low):
        if not any(a <= s and e <= b for a, b, _ in spans):  # tags inside a call/JSON are its own business
            cands.append((s, e, "tag", (cs, ce)))
    cands.sort(key=lambda c: (c[0], -c[1]))
    bare: _Found | None = None
    reason: str | None = None
    recognised: _Found | None = None
    failed_tags: list[tuple[int, int]] = []  # a bad tag's inner "(x1,y1)" must not be read as a point
    for start, end, kind, extra in cands[:MAX_CANDIDATES]:
        raw = text[start:end]
        if any(a <= start and end <= b for a, b in failed_tags):
            continue
        try:
            if kind == "tag":
                nums = _numbers(text[extra[0] : extra[1]], "tag")
                if len(nums) == 2:
                    act = _mk(ActionType.CLICK, frame, point=tuple(nums))
                elif len(nums) == 4:
                    act = _mk(ActionType.BOX, frame, box=_box(nums, "box"))
                else:
                    raise _Bad(f"a coordinate tag needs 2 numbers (a point) or 4 (a box), got {len(nums)}")
                return _Found(act, "coordinate_tag", raw), bare, reason
            if extra > MAX_DEPTH:
                reason = reason or f"bracket nesting deeper than {MAX_DEPTH} skipped"
                continue
            name = _call_name(text, start) if raw[0] == "(" else ""
            if name:
                if name.lower() not in _UITARS_NAMES:
                    continue
                raw = name + raw
                act = _from_uitars(name, raw[len(name) + 1 : -1], frame)
                return _Found(act, "uitars", raw), bare, reason
            try:
                value = _loads(raw)
            except ValueError:
                continue
            got = _from_value(value, frame)
            if got is None:
                continue
            act, fmt, is_bare = got
            if not is_bare:
                return _Found(act, fmt, raw), bare, reason
            if bare is None:
                bare = _Found(act, fmt, raw)
        except _Recognised as exc:
            reason = reason or f"{exc.fmt}: {exc.reason}"
            recognised = recognised or _Found(None, exc.fmt, raw)
        except _Bad as exc:
            fmt = "coordinate_tag" if kind == "tag" else "uitars"
            if kind == "tag":
                failed_tags.append((start, end))
            reason = reason or f"{fmt}: {exc}"
            recognised = recognised or _Found(None, fmt, raw)
        except Exception as exc:  # noqa: BLE001 - hostile text must never escape as an exception
            reason = reason or f"unreadable candidate ({type(exc).__name__})"
    return recognised, bare, reason


def _bare_numbers(region: str, frame: Frame) -> _Found | None:
    """A region that is nothing but 2 (a point) or 4 (a box) comma-separated numbers, without
    brackets: SeeClick answers ``0.67, 0.97``. Prose with numbers in it is not read."""
    text = region.strip()
    if not text or len(text) > 200:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (2, 4) or not all(_BARE_NUMBER.fullmatch(p) for p in parts):
        return None
    try:
        nums = [float(p) for p in parts]
        if len(nums) == 2:
            return _Found(_mk(ActionType.CLICK, frame, point=tuple(nums)), "bare_point", text)
        return _Found(_mk(ActionType.BOX, frame, box=_box(nums, "box")), "bare_box", text)
    except _Bad:
        return None


# -- wrappers ---------------------------------------------------------------------------------
def _blocks(text: str, low: str, tag: str) -> list[str]:
    out, pos = [], 0
    open_, close = f"<{tag}>", f"</{tag}>"
    while len(out) < MAX_ANSWER_BLOCKS:
        i = low.find(open_, pos)
        if i < 0:
            break
        j = low.find(close, i + len(open_))
        out.append(text[i + len(open_) : j if j >= 0 else len(text)])
        if j < 0:
            break
        pos = j + len(close)
    return out


def _split(text: str) -> tuple[str | None, list[str], str | None]:
    """(think, regions to search, where they come from: "tags", "uitars" or None)."""
    low = text.translate(_ASCII_LOWER)
    think = None
    outside = text
    for tag in ("think", "thinking"):
        i, j = low.find(f"<{tag}>"), low.find(f"</{tag}>")
        if i >= 0 and (j < 0 or j > i):
            if j >= 0:
                think = text[i + len(tag) + 2 : j]
                outside = text[:i] + "\n" + text[j + len(tag) + 3 :]
            else:  # unclosed: everything after it is reasoning
                think = text[i + len(tag) + 2 :]
                outside = text[:i]
            break
        if j >= 0:  # "</think>" alone: the chat template opened the block
            think = text[:j]
            outside = text[j + len(tag) + 3 :]
            break
    low = outside.translate(_ASCII_LOWER)
    blocks = _blocks(outside, low, "answer") or _blocks(outside, low, "action")
    if blocks:
        return think, blocks, "tags"
    k = outside.rfind("Action:")
    if k >= 0:  # UI-TARS "Thought: ...\nAction: ..."
        t = outside.find("Thought:")
        if think is None and 0 <= t < k:
            think = outside[t + len("Thought:") : k].strip()
        return think, [outside[k + len("Action:") :]], "uitars"
    return think, [outside], None


def parse_action_detailed(text: Any, *, frame: Frame | str = Frame.PIXEL) -> ParseResult:
    """Parse one model output; see the module docstring for formats and decisions.

    ``frame`` labels the coordinates found in the text (``ValueError`` for an unknown frame name:
    that is a caller bug, not model output). Never raises on ``text``, whatever its type."""
    frame = Frame(frame)
    if not isinstance(text, str):
        return ParseResult(Action.invalid(f"model output must be a string, got {type(text).__name__}"))
    truncated = len(text) > MAX_CHARS
    if truncated:
        text = text[:MAX_CHARS]
    note = f" (output truncated to its first {MAX_CHARS} characters)" if truncated else ""
    try:
        think, regions, source = _split(text)
        tagged = source == "tags"
        answer = regions[0] if tagged else (regions[0].strip() if source == "uitars" else None)
        first_reason: str | None = None
        first_miss: _Found | None = None
        for region in regions:  # the first region with a valid action wins
            found, bare, reason = _search(region, frame)
            hit = found if found is not None and found.action is not None else bare
            if hit is None:
                hit = _bare_numbers(region, frame)
            if hit is not None:
                if tagged:
                    answer = region
                return ParseResult(hit.action, hit.fmt, answer, think, truncated, hit.raw)
            first_reason = first_reason or reason
            first_miss = first_miss or found
        if first_reason is None:
            if tagged and not any(r.strip() for r in regions):
                first_reason = "empty <answer>/<action> block"
            elif not tagged and not regions[-1].strip() and think is not None:
                first_reason = "no action outside the <think> block"
            else:
                first_reason = "no action found in the model output"
        fmt, raw = (first_miss.fmt, first_miss.raw) if first_miss else (None, None)
        return ParseResult(Action.invalid(first_reason + note), fmt, answer, think, truncated, raw)
    except Exception as exc:  # noqa: BLE001 - last guard: parsing must never raise
        return ParseResult(Action.invalid(f"parser error {type(exc).__name__}: {exc}{note}"), truncated=truncated)


def parse_action(text: Any, *, frame: Frame | str = Frame.PIXEL) -> Action:
    """The action in a model output (``Action.invalid(reason)`` when there is none); never raises
    on ``text``. Coordinates are labelled with ``frame``. See :func:`parse_action_detailed`."""
    return parse_action_detailed(text, frame=frame).action
