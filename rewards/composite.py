"""Composite rewards: a weighted sum of named reward terms, configured by a dataclass (or YAML).

Published recipes, available as :data:`PRESETS` (each cited below):

* ``gui-g1``: GUI-G1 (arXiv 2505.15810; ``Yuqi-Zhou/GUI-G1``
  ``src/open-r1-multimodal/src/open_r1/grpo_rec.py``), ``R_hit + 0.25 R_iou + 0.125 R_box`` on the
  predicted box (one ``gui_g1`` term; its inner weights are parameters), reproducing the reference:
  ``parser: gui-g1`` (answers read exactly as GUI-G1 reads them, :mod:`guienv.parsing.gui_g1`) and
  ``iou_convention: reference``. The only differences left (inverted boxes, edges more than an
  image width off) are listed in :mod:`rewards.grounding`.
* ``gui-g1-lenient``: the same reward with guienv's lenient parser (``<answer>`` tags, ``<think>``
  blocks, JSON ``true``/``null``, any fence, point answers as zero-area boxes) and continuous IoU.
* ``gui-r1``: GUI-R1 (arXiv 2504.10458; ``ritzz-ai/GUI-R1`` ``verl/utils/reward_score/r1gui.py``),
  ``0.8 * accuracy + 0.2 * format`` reproducing the reference's reading and rules
  (:mod:`rewards.gui_r1`: single-quoted ``'action'`` in ``<answer>``, integer points, strict
  inside/140 px, token F1 >= 0.5 for type/select/scroll, its full-match format rule).
* ``gui-r1-lenient``: guienv's reading of GUI-R1: lenient parser, ``accuracy`` under the ``gui-r1``
  matching protocol (:mod:`rewards.action_match`), format = ``<think>`` then ``<answer>`` that parses.
* ``ui-s1``: UI-S1, ``0.1 * format + 0.9 * action`` with action = 1 exact, 0.5 type only, 0.1
  parsable but wrong type, 0 unparsable.

A term is a function ``fn(inp: RewardInput, **params) -> float`` registered under a name with
:func:`register_term`; :data:`TERMS` lists them. A target is either a
:class:`~guienv.types.GroundingSample` (one-step grounding) or a :class:`~guienv.types.Step`
(a recorded trajectory step, judged by :func:`rewards.action_match.match_step` under a named
protocol). The completion is parsed once, in ``frame``, and converted to the target's pixel
frame, by the config's ``parser``: ``lenient`` (default) is :func:`guienv.parsing.parse_action` on
the content of ``answer_tag`` when present; ``gui-g1`` is GUI-G1's own reader
(:func:`guienv.parsing.gui_g1.read_gui_g1_box`, whole completion, ``answer_tag`` unused).

YAML example (``CompositeConfig.from_yaml``; ``yaml.safe_load``)::

    frame: resized
    max_pixels: 1003520
    terms:
      - {name: accuracy, weight: 0.8, params: {protocol: gui-r1}}
      - {name: format, weight: 0.2, params: {required_tags: [think, answer]}}
"""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Union

import yaml

from guienv.actions import Action, ActionType
from guienv.config import load_config, load_yaml
from guienv.frames import QWEN_MAX_PIXELS, QWEN_MIN_PIXELS, Frame, Resize, Screen, convert_point
from guienv.parsing import read_action
from guienv.parsing.gui_g1 import read_gui_g1_box
from guienv.parsing.gui_r1 import read_gui_r1
from guienv.types import GroundingSample, Step
from rewards.action_match import PROTOCOLS, match_step
from rewards.format import FormatSpec, answer_text, format_reward
from rewards.grounding import (
    GroundingWeights,
    gaussian_point_reward,
    gui_g1_reward,
    point_in_box,
    predicted_box,
    se_gui_point_reward,
)
from rewards.gui_r1 import gui_r1_accuracy, gui_r1_format, gui_r1_truth

Target = Union[GroundingSample, Step]
# How a completion becomes an action: guienv's lenient parser, or GUI-G1's own reader.
PARSERS = ("lenient", "gui-g1")


