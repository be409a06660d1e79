"""ScreenSpot protocol rules of issue 13 (items 11, 12): SeeClick's answer formats and the resize
defaults of the published evaluations, on data written by guienv's own ScreenSpot writer.

Rules written from the public evaluators (njucckevin/SeeClick ``pretrain/screenspot_test.py`` and
``pretrain/process_utils.py``; likaixin2000/ScreenSpot-Pro-GUI-Grounding ``models/qwen2_5vl.py``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest

from guienv.frames import Frame, Resize, Screen, convert_point, reference_resize
from guienv.io import encode_png
from guienv.parsing import parse_action_detailed
from guienv.run.cli import _reference_pixels
from guienv.run.score import add_score_args, score_main
from guienv.types import GroundingSample, ImageRef
from rewards.scoring import score
from tasks.screenspot import load_screenspot, write_screenspot


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _sample(name: str, box, png: bytes, w: int, h: int, split: str = "mobile") -> GroundingSample:
    return GroundingSample(id=name, image=ImageRef(data=png), instruction=name, box=box, width=w, height=h,
                           data_type="icon", platform=split, split=split, source="test")


@pytest.fixture(scope="module")
def ss_v1(tmp_path_factory) -> Path:
    png = encode_png(np.zeros((100, 200, 3), np.uint8))
    samples = [_sample(f"s{i}", (50, 20, 90, 60), png, 200, 100) for i in range(4)]
    return write_screenspot(samples, tmp_path_factory.mktemp("ssv1"), version="v1")


# -- item 11: SeeClick's outputs --------------------------------------------------------------------
def test_qwen_vl_box_tag_is_a_box_not_its_first_corner():
    r = parse_action_detailed("<box>(200,100),(700,700)</box>", frame="grid1000")
    assert r.format == "coordinate_tag" and r.action.type.value == "box"
    assert r.action.box == (200, 100, 700, 700) and r.action.target == (450, 400)
    bad = parse_action_detailed("<box>(700,100),(200,700)</box>")  # inverted: invalid, not a corner
    assert not bad.action.is_valid and "inverted" in bad.action.reason


@pytest.mark.parametrize("text, point", [("0.67, 0.97", (0.67, 0.97)), (" 0.3,0.4\n", (0.3, 0.4)), ("-1, 2.", (-1, 2))])
def test_bare_numbers_without_brackets(text, point):
    r = parse_action_detailed(text, frame="normalized")
    assert r.format == "bare_point" and r.action.point == point


@pytest.mark.parametrize("text", ["click 0.3, 0.4", "0.3, 0.4, 0.5", "0.3; 0.4", "1e3, 2", "nan, 1"])
def test_numbers_in_prose_or_odd_counts_are_not_read(text):
    assert not parse_action_detailed(text).action.is_valid


def test_seeclick_answers_scored(ss_v1, tmp_path):
    ids = [s.id for s in load_screenspot(ss_v1)]
    pred = _jsonl(tmp_path / "p.jsonl", [
        # GT (50, 20, 90, 60) px on 200x100. Box (40, 10)-(140, 70) px: centre (90, 40) hits, first corner misses
        {"id": ids[0], "text": "<box>(200,100),(700,700)</box>", "frame": "grid1000"},
        {"id": ids[1], "text": "0.35, 0.4", "frame": "normalized"},  # (70, 40) px
        {"id": ids[2], "text": "0.35, 0.9", "frame": "normalized"},  # (70, 90): a miss
        {"id": ids[3], "text": "at 0.35, 0.4", "frame": "normalized"},  # prose: unparsed
    ])
    m = score("screenspot", ss_v1, pred)
    assert m["overall"]["accuracy"] == pytest.approx(0.5) and m["overall"]["unparsed"] == 1


# -- item 12: resize defaults of the published evaluation ----------------------------------------------
def test_reference_resize_table():
    ref = reference_resize("screenspot-pro")
    assert ref.resize == Resize(min_pixels=3136, max_pixels=99_999_999)
    assert "ScreenSpot-Pro" in ref.source and "qwen2_5vl.py" in ref.source
    assert reference_resize("screenspot") == ref
    assert reference_resize("androidcontrol") is None and reference_resize("screenspot", "seeclick") is None
    # a 5120x2880 ScreenSpot-Pro screen is not downscaled by the reference, but is by qwen-vl-utils' default
    assert Screen(5120, 2880, ref.resize).resized == (5124, 2884)
    assert Screen(5120, 2880).resized[0] < 5000


@pytest.fixture(scope="module")
def pro_4k(tmp_path_factory) -> Path:
    png = encode_png(np.zeros((2880, 5120, 3), np.uint8))
    samples = [_sample("far-right", (4000, 2000, 4040, 2030), png, 5120, 2880, split="vscode_windows")]
    return write_screenspot(samples, tmp_path_factory.mktemp("pro"), version="pro")


def test_score_defaults_to_the_reference_resize(pro_4k, tmp_path):
    sample = load_screenspot(pro_4k)[0]
    ref = reference_resize("screenspot-pro").resize
    x, y = convert_point((4020, 2015), Frame.PIXEL, Frame.RESIZED, Screen(5120, 2880, ref))
    pred = _jsonl(tmp_path / "p.jsonl", [{"id": sample.id, "text": f"[{round(x)}, {round(y)}]", "frame": "resized"}])
    m = score("screenspot", pro_4k, pred)
    assert (m["min_pixels"], m["max_pixels"]) == (3136, 99_999_999) and "ScreenSpot-Pro" in m["resize_source"]
    assert m["overall"]["accuracy"] == 1.0
    forced = score("screenspot", pro_4k, pred, max_pixels=16384 * 28 * 28)  # the old default maps elsewhere
    assert forced["overall"]["accuracy"] == 0.0 and forced["resize_source"].startswith("given")


def test_cli_prints_the_resize_and_eval_takes_the_defaults(pro_4k, tmp_path, capsys):
    pred = _jsonl(tmp_path / "p.jsonl", [{"index": 0, "text": "[4020, 2015]"}])
    args = add_score_args(argparse.ArgumentParser()).parse_args(
        ["--benchmark", "screenspot", "--data", str(pro_4k), "--predictions", str(pred), "--out", str(tmp_path / "o")])
    assert score_main(args) == 0
    assert "max_pixels=99999999 (likaixin2000/ScreenSpot-Pro-GUI-Grounding" in capsys.readouterr().out
    ns = argparse.Namespace(min_pixels=None, max_pixels=None)
    _reference_pixels(ns, "screenspot-pro")
    assert (ns.min_pixels, ns.max_pixels) == (3136, 99_999_999)
    given = argparse.Namespace(min_pixels=None, max_pixels=1000)
    _reference_pixels(given, "screenspot-pro")
    assert given.max_pixels == 1000 and given.min_pixels is None  # an explicit setting wins
    other = argparse.Namespace(min_pixels=None, max_pixels=None)
    _reference_pixels(other, "androidcontrol")
    assert other.max_pixels is None
