"""Coordinate frames: smart_resize (qwen-vl-utils, ``smart_resize``) and exact-to-a-few-ulps conversions."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guienv.frames import (
    QWEN_MAX_PIXELS,
    QWEN_MIN_PIXELS,
    Frame,
    Resize,
    Screen,
    convert_box,
    convert_point,
    is_finite,
    smart_resize,
    xywh_to_xyxy,
)

FRAMES = list(Frame)
PAIRS = list(itertools.product(FRAMES, FRAMES))
SMALL_MAX = 1280 * 28 * 28  # a common max_pixels setting in GUI grounding evaluations


# -- smart_resize, hand-computed from the rule --------------------------------------------------
# The rule: round each side to a multiple of 28; if the area exceeds max_pixels, scale by
# beta = sqrt(h * w / max_pixels) and floor each side to a multiple of 28; if below min_pixels,
# scale by beta = sqrt(min_pixels / (h * w)) and ceil. Returns (height, width).
#
# 1920x1080, defaults: 1080/28 = 38.57 -> 39*28 = 1092; 1920/28 = 68.57 -> 69*28 = 1932;
#   1092*1932 = 2,109,744 <= 12,845,056, so (1092, 1932).
# 1920x1080, max 1,003,520: 2,109,744 > max; beta = sqrt(2,073,600 / 1,003,520) = 1.43748;
#   1080/beta = 751.3 -> 26*28 = 728; 1920/beta = 1335.7 -> 47*28 = 1316.
# 2560x1440, max 1,003,520: 1428*2548 > max; beta = sqrt(3,686,400 / 1,003,520) = 1.91664;
#   1440/beta = 751.3 -> 728; 2560/beta = 1335.7 -> 1316 (same aspect ratio as 1920x1080).
# 2560x1440, defaults: 51.43 -> 51*28 = 1428; 91.43 -> 91*28 = 2548; 3,638,544 <= max.
# 5120x2880, defaults: 2884*5124 = 14,777,616 > 12,845,056; beta = sqrt(14,745,600 / 12,845,056)
#   = 15/14; 2880*14/15 = 2688 = 96*28; 5120*14/15 = 4778.7 -> 170*28 = 4760.
# 1080x2400 (a phone, portrait): 2400/28 = 85.71 -> 2408; 1080/28 -> 1092; fits.
# 100x100: 3.57 -> 4*28 = 112; 112*112 = 12,544 >= 3,136, so (112, 112).
# 10x10: rounds below min_pixels; beta = sqrt(3136 / 100) = 5.6; 10*5.6/28 = 2 -> (56, 56).
HAND = [
    ((1080, 1920), {}, (1092, 1932)),
    ((1080, 1920), {"max_pixels": SMALL_MAX}, (728, 1316)),
    ((1440, 2560), {"max_pixels": SMALL_MAX}, (728, 1316)),
    ((1440, 2560), {}, (1428, 2548)),
    ((2880, 5120), {}, (2688, 4760)),
    ((2400, 1080), {}, (2408, 1092)),
    ((100, 100), {}, (112, 112)),
    ((10, 10), {}, (56, 56)),
]


@pytest.mark.parametrize("hw,kwargs,expected", HAND)
def test_smart_resize_hand_computed(hw, kwargs, expected):
    assert smart_resize(*hw, **kwargs) == expected


def test_default_constants_match_qwen_vl_utils():
    assert (QWEN_MIN_PIXELS, QWEN_MAX_PIXELS) == (4 * 28 * 28, 16384 * 28 * 28)


def test_screen_resized_is_width_height():
    assert Screen(1920, 1080).resized == (1932, 1092)
    assert Screen(2560, 1440, Resize(max_pixels=SMALL_MAX)).resized == (1316, 728)
    assert Resize(max_pixels=SMALL_MAX).size(1920, 1080) == (1316, 728)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 8000), st.integers(1, 8000), st.sampled_from([QWEN_MAX_PIXELS, SMALL_MAX, 256 * 28 * 28]))
def test_smart_resize_invariants(w, h, max_pixels):
    if max(w, h) / min(w, h) > 200:
        with pytest.raises(ValueError):
            smart_resize(h, w, max_pixels=max_pixels)
        return
    rh, rw = smart_resize(h, w, max_pixels=max_pixels)
    assert rh % 28 == 0 and rw % 28 == 0 and rh >= 28 and rw >= 28
    assert rh * rw <= max_pixels
    assert rh * rw >= QWEN_MIN_PIXELS


def test_smart_resize_rejects_bad_sizes():
    with pytest.raises(ValueError):
        smart_resize(0, 100)
    with pytest.raises(ValueError):
        smart_resize(10, 2500)  # aspect ratio 250 > 200
    with pytest.raises(ValueError):
        smart_resize(100, 100, min_pixels=2000, max_pixels=1000)


def test_resized_frame_matches_the_real_image_processor(shared_data):
    """The resized frame is what the Qwen processor feeds the model: image_grid_thw[1:] * 14."""
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    img = Image.open(shared_data / "screens" / "os-atlas_web_6f93090a.png").convert("RGB")
    assert img.size == (2560, 1440)
    proc = Qwen2VLImageProcessorPil(min_pixels=QWEN_MIN_PIXELS, max_pixels=SMALL_MAX)
    _, gh, gw = (int(v) for v in proc(images=[img], return_tensors="np")["image_grid_thw"][0])
    assert Screen(*img.size, Resize(max_pixels=SMALL_MAX)).resized == (gw * 14, gh * 14) == (1316, 728)


# -- Screen -----------------------------------------------------------------------------------
def test_screen_validation():
    with pytest.raises(TypeError):
        Screen(1920.0, 1080)
    with pytest.raises(ValueError):
        Screen(0, 1080)
    with pytest.raises(ValueError):
        Screen(1920, -1)


def test_screen_extent_and_units():
    s = Screen(1920, 1080)
    assert s.extent(Frame.PIXEL) == (1920.0, 1080.0)
    assert s.extent("normalized") == (1.0, 1.0)
    assert s.extent(Frame.GRID1000) == (1000.0, 1000.0)
    assert s.extent(Frame.RESIZED) == (1932.0, 1092.0)
    assert s.units(Frame.GRID1000) == ((1000, 1920), (1000, 1080))
    with pytest.raises(ValueError):
        s.units("inches")


# -- conversions --------------------------------------------------------------------------------
def test_known_conversions():
    s = Screen(1920, 1080)
    assert convert_point((960, 540), Frame.PIXEL, Frame.NORMALIZED, s) == (0.5, 0.5)
    assert convert_point((960, 540), Frame.PIXEL, Frame.GRID1000, s) == (500.0, 500.0)
    assert convert_point((960, 540), Frame.PIXEL, Frame.RESIZED, s) == (966.0, 546.0)
    assert convert_point((500, 250), Frame.GRID1000, Frame.PIXEL, s) == (960.0, 270.0)
    # Qwen2.5-VL on ScreenSpot-Pro: x_orig = x_pred * W / W_resized (Qwen2.5-VL technical report, arXiv 2502.13923: absolute coordinates)
    pro = Screen(5120, 2880)
    assert convert_point((2380, 1344), Frame.RESIZED, Frame.PIXEL, pro) == (2380 * 5120 / 4760, 1344 * 2880 / 2688)
    assert convert_box((0, 0, 1000, 1000), Frame.GRID1000, Frame.PIXEL, pro) == (0.0, 0.0, 5120.0, 2880.0)


SCREENS = st.one_of(
    st.sampled_from([(5120, 2880), (2560, 1440), (1920, 1080), (1080, 2400), (28, 28), (1, 1), (3, 7), (13, 1500)]),
    st.tuples(st.integers(1, 8000), st.integers(1, 8000)).filter(lambda s: max(s) / min(s) <= 200),
)
RESIZES = st.sampled_from([Resize(), Resize(max_pixels=SMALL_MAX), Resize(min_pixels=256 * 28 * 28, max_pixels=SMALL_MAX)])
# Magnitudes below 1e-100 are flushed to 0: dividing the smallest normal floats by a screen side
# underflows into subnormals, where "a few ulps" stops meaning anything (no screen needs them).
COORD = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False).map(lambda v: v if abs(v) > 1e-100 else 0.0)


def _close(a: float, b: float, ulps: int = 4) -> bool:
    # One conversion is an exact integer ratio applied by a multiply and a divide (2 roundings),
    # so a round trip is off by at most 4 roundings: < 4 ulps of the value.
    return a == b or abs(a - b) <= ulps * math.ulp(max(abs(a), abs(b)))


@settings(max_examples=300, deadline=None)
@given(SCREENS, RESIZES, COORD, COORD, st.sampled_from(PAIRS))
def test_point_round_trip_all_frame_pairs(size, resize, x, y, pair):
    screen = Screen(*size, resize)
    src, dst = pair
    there = convert_point((x, y), src, dst, screen)
    back = convert_point(there, dst, src, screen)
    assert _close(back[0], x) and _close(back[1], y), (size, pair, (x, y), there, back)


@settings(max_examples=200, deadline=None)
@given(SCREENS, RESIZES, st.lists(COORD, min_size=4, max_size=4), st.permutations(FRAMES))
def test_box_round_trip_through_every_frame(size, resize, nums, order):
    screen = Screen(*size, resize)
    box = (min(nums[0], nums[2]), min(nums[1], nums[3]), max(nums[0], nums[2]), max(nums[1], nums[3]))
    b = convert_box(box, Frame.PIXEL, order[0], screen)
    frames = [Frame.PIXEL, *order]
    for a, c in itertools.pairwise(frames[1:]):  # a chain through all four frames ...
        b = convert_box(b, a, c, screen)
        assert b[0] <= b[2] and b[1] <= b[3]  # positive scale factors keep the corner order
    back = convert_box(b, frames[-1], Frame.PIXEL, screen)  # ... and home again
    assert all(_close(u, v, ulps=8) for u, v in zip(back, box)), (box, back)


@settings(max_examples=100, deadline=None)
@given(SCREENS, RESIZES)
def test_screen_corners_map_to_frame_extents(size, resize):
    screen = Screen(*size, resize)
    rw, rh = screen.resized
    expect = {Frame.PIXEL: size, Frame.NORMALIZED: (1, 1), Frame.GRID1000: (1000, 1000), Frame.RESIZED: (rw, rh)}
    for src, dst in PAIRS:
        got = convert_point(expect[src], src, dst, screen)
        assert _close(got[0], expect[dst][0]) and _close(got[1], expect[dst][1])


def test_helpers():
    assert xywh_to_xyxy((10, 20, 30, 40)) == (10.0, 20.0, 40.0, 60.0)
    assert is_finite(1, 2.5) and not is_finite(1, float("nan")) and not is_finite(float("inf")) and not is_finite("1")
