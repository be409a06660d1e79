"""``infigui`` reproduces InfiGUI-R1's AndroidControl evaluator rule for rule; ``qwen`` is
``qwen-content-direction`` (guienv's reading). Cases written from the public rules of
``Reallm-Labs/InfiGUI-R1: eval/android_control/evaluate_android_control.py`` and
``android_control.py`` (``compute_scores``); data in UI-S1 JSONL written by guienv's writer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from guienv.actions import Action
from guienv.frames import Frame, Resize, Screen
from guienv.io import encode_png, write_jsonl
from guienv.parsing.infigui import InfiguiParseError, parse_infigui_call
from guienv.types import Episode, ImageRef, Step
from rewards.action_match import ALIASES, PROTOCOLS, match_infigui, match_step, protocol_name
from rewards.infigui import INFIGUI_MAX_PIXELS, args_from_action, check_options
from rewards.scoring import score, summary_table
from tasks.androidcontrol import load_androidcontrol
from tasks.androidcontrol.ui_s1 import write_ui_s1_jsonl

W, H = 1080, 2400  # smart-resized (max_pixels 6400*28*28) to 1092 x 2408
RW, RH = 1092, 2408


@pytest.fixture(scope="module")
def ui_s1(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("uis1")
    png = encode_png(np.full((H, W, 3), 90, np.uint8))

    def st(action, cands=(), instruction=None):
        return Step(image=ImageRef(data=png), width=W, height=H, action=action, instruction=instruction,
                    candidates=tuple(cands))

    episodes = [
        Episode("1", "g", (
            st(Action.click(540, 1200), [(440, 1100, 640, 1300)]),   # 0
            st(Action.click(540, 1200)),                             # 1: no candidate boxes
            st(Action.scroll("down"), instruction="swipe up"),       # 2: content down, finger up
            st(Action.scroll("up"), instruction="swipe down"),       # 3
            st(Action.scroll("left")),                               # 4
            st(Action.type_text("Sculpture Art")),                   # 5
            st(Action.open_app("pCloud"), [(100, 100, 300, 300)]),   # 6
            st(Action.open_app("Clock")),                            # 7: no candidate boxes
            st(Action.simple("navigate_back")),                      # 8
            st(Action.simple("wait")),                               # 9
            st(Action.long_press(540, 1200), [(440, 1100, 640, 1300)]),  # 10
        )),
    ]
    path = root / "android_control_evaluation_std.jsonl"
    write_ui_s1_jsonl(episodes, path)
    return path


@pytest.fixture(scope="module")
def steps(ui_s1):
    return load_androidcontrol(ui_s1)[0].steps


def call(**args) -> str:
    return "<tool_call>\n" + json.dumps({"name": "mobile_use", "arguments": args}) + "\n</tool_call>"


def infigui(text: str, step: Step, frame=Frame.RESIZED, resize=None) -> tuple[bool, bool]:
    try:
        args = parse_infigui_call(text)
    except InfiguiParseError:
        args = None
    v = match_infigui(args, step, frame, resize)
    return v.type_match, v.exact_match


def qcd(pred: Action | str, step: Step, frame=Frame.RESIZED) -> tuple[bool, bool]:
    from guienv.parsing import parse_action

    action = parse_action(pred, frame=frame) if isinstance(pred, str) else pred
    v = match_step(action, step, "qwen-content-direction", resize=Resize() if frame is Frame.RESIZED else None)
    return v.type_match, v.exact_match


def r(x: float, y: float) -> list[float]:
    """Pixel point -> the resized frame the reference's predictions are in."""
    return [x * RW / W, y * RH / H]


# -- names ------------------------------------------------------------------------------------
def test_qwen_is_qwen_content_direction_and_printed_so():
    assert PROTOCOLS["qwen"] is PROTOCOLS["qwen-content-direction"] is not PROTOCOLS["infigui"]
    assert ALIASES["qwen"] == "qwen-content-direction"
    assert protocol_name("qwen") == "qwen (= qwen-content-direction)"
    assert protocol_name("infigui") == "infigui"


