"""AndroidControl loading (release TFRecord, UI-S1 JSONL, UI-R1 JSON) and guienv/AndroidControl-v0.

Fixtures are written in the exact formats: GZIP TFRecord shards of tf.train.Example with real
AndroidAccessibilityForest protos and Pillow PNGs, JSONL/JSON files with PNG files beside them,
and read back only through the public loaders and ``gym.make``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from PIL import Image, ImageDraw

import guienv  # noqa: F401  (registers the env ids)
from guienv.actions import Action, ActionType, to_space
from guienv.errors import DataError
from guienv.frames import Frame, Screen
from guienv.io import encode_png
from guienv.types import Episode, ImageRef, Step, UIElement
from tasks.androidcontrol import (
    RELEASE_FEATURES,
    EpisodeDataset,
    episode_features,
    load_androidcontrol,
    ui_s1_step_record,
    write_androidcontrol_tfrecord,
    write_ui_r1_json,
    write_ui_s1_jsonl,
)
from tasks.tfrecord import decode_example, encode_example, iter_records, write_records

W, H = 120, 240
ROOT = UIElement((0, 0, 120, 240), class_name="android.widget.FrameLayout")
LIST = UIElement((0, 40, 120, 220), class_name="androidx.recyclerview.widget.RecyclerView", scrollable=True)
BUTTON = UIElement((10, 50, 60, 80), text="OK", resource_id="com.app:id/ok", class_name="android.widget.Button", clickable=True)
LABEL = UIElement((12, 52, 40, 70), text="OK", class_name="android.widget.TextView")
HIDDEN = UIElement((5, 45, 65, 85), clickable=True, visible=False)
FIELD = UIElement((10, 100, 110, 130), class_name="android.widget.EditText", editable=True, clickable=True)
ICON = UIElement((70, 150, 110, 190), text="Clock", content_description="Clock", clickable=True)
SWITCH = UIElement((80, 200, 110, 215), checkable=True, checked=True, clickable=True)
ELEMENTS = (ROOT, LIST, BUTTON, LABEL, HIDDEN, FIELD, ICON, SWITCH)


def _png(seed: int) -> bytes:
    """A distinct small screenshot: a coloured background with the element boxes drawn."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (W, H), tuple(int(v) for v in rng.integers(0, 200, 3)))
    d = ImageDraw.Draw(img)
    for e in ELEMENTS:
        d.rectangle(e.box, outline=(255, 255, 255))
    return encode_png(np.asarray(img))


def _episode(eid: str, goal: str, actions: list[Action], seed: int) -> Episode:
    steps = tuple(
        Step(ImageRef(data=_png(seed + i), where="fixture"), W, H, a, instruction=f"step {i} of {goal}", elements=ELEMENTS)
        for i, a in enumerate(actions)
    )
    return Episode(eid, goal, steps, extra={"final_image": ImageRef(data=_png(seed + 99), where="fixture"),
                                            "final_elements": ELEMENTS})


EPISODES = [
    _episode("101", "Set an alarm for 7 am", [
        Action.open_app("Clock"), Action.click(30, 60), Action.type_text("7 am"), Action.scroll("down"),
        Action.long_press(90, 170), Action.simple("navigate_back"),
    ], seed=1),
    _episode("102", "Search for \u00e9clairs", [
        Action.type_text("\u00e9clairs", point=(50, 115)), Action.simple("keyboard_enter"), Action.simple("wait"),
        Action.scroll("left"), Action.click(95, 207), Action.simple("navigate_home"),
    ], seed=20),
    _episode("103", "Tap OK", [Action.click(30, 60)], seed=40),
]
# Candidate boxes the loader must derive from the a11y trees (interactive, smallest first, no
# whole-screen root, no invisible element).
EXPECTED_CANDIDATES = {
    ("101", 0): (ICON.box,),
    ("101", 1): (BUTTON.box, LIST.box),
    ("101", 4): (ICON.box, LIST.box),
    ("102", 0): (FIELD.box, LIST.box),
    ("102", 4): (SWITCH.box, LIST.box),
    ("103", 0): (BUTTON.box, LIST.box),
}


