"""Grounding rewards: GUI-G1 (arXiv 2505.15810), GUI-G2 (arXiv 2507.15846), SE-GUI (arXiv 2505.12370).

GUI-G1 (Zhou et al., "GUI-G1: Understanding R1-Zero-Like Training for Visual Grounding in GUI
Agents", arXiv 2505.15810; code ``Yuqi-Zhou/GUI-G1``, ``src/open-r1-multimodal/src/open_r1/grpo_rec.py``)
rewards a predicted box ``p = (x1, y1, x2, y2)`` against the ground-truth box ``g`` on a ``W x H``
screenshot (all in pixels of the same image) with

    R = R_hit + 0.25 * R_iou + 0.125 * R_box                                   (weights configurable)

* ``R_hit = 1[centre(p) in g]``, bounds inclusive (the paper's hit reward).
* ``R_iou = |p ∩ g| / |p ∪ g|`` (the IoU reward). guienv uses **continuous** areas by default.
  The reference code subtracts 1 from both right/bottom edges, tests ``x1 < x2 - 1`` and adds 1
  back, which leaves the intersection equal to the continuous one *except* that any overlap no
  wider (or taller) than 1 pixel counts as zero; the union uses continuous areas in both.
  ``iou_convention="reference"`` reproduces that with the same float steps (``(min(x2) - 1) -
  max(x1) > 0``, not ``x2 - x1 > 1``), so overlaps of exactly 1 px round the same way.
* ``R_box = 4 / (1/c_x1 + 1/c_x2 + 1/c_y1 + 1/c_y2)``, the harmonic mean of the edge closeness
  terms ``c_x1 = 1 - |g_x1 - p_x1| / W``, ``c_x2 = 1 - |g_x2 - p_x2| / W``, ``c_y1 = 1 - |g_y1 - p_y1| / H``,
  ``c_y2 = 1 - |g_y2 - p_y2| / H`` (the box-size constraint that stops boxes from inflating).

Edge cases. The reference computes every term with plain arithmetic inside a bare ``except``, so
only a raised exception (an unreadable answer, a division by zero) gives 0; guienv decides:

* **Unparsable / invalid prediction** (no box, non-finite numbers): every term is 0, as in the
  reference.
* **Inverted boxes** (``x2 < x1`` or ``y2 < y1``): guienv scores every term 0 (an inverted box is
  no box: :class:`~guienv.actions.Action` rejects it). *The reference scores them normally*: its
  arithmetic raises nothing, so the centre test can hit, the IoU uses the (possibly negative)
  signed areas and ``R_box`` the edge distances. This is the one deliberate difference of the
  ``gui-g1`` preset from GUI-G1's reward (pinned in ``tests/test_protocol_gui_g1.py``).
* **Any closeness term ``c <= 0``** (an edge a full image width/height or more off): ``R_box = 0``.
  The reference divides by zero for ``c == 0`` (caught -> 0, the same) and returns a meaningless
  harmonic mean for ``c < 0`` (a second difference, only for edges off by more than the whole
  image); clamping makes ``R_box`` monotone in each edge and keeps it in ``[0, 1]``.
* **Zero-area boxes** (``x1 == x2`` or ``y1 == y2``, prediction or ground truth) are legal: the
  centre test and ``R_box`` are computed as usual; ``R_iou`` is 0 whenever the union has zero
  area (two degenerate boxes; the reference divides by zero, caught -> 0), otherwise
  intersection / union as usual (0 for a degenerate box).
* **Predictions outside the image** are not clipped (neither is the reference): they simply miss,
  and far-off edges drive their closeness term to 0.
* ``W`` and ``H`` must be positive (``ValueError``).

**Parsing** is the composite reward's job (:class:`rewards.composite.CompositeConfig` ``parser``):
the ``gui-g1`` preset reads answers exactly as GUI-G1 does (:mod:`guienv.parsing.gui_g1`: only
``[0]["bbox_2d"]`` of a ```` ```json ```` block or a bare Python literal); ``gui-g1-lenient`` uses
guienv's lenient parser (tags, JSON, points as zero-area boxes).

**Loss normaliser** (not part of the reward, but of GUI-G1's recipe): GUI-G1's trainer
(``src/open-r1-multimodal/src/open_r1/trainer/grpo_trainer.py``) divides each sequence's summed
token loss by a hard-coded **64**, while its run script (``run_scripts/run.sh``) sets
``--max_completion_length 128``. guienv reproduces the 64: ``grpo.aggregation: constant`` divides
by ``grpo.max_completion_length``, which defaults to ``grpo.max_new_tokens`` (64 in
:class:`agents.grpo.GRPOTrainerConfig`); set ``grpo.max_completion_length: 64`` explicitly when
generating longer completions (e.g. ``max_new_tokens: 128`` as in the run script).

So each term lies in ``[0, 1]`` and the default total in ``[0, 1.375]``.

Point rewards (for models that answer with a point):

* hit: ScreenSpot's correctness test, :func:`point_in_box`.
* GUI-G2 (arXiv 2507.15846) Gaussian point reward ``exp(-0.5 * ((dx / s_x)^2 + (dy / s_y)^2))`` with
  ``(dx, dy)`` the offset from the box centre and ``s = 0.5 * (box width, box height)``.
* SE-GUI (arXiv 2505.12370, ``YXB-NKU/SE-GUI`` ``point_reward``) dense point reward
  ``1[point in box] + (1 - d^2)``, ``d`` the distance to the box centre in normalized image
  coordinates divided by the largest distance from the box centre to an image corner (so
  ``d <= 1`` for points on the screen). guienv clamps the decay term at 0 for ``d > 1`` (the
  reference tests the undivided distance, letting the term go negative off-screen): range ``[0, 2]``.

GUI-G1's **difficulty weight** (:func:`difficulty_weights`) scales each sample's loss by its relative
target size: ``lambda = box area / image area``, ``w = 0.5 + (1/lambda - min 1/lambda) / (max - min)``
over the dataset, so ``w`` is in ``[0.5, 1.5]`` and small targets weigh more.

GUI-G1's **data filter** (:func:`gui_g1_filter`): sample ``k`` answers per training sample with the
starting model and drop the samples answered all-correct or all-wrong (their GRPO groups have zero
reward variance, so no signal).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from guienv.actions import Action, ActionType, Box4, Point
from guienv.frames import Frame, Resize, Screen
from guienv.geometry import point_in_box
from guienv.parsing import read_action
from guienv.types import GroundingSample

IouConvention = Literal["continuous", "reference"]
IOU_CONVENTIONS = ("continuous", "reference")
_DEFAULT_RESIZE = Resize()  # frozen: one shared default is safe


def _iou_floor(convention: str) -> float:
    """Overlap (per axis) at or below which the intersection counts as zero."""
    if convention not in IOU_CONVENTIONS:
        raise ValueError(f"iou_convention must be one of {IOU_CONVENTIONS}, got {convention!r}")
    return 1.0 if convention == "reference" else 0.0


class _Scalar:
    """``max``/``min`` under the names numpy and torch use, for :func:`_overlap` on floats."""

    maximum = staticmethod(max)
    minimum = staticmethod(min)


# -- GUI-G1 box reward: scalar API ------------------------------------------------------------
@dataclass(frozen=True)
class GroundingWeights:
    """Weights of GUI-G1's three terms (paper defaults: 1, 0.25, 0.125)."""

    hit: float = 1.0
    iou: float = 0.25
    box: float = 0.125

    @property
    def max_total(self) -> float:
        return self.hit + self.iou + self.box


