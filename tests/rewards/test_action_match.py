"""AndroidControl step matching protocols (rewards/action_match.py)."""

from __future__ import annotations

import numpy as np
import pytest

from guienv.actions import Action, ActionType
from guienv.frames import Frame, Resize, Screen, convert_point
from guienv.io import encode_png
from guienv.types import ImageRef, Step
from rewards.action_match import PROTOCOLS, StepVerdict, match_step, text_contains, token_f1

PNG = encode_png(np.zeros((4, 4, 3), np.uint8))
W, H = 1000, 2000  # qwen distance threshold 0.04 * 2000 = 80 px; grid1000: x /1, y /2


def step(action: Action, candidates=(), width=W, height=H) -> Step:
    return Step(image=ImageRef(data=PNG, where="test"), width=width, height=height, action=action,
                candidates=tuple(candidates))


def verdict(pred: Action, gt_step: Step, protocol: str) -> tuple[bool, bool]:
    v = match_step(pred, gt_step, protocol)
    return v.type_match, v.exact_match


CLICK_GT = Action.click(500, 500)


# -- qwen-content-direction (= qwen), and infigui where the two agree ----------------------------
@pytest.mark.parametrize("protocol", ["qwen", "infigui"])
def test_qwen_candidate_boxes_are_enlarged_1_2x_about_their_centre(protocol):
    s = step(CLICK_GT, [(400, 400, 600, 600)])  # enlarged: (380, 380, 620, 620)
    assert verdict(Action.click(620, 500), s, protocol) == (True, True)  # on the enlarged edge
    assert verdict(Action.click(380, 380), s, protocol) == (True, True)
    assert verdict(Action.click(620.01, 500), s, protocol) == (True, False)  # just outside; 120 px > 80 px
    assert verdict(Action.click(500, 379.99), s, protocol) == (True, False)
    # the plain protocol does not enlarge
    assert verdict(Action.click(610, 500), s, "plain") == (True, False)


def test_qwen_distance_fallback_is_0_04_of_the_longer_side():
    s = step(CLICK_GT)  # no candidate boxes
    assert verdict(Action.click(500, 580), s, "qwen") == (True, True)  # exactly 80 px
    assert verdict(Action.click(580, 500), s, "qwen") == (True, True)
    assert verdict(Action.click(500, 580.5), s, "qwen") == (True, False)
    assert verdict(Action.click(580.5, 500), s, "qwen") == (True, False)
    v = match_step(Action.click(500, 580), s, "qwen")
    assert v.grounding is True and v.gt_type == "click" and v.pred_type == "click"


def test_qwen_distance_scaled_by_the_resized_image_when_asked():
    # The reference scales normalized offsets by the resized size the model saw. 1080x2400 ->
    # 1092x2408 (sides rounded to multiples of 28): threshold 0.04 * 2408 = 96.32 resized px, i.e.
    # 96.32 / 1092 * 1080 = 95.26 px along x, while the pixel-frame threshold is 0.04 * 2400 = 96 px.
    resize = Resize()
    assert Screen(1080, 2400, resize).resized == (1092, 2408)
    s = step(Action.click(500, 1000), width=1080, height=2400)
    assert match_step(Action.click(595.5, 1000), s, "qwen").exact_match
    assert not match_step(Action.click(595.5, 1000), s, "qwen", resize=resize).exact_match
    assert match_step(Action.click(595.2, 1000), s, "qwen", resize=resize).exact_match


def test_qwen_long_press_and_type_mismatch():
    s = step(Action.long_press(500, 500), [(400, 400, 600, 600)])
    assert verdict(Action.long_press(550, 550), s, "qwen") == (True, True)
    assert verdict(Action.click(550, 550), s, "qwen") == (False, False)
    assert match_step(Action.click(550, 550), s, "qwen").grounding is None


def test_qwen_text_is_case_insensitive_containment_either_way():
    s = step(Action.type_text("Sculpture art"))
    assert verdict(Action.type_text("  sculpture ART "), s, "qwen") == (True, True)
    assert verdict(Action.type_text("sculpture"), s, "qwen") == (True, True)  # pred inside GT
    assert verdict(Action.type_text("sculpture art gallery"), s, "qwen") == (True, True)  # GT inside pred
    assert verdict(Action.type_text("painting"), s, "qwen") == (True, False)
    assert verdict(Action.type_text(""), s, "qwen") == (True, True)  # as the reference: "" is contained
    o = step(Action.open_app("pCloud"))
    assert verdict(Action.open_app("PCLOUD"), o, "qwen") == (True, True)
    assert verdict(Action.open_app("Drive"), o, "qwen") == (True, False)
    assert text_contains("a", "ABC") and not text_contains("x", "abc")