@pytest.fixture(scope="module")
def shard(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ac") / "android_control-00000-of-00001.tfrecord.gz"
    assert write_androidcontrol_tfrecord(EPISODES, path) == 3
    return path


@pytest.fixture(scope="module")
def loaded(shard) -> EpisodeDataset:
    return load_androidcontrol(shard)


def _pixels(step: Step) -> np.ndarray:
    return step.image.load()


# -- release format ---------------------------------------------------------------------------------
def test_shard_is_the_release_format(shard):
    from android_env.proto.a11y import android_accessibility_forest_pb2

    assert shard.read_bytes()[:2] == b"\x1f\x8b"
    recs = list(iter_records(shard))
    assert len(recs) == 3
    feats = decode_example(recs[0].data)
    assert sorted(feats) == sorted(RELEASE_FEATURES)
    assert feats["episode_id"] == [101] and feats["goal"] == [b"Set an alarm for 7 am"]
    assert len(feats["screenshots"]) == 7 and len(feats["actions"]) == 6 == len(feats["step_instructions"])
    assert feats["screenshot_widths"] == [W] * 7 and feats["screenshot_heights"] == [H] * 7
    assert all(s.startswith(b"\x89PNG") for s in feats["screenshots"])
    assert json.loads(feats["actions"][3]) == {"action_type": "scroll", "direction": "down"}
    assert json.loads(feats["actions"][0]) == {"action_type": "open_app", "app_name": "Clock"}
    forest = android_accessibility_forest_pb2.AndroidAccessibilityForest.FromString(feats["accessibility_trees"][1])
    nodes = forest.windows[0].tree.nodes
    assert len(nodes) == len(ELEMENTS)
    assert nodes[2].text == "OK" and nodes[2].is_clickable and nodes[2].view_id_resource_name == "com.app:id/ok"
    assert (nodes[2].bounds_in_screen.left, nodes[2].bounds_in_screen.bottom) == (10, 80)


def test_release_round_trip(loaded):
    assert len(loaded) == 3 and loaded.ids == ["101", "102", "103"] and loaded.skipped == []
    for orig, ep in zip(EPISODES, loaded):
        assert (ep.id, ep.goal, len(ep.steps)) == (orig.id, orig.goal, len(orig.steps))
        for i, (a, b) in enumerate(zip(orig.steps, ep.steps)):
            assert b.action == a.action and b.action.frame is Frame.PIXEL
            assert b.instruction == a.instruction
            assert (b.width, b.height) == (W, H)
            assert b.elements == ELEMENTS
            assert np.array_equal(_pixels(b), _pixels(a))
            assert b.candidates == EXPECTED_CANDIDATES.get((ep.id, i), ())
            assert b.raw_action["action_type"] in ("click", "long_press", "scroll", "open_app", "input_text", "type",
                                                   "navigate_back", "navigate_home", "wait", "keyboard_enter")
            assert ep.id in b.image.where and f"screenshots[{i}]" in b.image.where
        assert np.array_equal(ep.extra["final_image"].load(), orig.extra["final_image"].load())
    typed = loaded[1].steps[0]
    assert typed.raw_action == {"action_type": "type", "text": "\u00e9clairs", "x": 50, "y": 115}
    assert typed.action == Action.type_text("\u00e9clairs", point=(50, 115))


def test_candidate_modes_and_without_elements(shard):
    all_ = load_androidcontrol(shard, candidate_mode="all", with_elements=False)
    assert all_[0].steps[1].candidates == (LABEL.box, BUTTON.box, LIST.box)
    assert all_[0].steps[1].elements == ()
    leaf = load_androidcontrol(shard, candidate_mode="leaf")
    assert leaf[0].steps[1].candidates == (LABEL.box,)


def test_lazy_dataset_matches_eager_and_pickles(shard, loaded):
    import pickle

    lazy = load_androidcontrol(shard, lazy=True)
    assert "3 lazy" in repr(lazy)
    for i in (2, 0, 1):
        a, b = lazy[i], loaded[i]
        assert (a.id, a.goal) == (b.id, b.goal)
        assert [s.action for s in a.steps] == [s.action for s in b.steps]
        assert [s.candidates for s in a.steps] == [s.candidates for s in b.steps]
    clone = pickle.loads(pickle.dumps(lazy))
    assert clone[1].steps[3].action == Action.scroll("left")
    lazy.close()


def test_directory_glob_and_list(tmp_path):
    write_androidcontrol_tfrecord(EPISODES[:2], tmp_path / "android_control-00000-of-00002")
    write_androidcontrol_tfrecord(EPISODES[2:], tmp_path / "android_control-00001-of-00002", gzip=False)
    (tmp_path / "README.txt").write_text("not a shard")
    for src in (tmp_path, str(tmp_path / "android_control-*"),
                [tmp_path / "android_control-00000-of-00002", tmp_path / "android_control-00001-of-00002"]):
        assert load_androidcontrol(src).ids == ["101", "102", "103"]
    with pytest.raises(DataError, match="no such file"):
        load_androidcontrol(tmp_path / "nope")
    with pytest.raises(DataError, match="glob matches no files"):
        load_androidcontrol(str(tmp_path / "*.nothing"))


def test_duplicate_episode_ids_are_reported(tmp_path):
    write_androidcontrol_tfrecord(EPISODES[2:], tmp_path / "a.tfrecord")
    write_androidcontrol_tfrecord(EPISODES[2:], tmp_path / "b.tfrecord")
    with pytest.raises(DataError, match="duplicate episode id 103"):
        load_androidcontrol(tmp_path)


# -- corrupt release records --------------------------------------------------------------------------
def _bad_shard(tmp_path, mutate) -> Path:
    """Three episodes; the second one's features are mutated before encoding."""
    records = []
    for i, ep in enumerate(EPISODES):
        feats = episode_features(ep)
        if i == 1:
            mutate(feats)
        records.append(encode_example(feats))
    path = tmp_path / "bad.tfrecord.gz"
    write_records(path, records)
    return path


def _drop_actions(f):
    del f["actions"]


def _extra_action(f):
    f["actions"].append(b'{"action_type": "wait"}')


def _bad_png(f):
    f["screenshots"][1] = b"\x89PNG\r\n\x1a\n but the rest is garbage"


def _bad_json(f):
    f["actions"][2] = b'{"action_type": "click", "x": 3'


def _unknown_action(f):
    f["actions"][2] = b'{"action_type": "teleport"}'


def _bad_tree(f):
    f["accessibility_trees"][4] = b"\xff\xff\xff\xff"


def _wrong_width(f):
    f["screenshot_widths"][0] = W + 1


def _two_ids(f):
    f["episode_id"] = [102, 5]


CORRUPTIONS = [
    (_drop_actions, "actions", "missing feature 'actions'"),
    (_extra_action, "actions", "7 actions for 7 screenshots"),
    (_bad_png, "screenshots[1]", "undecodable screenshot"),
    (_bad_json, "actions[2]", "not valid JSON"),
    (_unknown_action, "actions[2]", "unknown action_type 'teleport'"),
    (_bad_tree, "accessibility_trees[4]", "not an AndroidAccessibilityForest proto"),
    (_wrong_width, "screenshot_widths[0]", f"is {W}x{H} but screenshot_widths/heights say {W + 1}x{H}"),
    (_two_ids, "episode_id", "episode_id must hold one int64"),
]


@pytest.mark.parametrize("mutate,field,text", CORRUPTIONS, ids=[c[0].__name__ for c in CORRUPTIONS])
def test_bad_record_names_file_record_and_field(tmp_path, caplog, mutate, field, text):
    path = _bad_shard(tmp_path, mutate)
    with pytest.raises(DataError) as ei:
        load_androidcontrol(path)
    e = ei.value
    assert e.path == str(path) and e.field == field and text in str(e)
    assert str(e.record).startswith("1")
    ds = load_androidcontrol(path, on_error="skip")
    assert ds.ids == ["101", "103"] and len(ds.skipped) == 1
    where, reason = ds.skipped[0]
    assert where.startswith(f"{path}, record 1") and where.endswith(f"field {field!r}") and text in reason
    assert "skipped 1 bad record" in caplog.text


def test_framing_error_with_skip_keeps_earlier_records(tmp_path, shard):
    raw = bytearray(gzip.decompress(shard.read_bytes()))
    second = list(iter_records(shard))[1].offset
    raw[second + 20] ^= 0xFF  # inside record 1's data
    path = tmp_path / "crc.tfrecord.gz"
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match=r"record 1: data checksum mismatch"):
        load_androidcontrol(path)
    ds = load_androidcontrol(path, on_error="skip")
    assert ds.ids == ["101"] and len(ds.skipped) == 1 and "data checksum mismatch" in ds.skipped[0][1]