@dataclass(frozen=True)
class GroundingReward:
    """Each GUI-G1 term and their weighted ``total``; ``parsed`` is False for unusable predictions."""

    hit: float
    iou: float
    box: float
    total: float
    parsed: bool = True

    @classmethod
    def zero(cls) -> GroundingReward:
        return cls(0.0, 0.0, 0.0, 0.0, parsed=False)


def _check_size(width: float, height: float) -> None:
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise ValueError(f"image size must be positive and finite, got {width}x{height}")


def _valid_box(box: Any) -> Box4 | None:
    """``box`` as four floats if it is a finite, ordered ``(x1, y1, x2, y2)``; else None."""
    if box is None or isinstance(box, (str, bytes)):
        return None
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError, OverflowError):
        return None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 < x1 or y2 < y1:
        return None
    return x1, y1, x2, y2


def _overlap(lo1: Any, hi1: Any, lo2: Any, hi2: Any, xp: Any, reference: bool) -> tuple[Any, Any]:
    """(overlap length, is it counted) on one axis. ``reference`` follows GUI-G1's float steps
    (``(min(hi) - 1) - max(lo) > 0``, length ``that + 1``), so 1-px overlaps round exactly alike."""
    lo = xp.maximum(lo1, lo2)
    if reference:
        d = (xp.minimum(hi1, hi2) - 1.0) - lo
        return d + 1.0, d > 0
    d = xp.minimum(hi1, hi2) - lo
    return d, d > 0


