"""Dataset loaders on corrupted files (issue 14, data items): each test writes a real file with the
project's own writer, corrupts it the way storage or a bad export does, and checks the loader
reports a DataError naming file and record (and skips it under ``on_error="skip"``)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from guienv.actions import Action
from guienv.errors import DataError
from guienv.io import encode_png, write_jsonl
from guienv.types import Episode, GroundingSample, ImageRef, Step, UIElement
from rewards.scoring import score
from tasks.androidcontrol import (
    load_androidcontrol,
    write_androidcontrol_tfrecord,
    write_ui_r1_json,
    write_ui_s1_jsonl,
)
from tasks.screenspot import load_screenspot, write_screenspot, write_screenspot_parquet
from tasks.tfrecord import decode_example, encode_example, iter_records, write_records

DEEP = "[" * 100000 + "]" * 100000
BAD_UTF8 = b'{"goal": "caf\xc3\x28", "steps": []}'
W, H = 64, 96
BUTTON = UIElement((10, 10, 50, 30), text="OK", clickable=True)


def _png(seed: int) -> bytes:
    img = np.full((H, W, 3), (seed * 37) % 256, dtype=np.uint8)
    img[seed % H, :, 1] = 255  # distinct bytes per seed
    return encode_png(img)


def _episode(eid: str, n: int, seed: int) -> Episode:
    steps = tuple(Step(ImageRef(data=_png(seed + i), where="fixture"), W, H, Action.click(20, 20),
                       instruction=f"tap {i}", elements=(BUTTON,)) for i in range(n))
    return Episode(eid, f"goal {eid}", steps, extra={"final_image": ImageRef(data=_png(seed + 50), where="fixture"),
                                                      "final_elements": (BUTTON,)})


EPISODES = [_episode("1", 2, 1), _episode("2", 3, 10), _episode("3", 1, 20)]


def _shard(path: Path, episodes=EPISODES) -> Path:
    assert write_androidcontrol_tfrecord(episodes, path) == len(episodes)
    return path


def _rewrite_record(path: Path, index: int, mutate) -> None:
    """Re-frame the shard with record ``index``'s features changed by ``mutate``."""
    records = []
    for rec in iter_records(path):
        data = rec.data
        if rec.index == index:
            features = decode_example(data)
            mutate(features)
            data = encode_example(features)
        records.append(data)
    write_records(path, records)


def _replace_line(path: Path, no: int, raw: bytes) -> None:
    lines = path.read_bytes().split(b"\n")
    lines[no - 1] = raw
    path.write_bytes(b"\n".join(lines))


# -- 1. deeply nested JSON ----------------------------------------------------------------------
def test_deep_json_in_a_release_action_is_a_skippable_data_error(tmp_path):
    shard = _shard(tmp_path / "android_control-00000-of-00001")

    def deep(features):
        features["actions"][0] = DEEP.encode()

    _rewrite_record(shard, 1, deep)
    with pytest.raises(DataError, match=r"record 1 \(episode 2\), field 'actions\[0\]'.*nested too deeply"):
        load_androidcontrol(shard)
    ds = load_androidcontrol(shard, on_error="skip")
    assert ds.ids == ["1", "3"] and len(ds.skipped) == 1
    assert "android_control-00000-of-00001" in ds.skipped[0][0]


def test_deep_json_in_a_ui_s1_line_is_a_skippable_data_error(tmp_path):
    path = tmp_path / "ui_s1.jsonl"
    write_ui_s1_jsonl(EPISODES, path)
    _replace_line(path, 2, DEEP.encode())
    with pytest.raises(DataError, match=r"ui_s1.jsonl, record line 2: JSON nested too deeply"):
        load_androidcontrol(path)
    ds = load_androidcontrol(path, on_error="skip")
    assert ds.ids == ["1", "3"] and len(ds.skipped) == 1