def test_check_options_are_the_recorded_ui_s1_ones(steps):
    assert check_options(steps[2]) == {"action": "swipe", "direction": "down"}
    assert check_options(steps[0])["candidate_bbox"] == [[440, 1100, 640, 1300]]
    assert Screen(W, H, Resize(max_pixels=INFIGUI_MAX_PIXELS)).resized == (RW, RH)


# -- rule 1: swipe direction compared with check_options.direction as stored -------------------
def test_swipe_finger_direction_is_compared_with_the_stored_content_direction(steps):
    gt_path = steps[2].raw_action["action_content"]  # UI-S1's own finger path: bottom -> top
    replay = call(action="swipe", coordinate=r(*gt_path["coordinate"]), coordinate2=r(*gt_path["coordinate2"]))
    assert infigui(replay, steps[2]) == (True, False)  # the ground truth itself is wrong
    assert qcd(replay, steps[2]) == (True, True)
    finger_down = call(action="swipe", coordinate=r(540, 600), coordinate2=r(540, 1800))
    assert infigui(finger_down, steps[2]) == (True, True)
    assert qcd(finger_down, steps[2]) == (True, False)


# -- rule 2: dominant axis on the normalised frame --------------------------------------------
def test_dominant_axis_is_decided_on_normalised_coordinates(steps):
    # dx = 500, dy = -800 resized px: |dx/RW| = 0.458 > |dy/RH| = 0.332 -> "right" for InfiGUI;
    # on pixels |dy| > |dx| -> finger up (content down) for guienv.
    text = call(action="swipe", coordinate=[300, 1500], coordinate2=[800, 700])
    assert infigui(text, steps[4]) == (True, False)  # GT left: the reference says right
    assert infigui(text, steps[2]) == (True, False)  # GT down: not "up" either
    assert qcd(text, steps[2]) == (True, True)
    right = call(action="swipe", coordinate=[300, 1500], coordinate2=[800, 700])
    gt_right = Step(image=steps[4].image, width=W, height=H, action=Action.scroll("right"),
                    raw_action={"action_content": {"action": "swipe"}, "check_options": {"action": "swipe", "direction": "right"}})
    assert infigui(right, gt_right) == (True, True)
    # a tie on the normalised frame is vertical
    tie = call(action="swipe", coordinate=[0, 0], coordinate2=[RW * 0.1, -RH * 0.1])
    assert infigui(tie, steps[3]) == (True, True)  # "up" against the stored "up"


# -- rule 3: zero-length swipe is "up" --------------------------------------------------------
def test_zero_length_swipe_is_up(steps):
    still = call(action="swipe", coordinate=[500, 500], coordinate2=[500, 500])
    assert infigui(still, steps[3]) == (True, True)
    assert infigui(still, steps[2]) == (True, False)
    assert qcd(still, steps[3]) == (True, False)


# -- rule 4: empty or blank open text is contained in any name ---------------------------------
@pytest.mark.parametrize("name", ["", "   "])
def test_empty_open_text_is_right(steps, name):
    assert infigui(call(action="open", text=name), steps[6]) == (True, True)
    assert qcd(call(action="open", text=name), steps[6]) == (False, False)  # lenient parser: invalid


def test_open_and_type_by_containment_and_open_by_click(steps):
    assert infigui(call(action="open", text="PCLOUD "), steps[6]) == (True, True)
    assert infigui(call(action="open", text="Drive"), steps[6]) == (True, False)
    assert infigui(call(action="type", text="sculpture"), steps[5]) == (True, True)
    assert infigui(call(action="type", text="painting"), steps[5]) == (True, False)
    assert infigui(call(action="click", coordinate=r(200, 200)), steps[6]) == (True, True)
    assert infigui(call(action="click", coordinate=r(900, 2000)), steps[6]) == (True, False)
    assert infigui(call(action="click", coordinate=r(200, 200)), steps[7]) == (False, False)  # no boxes
    assert infigui(call(action="type", text=7), steps[5]) == (False, False)  # reference fails on .lower()