def test_undecodable_pixels_surface_on_load_with_location(tmp_path):
    """A PNG whose header is fine but whose image data is damaged fails the loader's structural
    check (chunk CRC) with the field named."""
    good = _png(7)
    bad = bytearray(good)
    idat = good.index(b"IDAT")
    bad[idat + 10] ^= 0xFF
    path = _bad_shard(tmp_path, lambda f: f["screenshots"].__setitem__(2, bytes(bad)))
    with pytest.raises(DataError) as ei:
        load_androidcontrol(path)
    assert ei.value.field == "screenshots[2]"


# -- splits -------------------------------------------------------------------------------------------
@pytest.fixture()
def split_files(tmp_path):
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"train": [101], "validation": [], "test": [102, 103, 999]}))
    subs = tmp_path / "test_subsplits.json"
    subs.write_text(json.dumps({"IDD": [102], "app_unseen": [103], "task_unseen": [103], "category_unseen": []}))
    return splits, subs


def test_splits_and_subsplits_annotate_and_filter(shard, split_files):
    splits, subs = split_files
    ds = load_androidcontrol(shard, splits=splits, subsplits=subs)
    assert [(e.split, e.subsplit) for e in ds] == [("train", None), ("test", "IDD"), ("test", "app_unseen")]
    assert ds[2].extra["subsplits"] == ("app_unseen", "task_unseen")
    assert load_androidcontrol(shard, splits=splits, split="test").ids == ["102", "103"]
    assert load_androidcontrol(shard, splits=splits, subsplits=subs, subsplit="task_unseen").ids == ["103"]
    lazy = load_androidcontrol(shard, splits=splits, subsplits=subs, split="test", lazy=True)
    assert [(e.id, e.split, e.subsplit) for e in lazy] == [("102", "test", "IDD"), ("103", "test", "app_unseen")]
    with pytest.raises(ValueError, match="needs the splits file"):
        load_androidcontrol(shard, split="test")