def test_deep_json_in_a_ui_r1_file_is_a_skippable_data_error(tmp_path):
    good, bad = tmp_path / "good.json", tmp_path / "ac_test.json"
    write_ui_r1_json(EPISODES[:1], good)
    write_ui_r1_json(EPISODES[1:], bad)
    records = json.loads(bad.read_text())
    bad.write_text(json.dumps(records)[:-1] + ", " + DEEP + "]")
    with pytest.raises(DataError, match=r"ac_test.json: JSON nested too deeply"):
        load_androidcontrol([good, bad])
    ds = load_androidcontrol([good, bad], on_error="skip")
    assert ds.ids == ["1"] and len(ds.skipped) == 1


def _ss_samples(tmp_path: Path) -> list[GroundingSample]:
    (tmp_path / "src").mkdir(exist_ok=True)
    imgs = [tmp_path / "src" / f"shot{i}.png" for i in range(3)]
    for i, img in enumerate(imgs):
        img.write_bytes(_png(3 + i))
    return [GroundingSample(f"s{i}", ImageRef(path=imgs[i], where="fixture"), f"tap {i}", (5.0 + i, 5.0, 20.0, 30.0),
                            W, H, data_type="icon", platform="mobile", split="mobile", source="android")
            for i in range(3)]


def test_deep_json_in_a_screenspot_annotation_file_is_a_skippable_data_error(tmp_path):
    root = write_screenspot(_ss_samples(tmp_path), tmp_path / "ss", version="v2")
    ann = root / "screenspot_mobile_v2.json"
    records = json.loads(ann.read_text())
    records[1]["instruction"] = "x"
    ann.write_text(json.dumps(records).replace('"x"', DEEP))
    with pytest.raises(DataError, match=r"screenspot_mobile_v2.json: JSON nested too deeply"):
        load_screenspot(root)
    ds = load_screenspot(root, on_error="skip")
    assert len(ds) == 0 and len(ds.skipped) == 1


def _ss_predictions(path: Path, n: int) -> Path:
    write_jsonl(path, [{"index": i, "action": {"type": "click", "point": [10, 10]}} for i in range(n)])
    return path


def test_deep_json_in_a_score_prediction_line_names_the_line(tmp_path):
    root = write_screenspot(_ss_samples(tmp_path), tmp_path / "ss", version="v2")
    pred = _ss_predictions(tmp_path / "pred.jsonl", 3)
    assert score("screenspot", root, pred)["overall"]["accuracy"] >= 0
    _replace_line(pred, 2, DEEP.encode())
    with pytest.raises(DataError, match=r"pred.jsonl, record line 2: JSON nested too deeply"):
        score("screenspot", root, pred)


# -- 2. invalid UTF-8 -----------------------------------------------------------------------------
def test_invalid_utf8_in_a_ui_s1_line_is_a_skippable_data_error(tmp_path):
    path = tmp_path / "ui_s1.jsonl"
    write_ui_s1_jsonl(EPISODES, path)
    _replace_line(path, 1, BAD_UTF8)
    with pytest.raises(DataError, match=r"ui_s1.jsonl, record line 1: not UTF-8"):
        load_androidcontrol(path)
    ds = load_androidcontrol(path, on_error="skip")
    assert ds.ids == ["2", "3"] and len(ds.skipped) == 1


def test_invalid_utf8_in_a_score_prediction_line_names_the_line(tmp_path):
    root = write_screenspot(_ss_samples(tmp_path), tmp_path / "ss", version="v2")
    pred = _ss_predictions(tmp_path / "pred.jsonl", 3)
    _replace_line(pred, 3, b'{"index": 2, "text": "\xff\xfe"}')
    with pytest.raises(DataError, match=r"pred.jsonl, record line 3: not UTF-8"):
        score("screenspot", root, pred)


# -- 3. empty shards ----------------------------------------------------------------------------------
def test_an_empty_shard_is_a_data_error_and_counted_when_skipped(tmp_path):
    good = _shard(tmp_path / "android_control-00000-of-00002")
    empty = tmp_path / "android_control-00001-of-00002"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"android_control-00001-of-00002: .*no records"):
        load_androidcontrol(tmp_path)
    ds = load_androidcontrol(tmp_path, on_error="skip")
    assert len(ds) == 3 and len(ds.skipped) == 1 and "00001-of-00002" in ds.skipped[0][0]
    assert str(good) in ds.sources