def test_qwen_open_app_accepts_a_click_on_the_first_candidate():
    o = step(Action.open_app("pCloud"), [(561, 231, 771, 503), (0, 1500, 100, 1600)])
    assert verdict(Action.click(660, 360), o, "qwen") == (True, True)
    assert verdict(Action.click(50, 1550), o, "qwen") == (True, True)  # any candidate box hits
    # the distance fallback is measured from the first candidate's centre (666, 367)
    assert verdict(Action.click(666, 367 + 79), o, "qwen") == (True, True)
    assert verdict(Action.click(900, 1000), o, "qwen") == (True, False)
    # no candidate boxes: a click is a type miss
    assert verdict(Action.click(660, 360), step(Action.open_app("pCloud")), "qwen") == (False, False)
    # other protocols never accept a click for open_app
    assert verdict(Action.click(660, 360), o, "os-atlas") == (False, False)


def test_scroll_convention_qwen_compares_finger_directions():
    gt = step(Action.scroll("down"))  # content moves down: the finger moves up
    finger_up = Action.swipe((540, 1800), (540, 600))
    finger_down = Action.swipe((540, 600), (540, 1800))
    assert verdict(finger_up, gt, "qwen") == (True, True)
    assert verdict(finger_down, gt, "qwen") == (True, False)
    assert verdict(Action.scroll("down"), gt, "qwen") == (True, True)  # same content direction
    assert verdict(Action.scroll("up"), gt, "qwen") == (True, False)
    left = step(Action.scroll("left"))  # content moves left: the finger moves right
    assert verdict(Action.swipe((100, 1000), (900, 1100)), left, "qwen") == (True, True)
    assert verdict(Action.swipe((900, 1000), (100, 1100)), left, "qwen") == (True, False)
    # dominant axis; a zero-length swipe has no direction
    assert verdict(Action.swipe((500, 1000), (520, 400)), gt, "qwen") == (True, True)
    assert verdict(Action.swipe((500, 1000), (500, 1000)), gt, "qwen") == (True, False)


def test_scroll_convention_os_atlas_compares_content_directions():
    gt = step(Action.scroll("down"))
    assert verdict(Action.scroll("down"), gt, "os-atlas") == (True, True)
    assert verdict(Action.scroll("up"), gt, "os-atlas") == (True, False)
    assert verdict(Action.swipe((540, 1800), (540, 600)), gt, "os-atlas") == (True, True)  # finger up
    assert verdict(Action.swipe((540, 600), (540, 1800)), gt, "os-atlas") == (True, False)
    # and gui-r1 / plain agree with the finger reading
    assert verdict(Action.swipe((540, 1800), (540, 600)), gt, "gui-r1") == (True, True)
    # plain needs the same action type: a swipe for a scroll is a type miss
    assert verdict(Action.swipe((540, 1800), (540, 600)), gt, "plain") == (False, False)
    assert verdict(Action.scroll("down"), gt, "plain") == (True, True)


def test_system_buttons_and_wait():
    back = step(Action.simple("navigate_back"))
    assert verdict(Action.simple("navigate_back"), back, "qwen") == (True, True)
    assert verdict(Action.simple("navigate_home"), back, "qwen") == (True, False)  # both system_button
    assert verdict(Action.simple("keyboard_enter"), back, "qwen") == (True, False)
    assert verdict(Action.simple("navigate_home"), back, "os-atlas") == (False, False)  # distinct types
    wait = step(Action.simple("wait"))
    for p in ("qwen", "os-atlas", "gui-r1", "plain"):
        assert verdict(Action.simple("wait"), wait, p) == (True, True)
        assert verdict(Action.click(1, 1), wait, p) == (False, False)