# -- rule 5: system_button Menu ---------------------------------------------------------------
def test_menu_is_a_type_match_with_a_wrong_button(steps):
    assert infigui(call(action="system_button", button="Menu"), steps[8]) == (True, False)
    assert infigui(call(action="system_button", button=" back"), steps[8]) == (True, True)
    assert qcd(call(action="system_button", button="Menu"), steps[8]) == (False, False)
    assert infigui(call(action="system_button"), steps[8]) == (False, False)  # no button: fails


# -- rule 6: only the reference's vocabulary --------------------------------------------------
@pytest.mark.parametrize("args, gt", [
    ({"action": "tap", "coordinate": [546, 1204]}, 0),
    ({"action": "Click", "coordinate": [546, 1204]}, 0),
    ({"action": "open_app", "text": "pCloud"}, 6),
    ({"action": "scroll", "direction": "down"}, 2),
    ({"action": "key", "text": "back"}, 8),
    ({"action": "swipe", "direction": "down"}, 2),  # no points: the reference fails
    ({"action": "click"}, 0),  # no coordinate: fails
    ({"action": "click", "coordinate": [546]}, 0),  # fails on coordinate[1]
    ({"action": "click", "coordinate": ["546", 1204]}, 0),  # fails on the division
    ({"action": "type", "text": "x", "coordinate": None}, 5),  # every coordinate is normalised first
    ({"action": "wait", "time": 2}, 2),
])
def test_names_outside_the_reference_vocabulary_are_wrong(steps, args, gt):
    assert infigui(call(**args), steps[gt]) == (False, False)


def test_lenient_names_are_accepted_by_qwen_content_direction(steps):
    assert qcd(call(action="tap", coordinate=[546, 1204]), steps[0]) == (True, True)
    assert qcd(call(action="open_app", text="pCloud"), steps[6]) == (True, True)
    assert qcd(call(action="key", text="back"), steps[8]) == (True, True)


def test_reference_extraction_of_the_call():
    assert parse_infigui_call('<think>a</think><tool_call>{"name": "x", "arguments": {"action": "wait"}}</tool_call>') \
        == {"action": "wait"}
    # no closing tag: cut after the last "}}"
    assert parse_infigui_call('{"name": "mobile_use", "arguments": {"action": "wait"}} trailing') == {"action": "wait"}
    assert parse_infigui_call('<tool_call>{"name": "mobile_use", "arguments": {"action": "click", "coordinate": [NaN, 1]}}') \
        ["coordinate"][1] == 1
    for bad in ['{"action": "wait"}', "<tool_call>[1, 2]</tool_call>", "<tool_call>{\"name\": 1}</tool_call>",
                "<tool_call>{oops}</tool_call>", "<answer>click(1, 2)</answer>"]:
        with pytest.raises(InfiguiParseError):
            parse_infigui_call(bad)


def test_three_coordinates_are_cut_to_two_as_the_reference_does(steps):
    assert infigui(call(action="swipe", coordinate=[500, 500, 9], coordinate2=[500, 500, 1]), steps[3]) == (True, True)
    assert infigui(call(action="click", coordinate=r(540, 1200) + [0]), steps[0]) == (True, True)


