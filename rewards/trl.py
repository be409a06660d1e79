"""Adapters that turn guienv rewards into TRL ``GRPOTrainer`` reward functions.

TRL calls each entry of ``reward_funcs`` as ``fn(prompts=..., completions=..., completion_ids=...,
**columns)`` (plus ``trainer_state`` and logging hooks in recent versions) and expects one float
per completion; every dataset column other than ``prompt`` arrives as a keyword argument holding a
list with one value per completion. Completions are strings for standard datasets and lists of
messages (``[{"role": "assistant", "content": ...}]``, content possibly a list of
``{"type": "text", "text": ...}`` parts) for conversational ones. The trainer logs each
function under its ``__name__``.

Dataset columns the adapters read (names configurable):

* grounding (:func:`grounding_reward_func`): ``bbox`` = GT ``[x1, y1, x2, y2]`` in pixels of the
  original screenshot, ``image_size`` = ``[width, height]`` (or ``width`` and ``height`` columns),
  optional ``frame`` (per-row coordinate frame of the model output).
* step actions (:func:`composite_reward_func` with a Step target): ``gt_action`` = guienv action JSON
  (pixel frame), ``candidates`` = list of candidate element boxes, and the image size as above.

Example::

    from rewards.trl import grounding_reward_func, composite_reward_func
    trainer = GRPOTrainer(model=..., reward_funcs=[grounding_reward_func(frame="resized"),
                                                   composite_reward_func("gui-r1")], ...)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from guienv.actions import Action
from guienv.frames import Frame, Resize, Screen
from guienv.types import GroundingSample, ImageRef, Step
from rewards.composite import PARSERS, CompositeConfig, CompositeReward, parse_completion
from rewards.grounding import (
    GroundingWeights,
    IouConvention,
    gaussian_point_rewards,
    gui_g1_rewards,
    predicted_box,
    se_gui_point_reward,
)

RewardFunc = Callable[..., list[float]]
GROUNDING_TERMS = ("total", "hit", "iou", "box", "gaussian", "se_gui")


_DEFAULT_RESIZE = Resize()  # frozen: one shared default is safe
_DEFAULT_WEIGHTS = GroundingWeights()
def completion_text(completion: Any) -> str:
    """The text of one TRL completion: a string, or the last assistant message of a conversation."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return _content_text(completion.get("content"))
    if isinstance(completion, Sequence):
        messages = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        chosen = assistant or messages
        return _content_text(chosen[-1].get("content")) if chosen else ""
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping) and p.get("type", "text") == "text"]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def _column(kwargs: Mapping[str, Any], name: str, n: int) -> list:
    if name not in kwargs:
        raise KeyError(f"reward function needs the dataset column {name!r}; got columns {sorted(kwargs)}")
    col = list(kwargs[name])
    if len(col) != n:
        raise ValueError(f"column {name!r} has {len(col)} values for {n} completions")
    return col


def _sizes(kwargs: Mapping[str, Any], size_key: str, n: int) -> list[tuple[int, int]]:
    if size_key in kwargs:
        return [(int(s[0]), int(s[1])) for s in _column(kwargs, size_key, n)]
    if "width" in kwargs and "height" in kwargs:
        return list(zip((int(w) for w in _column(kwargs, "width", n)), (int(h) for h in _column(kwargs, "height", n))))
    raise KeyError(f"reward function needs the image size: a {size_key!r} column or 'width' and 'height'")