def box_iou(pred: Box4, gt: Box4, iou_convention: IouConvention = "continuous") -> float:
    """IoU of two ``(x1, y1, x2, y2)`` boxes; 0 when the union has zero area (see module doc)."""
    ref = _iou_floor(iou_convention) > 0
    iw, okw = _overlap(pred[0], pred[2], gt[0], gt[2], _Scalar, ref)
    ih, okh = _overlap(pred[1], pred[3], gt[1], gt[3], _Scalar, ref)
    inter = iw * ih if (okw and okh) else 0.0
    union = (pred[2] - pred[0]) * (pred[3] - pred[1]) + (gt[2] - gt[0]) * (gt[3] - gt[1]) - inter
    return inter / union if union > 0 else 0.0


def box_closeness(pred: Box4, gt: Box4, width: float, height: float) -> float:
    """GUI-G1's R_box: harmonic mean of the four edge closeness terms; 0 if any term is <= 0."""
    _check_size(width, height)
    cs = (
        1.0 - abs(gt[0] - pred[0]) / width,
        1.0 - abs(gt[2] - pred[2]) / width,
        1.0 - abs(gt[1] - pred[1]) / height,
        1.0 - abs(gt[3] - pred[3]) / height,
    )
    if min(cs) <= 0.0:
        return 0.0
    return 4.0 / sum(1.0 / c for c in cs)


def gui_g1_reward(
    pred_box: Box4 | Sequence[float] | None,
    gt_box: Box4,
    width: float,
    height: float,
    weights: GroundingWeights = GroundingWeights(),
    *,
    iou_convention: IouConvention = "continuous",
) -> GroundingReward:
    """GUI-G1's reward ``R_hit + 0.25 R_iou + 0.125 R_box`` for one predicted box (pixels).

    ``pred_box=None`` (or an unusable box) scores 0 on every term."""
    _check_size(width, height)
    _iou_floor(iou_convention)
    gt = _valid_box(gt_box)
    if gt is None:
        raise ValueError(f"ground-truth box must be a finite (x1, y1, x2, y2) with x1<=x2, y1<=y2, got {gt_box!r}")
    pred = _valid_box(pred_box)
    if pred is None:
        return GroundingReward.zero()
    centre = ((pred[0] + pred[2]) / 2, (pred[1] + pred[3]) / 2)
    hit = 1.0 if point_in_box(centre, gt) else 0.0
    iou = box_iou(pred, gt, iou_convention)
    box = box_closeness(pred, gt, width, height)
    total = weights.hit * hit + weights.iou * iou + weights.box * box
    return GroundingReward(hit, iou, box, total)