# -- os-atlas ---------------------------------------------------------------------------------
def test_os_atlas_click_radius_is_140_on_the_0_1000_grid():
    s = step(CLICK_GT, [(0, 0, 1000, 2000)])  # candidate boxes play no part
    # x: 1 px = 1 grid unit on a 1000-wide screen
    assert verdict(Action.click(640, 500), s, "os-atlas") == (True, True)
    assert verdict(Action.click(640.5, 500), s, "os-atlas") == (True, False)
    # y: 2 px = 1 grid unit on a 2000-high screen
    assert verdict(Action.click(500, 780), s, "os-atlas") == (True, True)
    assert verdict(Action.click(500, 781), s, "os-atlas") == (True, False)
    # predictions in the grid frame itself
    g = convert_point((500, 500), Frame.PIXEL, Frame.GRID1000, Screen(W, H))
    assert verdict(Action.click(g[0] + 140, g[1], frame=Frame.GRID1000), s, "os-atlas") == (True, True)
    assert verdict(Action.click(g[0], g[1] + 140.01, frame=Frame.GRID1000), s, "os-atlas") == (True, False)


def test_os_atlas_text_exact_or_token_f1_above_half():
    s = step(Action.type_text("hello world"))
    assert verdict(Action.type_text("hello world"), s, "os-atlas") == (True, True)
    assert verdict(Action.type_text("Hello World"), s, "os-atlas") == (True, True)  # tokens lowercased
    assert verdict(Action.type_text("hello there"), s, "os-atlas") == (True, False)  # F1 = 0.5, not > 0.5
    assert verdict(Action.type_text("hello there"), s, "gui-r1") == (True, True)  # GUI-R1: >= 0.5
    s2 = step(Action.type_text("send message"))
    assert verdict(Action.type_text("send the message"), s2, "os-atlas") == (True, True)  # F1 0.8
    assert token_f1("send the message", "send message") == pytest.approx(0.8)
    assert token_f1("", "x") == 0.0


# -- gui-r1 and general behaviour -------------------------------------------------------------
def test_gui_r1_click_box_or_140_px():
    s = step(CLICK_GT, [(400, 400, 600, 600)])
    assert verdict(Action.click(600, 600), s, "gui-r1") == (True, True)
    assert verdict(Action.click(640, 500), s, "gui-r1") == (True, True)  # 140 px from the point
    assert verdict(Action.click(640.5, 500), s, "gui-r1") == (True, False)


def test_predictions_in_any_frame_are_converted_to_pixels():
    s = step(CLICK_GT, [(400, 400, 600, 600)])
    assert match_step(Action.click(0.5, 0.25, frame=Frame.NORMALIZED), s, "qwen").exact_match
    resize = Resize(max_pixels=1_000_000)
    rx, ry = convert_point((500, 500), Frame.PIXEL, Frame.RESIZED, Screen(W, H, resize))
    assert match_step(Action.click(rx, ry, frame=Frame.RESIZED), s, "qwen", resize=resize).exact_match


def test_invalid_predictions_and_unknown_protocols():
    s = step(CLICK_GT)
    for p in PROTOCOLS:
        v = match_step(Action.invalid("no JSON"), s, p)
        assert (v.type_match, v.exact_match, v.gt_type, v.pred_type) == (False, False, "click", "invalid")
        assert "no JSON" in v.reason
    with pytest.raises(ValueError, match="unknown matching protocol"):
        match_step(Action.click(1, 1), s, "nope")


def test_plain_protocol_unchanged_and_verdict_is_backward_compatible():
    s = step(CLICK_GT, [(400, 400, 600, 600)])
    assert verdict(Action.click(600, 600), s, "plain") == (True, True)
    assert verdict(Action.click(500, 579), step(CLICK_GT), "plain") == (True, True)  # 4% of 2000
    assert verdict(Action.type_text("Hi "), step(Action.type_text("hi")), "plain") == (True, True)
    assert verdict(Action.type_text("hi there"), step(Action.type_text("hi")), "plain") == (True, False)
    v = StepVerdict(True, False, None, "x")
    assert (v.gt_type, v.pred_type) == ("", "")
    assert match_step(Action.click(600, 600), s).type_match  # default protocol is plain
    assert set(PROTOCOLS) >= {"plain", "qwen", "infigui", "os-atlas", "aitw", "gui-r1"}
    assert match_step(Action.type_text("x"), s, "qwen").pred_type == ActionType.TYPE.value