def parse_completion(
    text: str, screen: Screen, frame: Frame | str = Frame.PIXEL, parser: str = "lenient", answer_tag: str | None = "answer"
) -> Action:
    """``text`` as a pixel action on ``screen`` with one of :data:`PARSERS`: ``lenient`` reads the
    ``answer_tag`` content (else the whole text) with :func:`guienv.parsing.read_action`; ``gui-g1``
    reads the whole text as GUI-G1 does (a box, or ``invalid``). Never raises on ``text``."""
    if parser == "lenient":
        return read_action(answer_text(text, answer_tag), screen, frame)
    if parser != "gui-g1":
        raise ValueError(f"unknown parser {parser!r}; known: {list(PARSERS)}")
    box = read_gui_g1_box(text)
    if box is None:
        return Action.invalid("gui-g1 parser: no [0]['bbox_2d'] in a ```json block or a bare literal")
    try:
        action = Action.box_answer(box, frame=Frame(frame))
    except (ValueError, TypeError) as exc:  # inverted or non-finite: see rewards.grounding
        return Action.invalid(f"gui-g1 parser: {exc}")
    return read_action(action, screen)


@dataclass(frozen=True)
class RewardInput:
    """What a term sees: the raw completion, its parsed action (pixel frame of the target's
    screenshot; ``invalid`` when unparsable) and the target."""

    text: str
    action: Action
    target: Target
    resize: Resize | None = None  # the smart-resize rule when the model answered in that frame
    frame: Frame = Frame.PIXEL  # the frame the model answered in (terms that read ``text`` themselves)


TermFn = Callable[..., float]
TERMS: dict[str, TermFn] = {}


def register_term(name: str) -> Callable[[TermFn], TermFn]:
    """Register ``fn(inp: RewardInput, **params) -> float`` as the reward term ``name``."""

    def deco(fn: TermFn) -> TermFn:
        if name in TERMS:
            raise ValueError(f"reward term {name!r} is already registered")
        TERMS[name] = fn
        return fn

    return deco


def _grounding(inp: RewardInput, term: str) -> GroundingSample:
    if not isinstance(inp.target, GroundingSample):
        raise TypeError(f"reward term {term!r} needs a GroundingSample target, got {type(inp.target).__name__}")
    return inp.target


def _point(action: Action):
    """The point a grounding answer designates: a pointer's point or a box's centre."""
    if action.type in (ActionType.CLICK, ActionType.LONG_PRESS, ActionType.BOX):
        return action.target
    return None


@register_term("format")
def _format_term(
    inp: RewardInput,
    required_tags: tuple[str, ...] = ("think", "answer"),
    ordered: bool = True,
    strict: bool = False,
    require_parsable: bool = True,
    answer_tag: str | None = "answer",
    allowed_types: tuple[str, ...] = (),
) -> float:
    """0/1: the completion satisfies :class:`rewards.format.FormatSpec` (params are its fields)."""
    spec = FormatSpec(tuple(required_tags), ordered, strict, require_parsable, answer_tag, tuple(allowed_types))
    return format_reward(inp.text, spec)


def _g1(inp: RewardInput, term: str, hit: float, iou: float, box: float, iou_convention: str):
    s = _grounding(inp, term)
    b = predicted_box(inp.action) if inp.action.is_valid else None
    return gui_g1_reward(b, s.box, s.width, s.height, GroundingWeights(hit, iou, box), iou_convention=iou_convention)


@register_term("gui_g1")
def _gui_g1_term(inp: RewardInput, hit: float = 1.0, iou: float = 0.25, box: float = 0.125, iou_convention: str = "continuous") -> float:
    """GUI-G1's ``hit * R_hit + iou * R_iou + box * R_box``."""
    return _g1(inp, "gui_g1", hit, iou, box, iou_convention).total


@register_term("iou")
def _iou_term(inp: RewardInput, iou_convention: str = "continuous") -> float:
    """GUI-G1's R_iou alone."""
    return _g1(inp, "iou", 1.0, 1.0, 1.0, iou_convention).iou


@register_term("box")
def _box_term(inp: RewardInput) -> float:
    """GUI-G1's R_box alone (harmonic mean of edge closeness)."""
    return _g1(inp, "box", 1.0, 1.0, 1.0, "continuous").box


@register_term("hit")
def _hit_term(inp: RewardInput) -> float:
    """1 if the answer's point (or box centre) is inside the GT box (ScreenSpot / R_hit)."""
    s = _grounding(inp, "hit")
    return 1.0 if point_in_box(_point(inp.action), s.box) else 0.0