def test_an_empty_jsonl_file_is_a_data_error(tmp_path):
    path = tmp_path / "ui_s1.jsonl"
    write_ui_s1_jsonl([], path)
    assert path.read_bytes() == b""
    with pytest.raises(DataError, match=r"ui_s1.jsonl: .*no records"):
        load_androidcontrol(path)


def test_a_dataset_with_no_episodes_says_why(tmp_path):
    empty = tmp_path / "android_control-00000-of-00001"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"no episodes.*1 skipped"):
        load_androidcontrol(empty, on_error="skip")
    shard = _shard(tmp_path / "shard.tfrecord")
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": [1, 2, 3], "test": []}))
    with pytest.raises(DataError, match=r"no episodes: 3 read, none in split 'test'"):
        load_androidcontrol(shard, splits=splits, split="test")


def test_the_env_names_an_empty_shard_instead_of_the_split_filter(tmp_path):
    import gymnasium as gym

    import guienv  # noqa: F401  (registers the env ids)

    empty = tmp_path / "android_control-00000-of-00001"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match=r"android_control-00000-of-00001: the shard holds no records \(0 bytes\)"):
        gym.make("guienv/AndroidControl-v0", data=str(empty))


# -- 4. ScreenSpot boxes --------------------------------------------------------------------------
@pytest.mark.parametrize("bbox, text", [
    ([1e308, 5, 1e308, 10], "finite"),          # x + w overflows to inf in the xywh -> xyxy sum
    ([W + 10, 5, 10, 10], "outside the image"),  # entirely right of the screenshot
    ([5, -50, 10, 20], "outside the image"),     # entirely above it
])
def test_screenspot_boxes_that_overflow_or_miss_the_image_are_rejected(tmp_path, bbox, text):
    root = write_screenspot(_ss_samples(tmp_path), tmp_path / "ss", version="v2")
    ann = root / "screenspot_mobile_v2.json"
    records = json.loads(ann.read_text())
    records[1]["bbox"] = bbox
    ann.write_text(json.dumps(records))
    with pytest.raises(DataError, match=rf"screenspot_mobile_v2.json, record 1, field 'bbox': .*{text}"):
        load_screenspot(root)
    ds = load_screenspot(root, on_error="skip")
    assert [s.instruction for s in ds] == ["tap 0", "tap 2"] and len(ds.skipped) == 1


def test_a_pro_box_entirely_outside_the_image_is_rejected(tmp_path):
    root = write_screenspot(_ss_samples(tmp_path), tmp_path / "pro", version="pro", split="app_mac")
    ann = root / "annotations" / "app_mac.json"
    records = json.loads(ann.read_text())
    records[0]["bbox"] = [W + 1, H + 1, W + 20, H + 20]
    ann.write_text(json.dumps(records))
    with pytest.raises(DataError, match=r"app_mac.json, record 0, field 'bbox': .*outside the image"):
        load_screenspot(root)


# -- 5. directories named like files ------------------------------------------------------------------
def test_a_directory_named_json_in_a_screenspot_folder_is_not_read_as_a_file(tmp_path):
    root = write_screenspot(_ss_samples(tmp_path), tmp_path / "ss", version="v2")
    (root / "screenspot_web_v2.json").mkdir()
    assert len(load_screenspot(root)) == 3
    pro = write_screenspot(_ss_samples(tmp_path), tmp_path / "pro", version="pro", split="app_mac")
    (pro / "annotations" / "backup.json").mkdir()
    assert len(load_screenspot(pro)) == 3
    other = tmp_path / "g1"
    other.mkdir()
    (other / "odd.json").mkdir()
    with pytest.raises(DataError, match="no ScreenSpot annotation files"):
        load_screenspot(other)


def test_a_directory_named_json_given_to_androidcontrol_is_a_data_error(tmp_path):
    write_ui_s1_jsonl(EPISODES, tmp_path / "ui_s1.jsonl")
    (tmp_path / "more.jsonl").mkdir()
    ds = load_androidcontrol(str(tmp_path / "*.jsonl"))
    assert ds.ids == ["1", "2", "3"]