# -- GUI-G1 box reward: batched API -----------------------------------------------------------
@dataclass(frozen=True)
class GroundingRewardBatch:
    """Arrays (numpy or torch, shape ``(N,)``) of each term, the total and the validity mask."""

    hit: Any
    iou: Any
    box: Any
    total: Any
    valid: Any


def _g1_terms(xp: Any, pred: Any, gt: Any, w: Any, h: Any, valid: Any, weights: GroundingWeights, floor: float):
    # One formula for numpy and torch: only operators and functions both namespaces share.
    px1, py1, px2, py2 = pred[..., 0], pred[..., 1], pred[..., 2], pred[..., 3]
    gx1, gy1, gx2, gy2 = gt[..., 0], gt[..., 1], gt[..., 2], gt[..., 3]
    cx, cy = (px1 + px2) * 0.5, (py1 + py2) * 0.5
    hit = valid & (gx1 <= cx) & (cx <= gx2) & (gy1 <= cy) & (cy <= gy2)

    iw, okw = _overlap(px1, px2, gx1, gx2, xp, floor > 0)
    ih, okh = _overlap(py1, py2, gy1, gy2, xp, floor > 0)
    inter = xp.where(okw & okh, iw * ih, 0.0 * iw)
    union = (px2 - px1) * (py2 - py1) + (gx2 - gx1) * (gy2 - gy1) - inter
    pos = valid & (union > 0)
    iou = xp.where(pos, inter / xp.where(pos, union, 1.0 + 0.0 * union), 0.0 * union)

    c1 = 1.0 - abs(gx1 - px1) / w
    c2 = 1.0 - abs(gx2 - px2) / w
    c3 = 1.0 - abs(gy1 - py1) / h
    c4 = 1.0 - abs(gy2 - py2) / h
    ok = valid & (c1 > 0) & (c2 > 0) & (c3 > 0) & (c4 > 0)
    one = 1.0 + 0.0 * c1
    safe = lambda c: xp.where(ok, c, one)  # noqa: E731  (no division by zero on masked rows)
    box = xp.where(ok, 4.0 / (1.0 / safe(c1) + 1.0 / safe(c2) + 1.0 / safe(c3) + 1.0 / safe(c4)), 0.0 * c1)

    hit_f = hit * 1.0 if xp is np else hit.to(pred.dtype)
    total = weights.hit * hit_f + weights.iou * iou + weights.box * box
    return hit_f, iou, box, total


def _sizes_np(sizes: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sizes, dtype=np.float64)
    if s.shape == (2,):
        s = np.broadcast_to(s, (n, 2))
    if s.shape != (n, 2):
        raise ValueError(f"sizes must have shape (2,) or ({n}, 2), got {s.shape}")
    if not (np.isfinite(s).all() and (s > 0).all()):
        raise ValueError("image sizes must be positive and finite")
    return s[:, 0], s[:, 1]