def test_bad_split_files(shard, tmp_path):
    overlap = tmp_path / "overlap.json"
    overlap.write_text(json.dumps({"train": [101], "test": [101]}))
    with pytest.raises(DataError, match="episode 101 is in both 'train' and 'test'"):
        load_androidcontrol(shard, splits=overlap)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"train": "101"}))
    with pytest.raises(DataError, match="field 'train'"):
        load_androidcontrol(shard, splits=wrong)


# -- UI-S1 / UI-R1 conversions ------------------------------------------------------------------------
def _same_steps(a: Episode, b: Episode, *, candidates: bool = True) -> None:
    assert len(a.steps) == len(b.steps)
    for s, t in zip(a.steps, b.steps):
        assert s.action == t.action
        assert s.instruction == t.instruction
        assert (s.width, s.height) == (t.width, t.height)
        assert np.array_equal(_pixels(s), _pixels(t))
        if candidates:
            assert s.candidates == t.candidates


def test_ui_s1_jsonl_loads_to_the_same_episodes(tmp_path, loaded, split_files):
    path = tmp_path / "android_control_evaluation_std.jsonl"
    assert write_ui_s1_jsonl(loaded, path) == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert set(lines[0]) == {"goal", "is_successful", "steps", "episode_id"} and lines[0]["episode_id"] == 101
    step1 = lines[0]["steps"][1]
    assert step1 == {
        "action_content": {"action": "click", "coordinate": [30, 60]},
        "screenshot": "images/101_1.png",
        "step_instruction": "step 1 of Set an alarm for 7 am",
        "check_options": {"action": "click", "candidate_bbox": [[10, 50, 60, 80], [0, 40, 120, 220]], "coordinate": [30, 60]},
    }
    assert lines[1]["steps"][2]["action_content"] == {"action": "wait", "time": 2}
    assert lines[1]["steps"][1]["action_content"] == {"action": "system_button", "button": "Enter"}
    splits, subs = split_files
    ds = load_androidcontrol(path, splits=splits, subsplits=subs)
    assert ds.ids == loaded.ids
    for a, b in zip(loaded, ds):
        assert (a.id, a.goal) == (b.id, b.goal)
        _same_steps(a, b)
    assert [(e.split, e.subsplit) for e in ds] == [("train", None), ("test", "IDD"), ("test", "app_unseen")]