@register_term("gaussian_point")
def _gaussian_term(inp: RewardInput, sigma_scale: float = 0.5) -> float:
    """GUI-G2's Gaussian point reward."""
    s = _grounding(inp, "gaussian_point")
    return gaussian_point_reward(_point(inp.action), s.box, sigma_scale)


@register_term("se_gui_point")
def _se_gui_term(inp: RewardInput) -> float:
    """SE-GUI's dense point reward (range [0, 2])."""
    s = _grounding(inp, "se_gui_point")
    return se_gui_point_reward(_point(inp.action), s.box, s.width, s.height)


@register_term("gui_r1_accuracy")
def _gui_r1_accuracy_term(inp: RewardInput) -> float:
    """GUI-R1's accuracy, read from the raw text as GUI-R1 reads it (:mod:`rewards.gui_r1`)."""
    ans = read_gui_r1(inp.text)
    point = convert_point(ans.point, inp.frame, Frame.PIXEL, Screen(int(inp.target.width), int(inp.target.height),
                                                                     inp.resize or Resize()))
    return gui_r1_accuracy(ans, gui_r1_truth(inp.target), point)


@register_term("gui_r1_format")
def _gui_r1_format_term(inp: RewardInput) -> float:
    """GUI-R1's 0/1 format rule (:func:`guienv.parsing.gui_r1.gui_r1_format_ok`)."""
    return gui_r1_format(inp.text)