def gui_g1_rewards(
    pred_boxes: Any,
    gt_boxes: Any,
    sizes: Any,
    weights: GroundingWeights = GroundingWeights(),
    *,
    valid: Any = None,
    iou_convention: IouConvention = "continuous",
) -> GroundingRewardBatch:
    """Vectorised :func:`gui_g1_reward` over ``N`` pairs (numpy, float64).

    ``pred_boxes`` and ``gt_boxes`` are ``(N, 4)`` pixel boxes, ``sizes`` is ``(N, 2)`` or one
    ``(width, height)``. Rows with non-finite or inverted predicted boxes, or ``valid[i] == False``
    (e.g. unparsable completions, any placeholder numbers), score 0 on every term."""
    pred = np.asarray(pred_boxes, dtype=np.float64)
    gt = np.asarray(gt_boxes, dtype=np.float64)
    if pred.ndim != 2 or pred.shape[1] != 4 or gt.shape != pred.shape:
        raise ValueError(f"boxes must both have shape (N, 4), got {pred.shape} and {gt.shape}")
    n = pred.shape[0]
    w, h = _sizes_np(sizes, n)
    if not (np.isfinite(gt).all() and (gt[:, 2] >= gt[:, 0]).all() and (gt[:, 3] >= gt[:, 1]).all()):
        raise ValueError("ground-truth boxes must be finite (x1, y1, x2, y2) with x1<=x2 and y1<=y2")
    ok = np.isfinite(pred).all(axis=1) & (pred[:, 2] >= pred[:, 0]) & (pred[:, 3] >= pred[:, 1])
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    pred = np.where(ok[:, None], pred, 0.0)  # keep NaN/inf out of the arithmetic
    floor = _iou_floor(iou_convention)
    hit, iou, box, total = _g1_terms(np, pred, gt, w, h, ok, weights, floor)
    return GroundingRewardBatch(hit, iou, box, total, ok)


def gui_g1_rewards_torch(
    pred_boxes: Any,
    gt_boxes: Any,
    sizes: Any,
    weights: GroundingWeights = GroundingWeights(),
    *,
    valid: Any = None,
    iou_convention: IouConvention = "continuous",
) -> GroundingRewardBatch:
    """:func:`gui_g1_rewards` on torch tensors (any device; float32 unless given float64)."""
    import torch

    pred = torch.as_tensor(pred_boxes)
    if not pred.is_floating_point():
        pred = pred.to(torch.float32)
    gt = torch.as_tensor(gt_boxes, dtype=pred.dtype, device=pred.device)
    if pred.ndim != 2 or pred.shape[1] != 4 or gt.shape != pred.shape:
        raise ValueError(f"boxes must both have shape (N, 4), got {tuple(pred.shape)} and {tuple(gt.shape)}")
    s = torch.as_tensor(sizes, dtype=pred.dtype, device=pred.device)
    s = s.expand(pred.shape[0], 2) if s.shape == (2,) else s
    if tuple(s.shape) != (pred.shape[0], 2) or not bool((s > 0).all()):
        raise ValueError("sizes must be positive with shape (2,) or (N, 2)")
    ok = torch.isfinite(pred).all(dim=1) & (pred[:, 2] >= pred[:, 0]) & (pred[:, 3] >= pred[:, 1])
    if valid is not None:
        ok = ok & torch.as_tensor(valid, dtype=torch.bool, device=pred.device)
    pred = torch.where(ok[:, None], pred, torch.zeros_like(pred))
    floor = _iou_floor(iou_convention)
    hit, iou, box, total = _g1_terms(torch, pred, gt, s[:, 0], s[:, 1], ok, weights, floor)
    return GroundingRewardBatch(hit, iou, box, total, ok)


# -- point rewards ----------------------------------------------------------------------------
def _box_centre(box: Box4) -> Point:
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2


def gaussian_point_reward(point: Point | None, gt_box: Box4, sigma_scale: float = 0.5) -> float:
    """GUI-G2's Gaussian point reward ``exp(-0.5 * sum((d / sigma)^2))``, ``sigma = sigma_scale *``
    the GT box's width/height, ``d`` the offset from the box centre. On an axis where the box has
    zero extent the Gaussian degenerates to an indicator: 1 on the centre line, else 0."""
    if point is None or not all(math.isfinite(v) for v in point):
        return 0.0
    cx, cy = _box_centre(gt_box)
    z = 0.0
    for d, extent in ((point[0] - cx, gt_box[2] - gt_box[0]), (point[1] - cy, gt_box[3] - gt_box[1])):
        sigma = sigma_scale * extent
        if sigma > 0:
            t = d / sigma
            z += t * t  # float * overflows to inf (exp -> 0); ** would raise
        elif d != 0:
            return 0.0
    return math.exp(-0.5 * z)