def test_converted_episodes_export_back_to_the_release_format(tmp_path, loaded):
    path = tmp_path / "s1.jsonl"
    write_ui_s1_jsonl(loaded, path)
    converted = load_androidcontrol(path)
    with pytest.raises(ValueError, match="final_image"):
        write_androidcontrol_tfrecord(converted, tmp_path / "x.tfrecord.gz")
    write_androidcontrol_tfrecord(converted, tmp_path / "back.tfrecord.gz", missing_final="repeat_last")
    back = load_androidcontrol(tmp_path / "back.tfrecord.gz")
    for a, b in zip(converted, back):
        _same_steps(a, b, candidates=False)  # a conversion has no a11y trees to derive them from
        assert all(step.candidates == () and step.elements == () for step in b.steps)
        assert np.array_equal(b.extra["final_image"].load(), _pixels(a.steps[-1]))
    odd = Episode("abc", "g", loaded[2].steps)
    with pytest.raises(ValueError, match="integers"):
        write_androidcontrol_tfrecord([odd], tmp_path / "y.tfrecord.gz")
    # the env runs on a conversion too (screenshots read from the PNG files)
    env = gym.make("guienv/AndroidControl-v0", data=str(path))
    _, info = env.reset(options={"episode_id": "101"})
    _, r, *_ = env.step(Action.from_dict(info["gt_action"]))
    assert r == 1.0


def test_ui_s1_real_records_and_swipe_convention(tmp_path):
    """Lines shaped exactly like UI-S1's file: absolute /datasets/... screenshot paths, swipes as
    finger paths with the AndroidControl direction in check_options."""
    big = tmp_path / "ac" / "images"
    big.mkdir(parents=True)
    for name in ("16426_2.png", "16452_5.png", "73_0.png", "45_0.png"):
        Image.new("RGB", (1080, 2400), (10, 20, 30)).save(big / name)
    def line(eid, steps):
        return json.dumps({"goal": "g", "is_successful": True, "steps": steps, "episode_id": eid})

    path = tmp_path / "ui_s1.jsonl"
    path.write_text("\n".join([
        line(16426, [{"action_content": {"action": "swipe", "coordinate": [540.0, 1800.0], "coordinate2": [540.0, 600.0]},
                      "screenshot": "/datasets/AndroidControl/images/16426_2.png",
                      "step_instruction": "Swipe up to view the details option ",
                      "check_options": {"action": "swipe", "direction": "down"}}]),
        line(16452, [{"action_content": {"action": "swipe", "coordinate": [810.0, 1200.0], "coordinate2": [270.0, 1200.0]},
                      "screenshot": "/datasets/AndroidControl/images/16452_5.png", "step_instruction": "Swipe right to view the size ",
                      "check_options": {"action": "swipe", "direction": "left"}}]),
        # no direction in check_options: UI-S1's drawing rule is inverted
        line(73, [{"action_content": {"action": "swipe", "coordinate": [270.0, 1200.0], "coordinate2": [810.0, 1200.0]},
                   "screenshot": "/datasets/AndroidControl/images/73_0.png", "step_instruction": "Swipe left",
                   "check_options": {"action": "swipe"}},
                  {"action_content": {"action": "swipe", "coordinate": [540.0, 600.0], "coordinate2": [540.0, 1800.0]},
                   "screenshot": "/datasets/AndroidControl/images/73_0.png", "step_instruction": "Swipe down",
                   "check_options": {"action": "swipe"}}]),
        line(45, [{"action_content": {"action": "system_button", "button": "Back"},
                   "screenshot": "/datasets/AndroidControl/images/45_0.png", "step_instruction": "go back",
                   "check_options": {"action": "system_button", "button": "Back"}},
                  {"action_content": {"action": "open", "text": "pCloud"}, "screenshot": "/datasets/AndroidControl/images/45_0.png",
                   "step_instruction": "open pCloud App",
                   "check_options": {"action": "open", "text": "pCloud", "candidate_bbox": [[561, 231, 771, 503]]}},
                  {"action_content": {"action": "terminate", "status": "success"},
                   "screenshot": "/datasets/AndroidControl/images/45_0.png", "step_instruction": "",
                   "check_options": {"action": "terminate", "status": "success"}}]),
    ]) + "\n")
    ds = load_androidcontrol(path, image_root=tmp_path / "ac")
    assert ds[0].steps[0].action == Action.scroll("down")
    assert ds[1].steps[0].action == Action.scroll("left")
    assert [s.action for s in ds[2].steps] == [Action.scroll("right"), Action.scroll("up")]
    assert [s.action.type for s in ds[3].steps] == [ActionType.NAVIGATE_BACK, ActionType.OPEN_APP, ActionType.FINISH]
    assert ds[3].steps[1].candidates == ((561.0, 231.0, 771.0, 503.0),)
    assert ds[0].steps[0].image.path == (tmp_path / "ac" / "images" / "16426_2.png").resolve()
    assert (ds[0].steps[0].width, ds[0].steps[0].height) == (1080, 2400)
    # and the writer draws the same finger paths for the same directions
    for direction, content in (("down", ([540.0, 1800.0], [540.0, 600.0])), ("left", ([810.0, 1200.0], [270.0, 1200.0]))):
        step = Step(ImageRef(path=big / "73_0.png"), 1080, 2400, Action.scroll(direction))
        rec = ui_s1_step_record(step, "x.png")
        assert (rec["action_content"]["coordinate"], rec["action_content"]["coordinate2"]) == content
        assert rec["check_options"] == {"action": "swipe", "direction": direction}
    # without image_root the absolute paths are not followed outside the file's directory
    with pytest.raises(DataError, match="absolute screenshot path"):
        load_androidcontrol(path)