# -- clicks: 1.2x boxes, 0.04 radius; rule 7: the radius uses the resized size in any frame ------
def test_click_boxes_enlarged_and_radius_on_the_resized_size(steps):
    assert infigui(call(action="click", coordinate=r(660, 1200)), steps[0]) == (True, True)  # enlarged edge
    assert infigui(call(action="click", coordinate=r(661, 1200)), steps[0]) == (True, False)
    assert infigui(call(action="long_press", coordinate=r(540, 1200)), steps[0]) == (False, False)
    assert infigui(call(action="long_press", coordinate=r(540, 1200)), steps[10]) == (True, True)
    # no boxes: |dy| <= 0.04 on the normalised frame; along x 0.04 * 2408 / 1092 * 1080 = 95.26 px
    assert infigui(call(action="click", coordinate=r(540, 1296)), steps[1]) == (True, True)
    assert infigui(call(action="click", coordinate=r(635, 1200)), steps[1]) == (True, True)
    assert infigui(call(action="click", coordinate=r(635.5, 1200)), steps[1]) == (True, False)
    # --frame pixel: InfiGUI still scales by the resized size, guienv's reading by the screen's
    px = call(action="click", coordinate=[635.5, 1200])
    assert infigui(px, steps[1], Frame.PIXEL) == (True, False)
    assert qcd(px, steps[1], Frame.PIXEL) == (True, True)


def test_wait_and_guienv_actions_as_calls(steps):
    assert infigui(call(action="wait", time=5), steps[9]) == (True, True)
    screen = Screen(W, H, Resize(max_pixels=INFIGUI_MAX_PIXELS))
    assert args_from_action(Action.simple("navigate_back"), screen) == {"action": "system_button", "button": "Back"}
    assert args_from_action(Action.scroll("down"), screen) == {"action": "swipe"}
    v = match_step(Action.click(540, 1200), steps[0], "infigui")
    assert (v.type_match, v.exact_match, v.grounding) == (True, True, True)
    v = match_step(Action.scroll("down"), steps[2], "infigui")  # a direction only: the reference fails
    assert (v.type_match, v.exact_match) == (False, False) and "fails" in v.reason


# -- guienv score: the protocol is printed; replaying the ground truth --------------------------
def test_score_replaying_the_ground_truth_under_each_protocol(ui_s1, tmp_path):
    rows = []
    for line in ui_s1.read_text().splitlines():
        ep = json.loads(line)
        for i, s in enumerate(ep["steps"]):
            args = dict(s["action_content"])
            for k in ("coordinate", "coordinate2"):
                if k in args:
                    args[k] = r(*args[k])
            rows.append({"episode_id": ep["episode_id"], "step_index": i, "frame": "resized",
                         "text": call(**args)})
    pred = tmp_path / "gt.jsonl"
    write_jsonl(pred, rows)
    m_inf = score("androidcontrol", ui_s1, pred, "infigui", tmp_path / "inf")
    m_qcd = score("androidcontrol", ui_s1, pred, "qwen", tmp_path / "qcd")
    # 11 steps; the two vertical swipes fail under infigui (horizontal ones follow the content)
    assert m_inf["overall"]["step_success_rate"] == pytest.approx(9 / 11)
    assert m_qcd["overall"]["step_success_rate"] == pytest.approx(10 / 11)  # UI-S1's horizontal path is inverted
    assert m_inf["overall"]["type_accuracy"] == m_qcd["overall"]["type_accuracy"] == 1.0
    assert summary_table(m_qcd).splitlines()[0] == "androidcontrol / protocol=qwen (= qwen-content-direction)"
    assert summary_table(m_inf).splitlines()[0] == "androidcontrol / protocol=infigui"
    verdicts = [json.loads(x) for x in (tmp_path / "inf" / "verdicts.jsonl").read_text().splitlines()]
    assert [v["step_index"] for v in verdicts if not v["exact_match"]] == [2, 3]


@pytest.mark.parametrize("protocol, printed", [("infigui", "protocol=infigui"),
                                               ("qwen", "protocol=qwen (= qwen-content-direction)")])
def test_guienv_eval_prints_the_protocol(ui_s1, tmp_path, capsys, protocol, printed):
    from guienv.run.cli import main

    rc = main(["eval", "--benchmark", "androidcontrol", "--data", str(ui_s1), "--agent", "oracle",
               "--protocol", protocol, "--out", str(tmp_path / protocol)])
    assert rc == 0
    assert f"androidcontrol / {printed}" in capsys.readouterr().out
    metrics = json.loads((tmp_path / protocol / "metrics.json").read_text())
    assert metrics["protocol"] == protocol