def se_gui_point_reward(point: Point | None, gt_box: Box4, width: float, height: float) -> float:
    """SE-GUI's dense point reward ``1[point in box] + (1 - d^2)`` (see module doc), in ``[0, 2]``."""
    _check_size(width, height)
    if point is None or not all(math.isfinite(v) for v in point):
        return 0.0
    base = 1.0 if point_in_box(point, gt_box) else 0.0
    ncx, ncy = (gt_box[0] + gt_box[2]) / 2 / width, (gt_box[1] + gt_box[3]) / 2 / height
    max_d = max(math.hypot(ncx - a, ncy - b) for a in (0.0, 1.0) for b in (0.0, 1.0))
    d = math.hypot(point[0] / width - ncx, point[1] / height - ncy)
    d_norm = d / max_d if max_d > 0 else 0.0
    return base + (1.0 - d_norm**2 if d_norm <= 1.0 else 0.0)


@dataclass(frozen=True)
class PointReward:
    """The point-reward variants for one predicted point."""

    hit: float
    gaussian: float
    se_gui: float
    parsed: bool = True


def point_rewards(point: Point | None, gt_box: Box4, width: float, height: float, sigma_scale: float = 0.5) -> PointReward:
    """Hit, GUI-G2 Gaussian and SE-GUI rewards of one predicted point (pixels); 0s if ``None``."""
    _check_size(width, height)
    if point is None or not all(math.isfinite(v) for v in point):
        return PointReward(0.0, 0.0, 0.0, parsed=False)
    return PointReward(
        1.0 if point_in_box(point, gt_box) else 0.0,
        gaussian_point_reward(point, gt_box, sigma_scale),
        se_gui_point_reward(point, gt_box, width, height),
    )


def gaussian_point_rewards(points: Any, gt_boxes: Any, sigma_scale: float = 0.5, *, valid: Any = None) -> np.ndarray:
    """Vectorised :func:`gaussian_point_reward` over ``(N, 2)`` points and ``(N, 4)`` boxes."""
    p = np.asarray(points, dtype=np.float64)
    g = np.asarray(gt_boxes, dtype=np.float64)
    ok = np.isfinite(p).all(axis=1) if valid is None else np.isfinite(p).all(axis=1) & np.asarray(valid, bool)
    p = np.where(ok[:, None], p, 0.0)
    z = np.zeros(len(p))
    dead = ~ok
    with np.errstate(over="ignore"):  # tiny sigmas overflow to inf, and exp(-inf) = 0 is right
        for axis in (0, 1):
            d = p[:, axis] - (g[:, axis] + g[:, axis + 2]) / 2
            sigma = sigma_scale * (g[:, axis + 2] - g[:, axis])
            pos = sigma > 0
            z += np.where(pos, (d / np.where(pos, sigma, 1.0)) ** 2, 0.0)
            dead |= ~pos & (d != 0)
        return np.where(dead, 0.0, np.exp(-0.5 * z))