def grounding_reward_func(
    term: str = "total",
    *,
    frame: Frame | str = Frame.PIXEL,
    weights: GroundingWeights = _DEFAULT_WEIGHTS,
    iou_convention: IouConvention = "continuous",
    resize: Resize = _DEFAULT_RESIZE,
    sigma_scale: float = 0.5,
    bbox_key: str = "bbox",
    size_key: str = "image_size",
    frame_key: str = "frame",
    name: str | None = None,
    parser: str = "lenient",
) -> RewardFunc:
    """A TRL reward function for one-step grounding (GUI-G1 ``total`` or one term).

    ``term``: ``total`` (GUI-G1), ``hit``, ``iou``, ``box``, ``gaussian`` (GUI-G2) or ``se_gui``.
    Completions are parsed with :func:`guienv.parsing.parse_action` in ``frame`` (a ``frame``
    column overrides it per row) and scored in batch with :func:`rewards.grounding.gui_g1_rewards`.
    ``parser="gui-g1"`` reads completions exactly as GUI-G1 does (see the ``gui-g1`` preset; use
    ``iou_convention="reference"`` too for its reward)."""
    if term not in GROUNDING_TERMS:
        raise ValueError(f"term must be one of {GROUNDING_TERMS}, got {term!r}")
    if parser not in PARSERS:
        raise ValueError(f"parser must be one of {PARSERS}, got {parser!r}")
    default_frame = Frame(frame)

    def reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
        n = len(completions)
        if n == 0:
            return []
        gts = np.asarray(_column(kwargs, bbox_key, n), dtype=np.float64).reshape(n, 4)
        sizes = _sizes(kwargs, size_key, n)
        frames = [Frame(f) if f else default_frame for f in kwargs.get(frame_key, [None] * n)] if frame_key in kwargs else [default_frame] * n
        preds = np.full((n, 4), np.nan)
        for i, c in enumerate(completions):
            action = parse_completion(completion_text(c), Screen(sizes[i][0], sizes[i][1], resize), frames[i], parser, None)
            box = predicted_box(action) if action.is_valid else None
            if box is not None:
                preds[i] = box
        if term in ("gaussian", "se_gui"):
            ok = np.isfinite(preds).all(axis=1)
            centres = np.stack([(preds[:, 0] + preds[:, 2]) / 2, (preds[:, 1] + preds[:, 3]) / 2], axis=1)
            if term == "gaussian":
                return [float(v) for v in gaussian_point_rewards(centres, gts, sigma_scale, valid=ok)]
            return [
                se_gui_point_reward(tuple(centres[i]) if ok[i] else None, tuple(gts[i]), *sizes[i]) for i in range(n)
            ]
        batch = gui_g1_rewards(preds, gts, np.asarray(sizes, dtype=np.float64), weights, iou_convention=iou_convention)
        return [float(v) for v in getattr(batch, term)]

    reward.__name__ = name or ("gui_g1" if term == "total" else f"gui_g1_{term}")
    return reward


def _step_target(kwargs: Mapping[str, Any], i: int, size: tuple[int, int], action_key: str, candidates_key: str) -> Step:
    gt = kwargs[action_key][i]
    try:
        action = gt if isinstance(gt, Action) else Action.from_dict(gt)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"row {i}: column {action_key!r} is not a guienv action JSON object ({exc})") from exc
    cands = tuple(tuple(float(v) for v in b) for b in (kwargs.get(candidates_key, [None] * (i + 1))[i] or ()))
    # The image is never decoded by the matchers: a placeholder keeps Step's contract.
    return Step(image=ImageRef(data=b"", where=f"trl row {i}"), width=size[0], height=size[1], action=action, candidates=cands)


def composite_reward_func(
    config: CompositeConfig | str | Mapping[str, Any],
    *,
    bbox_key: str = "bbox",
    size_key: str = "image_size",
    action_key: str = "gt_action",
    candidates_key: str = "candidates",
    name: str | None = None,
) -> RewardFunc:
    """A TRL reward function from a :class:`~rewards.composite.CompositeConfig` (or preset name).

    Rows with a ``bbox`` column are grounding targets; rows with a ``gt_action`` column are
    recorded steps (with optional ``candidates``)."""
    composite = CompositeReward(config)

    def reward(completions: Sequence[Any], **kwargs: Any) -> list[float]:
        n = len(completions)
        if n == 0:
            return []
        sizes = _sizes(kwargs, size_key, n)
        out = []
        for i, c in enumerate(completions):
            w, h = sizes[i]
            if bbox_key in kwargs:
                box = tuple(float(v) for v in _column(kwargs, bbox_key, n)[i])
                target: Any = GroundingSample(
                    id=str(i), image=ImageRef(data=b"", where=f"trl row {i}"), instruction="", box=box, width=w, height=h
                )
            elif action_key in kwargs:
                target = _step_target(kwargs, i, (w, h), action_key, candidates_key)
            else:
                raise KeyError(f"composite reward needs a {bbox_key!r} or {action_key!r} column; got {sorted(kwargs)}")
            out.append(float(composite(completion_text(c), target).total))
        return out

    label = config if isinstance(config, str) else "composite"
    reward.__name__ = name or label.replace("-", "_")
    return reward