def test_ui_s1_bad_lines(tmp_path):
    img = tmp_path / "images" / "1_0.png"
    img.parent.mkdir()
    Image.new("RGB", (W, H)).save(img)
    good = {"goal": "g", "steps": [{"action_content": {"action": "click", "coordinate": [1, 2]}, "screenshot": "images/1_0.png",
                                    "step_instruction": "s", "check_options": {"action": "click", "candidate_bbox": [], "coordinate": [1, 2]}}],
            "episode_id": 1}
    cases = [
        ({**good, "steps": [{**good["steps"][0], "action_content": {"action": "click", "coordinate": [1]}}]},
         "steps[0].action_content"),
        ({**good, "steps": [{**good["steps"][0], "action_content": {"action": "system_button", "button": "Menu"}}]},
         "steps[0].action_content"),
        ({**good, "steps": [{**good["steps"][0], "screenshot": "../../etc/passwd"}]}, "steps[0].screenshot"),
        ({**good, "steps": [{**good["steps"][0], "screenshot": "images/missing.png"}]}, None),
        ({**good, "goal": None}, "goal"),
    ]
    for obj, field in cases:
        path = tmp_path / "bad.jsonl"
        path.write_text(json.dumps(good | {"episode_id": 0}) + "\n" + json.dumps(obj) + "\n")
        with pytest.raises(DataError) as ei:
            load_androidcontrol(path)
        assert str(path) in str(ei.value) and "line 2" in str(ei.value)
        if field is not None:
            assert ei.value.field == field
        else:
            assert "steps[0].screenshot" in str(ei.value) and "not found" in str(ei.value)
        skipping = load_androidcontrol(path, on_error="skip")
        assert skipping.ids == ["0"] and "line 2" in skipping.skipped[0][0]
    path.write_text("{not json\n")
    with pytest.raises(DataError, match="line 1.*not valid JSON"):
        load_androidcontrol(path)


def test_ui_r1_json_loads_to_the_same_steps(tmp_path, loaded):
    path = tmp_path / "ac_test.json"
    n = write_ui_r1_json(loaded, path, image_dir=tmp_path / "imgs")
    assert n == 13
    records = json.loads(path.read_text())
    assert records[1] == {"image": "episode_101-screenshot_1.png", "gt": {"action_type": "click", "x": 30, "y": 60},
                          "task": "step 1 of Set an alarm for 7 am"}
    ds = load_androidcontrol(path, image_root=tmp_path / "imgs")
    assert ds.ids == loaded.ids
    for a, b in zip(loaded, ds):
        assert b.goal == ""  # UI-R1 records carry no goal
        _same_steps(a, b, candidates=False)
        assert b.extra["step_indices"] == tuple(range(len(a.steps)))


def test_ui_r1_real_records_group_by_file_name(tmp_path):
    """Records as in UI-R1's ac_test.json: shuffled, with steps missing from an episode."""
    for name in ("episode_140-screenshot_0.png", "episode_140-screenshot_2.png", "episode_662-screenshot_1.png"):
        Image.new("RGB", (1080, 2400), (1, 2, 3)).save(tmp_path / name)
    recs = [
        {"image": "episode_140-screenshot_2.png", "gt": {"action_type": "click", "x": 1027, "y": 209},
         "task": "Click on the more options icon at the top right corner of the screen."},
        {"image": "episode_662-screenshot_1.png", "gt": {"action_type": "scroll", "direction": "down"}, "task": "Scroll up"},
        {"image": "episode_140-screenshot_0.png", "gt": {"action_type": "open_app", "app_name": "PocketBook"},
         "task": "open the PocketBook app."},
    ]
    path = tmp_path / "ac_test.json"
    path.write_text(json.dumps(recs, indent=2))
    ds = load_androidcontrol(path)
    assert ds.ids == ["140", "662"]
    assert [s.action for s in ds[0].steps] == [Action.open_app("PocketBook"), Action.click(1027, 209)]
    assert ds[0].extra["step_indices"] == (0, 2)
    assert ds[1].steps[0].action == Action.scroll("down") and ds[1].steps[0].instruction == "Scroll up"
    recs[1]["gt"] = {"action_type": "scroll", "direction": "diagonal"}
    path.write_text(json.dumps(recs))
    with pytest.raises(DataError, match="record 1 \\(episode 662\\), field 'gt'"):
        load_androidcontrol(path)


