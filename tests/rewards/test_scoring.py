"""``guienv score`` on fixture files in the real formats (rewards/scoring.py, rewards/metrics.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from guienv.actions import Action
from guienv.errors import DataError
from guienv.frames import Frame, Screen, convert_point
from guienv.io import encode_png
from guienv.run.score import add_score_args, score_main
from guienv.types import Episode, GroundingSample, ImageRef, Step, UIElement
from rewards.metrics import GroundingRecord, screenspot_metrics
from rewards.scoring import score
from tasks.androidcontrol import load_androidcontrol, write_androidcontrol_tfrecord
from tasks.screenspot import load_screenspot, write_screenspot


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


# -- AndroidControl fixture: a real GZIP TFRecord shard with accessibility trees -------------------
AW, AH = 540, 1200


@pytest.fixture(scope="module")
def ac_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ac")
    png = encode_png(np.full((AH, AW, 3), 200, np.uint8))

    def st(action, elements=(), instruction=None):
        return Step(image=ImageRef(data=png), width=AW, height=AH, action=action,
                    instruction=instruction, elements=tuple(elements))

    ok_button = UIElement(box=(200, 250, 340, 350), text="OK", clickable=True)
    clock_icon = UIElement(box=(50, 50, 150, 150), text="Clock", clickable=True)
    row = UIElement(box=(0, 950, 540, 1050), text="Alarm", clickable=True)
    episodes = [
        Episode("101", "say hello", (
            st(Action.click(270, 300), [ok_button], "tap OK"),
            st(Action.scroll("down"), instruction="swipe up"),
            st(Action.type_text("hello world")),
            st(Action.simple("navigate_back")),
        )),
        Episode("202", "check the alarm", (
            st(Action.open_app("Clock"), [clock_icon]),
            st(Action.click(100, 1000), [row]),
            st(Action.simple("wait")),
        )),
        Episode("303", "tap OK", (st(Action.click(270, 300), [ok_button]),)),
    ]
    write_androidcontrol_tfrecord(episodes, root / "android_control-00000-of-00001", missing_final="repeat_last")
    (root / "splits.json").write_text(json.dumps({"train": [], "validation": [], "test": [101, 202, 303]}))
    (root / "test_subsplits.json").write_text(json.dumps({"IDD": [101, 303], "app_unseen": [202]}))
    return root


def _ac_predictions(tmp_path: Path) -> Path:
    screen = Screen(AW, AH)
    rx, ry = convert_point((275, 310), Frame.PIXEL, Frame.RESIZED, screen)
    qwen_click = json.dumps({"name": "mobile_use", "arguments": {"action": "click", "coordinate": [round(rx), round(ry)]}})
    return _jsonl(tmp_path / "pred.jsonl", [
        {"episode_id": "101", "step_index": 0, "text": f"<tool_call>\n{qwen_click}\n</tool_call>", "frame": "resized"},
        {"episode_id": 101, "step_index": 1, "action": Action.swipe((270, 900), (270, 300)).to_dict()},  # finger up
        {"episode_id": "101", "step_index": 2, "action": {"type": "type", "text": "Hello World"}},
        {"episode_id": "101", "step_index": 3, "action": {"type": "navigate_home"}},
        {"episode_index": 1, "step_index": 0, "action": Action.click(90, 110).to_dict()},  # click the app icon
        {"episode_index": 1, "step_index": 1, "text": '{"action_type": "click", "x": 120, "y": 990}'},
        {"episode_index": 1, "step_index": 2, "text": '{"action": "wait", "time": 2}'},
        # episode 303 has no prediction
    ])


def test_androidcontrol_qwen_protocol(ac_data, tmp_path):
    data = ac_data / "android_control-00000-of-00001"
    assert [len(e.steps) for e in load_androidcontrol(data)] == [4, 3, 1]
    out = tmp_path / "out"
    m = score("androidcontrol", data, _ac_predictions(tmp_path), "qwen", out,
              splits=ac_data / "splits.json", subsplits=ac_data / "test_subsplits.json")
    o = m["overall"]
    assert (o["steps"], o["episodes"], o["missing"]) == (8, 3, 1)
    assert o["type_accuracy"] == pytest.approx(7 / 8)  # home vs back are both system buttons
    assert o["step_success_rate"] == pytest.approx(6 / 8)
    assert o["grounding_accuracy"] == 1.0 and o["grounding_steps"] == 2
    assert o["click_match_rate"] == pytest.approx(2 / 3)  # the missing click counts in InfiGUI's rate
    assert o["episode_success_rate"] == pytest.approx(1 / 3)
    assert m["by_split"]["test"]["steps"] == 8
    assert m["by_subsplit"]["app_unseen"]["step_success_rate"] == 1.0
    assert m["by_subsplit"]["IDD"]["episode_success_rate"] == 0.0
    assert m["by_type"]["scroll"]["step_success_rate"] == 1.0  # finger up == scroll down
    assert json.loads((out / "metrics.json").read_text()) == json.loads(json.dumps(m))
    rows = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert len(rows) == 8
    missing = [r for r in rows if r["missing"]]
    assert [(r["episode_id"], r["step_index"], r["exact_match"]) for r in missing] == [("303", 0, False)]
    assert rows[0]["prediction"]["frame"] == "pixel" and rows[0]["exact_match"]


def test_androidcontrol_os_atlas_protocol(ac_data, tmp_path):
    m = score("androidcontrol", ac_data / "android_control-00000-of-00001", _ac_predictions(tmp_path), "os-atlas")
    o = m["overall"]
    # home != back and a click is no open_app under OS-Atlas; the swipe up is scroll down
    assert o["type_accuracy"] == pytest.approx(5 / 8)
    assert o["step_success_rate"] == pytest.approx(5 / 8)
    assert o["episode_success_rate"] == 0.0
    assert m["by_type"]["type"]["step_success_rate"] == 1.0  # token F1 of lowercased tokens


@pytest.mark.parametrize(
    "lines, match",
    [
        (["{not json"], r"line 1.*not valid JSON"),
        (["[1, 2]"], r"line 1.*JSON object"),
        ([{"episode_id": "999", "step_index": 0, "action": {"type": "wait"}}], r"line 1, field 'episode_id': unknown episode id '999'"),
        ([{"episode_index": 7, "step_index": 0, "action": {"type": "wait"}}], r"line 1, field 'episode_index': episode index 7 out of range"),
        ([{"episode_id": "101", "step_index": 9, "action": {"type": "wait"}}], r"line 1, field 'step_index': step index 9 out of range"),
        ([{"episode_id": "101", "step_index": "x", "action": {"type": "wait"}}], r"step_index"),
        ([{"episode_id": "101", "step_index": 0, "action": {"type": "wait"}}, "",
          {"episode_index": 0, "step_index": 0, "text": "click"}], r"line 3.*duplicate.*first on line 1"),
        ([{"episode_id": "101", "step_index": 0, "action": {"type": "teleport"}}], r"line 1, field 'action': not a guienv action"),
        ([{"episode_id": "101", "step_index": 0, "text": "x", "frame": "inches"}], r"line 1, field 'frame': unknown frame 'inches'"),
        ([{"episode_id": "101", "step_index": 0}], r"line 1.*'action'.*'text'"),
        ([{"step_index": 0, "text": "x"}], r"line 1.*episode_id"),
    ],
)
def test_androidcontrol_bad_prediction_lines_name_the_line(ac_data, tmp_path, lines, match):
    pred = _jsonl(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DataError, match=match) as err:
        score("androidcontrol", ac_data / "android_control-00000-of-00001", pred, "qwen", tmp_path / "o")
    assert str(pred) in str(err.value)


def test_hostile_model_text_is_just_wrong(ac_data, tmp_path):
    pred = _jsonl(tmp_path / "p.jsonl", [
        {"episode_id": "101", "step_index": 0, "text": "$(rm -rf /) `reboot` {{{{[[[[" * 500},
        {"episode_id": "101", "step_index": 1, "text": "\x00" + '{"action_type": "scroll"'},
    ])
    m = score("androidcontrol", ac_data / "android_control-00000-of-00001", pred, "qwen")
    assert m["overall"]["step_success_rate"] == 0.0 and m["overall"]["missing"] == 6


# -- ScreenSpot fixtures written with the real writer -----------------------------------------
def _sample(name: str, split: str, dtype: str, box, png: bytes, w: int, h: int, **extra) -> GroundingSample:
    return GroundingSample(id=name, image=ImageRef(data=png), instruction=name, box=box, width=w, height=h,
                           data_type=dtype, platform=split, split=split, source="test", extra=extra)


@pytest.fixture(scope="module")
def ss_v2(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ssv2")
    png = encode_png(np.zeros((100, 200, 3), np.uint8))
    box = (50, 20, 90, 60)
    samples = [_sample(f"{s}-{t}-{i}", s, t, box, png, 200, 100)
               for s, t, i in [("mobile", "text", 0), ("mobile", "text", 1), ("mobile", "icon", 0),
                               ("desktop", "text", 0), ("desktop", "icon", 0), ("web", "text", 0), ("web", "icon", 0)]]
    return write_screenspot(samples, root, version="v2")


def test_screenspot_v2_text_icon_micro_and_macro(ss_v2, tmp_path):
    ids = {s.instruction: s.id for s in load_screenspot(ss_v2)}
    pred = _jsonl(tmp_path / "p.jsonl", [
        {"id": ids["mobile-text-0"], "action": Action.click(70, 40).to_dict()},
        {"id": ids["mobile-text-1"], "text": '{"action": "click", "coordinate": [90, 60]}'},  # corner: inclusive
        {"id": ids["mobile-icon-0"], "action": Action.click(91, 40).to_dict()},  # just outside
        {"id": ids["desktop-text-0"], "text": '[{"bbox_2d": [40, 10, 100, 70]}]'},  # box centre (70, 40)
        # desktop-icon-0: missing
        {"id": ids["web-text-0"], "text": "I would click the button."},  # unparsable
        {"id": ids["web-icon-0"], "text": "[350, 400]", "frame": "grid1000"},  # = (70, 40) px
    ])
    out = tmp_path / "out"
    m = score("screenspot", ss_v2, pred, None, out)
    o = m["overall"]
    assert m["protocol"] == "point-in-box"
    assert (o["samples"], o["missing"], o["unparsed"]) == (7, 1, 1)
    assert o["accuracy"] == pytest.approx(4 / 7)
    assert o["text_accuracy"] == pytest.approx(3 / 4) and o["icon_accuracy"] == pytest.approx(1 / 3)
    # SeeClick's Average: mean of the six (split, type) cells 1, 0, 1, 0, 0, 1
    assert o["macro_accuracy"] == pytest.approx(0.5) and o["macro_cells"] == 6
    assert m["by_split"]["mobile"]["text_accuracy"] == 1.0
    assert m["by_split"]["mobile"]["icon_accuracy"] == 0.0
    assert m["by_split"]["web"]["accuracy"] == 0.5
    rows = [json.loads(line) for line in (out / "verdicts.jsonl").read_text().splitlines()]
    assert len(rows) == 7 and sum(r["correct"] for r in rows) == 4
    web_icon = next(r for r in rows if r["id"] == ids["web-icon-0"])
    assert web_icon["point"] == pytest.approx([70, 40])


def test_screenspot_by_index_and_errors(ss_v2, tmp_path):
    n = len(load_screenspot(ss_v2))
    pred = _jsonl(tmp_path / "p.jsonl", [{"index": i, "action": Action.click(60, 30).to_dict()} for i in range(n)])
    assert score("screenspot", ss_v2, pred)["overall"]["accuracy"] == 1.0
    for lines, match in [
        ([{"id": "nope", "text": "x"}], r"line 1, field 'id': unknown sample id 'nope'"),
        ([{"index": n, "text": "x"}], r"line 1, field 'index': sample index 7 out of range"),
        ([{"index": 0, "text": "x"}, {"index": 0, "text": "y"}], r"line 2.*duplicate"),
        ([{"index": 0, "text": 5}], r"line 1, field 'text': must be a string"),
    ]:
        with pytest.raises(DataError, match=match):
            score("screenspot", ss_v2, _jsonl(tmp_path / "bad.jsonl", lines))
    with pytest.raises(ValueError, match="unknown protocol"):
        score("screenspot", ss_v2, pred, "qwen")
    with pytest.raises(DataError, match="not found"):
        score("screenspot", ss_v2, tmp_path / "absent.jsonl")


def test_screenspot_pro_groups(tmp_path):
    png = encode_png(np.zeros((300, 500, 3), np.uint8))
    samples = [
        _sample("a", "vscode_windows", "text", (10, 10, 50, 50), png, 500, 300, group="Dev"),
        _sample("b", "vscode_windows", "icon", (10, 10, 50, 50), png, 500, 300, group="Dev"),
        _sample("c", "photoshop_macos", "icon", (100, 100, 120, 110), png, 500, 300, group="Creative"),
    ]
    root = write_screenspot(samples, tmp_path / "pro", version="pro")
    loaded = load_screenspot(root)
    pred = _jsonl(tmp_path / "p.jsonl", [
        {"id": s.id, "action": Action.click(*((30, 30) if s.instruction != "b" else (60, 60))).to_dict()} for s in loaded
    ])
    m = score("screenspot", root, pred, out_dir=tmp_path / "o")
    assert m["by_group"]["Dev"]["accuracy"] == 0.5
    assert m["by_group"]["Creative"]["accuracy"] == 0.0
    assert m["overall"]["accuracy"] == pytest.approx(1 / 3)


def test_screenspot_metrics_match_the_seeclick_table():
    # SeeClick's ScreenSpot row: text/icon per split; "Average" 53.4 is the macro mean of the six
    # cells, the micro mean over the 1,272 samples would be 55.7.
    cells = {("mobile", "text"): (273, 0.780), ("mobile", "icon"): (229, 0.520), ("desktop", "text"): (194, 0.722),
             ("desktop", "icon"): (140, 0.300), ("web", "text"): (230, 0.557), ("web", "icon"): (206, 0.325)}
    records = []
    for (split, dtype), (n, acc) in cells.items():
        k = round(n * acc)
        records += [GroundingRecord(f"{split}{dtype}{i}", i < k, dtype, split, split) for i in range(n)]
    m = screenspot_metrics(records)["overall"]
    assert m["samples"] == 1272
    assert round(100 * m["macro_accuracy"], 1) == 53.4
    assert round(100 * m["accuracy"], 1) == 55.7


# -- CLI entry -----------------------------------------------------------------------------------
def test_score_main_cli(ss_v2, tmp_path, capsys):
    parser = add_score_args(argparse.ArgumentParser(prog="guienv score"))
    pred = _jsonl(tmp_path / "p.jsonl", [{"index": 0, "action": Action.click(60, 30).to_dict()}])
    args = parser.parse_args(["--benchmark", "screenspot", "--data", str(ss_v2), "--predictions", str(pred),
                              "--out", str(tmp_path / "cli")])
    assert score_main(args) == 0
    printed = capsys.readouterr().out
    assert "screenspot / protocol=point-in-box" in printed and "overall" in printed
    assert json.loads((tmp_path / "cli" / "metrics.json").read_text())["overall"]["missing"] == 6
    bad = _jsonl(tmp_path / "bad.jsonl", ["oops"])
    args = parser.parse_args(["--benchmark", "screenspot", "--data", str(ss_v2), "--predictions", str(bad),
                              "--out", str(tmp_path / "cli2")])
    assert score_main(args) == 2
    assert "line 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parser.parse_args(["--benchmark", "mind2web", "--data", "x", "--predictions", "y", "--out", "z"])
