"""GUI-G1 box reward, point rewards and the difficulty weight (rewards/grounding.py)."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from guienv.frames import Frame, Resize, Screen, convert_box
from rewards.grounding import (
    GroundingWeights,
    box_closeness,
    box_iou,
    difficulty_weights,
    gaussian_point_reward,
    gaussian_point_rewards,
    grounding_reward,
    gui_g1_reward,
    gui_g1_rewards,
    gui_g1_rewards_torch,
    point_in_box,
    point_reward,
    point_rewards,
    se_gui_point_reward,
)
from tasks.screenspot import load_screenspot


# -- hand-computed GUI-G1 values ---------------------------------------------------------------
def test_perfect_box_gets_the_maximum():
    r = gui_g1_reward((10, 10, 30, 30), (10, 10, 30, 30), 100, 100)
    assert (r.hit, r.iou, r.box) == (1.0, 1.0, 1.0)
    assert r.total == pytest.approx(1.375)


def test_hand_computed_terms_on_a_wide_image():
    # W=200, H=100; gt (0,0,100,50); pred (20,10,140,40): centre (80,25) inside.
    # inter 80*30 = 2400, union 3600 + 5000 - 2400 = 6200 -> IoU 12/31.
    # closeness x1 0.9, x2 1-40/200 = 0.8, y1 0.9, y2 0.9 -> harmonic mean 4/(3/0.9 + 1/0.8) = 48/55.
    r = gui_g1_reward((20, 10, 140, 40), (0, 0, 100, 50), 200, 100)
    assert r.hit == 1.0
    assert r.iou == pytest.approx(12 / 31)
    assert r.box == pytest.approx(48 / 55)
    assert r.total == pytest.approx(1 + 0.25 * 12 / 31 + 0.125 * 48 / 55)


def test_weights_are_configurable():
    w = GroundingWeights(hit=0.0, iou=1.0, box=2.0)
    r = gui_g1_reward((20, 10, 140, 40), (0, 0, 100, 50), 200, 100, w)
    assert r.total == pytest.approx(12 / 31 + 2 * 48 / 55)
    assert w.max_total == 3.0


def test_hit_bounds_are_inclusive():
    gt = (10, 10, 30, 30)
    assert gui_g1_reward((20, 20, 40, 40), gt, 100, 100).hit == 1.0  # centre (30, 30) on the corner
    assert gui_g1_reward((20, 20, 40.002, 40), gt, 100, 100).hit == 0.0  # centre x 30.001
    assert point_in_box((30, 30), gt) and not point_in_box((30.0001, 30), gt) and not point_in_box(None, gt)


def test_reference_iou_convention_drops_one_pixel_overlaps():
    gt = (0, 0, 10, 10)
    one = (9, 0, 19, 10)  # overlap 1 x 10 pixels
    assert box_iou(one, gt) == pytest.approx(10 / 190)
    assert box_iou(one, gt, "reference") == 0.0
    two = (8, 0, 18, 10)  # overlap 2 x 10: both conventions agree
    assert box_iou(two, gt) == pytest.approx(20 / 180)
    assert box_iou(two, gt, "reference") == pytest.approx(20 / 180)
    r = gui_g1_reward(one, gt, 100, 100, iou_convention="reference")
    assert r.iou == 0.0


def test_box_term_is_zero_when_an_edge_is_a_full_side_off():
    gt = (0, 0, 10, 10)
    assert box_closeness((100, 0, 110, 10), gt, 100, 100) == 0.0  # c_x1 = 0 exactly
    assert box_closeness((150, 0, 160, 10), gt, 100, 100) == 0.0  # c_x1 < 0
    assert box_closeness((99, 0, 109, 10), gt, 100, 100) > 0.0


def test_degenerate_boxes():
    # zero-area prediction (a point) inside the target: hit and box, never IoU
    r = gui_g1_reward((20, 20, 20, 20), (10, 10, 30, 30), 100, 100)
    assert (r.hit, r.iou) == (1.0, 0.0)
    assert r.box == pytest.approx(0.9)  # every edge 10 px off on a 100 px side
    # two identical points: zero union -> IoU 0, no division by zero
    r = gui_g1_reward((5, 5, 5, 5), (5, 5, 5, 5), 100, 100)
    assert (r.hit, r.iou, r.box) == (1.0, 0.0, 1.0)
    # zero-area ground truth
    r = gui_g1_reward((5, 5, 15, 15), (10, 10, 10, 10), 100, 100)
    assert (r.hit, r.iou) == (1.0, 0.0)


def test_prediction_outside_the_image_is_not_clipped():
    # pred (-50,-50,-10,-10) vs gt (10,10,30,30) on 100x100: closeness 0.4, 0.6, 0.4, 0.6
    r = gui_g1_reward((-50, -50, -10, -10), (10, 10, 30, 30), 100, 100)
    assert (r.hit, r.iou) == (0.0, 0.0)
    assert r.box == pytest.approx(4 / (2 / 0.4 + 2 / 0.6))


@pytest.mark.parametrize("bad", [None, "1234", (10**400, 0, 1, 1), (1, 2, 3), (1, 2, "x", 4), (float("nan"), 0, 1, 1), (5, 5, 1, 9), (0, 9, 5, 1)])
def test_unusable_predictions_score_zero(bad):
    r = gui_g1_reward(bad, (10, 10, 30, 30), 100, 100)
    assert (r.hit, r.iou, r.box, r.total, r.parsed) == (0.0, 0.0, 0.0, 0.0, False)


def test_bad_sizes_and_gt_raise():
    with pytest.raises(ValueError, match="image size"):
        gui_g1_reward((0, 0, 1, 1), (0, 0, 1, 1), 0, 100)
    with pytest.raises(ValueError, match="ground-truth"):
        gui_g1_reward((0, 0, 1, 1), (5, 0, 1, 1), 100, 100)
    with pytest.raises(ValueError, match="iou_convention"):
        gui_g1_reward(None, (0, 0, 1, 1), 100, 100, iou_convention="pixel")
    with pytest.raises(ValueError, match="sizes"):
        gui_g1_rewards(np.zeros((3, 4)), np.zeros((3, 4)), np.ones((2, 2)))


# -- batched API ------------------------------------------------------------------------------
def _random_pairs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    w, h = rng.integers(100, 3000, n).astype(float), rng.integers(100, 3000, n).astype(float)
    def boxes(lo, hi):
        xs = np.sort(rng.uniform(lo, hi, (n, 2)), axis=1) * w[:, None]
        ys = np.sort(rng.uniform(lo, hi, (n, 2)), axis=1) * h[:, None]
        return np.stack([xs[:, 0], ys[:, 0], xs[:, 1], ys[:, 1]], axis=1)
    gt, pred = boxes(0, 1), boxes(-0.5, 1.5)
    pred[:50] = gt[:50] + rng.normal(0, 3, (50, 4))  # near misses and near hits
    pred[50:60, 2] = pred[50:60, 0]  # degenerate predictions
    pred[60:63] = np.nan  # unparsable
    pred[63:66] = pred[63:66, [2, 1, 0, 3]] + [[1, 0, 0, 0]]  # inverted x
    gt[66:70, 3] = gt[66:70, 1]  # degenerate ground truth
    pred[70:80] = np.round(gt[70:80])  # integer answers, 1-pixel overlaps
    return pred, gt, np.stack([w, h], axis=1)


@pytest.mark.parametrize("convention", ["continuous", "reference"])
def test_batch_matches_the_scalar_reward(convention):
    pred, gt, sizes = _random_pairs(3000)
    valid = np.ones(len(pred), bool)
    valid[100:110] = False
    b = gui_g1_rewards(pred, gt, sizes, valid=valid, iou_convention=convention)
    for i in range(len(pred)):
        r = gui_g1_reward(pred[i] if valid[i] else None, gt[i], *sizes[i], iou_convention=convention)
        got = (b.hit[i], b.iou[i], b.box[i], b.total[i])
        assert got == pytest.approx((r.hit, r.iou, r.box, r.total), abs=1e-12), i
    assert not b.valid[60:66].any() and not b.valid[100:110].any()
    assert (b.total[60:66] == 0).all()


def test_torch_batch_matches_numpy():
    pred, gt, sizes = _random_pairs(2000, seed=1)
    b = gui_g1_rewards(pred, gt, sizes)
    t = gui_g1_rewards_torch(torch.tensor(pred, dtype=torch.float64), torch.tensor(gt), torch.tensor(sizes))
    for name in ("hit", "iou", "box", "total"):
        np.testing.assert_allclose(getattr(t, name).numpy(), getattr(b, name), atol=1e-12, err_msg=name)
    assert t.total.dtype == torch.float64
    one_size = gui_g1_rewards_torch(torch.tensor(pred[:5], dtype=torch.float32), torch.tensor(gt[:5]), (4000.0, 4000.0))
    assert one_size.total.dtype == torch.float32 and one_size.total.shape == (5,)


# -- properties -------------------------------------------------------------------------------
coord = st.floats(-3000, 6000, allow_nan=False, allow_infinity=False)
size = st.integers(1, 5000)


@st.composite
def box_pairs(draw):
    w, h = draw(size), draw(size)
    gx = sorted(draw(st.lists(st.floats(0, w), min_size=2, max_size=2)))
    gy = sorted(draw(st.lists(st.floats(0, h), min_size=2, max_size=2)))
    px = sorted(draw(st.lists(coord, min_size=2, max_size=2)))
    py = sorted(draw(st.lists(coord, min_size=2, max_size=2)))
    return (px[0], py[0], px[1], py[1]), (gx[0], gy[0], gx[1], gy[1]), w, h


@settings(max_examples=300, deadline=None)
@given(box_pairs(), st.sampled_from(["continuous", "reference"]))
def test_terms_stay_in_range(pair, convention):
    pred, gt, w, h = pair
    r = gui_g1_reward(pred, gt, w, h, iou_convention=convention)
    for v in (r.hit, r.iou, r.box):
        assert 0.0 <= v <= 1.0
    assert 0.0 <= r.total <= 1.375 + 1e-12


@settings(max_examples=300, deadline=None)
@given(box_pairs(), st.integers(0, 3), st.floats(0.0, 1.0))
def test_moving_an_edge_toward_the_gt_never_lowers_the_box_term(pair, edge, frac):
    pred, gt, w, h = pair
    moved = list(pred)
    moved[edge] = pred[edge] + frac * (gt[edge] - pred[edge])
    assert box_closeness(tuple(moved), gt, w, h) >= box_closeness(pred, gt, w, h) - 1e-12


# -- point rewards ----------------------------------------------------------------------------
def test_gaussian_point_reward_hand_values():
    box = (0, 0, 40, 20)  # centre (20, 10); sigma (20, 10)
    assert gaussian_point_reward((20, 10), box) == 1.0
    assert gaussian_point_reward((40, 10), box) == pytest.approx(math.exp(-0.5))
    assert gaussian_point_reward((40, 20), box) == pytest.approx(math.exp(-1.0))
    assert gaussian_point_reward((20, 10), box, sigma_scale=1.0) == 1.0
    assert gaussian_point_reward((40, 10), box, sigma_scale=1.0) == pytest.approx(math.exp(-0.125))
    assert gaussian_point_reward(None, box) == 0.0
    # degenerate axis: an indicator of the centre line
    assert gaussian_point_reward((5, 10), (5, 0, 5, 20)) == 1.0
    assert gaussian_point_reward((5.1, 10), (5, 0, 5, 20)) == 0.0
    pts = np.array([[20, 10], [40, 10], [40, 20], [5.1, 10], [np.nan, 1]])
    boxes = np.array([box, box, box, (5, 0, 5, 20), box], dtype=float)
    np.testing.assert_allclose(gaussian_point_rewards(pts, boxes), [1, math.exp(-0.5), math.exp(-1), 0, 0])


def test_se_gui_point_reward_hand_values():
    box = (0, 0, 20, 20)  # normalized centre (0.1, 0.1); farthest corner (1, 1) at 0.9*sqrt(2)
    assert se_gui_point_reward((10, 10), box, 100, 100) == 2.0
    assert se_gui_point_reward((100, 100), box, 100, 100) == pytest.approx(0.0, abs=1e-12)
    d = math.hypot(0.5 - 0.1, 0.1 - 0.1) / (0.9 * math.sqrt(2))
    assert se_gui_point_reward((50, 10), box, 100, 100) == pytest.approx(1 - d**2)
    assert se_gui_point_reward((20, 20), box, 100, 100) == pytest.approx(1 + 1 - (math.hypot(0.1, 0.1) / (0.9 * math.sqrt(2))) ** 2)
    assert se_gui_point_reward((500, 500), box, 100, 100) == 0.0  # off-screen: clamped, not negative
    p = point_rewards((10, 10), box, 100, 100)
    assert (p.hit, p.gaussian, p.se_gui, p.parsed) == (1.0, 1.0, 2.0, True)
    assert point_rewards(None, box, 100, 100).parsed is False


@settings(max_examples=200, deadline=None)
@given(box_pairs(), coord, coord)
def test_point_rewards_in_range(pair, x, y):
    _, gt, w, h = pair
    p = point_rewards((x, y), gt, w, h)
    assert p.hit in (0.0, 1.0)
    assert 0.0 <= p.gaussian <= 1.0
    assert 0.0 <= p.se_gui <= 2.0


# -- difficulty weight ------------------------------------------------------------------------
def test_difficulty_weights_hand_values():
    # image 100x100; areas 100, 400, 2500 -> 1/lambda = 100, 25, 4 -> w = 0.5 + (inv - 4) / 96
    boxes = [(0, 0, 10, 10), (0, 0, 20, 20), (0, 0, 50, 50)]
    w = difficulty_weights(boxes, (100, 100))
    np.testing.assert_allclose(w, [1.5, 0.5 + 21 / 96, 0.5])
    # per-sample sizes: the same box on a 4x larger image is relatively smaller
    w2 = difficulty_weights([(0, 0, 10, 10), (0, 0, 10, 10)], [(100, 100), (200, 200)])
    np.testing.assert_allclose(w2, [0.5, 1.5])


def test_difficulty_weights_edge_cases():
    np.testing.assert_array_equal(difficulty_weights([(0, 0, 10, 10)] * 3, (100, 100)), [1.0, 1.0, 1.0])
    np.testing.assert_array_equal(difficulty_weights([(0, 0, 10, 10)], (100, 100)), [1.0])
    assert difficulty_weights([], (100, 100)).shape == (0,)
    # a zero-area box counts as 1 px^2: the smallest target, weight 1.5, no infinity
    w = difficulty_weights([(5, 5, 5, 5), (0, 0, 10, 10), (0, 0, 100, 100)], (100, 100))
    assert w[0] == 1.5 and w[2] == 0.5 and np.isfinite(w).all()
    with pytest.raises(ValueError):
        difficulty_weights([(0, 0, 1, 1)], (0, 100))


def _gui_g1_dataset(shared_data, tmp_path):
    for name in ("gui-g1_1033.json", "gui-g1_1033.jpg"):
        shutil.copy(shared_data / "screens" / name, tmp_path / name)
    return load_screenspot(tmp_path / "gui-g1_1033.json", fmt="gui-g1")


def test_difficulty_weights_from_loaded_samples(shared_data, tmp_path):
    # the real GUI-G1 record plus a copy with a 4x larger target: the real one is harder
    rec = json.loads((shared_data / "screens" / "gui-g1_1033.json").read_text())[0]
    big = dict(rec, bbox_xyxy=[1000, 800, 1288, 910.16], instruction="a larger target")
    shutil.copy(shared_data / "screens" / "gui-g1_1033.jpg", tmp_path / "gui-g1_1033.jpg")
    (tmp_path / "two.json").write_text(json.dumps([rec, big]))
    samples = load_screenspot(tmp_path / "two.json", fmt="gui-g1")
    w = difficulty_weights(samples)
    np.testing.assert_allclose(w, [1.5, 0.5])


# -- model text -> reward ---------------------------------------------------------------------
def test_grounding_reward_from_gui_g1_model_text(shared_data, tmp_path):
    s = _gui_g1_dataset(shared_data, tmp_path)[0]
    assert (s.width, s.height) == (1920, 1080)
    text = '```json\n[{"bbox_2d": [1207, 1025, 1350, 1079]}]\n```'
    r = grounding_reward(text, s)
    assert r == gui_g1_reward((1207, 1025, 1350, 1079), s.box, 1920, 1080)
    assert r.hit == 1.0 and r.iou > 0.95
    # the same box in the resized frame the model saw (Qwen2.5-VL smart resize, max 1M pixels)
    resize = Resize(max_pixels=1280 * 28 * 28)
    screen = Screen(1920, 1080, resize)
    rb = convert_box((1207, 1025, 1350, 1079), Frame.PIXEL, Frame.RESIZED, screen)
    text_r = json.dumps([{"bbox_2d": list(rb)}])
    rr = grounding_reward(text_r, s, Frame.RESIZED, resize=resize)
    assert rr.total == pytest.approx(r.total, abs=1e-9)
    # a point answer is a zero-area box: hit and box, no IoU
    rp = grounding_reward('[{"point_2d": [1280, 1050]}]', s)
    assert rp.hit == 1.0 and rp.iou == 0.0 and 0 < rp.box < 1
    assert point_reward('[{"point_2d": [1280, 1050]}]', s).hit == 1.0
    # unparsable or non-grounding actions: every term 0
    for bad in ("I cannot find it", '{"action": "type", "text": "hi"}', "[{\"bbox_2d\": [1350, 1025, 1207, 1079]}]", "\x00" * 5000):
        z = grounding_reward(bad, s)
        assert (z.total, z.parsed) == (0.0, False), bad[:40]


def test_gui_g1_filter_keeps_mixed_groups_only():
    from rewards.grounding import gui_g1_filter

    assert gui_g1_filter([0.0, 0.25, 1.0, 0.875, float("nan"), 1e-9]).tolist() == [1, 3, 5]
    assert gui_g1_filter([]).tolist() == []
    assert gui_g1_filter(np.ones(3)).tolist() == []
