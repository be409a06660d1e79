"""Benchmark aggregates from per-step / per-sample verdicts (AndroidControl, arXiv 2406.03679;
ScreenSpot, SeeClick arXiv 2401.10935).

AndroidControl (:func:`androidcontrol_metrics`), over :class:`StepRecord` lists:

* ``type_accuracy``: steps whose action type matched / all steps.
* ``grounding_accuracy``: click/long-press steps (by ground truth) whose type matched and whose
  point hit / click/long-press steps whose type matched (the OS-Atlas definition;
  ``grounding_steps`` is the denominator). ``click_grounding_accuracy`` restricts both to clicks
  (what OS-Atlas' script prints) and ``click_match_rate`` divides the hits by *all* GT clicks
  (InfiGUI-R1's ``click_match_acc``).
* ``step_success_rate``: steps with type and arguments right / all steps.
* ``episode_success_rate``: episodes whose every step is right / all episodes.
* ``missing``: steps without a prediction (they count as wrong everywhere).

Each block is reported overall, per ``split``, per ``subsplit`` (IDD, app_unseen, task_unseen,
category_unseen) and per ground-truth action type.

ScreenSpot (:func:`screenspot_metrics`), over :class:`GroundingRecord` lists: accuracy (point, or
predicted box centre, inside the GT box) for text and icon targets per split (ScreenSpot:
mobile/desktop/web; Pro: the application), per platform and per Pro group, and overall as

* ``accuracy`` (micro): correct / all samples - ScreenSpot-Pro's overall number;
* ``macro_accuracy``: the mean over the (split, data_type) cells - the "Average" column of the
  SeeClick ScreenSpot table (e.g. SeeClick's 78.0/52.0/72.2/30.0/55.7/32.5 -> 53.4, while the
  micro average over the 1,272 samples would be 55.7).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rewards.action_match import StepVerdict

POINTER_TYPES = ("click", "long_press")


@dataclass(frozen=True)
class StepRecord:
    """One scored AndroidControl step."""

    episode_id: str
    step_index: int
    verdict: StepVerdict
    gt_type: str = ""
    split: str | None = None
    subsplit: str | None = None
    missing: bool = False

    @property
    def type(self) -> str:
        return self.gt_type or self.verdict.gt_type


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def step_block(records: Sequence[StepRecord]) -> dict[str, Any]:
    """The AndroidControl metrics of one group of steps (see module doc)."""
    n = len(records)
    type_ok = sum(r.verdict.type_match for r in records)
    exact = sum(r.verdict.exact_match for r in records)
    pointer = [r for r in records if r.type in POINTER_TYPES]
    pointer_typed = [r for r in pointer if r.verdict.type_match]
    pointer_hit = sum(bool(r.verdict.grounding) for r in pointer_typed)
    clicks = [r for r in records if r.type == "click"]
    clicks_typed = [r for r in clicks if r.verdict.type_match]
    click_hit = sum(bool(r.verdict.grounding) for r in clicks_typed)
    episodes: dict[str, bool] = {}
    for r in records:
        episodes[r.episode_id] = episodes.get(r.episode_id, True) and r.verdict.exact_match
    return {
        "steps": n,
        "episodes": len(episodes),
        "type_accuracy": _ratio(type_ok, n),
        "grounding_accuracy": _ratio(pointer_hit, len(pointer_typed)),
        "grounding_steps": len(pointer_typed),
        "click_grounding_accuracy": _ratio(click_hit, len(clicks_typed)),
        "click_match_rate": _ratio(click_hit, len(clicks)),
        "step_success_rate": _ratio(exact, n),
        "episode_success_rate": _ratio(sum(episodes.values()), len(episodes)),
        "missing": sum(r.missing for r in records),
    }


def _grouped(records: Iterable[Any], key: Callable[[Any], Any], block: Callable[[list], dict]) -> dict[str, dict]:
    groups: dict[str, list] = defaultdict(list)
    for r in records:
        k = key(r)
        if k is not None:
            groups[str(k)].append(r)
    return {k: block(v) for k, v in sorted(groups.items())}


def androidcontrol_metrics(records: Sequence[StepRecord]) -> dict[str, Any]:
    """Overall, per split, per subsplit and per GT action type AndroidControl metrics.

    Episode success needs every step of an episode in ``records``: score whole episodes."""
    out: dict[str, Any] = {"overall": step_block(records)}
    for name, key in (("by_split", lambda r: r.split), ("by_subsplit", lambda r: r.subsplit), ("by_type", lambda r: r.type or None)):
        groups = _grouped(records, key, step_block)
        if groups:
            out[name] = groups
    return out


# -- ScreenSpot ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class GroundingRecord:
    """One scored grounding sample."""

    id: str
    correct: bool
    data_type: str | None = None  # text | icon
    split: str | None = None
    platform: str | None = None
    group: str | None = None  # ScreenSpot-Pro group (Dev, Creative, CAD, Scientific, Office, OS)
    parsed: bool = True
    missing: bool = False


def grounding_block(records: Sequence[GroundingRecord]) -> dict[str, Any]:
    """Accuracy of one group of grounding samples, overall and for text / icon targets."""
    text = [r for r in records if (r.data_type or "").lower() == "text"]
    icon = [r for r in records if (r.data_type or "").lower() == "icon"]
    return {
        "samples": len(records),
        "accuracy": _ratio(sum(r.correct for r in records), len(records)),
        "text_accuracy": _ratio(sum(r.correct for r in text), len(text)),
        "text_samples": len(text),
        "icon_accuracy": _ratio(sum(r.correct for r in icon), len(icon)),
        "icon_samples": len(icon),
        "unparsed": sum((not r.parsed) and not r.missing for r in records),
        "missing": sum(r.missing for r in records),
    }


def screenspot_metrics(records: Sequence[GroundingRecord]) -> dict[str, Any]:
    """ScreenSpot-family metrics: per split/platform/group text and icon accuracy, overall micro
    ``accuracy`` and SeeClick-style ``macro_accuracy`` over the (split, data_type) cells."""
    overall = grounding_block(records)
    cells: dict[tuple, list[bool]] = defaultdict(list)
    for r in records:
        cells[(r.split, (r.data_type or "").lower() or None)].append(r.correct)
    overall["macro_accuracy"] = _ratio(sum(sum(v) / len(v) for v in cells.values()), len(cells)) if cells else None
    overall["macro_cells"] = len(cells)
    out: dict[str, Any] = {"overall": overall}
    for name, key in (("by_split", lambda r: r.split), ("by_platform", lambda r: r.platform), ("by_group", lambda r: r.group)):
        groups = _grouped(records, key, grounding_block)
        if groups:
            out[name] = groups
    return out