# -- 6. lazy datasets and rewritten shards ------------------------------------------------------------
def test_a_lazy_dataset_refuses_a_rewritten_shard(tmp_path):
    shard = _shard(tmp_path / "android_control-00000-of-00001")
    ds = load_androidcontrol(shard, lazy=True)
    assert ds[1].id == "2"
    st = os.stat(shard)
    _shard(shard, [_episode("7", 2, 60), _episode("8", 3, 70), _episode("9", 1, 80)])
    os.utime(shard, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(DataError, match=r"android_control-00000-of-00001, record 1: the shard changed since it was indexed"):
        ds[1]
    ds.close()


# -- 7. UI-R1 skip counts what is lost ------------------------------------------------------------
def test_ui_r1_skip_counts_the_records_and_episodes_lost(tmp_path):
    path = tmp_path / "ac_test.json"
    assert write_ui_r1_json(EPISODES, path) == 6
    records = json.loads(path.read_text())
    records[2]["gt"] = {"action_type": "teleport"}  # the 2nd of episode 2's three steps
    path.write_text(json.dumps(records))
    ds = load_androidcontrol(path, on_error="skip")
    assert ds.ids == ["1", "3"]
    assert (ds.lost_records, ds.lost_episodes) == (3, 1)
    assert "3 records" in ds.skipped[0][1]


def test_release_skip_counts_one_record_and_episode_each(tmp_path):
    shard = _shard(tmp_path / "android_control-00000-of-00001")

    def drop(features):
        features["actions"] = features["actions"][:-1]

    _rewrite_record(shard, 0, drop)
    ds = load_androidcontrol(shard, on_error="skip")
    assert (ds.lost_records, ds.lost_episodes, len(ds)) == (1, 1, 2)


# -- 8. parquet page checksums -------------------------------------------------------------------------
def _flip(path: Path, needle: bytes) -> None:
    """Flip one bit in the middle of every copy of ``needle`` (the page and the column statistics)."""
    data = bytearray(path.read_bytes())
    at = data.find(needle)
    assert at >= 0
    while at >= 0:
        data[at + len(needle) // 2] ^= 0x01
        at = data.find(needle, at + 1)
    path.write_bytes(bytes(data))


def test_parquet_written_by_guienv_carries_page_checksums_and_a_flip_is_a_data_error(tmp_path):
    import pyarrow.parquet as pq

    samples = _ss_samples(tmp_path)
    samples[1] = GroundingSample("s1", samples[1].image, "open the uniquely named settings", samples[1].box, W, H,
                                 platform="mobile", split="mobile")
    path = write_screenspot_parquet(samples, tmp_path / "ss.parquet")
    assert [s.instruction for s in load_screenspot(path)][1] == "open the uniquely named settings"
    assert pq.ParquetFile(path, page_checksum_verification=True).read().num_rows == 3
    _flip(path, b"open the uniquely named settings")
    with pytest.raises(DataError, match=r"ss.parquet: cannot read parquet .*(?i:crc|checksum)"):
        load_screenspot(path)
    assert len(load_screenspot(path, on_error="skip").skipped) == 1


def test_a_pixel_flip_in_a_parquet_screenshot_is_a_data_error(tmp_path):
    samples = _ss_samples(tmp_path)
    noise = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)
    samples[0].image.path.write_bytes(encode_png(noise))  # incompressible: stored literally in the page
    path = write_screenspot_parquet(samples, tmp_path / "ss.parquet")
    import pyarrow.parquet as pq

    chunk = next(c for c in (pq.ParquetFile(path).metadata.row_group(0).column(i) for i in range(11))
                 if c.path_in_schema == "image.bytes")
    data = bytearray(path.read_bytes())
    # a bit of screenshot 0's compressed pixels (IDAT) inside the page holding the screenshots
    at = data.find(samples[0].image.path.read_bytes()[41:-16], chunk.dictionary_page_offset,
                   chunk.dictionary_page_offset + chunk.total_compressed_size)
    assert at > 0
    data[at + 100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"ss.parquet: cannot read parquet"):
        load_screenspot(path)