# -- the env -------------------------------------------------------------------------------------------
def _make(shard, **kw):
    return gym.make("guienv/AndroidControl-v0", data=str(shard), **kw)


def test_low_and_high_mode_observations(shard, split_files):
    splits, subs = split_files
    low = _make(shard, splits=splits, subsplits=subs)
    obs, info = low.reset(options={"index": 1})
    assert low.observation_space.contains(obs)
    assert obs["goal"] == "Search for \u00e9clairs" and obs["instruction"] == "step 0 of Search for \u00e9clairs"
    assert obs["history"] == "" and obs["screenshot"].shape == (H, W, 3)
    assert np.array_equal(obs["screenshot"], _pixels(EPISODES[1].steps[0]))
    assert info["episode_id"] == "102" and info["split"] == "test" and info["subsplit"] == "IDD"
    assert info["image_size"] == (W, H) and info["step_index"] == 0
    assert info["gt_action"] == {"type": "type", "point": [50.0, 115.0], "text": "\u00e9clairs", "frame": "pixel"}
    assert info["candidates"] == [list(FIELD.box), list(LIST.box)]
    high = _make(shard, mode="high")
    obs_h, _ = high.reset(options={"episode_id": "102"})
    assert obs_h["instruction"] == "" and obs_h["goal"] == obs["goal"]
    obs_h, *_ = high.step(Action.type_text("\u00e9clairs"))
    assert obs_h["instruction"] == "" and obs_h["history"] == "1. " + json.dumps(info["gt_action"], ensure_ascii=False)


def test_oracle_scores_every_step(shard):
    from agents.baselines import OracleAgent

    env = _make(shard)
    agent = OracleAgent()
    for index, ep in enumerate(EPISODES):
        obs, info = env.reset(options={"index": index})
        rewards, done = [], False
        while not done:
            obs, r, term, trunc, info = env.step(agent.act(obs, info))
            rewards.append(r)
            done = term or trunc
        assert rewards == [1.0] * len(ep.steps)
        assert info["episode_success"] is True and info["steps_correct"] == len(ep.steps)


def test_actions_in_any_form_are_judged_in_pixels(shard):
    env = _make(shard)
    env.reset(options={"index": 2})  # one step: click (30, 60) on a 120x240 screen
    screen = Screen(W, H)
    forms = [
        Action.click(0.25, 0.25, frame=Frame.NORMALIZED),
        Action.click(250, 250, frame=Frame.GRID1000),
        {"type": "click", "point": [30, 60]},
        to_space(Action.click(30, 60), screen),
    ]
    for form in forms:
        env.reset(options={"index": 2})
        _, r, term, _, info = env.step(form)
        assert (r, term, info["exact_match"], info["grounding"]) == (1.0, True, True, True)
    env.reset(options={"index": 2})
    _, r, _, _, info = env.step(Action.click(115, 230))
    assert (r, info["type_match"], info["exact_match"], info["episode_success"]) == (0.0, True, False, False)
    env.reset(options={"index": 2})
    _, r, _, _, info = env.step({"type": "teleport"})
    assert r == 0.0 and info["type_match"] is False and "invalid" in info["reason"]


def test_stop_on_error_and_teacher_forcing(shard):
    wrong = Action.click(1, 235)
    stop = _make(shard, stop_on_error=True)
    stop.reset(options={"index": 0})
    _, r, term, trunc, info = stop.step(wrong)
    assert (r, term, trunc, info["episode_success"], info["judged_step"]) == (0.0, True, False, False, 0)
    with pytest.raises(RuntimeError, match="reset"):
        stop.step(wrong)
    forced = _make(shard)
    obs, info = forced.reset(options={"index": 0})
    rewards, done = [], False
    first = True
    while not done:
        action = wrong if first else Action.from_dict(info["gt_action"])
        first = False
        obs, r, done, _, info = forced.step(action)
        rewards.append(r)
    assert rewards == [0.0] + [1.0] * 5
    assert info["episode_success"] is False and info["steps_correct"] == 5


