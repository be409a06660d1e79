"""Format rewards: is the completion shaped the way the prompt asked? (GUI-R1, Luo et al., arXiv 2504.10458)

R1-style GUI RL recipes (GUI-R1, UI-R1, InfiGUI-R1, UI-S1) add a small 0/1 format term to the
task reward: the completion must carry the required tags (``<think>...</think>`` then
``<answer>...</answer>``, or ``<tool_call>...</tool_call>``), and the answer must parse into an
action. :func:`check_format` says which rule failed; :func:`format_reward` is the 0/1 reward.

Rules of :class:`FormatSpec` (all configurable, loadable from YAML through
:class:`rewards.composite.CompositeConfig`):

* every tag in ``required_tags`` appears exactly once as a ``<tag>...</tag>`` pair, in the given
  order when ``ordered`` (pairs must not overlap);
* ``strict``: nothing but whitespace outside the tag pairs;
* ``require_parsable``: the answer (the content of ``answer_tag`` when that tag is present, else
  the whole completion) parses into a valid action with :func:`guienv.parsing.parse_action`;
  ``allowed_types`` optionally restricts the action types (e.g. only ``box`` for GUI-G1).

Completions are untrusted text: the checks are plain substring searches (linear time, no
backtracking regexes) on input bounded to ``MAX_CHARS`` and never raise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from guienv.parsing import parse_action

MAX_CHARS = 100_000  # longer completions fail the format (and keep the regexes cheap)


@dataclass(frozen=True)
class FormatSpec:
    required_tags: tuple[str, ...] = ("think", "answer")
    ordered: bool = True
    strict: bool = False
    require_parsable: bool = True
    answer_tag: str | None = "answer"
    allowed_types: tuple[str, ...] = ()  # ActionType values; empty: any valid action

    def __post_init__(self) -> None:
        object.__setattr__(self, "required_tags", tuple(self.required_tags))
        object.__setattr__(self, "allowed_types", tuple(self.allowed_types))
        for t in self.required_tags + ((self.answer_tag,) if self.answer_tag else ()):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", t):
                raise ValueError(f"tag names must be identifiers, got {t!r}")


@dataclass(frozen=True)
class FormatResult:
    ok: bool
    reason: str = ""
    answer: str | None = None  # the text that was (or would be) parsed
    spans: dict[str, tuple[int, int]] = field(default_factory=dict)


def _find_pair(text: str, tag: str) -> tuple[int, int, int, int] | None:
    """(open_start, content_start, content_end, close_end) of the first ``<tag>...</tag>`` pair.

    Plain ``str.find`` (linear time): completions are untrusted and may be adversarial."""
    open_, close = f"<{tag}>", f"</{tag}>"
    a = text.find(open_)
    if a < 0:
        return None
    c = text.find(close, a + len(open_))
    if c < 0:
        return None
    return a, a + len(open_), c, c + len(close)


def extract_tag(text: str, tag: str) -> str | None:
    """Content of the first ``<tag>...</tag>`` pair (stripped), or None."""
    if not isinstance(text, str):
        return None
    pair = _find_pair(text[:MAX_CHARS], tag)
    return text[pair[1] : pair[2]].strip() if pair else None


def answer_text(text: str, answer_tag: str | None = "answer") -> str:
    """What to parse as the action: the answer tag's content if present, else the whole text."""
    if answer_tag:
        inner = extract_tag(text, answer_tag)
        if inner is not None:
            return inner
    return text


def check_format(text: str, spec: FormatSpec = FormatSpec()) -> FormatResult:
    """Check ``text`` against ``spec``; ``ok`` with an empty reason, or the first rule that fails."""
    if not isinstance(text, str):
        return FormatResult(False, f"completion must be text, got {type(text).__name__}")
    if len(text) > MAX_CHARS:
        return FormatResult(False, f"completion longer than {MAX_CHARS} characters")
    spans: dict[str, tuple[int, int]] = {}
    for tag in spec.required_tags:
        pair = _find_pair(text, tag)
        if pair is None:
            return FormatResult(False, f"missing <{tag}>...</{tag}>")
        if text.count(f"<{tag}>") != 1 or text.count(f"</{tag}>") != 1:
            return FormatResult(False, f"<{tag}> must appear exactly once")
        spans[tag] = (pair[0], pair[3])
    ordered = [spans[t] for t in spec.required_tags]
    if spec.ordered or spec.strict:
        for (_, b), (c, _), t in zip(ordered, ordered[1:], spec.required_tags[1:]):
            if c < b:
                return FormatResult(False, f"<{t}> must come after the previous tag and not overlap it")
    if spec.strict:
        rest, pos = [], 0
        for a, b in sorted(ordered):
            rest.append(text[pos:a])
            pos = b
        rest.append(text[pos:])
        if "".join(rest).strip():
            return FormatResult(False, "text outside the required tags")
    answer = answer_text(text, spec.answer_tag)
    if spec.require_parsable:
        action = parse_action(answer)
        if not action.is_valid:
            return FormatResult(False, f"answer does not parse: {action.reason}", answer, spans)
        if spec.allowed_types and action.type.value not in spec.allowed_types:
            return FormatResult(False, f"action type {action.type.value} not in {list(spec.allowed_types)}", answer, spans)
    return FormatResult(True, "", answer, spans)


def format_reward(text: str, spec: FormatSpec = FormatSpec()) -> float:
    """1.0 if ``text`` satisfies ``spec`` else 0.0."""
    return 1.0 if check_format(text, spec).ok else 0.0
