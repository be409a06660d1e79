"""What the judge is asked and what it answers: the request and result types, the verdict parser
(a ``<verdict>`` tag or a ``<score>`` in [0, 1]; majority over votes) and the prompt (the proposed
action described in words and drawn on the screenshot, with the goal and recent history; or the
words alone, :data:`SYSTEM_PROMPT_TEXT`, for a judge served as a text model).

CRAFT-GUI (arXiv 2508.11360) combines rule-based rewards with such a judge; the prompt follows the
step-level judges of ZeroGUI (arXiv 2505.23762) and GUI-Critic-R1 (arXiv 2506.04614).
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from guienv.actions import OPPOSITE, Action, ActionType
from guienv.draw import _clean
from guienv.frames import Frame, Screen

PROMPT_VERSION = "guienv-step-judge-v1"

# -- requests, results, parsing ------------------------------------------------------------------
ImageLike = Any  # guienv.types.ImageRef | np.ndarray | PIL.Image.Image | bytes | str | Path


@dataclass(frozen=True)
class JudgeRequest:
    """One (screen, proposed action) pair to judge.

    ``action`` may be in any frame of the screenshot; ``width``/``height`` (or ``screen``) give the
    screenshot's size, else it is read from the image header. ``history`` holds earlier actions,
    as :class:`Action` objects or text. ``reference`` (optional) is shown as the demonstrator's
    action when a caller wants the judge to compare with it.
    """

    sample_id: str
    image: ImageLike
    action: Action
    goal: str
    instruction: str | None = None
    history: tuple[Action | str, ...] = ()
    reference: Action | str | None = None
    width: int | None = None
    height: int | None = None
    screen: Screen | None = None


@dataclass(frozen=True)
class JudgeResult:
    """``outcome``: ``judged`` (fresh verdict), ``cached``, ``fallback`` (backend failed, score is
    ``fallback_score``) or ``unparsable`` (score is the unparsable fallback). ``deduped``: this
    request shared the answer of an identical request in flight."""

    score: float
    verdict: bool | None
    outcome: str
    raw: tuple[str, ...] = ()
    votes: tuple[float, ...] = ()
    error: str = ""
    deduped: bool = False

    @property
    def flagged(self) -> bool:
        """True when the score is a configured fallback rather than the judge's answer."""
        return self.outcome in ("fallback", "unparsable")


@dataclass(frozen=True)
class ParsedVerdict:
    ok: bool
    verdict: bool | None = None
    score: float | None = None
    error: str = ""

    @property
    def value(self) -> float:
        if self.score is not None:
            return self.score
        return 1.0 if self.verdict else 0.0


_MAX_ANSWER_CHARS = 100_000
_VERDICT_RE = re.compile(r"<\s*verdict\s*>\s*([A-Za-z]+)\s*<\s*/\s*verdict\s*>", re.IGNORECASE)
_SCORE_RE = re.compile(r"<\s*score\s*>\s*([^<>]{0,40}?)\s*<\s*/\s*score\s*>", re.IGNORECASE)
_YES_NO = {"yes": True, "no": False}


def parse_verdict(text: Any) -> ParsedVerdict:
    """Parse a judge answer (hostile text). Never raises; ``ok=False`` carries the reason."""
    if not isinstance(text, str):
        return ParsedVerdict(False, error=f"answer is {type(text).__name__}, not text")
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    text = text[:_MAX_ANSWER_CHARS]
    words = {w.lower() for w in _VERDICT_RE.findall(text)}
    if not words:
        return ParsedVerdict(False, error="no <verdict>yes|no</verdict> tag")
    if not words <= set(_YES_NO):
        return ParsedVerdict(False, error=f"verdict must be yes or no, got {sorted(words)[:3]}")
    if len(words) > 1:
        return ParsedVerdict(False, error="conflicting verdicts")
    verdict = _YES_NO[words.pop()]
    score = None
    for s in reversed(_SCORE_RE.findall(text)):
        try:
            v = float(s)
        except ValueError:
            continue
        if math.isfinite(v) and 0.0 <= v <= 1.0:
            score = v
            break
    return ParsedVerdict(True, verdict, score)


def aggregate_votes(parsed: Sequence[ParsedVerdict]) -> ParsedVerdict:
    """Voting: mean score over parsable samples, majority verdict (ties: mean score >= 0.5)."""
    good = [p for p in parsed if p.ok]
    if not good:
        errors = "; ".join(sorted({p.error for p in parsed})) or "no answer"
        return ParsedVerdict(False, error=errors)
    score = sum(p.value for p in good) / len(good)
    yes = sum(1 for p in good if p.verdict)
    no = len(good) - yes
    return ParsedVerdict(True, yes > no if yes != no else score >= 0.5, score)