def test_history_gt_versus_agent(shard):
    pred = Action.click(60, 120)
    for source, first_line in (("gt", {"type": "open_app", "text": "Clock"}),
                               ("agent", {"type": "click", "point": [0.5, 0.5], "frame": "normalized"})):
        env = _make(shard, history=source, text_frame="normalized")
        env.reset(options={"index": 0})
        obs, *_ = env.step(pred)
        obs, *_ = env.step(Action.click(30, 60))
        numbers, texts = zip(*(x.split(". ", 1) for x in obs["history"].splitlines()))
        assert numbers == ("1", "2")
        lines = [json.loads(x) for x in texts]
        assert lines[0] == first_line
        assert lines[1] == {"type": "click", "point": [0.25, 0.25], "frame": "normalized"}


def test_check_env_and_render(shard):
    env = _make(shard, render_mode="rgb_array")
    check_env(env.unwrapped)
    obs, info = env.reset(seed=3)
    again, info2 = env.reset(seed=3)
    assert info2["episode_id"] == info["episode_id"] and np.array_equal(obs["screenshot"], again["screenshot"])
    env.reset(options={"index": 0})
    env.step(Action.open_app("Clock"))
    env.step(Action.click(100, 30))  # GT is click (30, 60) on BUTTON
    frame = env.render()
    screen = _pixels(EPISODES[0].steps[1])
    assert frame.shape == screen.shape and frame.dtype == np.uint8
    def green(a):
        return (a[..., 1] >= 190) & (a[..., 0] < 30) & (a[..., 2] < 30)

    def red(a):
        return (a[..., 0] >= 220) & (a[..., 1] < 30) & (a[..., 2] < 30)

    assert not green(screen).any() and not red(screen).any()
    assert green(frame)[50, 10:61].all()  # top edge of the BUTTON candidate box
    assert green(frame)[60, 22:39].any()  # the GT ring around (30, 60)
    assert red(frame)[20:41, 90:111].any() and not red(frame)[:, :60].any()  # the prediction's ring at (100, 30)


def test_env_accepts_a_dataset_and_rejects_bad_options(loaded):
    from guienv.envs.androidcontrol import AndroidControlEnv

    env = AndroidControlEnv(loaded, mode="high")
    assert env.reset(options={"index": 2})[1]["episode_id"] == "103"
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"index": 3})
    with pytest.raises(ValueError, match="mode"):
        AndroidControlEnv(loaded, mode="medium")
    with pytest.raises(ValueError, match="unknown matching protocol"):
        AndroidControlEnv(loaded, protocol="nope")


def test_async_vector_env(shard):
    envs = gym.vector.AsyncVectorEnv([lambda: _make(shard), lambda: _make(shard, mode="high")], shared_memory=False)
    try:
        obs, infos = envs.reset(seed=[0, 1])
        assert len(obs["screenshot"]) == 2 and obs["screenshot"][0].shape == (H, W, 3)
        assert obs["instruction"][1] == ""
        for _ in range(3):
            obs, rewards, *_ = envs.step(envs.action_space.sample())
            assert rewards.shape == (2,) and set(np.unique(rewards)) <= {0.0, 1.0}
    finally:
        envs.close()


@pytest.mark.parametrize("bad, reason", [
    (lambda line: line.replace(b'"goal"', b'"go\xffal"'), "not UTF-8 text"),
    (lambda line: b'{"goal": "g", "steps": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
])
def test_ui_s1_corrupt_line_names_file_and_line_and_skip_goes_on(tmp_path, bad, reason):
    path = tmp_path / "ui_s1.jsonl"
    assert write_ui_s1_jsonl(EPISODES, path) == 3
    lines = path.read_bytes().split(b"\n")
    lines[1] = bad(lines[1])  # episode 102's line breaks
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match=reason) as e:
        load_androidcontrol(path)
    assert e.value.path == str(path) and e.value.record == "line 2"
    ds = load_androidcontrol(path, on_error="skip")
    assert ds.ids == ["101", "103"] and len(ds.skipped) == 1
    where, why = ds.skipped[0]
    assert str(path) in where and "line 2" in where and reason in why