# -- GUI-G1 difficulty weight -----------------------------------------------------------------
def difficulty_weights(samples: Iterable[GroundingSample] | Any, sizes: Any = None) -> np.ndarray:
    """GUI-G1's per-sample weight ``w = 0.5 + (1/lambda - min) / (max - min)`` in ``[0.5, 1.5]``.

    Pass a sequence of :class:`~guienv.types.GroundingSample`, or an ``(N, 4)`` array of GT boxes
    plus ``sizes`` (``(N, 2)`` or one ``(width, height)``). ``lambda = box area / image area``.
    Decisions: a zero-area box counts as 1 square pixel (the smallest possible target, so it
    gets the largest weight instead of an infinite ``1/lambda``); when every sample has the same
    relative size (``max == min``, including a single sample) all weights are 1.0, the neutral
    middle of the range. An empty input gives an empty array."""
    if sizes is None:
        items = list(samples)
        if not items:
            return np.zeros(0)
        boxes = np.array([s.box for s in items], dtype=np.float64)
        wh = np.array([(s.width, s.height) for s in items], dtype=np.float64)
    else:
        boxes = np.asarray(samples, dtype=np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return np.zeros(0)
        wh = np.asarray(sizes, dtype=np.float64)
        wh = np.broadcast_to(wh, (len(boxes), 2)) if wh.shape == (2,) else wh
    if wh.shape != (len(boxes), 2) or not (wh > 0).all():
        raise ValueError("image sizes must be positive with one (width, height) per box")
    area = np.maximum((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1.0)
    inv = wh[:, 0] * wh[:, 1] / area  # 1 / lambda
    lo, hi = inv.min(), inv.max()
    if not hi > lo:
        return np.ones(len(inv))
    return 0.5 + (inv - lo) / (hi - lo)


# -- GUI-G1 data filter ----------------------------------------------------------------------
def gui_g1_filter(pass_rates: Sequence[float] | np.ndarray) -> np.ndarray:
    """Indices of the samples GUI-G1's data filter keeps: pass rate (fraction of ``k`` sampled
    answers that were correct) strictly between 0 and 1. NaN rates (not measured) are dropped."""
    rates = np.asarray(pass_rates, dtype=np.float64).reshape(-1)
    return np.flatnonzero((rates > 0.0) & (rates < 1.0))


# -- model text -> reward ---------------------------------------------------------------------
def _pixel_action(text_or_action: Any, sample: GroundingSample, frame: Frame | str, resize: Resize) -> Action:
    output = text_or_action if isinstance(text_or_action, Action) else str(text_or_action)
    return read_action(output, Screen(int(sample.width), int(sample.height), resize), frame)


def predicted_box(action: Action) -> Box4 | None:
    """The box a pixel-frame action proposes: a ``box`` answer as is; a click/long-press as a
    zero-area box at its point (so it can still earn R_hit and R_box, never R_iou); else None."""
    if action.type is ActionType.BOX:
        return action.box
    if action.type in (ActionType.CLICK, ActionType.LONG_PRESS) and action.point is not None:
        x, y = action.point
        return x, y, x, y
    return None


def grounding_reward(
    completion: str | Action,
    sample: GroundingSample,
    frame: Frame | str = Frame.PIXEL,
    weights: GroundingWeights = GroundingWeights(),
    *,
    resize: Resize = _DEFAULT_RESIZE,
    iou_convention: IouConvention = "continuous",
) -> GroundingReward:
    """GUI-G1 reward of raw model text (or an :class:`Action`) against a grounding sample.

    The text is read with :func:`guienv.parsing.parse_action` in ``frame`` (``resized`` uses
    ``resize``'s smart-resize rule) and converted to the sample's pixel frame. A ``box`` answer
    (GUI-G1's ``[{"bbox_2d": [...]}]``) is scored as is, a point answer as a zero-area box;
    anything else, or unparsable text, scores 0 on every term."""
    action = _pixel_action(completion, sample, frame, resize)
    box = predicted_box(action) if action.is_valid else None
    if box is None:
        return GroundingReward.zero()
    return gui_g1_reward(box, sample.box, sample.width, sample.height, weights, iou_convention=iou_convention)


def point_reward(
    completion: str | Action,
    sample: GroundingSample,
    frame: Frame | str = Frame.PIXEL,
    *,
    resize: Resize = _DEFAULT_RESIZE,
    sigma_scale: float = 0.5,
) -> PointReward:
    """Point rewards of raw model text (or an Action): its point, or its box's centre."""
    action = _pixel_action(completion, sample, frame, resize)
    point = action.target if action.is_valid and action.type in (ActionType.CLICK, ActionType.LONG_PRESS, ActionType.BOX) else None
    return point_rewards(point, sample.box, sample.width, sample.height, sigma_scale)