# -- prompt --------------------------------------------------------------------------------------
SYSTEM_PROMPT = (
    "You evaluate actions of a GUI agent that operates a phone or computer for a user. You see a "
    "screenshot of the current screen with the agent's proposed next action drawn on it in red: a "
    "circle with a crosshair marks where the agent taps or long-presses, an arrow shows the path of "
    "the finger in a swipe or scroll, a rectangle marks a box answer, and a caption on a black band "
    "states text actions (typing, opening an app, system keys). Decide whether the proposed action is "
    "a correct next step toward the user's goal. Reply with exactly one line in this format: "
    "<verdict>yes</verdict><score>S</score> or <verdict>no</verdict><score>S</score>, where S is a "
    "number between 0 and 1 giving your confidence that the action is correct."
)
# The text-only prompt (JudgeConfig.send_image=False), for a judge served as a text model: the
# request text already states the screen size and every action in words with pixel coordinates.
SYSTEM_PROMPT_TEXT = (
    "You evaluate actions of a GUI agent that operates a phone or computer for a user. You do not see "
    "the screen: you are told the user's goal, the step instruction when there is one, the previous "
    "actions and the agent's proposed next action in words, with coordinates in pixels of the screen "
    "(whose size is given). Decide whether the proposed action is a correct next step toward the user's "
    "goal. Reply with exactly one line in this format: "
    "<verdict>yes</verdict><score>S</score> or <verdict>no</verdict><score>S</score>, where S is a "
    "number between 0 and 1 giving your confidence that the action is correct."
)
# Cache identity of the prompt: the version plus a digest of the instructions, so editing the
# system prompt without bumping PROMPT_VERSION still cannot reuse old verdicts (nor a text-only
# verdict stand for one made with the screenshot).
PROMPT_ID = f"{PROMPT_VERSION}:{hashlib.sha256(SYSTEM_PROMPT.encode()).hexdigest()[:8]}"
PROMPT_ID_TEXT = f"{PROMPT_VERSION}-text:{hashlib.sha256(SYSTEM_PROMPT_TEXT.encode()).hexdigest()[:8]}"


def _neutral(text: Any, limit: int = 400) -> str:
    # Untrusted text (policy output, recorded history) must not forge answer tags or model special
    # tokens such as <|image_pad|>: angle brackets become look-alikes.
    return _clean(str(text), limit).replace("<", "‹").replace(">", "›")


def _pt(p: tuple[float, float]) -> str:
    return f"({round(p[0])}, {round(p[1])})"


def _off(p: tuple[float, float], screen: Screen) -> str:
    inside = 0 <= p[0] <= screen.width and 0 <= p[1] <= screen.height
    return "" if inside else " (outside the screen)"


def describe_action(action: Action, screen: Screen) -> str:
    """The action in words, coordinates in pixels of ``screen``."""
    a = action.to_frame(Frame.PIXEL, screen) if action.is_valid else action
    t = a.type
    if t is ActionType.CLICK:
        return f"tap at {_pt(a.point)}{_off(a.point, screen)}"
    if t is ActionType.LONG_PRESS:
        return f"long-press at {_pt(a.point)}{_off(a.point, screen)}"
    if t is ActionType.SWIPE:
        if a.point is not None and a.end is not None:
            moves = f" (finger moves {a.swipe_direction()})" if a.swipe_direction() else ""
            return f"swipe the finger from {_pt(a.point)} to {_pt(a.end)}{moves}{_off(a.end, screen)}"
        return f"swipe the finger {a.direction}"
    if t is ActionType.SCROLL:
        where = f" at {_pt(a.point)}" if a.point is not None else ""
        return (f"scroll {a.direction}{where}: the content moves {a.direction}, "
                f"so the finger swipes {OPPOSITE[a.direction]}")
    if t is ActionType.TYPE:
        where = f" into the field at {_pt(a.point)}" if a.point is not None else ""
        return f'type the text "{_neutral(a.text)}"{where}'
    if t is ActionType.OPEN_APP:
        return f'open the app "{_neutral(a.text, 100)}"'
    if t is ActionType.NAVIGATE_BACK:
        return "press the system Back button"
    if t is ActionType.NAVIGATE_HOME:
        return "press the system Home button"
    if t is ActionType.KEYBOARD_ENTER:
        return "press Enter on the keyboard"
    if t is ActionType.WAIT:
        return "wait for the screen to update"
    if t is ActionType.FINISH:
        answer = f' with the answer "{_neutral(a.text)}"' if a.text else ""
        return f"finish the task as {a.status}{answer}"
    if t is ActionType.BOX:
        x1, y1, x2, y2 = a.box
        return f"answer with the box {_pt((x1, y1))}-{_pt((x2, y2))}"
    return "an action that could not be read"


def _history_line(item: Action | str, screen: Screen) -> str:
    if isinstance(item, Action):
        try:
            return describe_action(item, screen)
        except (ValueError, TypeError):
            return "an earlier action"
    return _neutral(item, 200)


def build_user_text(request: JudgeRequest, screen: Screen, action: Action, history_window: int) -> str:
    lines = [f"Goal: {_neutral(request.goal, 1000)}"]
    if request.instruction:
        lines.append(f"Step instruction: {_neutral(request.instruction, 500)}")
    hist = list(request.history)[-history_window:] if history_window > 0 else []
    if hist:
        skipped = len(request.history) - len(hist)
        more = f" (the last {len(hist)} of {len(request.history)})" if skipped else ""
        lines.append(f"Previous actions{more}:")
        lines += [f"{i + 1 + skipped}. {_history_line(h, screen)}" for i, h in enumerate(hist)]
    else:
        lines.append("Previous actions: none")
    lines.append(f"Screen size: {screen.width}x{screen.height} pixels.")
    lines.append(f"Proposed action: {describe_action(action, screen)}")
    if request.reference is not None:
        ref = request.reference
        ref_text = describe_action(ref, screen) if isinstance(ref, Action) else _neutral(ref)
        lines.append(f"Action a human demonstrator took here (one correct option): {ref_text}")
    lines.append(
        "Is the proposed action a correct next step? Answer with exactly one line: "
        "<verdict>yes</verdict><score>S</score> or <verdict>no</verdict><score>S</score>."
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class JudgePrompt:
    """What one judge call sends; ``image_png`` is ``b""`` for a text-only prompt."""

    system: str
    text: str
    image_png: bytes = field(default=b"", repr=False)

    @property
    def has_image(self) -> bool:
        return bool(self.image_png)

    def image(self) -> Image.Image:
        if not self.image_png:
            raise ValueError("this judge prompt is text-only (JudgeConfig.send_image=False): it has no image")
        return Image.open(io.BytesIO(self.image_png)).convert("RGB")