def _check_protocol(protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown matching protocol {protocol!r}; known: {sorted(PROTOCOLS)}")


@register_term("accuracy")
def _accuracy_term(inp: RewardInput, protocol: str = "gui-r1") -> float:
    """1 if the action is right: a Step by ``match_step(..., protocol)``'s exact match, a grounding
    sample by its point (or box centre) inside the GT box."""
    _check_protocol(protocol)
    if isinstance(inp.target, Step):
        return 1.0 if match_step(inp.action, inp.target, protocol, resize=inp.resize).exact_match else 0.0
    return 1.0 if point_in_box(_point(inp.action), _grounding(inp, "accuracy").box) else 0.0


@register_term("action_levels")
def _levels_term(
    inp: RewardInput,
    protocol: str = "qwen",
    exact: float = 1.0,
    type_only: float = 0.5,
    wrong_type: float = 0.1,
    unparsable: float = 0.0,
) -> float:
    """UI-S1's graded action reward: exact / type only / parsable but wrong type / unparsable.
    For a grounding sample the "type" is a point or box answer and "exact" is a hit."""
    _check_protocol(protocol)
    if not inp.action.is_valid:
        return unparsable
    if isinstance(inp.target, Step):
        v = match_step(inp.action, inp.target, protocol, resize=inp.resize)
        return exact if v.exact_match else type_only if v.type_match else wrong_type
    p = _point(inp.action)
    if p is None:
        return wrong_type
    return exact if point_in_box(p, _grounding(inp, "action_levels").box) else type_only


# -- configuration ----------------------------------------------------------------------------
@dataclass
class TermConfig:
    name: str
    weight: float = 1.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class CompositeConfig:
    """A composite reward: ``sum(weight * term(completion, target))`` over ``terms``.

    ``frame`` is the coordinate frame of the model's output (``pixel``, ``normalized``,
    ``grid1000`` or ``resized``); ``min_pixels``/``max_pixels`` define the ``resized`` frame
    (Qwen2.5-VL's smart resize); ``answer_tag`` names the tag whose content is parsed when present;
    ``parser`` is one of :data:`PARSERS` (see the module doc)."""

    terms: list[TermConfig] = field(default_factory=list)
    frame: str = "pixel"
    answer_tag: str | None = "answer"
    min_pixels: int = QWEN_MIN_PIXELS
    max_pixels: int = QWEN_MAX_PIXELS
    parser: str = "lenient"

    def __post_init__(self) -> None:
        self.terms = [t if isinstance(t, TermConfig) else TermConfig(**t) for t in self.terms]
        Frame(self.frame)  # raises ValueError for an unknown frame
        if self.parser not in PARSERS:
            raise ValueError(f"unknown parser {self.parser!r}; known: {list(PARSERS)}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "<composite reward config>") -> CompositeConfig:
        """Build from a mapping (see :func:`guienv.config.load_config`: unknown keys and bad
        types are :class:`~guienv.errors.DataError` s naming ``where`` and the dotted key)."""
        return load_config(cls, data, where)

    @classmethod
    def from_yaml(cls, source: str | os.PathLike) -> CompositeConfig:
        """Load from a YAML file path, or from YAML text."""
        if _is_file(source):
            return load_yaml(cls, source)
        return cls.from_dict(yaml.safe_load(str(source)) or {}, "<composite reward YAML>")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def resize(self) -> Resize:
        return Resize(min_pixels=self.min_pixels, max_pixels=self.max_pixels)


def _is_file(source: str | os.PathLike) -> bool:
    if isinstance(source, os.PathLike):
        return True
    return "\n" not in source and len(source) < 4096 and Path(source).is_file()


PRESETS: dict[str, CompositeConfig] = {
    "gui-g1": CompositeConfig(
        terms=[TermConfig("gui_g1", 1.0, {"iou_convention": "reference"})], answer_tag=None, parser="gui-g1"
    ),
    "gui-g1-lenient": CompositeConfig(terms=[TermConfig("gui_g1", 1.0)], answer_tag=None),
    "gui-r1": CompositeConfig(terms=[TermConfig("gui_r1_accuracy", 0.8), TermConfig("gui_r1_format", 0.2)]),
    "gui-r1-lenient": CompositeConfig(
        terms=[
            TermConfig("accuracy", 0.8, {"protocol": "gui-r1"}),
            TermConfig("format", 0.2, {"required_tags": ["think", "answer"]}),
        ]
    ),
    "ui-s1": CompositeConfig(
        terms=[
            TermConfig("format", 0.1, {"required_tags": ["think", "answer"]}),
            TermConfig("action_levels", 0.9, {"protocol": "qwen"}),
        ]
    ),
}


@dataclass(frozen=True)
class CompositeResult:
    total: float
    terms: dict[str, float]
    action: Action


def composite_config(spec: CompositeConfig | str | Mapping[str, Any]) -> CompositeConfig:
    """A fresh :class:`CompositeConfig` from a preset name, a mapping (parsed YAML) or a config
    (copied, so callers may adjust the frame or pixel bounds without touching the preset)."""
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"unknown composite preset {spec!r}; known: {sorted(PRESETS)}")
        return copy.deepcopy(PRESETS[spec])
    if isinstance(spec, CompositeConfig):
        return copy.deepcopy(spec)
    return CompositeConfig.from_dict(spec)


class CompositeReward:
    """Callable ``reward(completion, target) -> CompositeResult`` built from a config or preset name."""

    def __init__(self, config: CompositeConfig | str | Mapping[str, Any]):
        if not isinstance(config, CompositeConfig):
            config = composite_config(config)
        if not config.terms:
            raise ValueError("a composite reward needs at least one term")
        self.config = config
        self._frame = Frame(config.frame)
        self._resize = config.resize
        self._terms: list[tuple[str, float, TermFn, dict]] = []
        for t in config.terms:
            if t.name not in TERMS:
                raise ValueError(f"unknown reward term {t.name!r}; known: {sorted(TERMS)}")
            fn = TERMS[t.name]
            try:  # catch misspelt parameters at configuration time, not mid-training
                inspect.signature(fn).bind(None, **t.params)
            except TypeError as exc:
                raise ValueError(f"reward term {t.name!r}: bad params {t.params!r} ({exc})") from exc
            self._terms.append((t.name, float(t.weight), fn, dict(t.params)))

    def parse(self, completion: str, target: Target) -> Action:
        """The completion's action in the target's pixel frame (``invalid`` if unusable)."""
        screen = Screen(int(target.width), int(target.height), self._resize)
        return parse_completion(completion, screen, self._frame, self.config.parser, self.config.answer_tag)

    def __call__(self, completion: str, target: Target) -> CompositeResult:
        text = completion if isinstance(completion, str) else ""
        resize = self._resize if self._frame is Frame.RESIZED else None
        inp = RewardInput(text, self.parse(text, target), target, resize, self._frame)
        values: dict[str, float] = {}
        total = 0.0
        for i, (name, weight, fn, params) in enumerate(self._terms):
            v = float(fn(inp, **params))
            values[name if name not in values else f"{name}#{i}"] = v
            total += weight * v
        return CompositeResult(total, values, inp.action)
