"""ScreenSpot v1/v2/Pro, GUI-G1 and parquet loaders, writers, and ``guienv/ScreenSpot-v0``.

Fixtures are files in the released layouts (JSON written record by record as the public releases
have them, real PNG/JPEG screenshots from Pillow, parquet in the Hugging Face export schemas), read
back through the public loaders; the real screenshots in shared/data are used where they fit.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
from pathlib import Path

import gymnasium as gym
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector.utils import concatenate, create_empty_array
from PIL import Image, ImageDraw

import guienv
from guienv.actions import Action, to_space
from guienv.envs.screenspot import ScreenSpotEnv
from guienv.errors import DataError
from guienv.frames import Frame, Resize, Screen, convert_point
from guienv.types import GroundingSample, ImageRef
from tasks.screenspot import GroundingDataset, load_screenspot, write_screenspot, write_screenspot_parquet

ENV_ID = "guienv/ScreenSpot-v0"


# -- fixture writers --------------------------------------------------------------------------
def screenshot(path: Path, size: tuple[int, int], seed: int = 0, fmt: str | None = None) -> Path:
    """A real image file: a flat background with a few coloured widgets."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", size, tuple(int(v) for v in rng.integers(180, 255, 3)))
    draw = ImageDraw.Draw(img)
    w, h = size
    for _ in range(4):
        x, y = int(rng.integers(0, w - 20)), int(rng.integers(0, h - 20))
        draw.rectangle((x, y, x + 18, y + 12), fill=tuple(int(v) for v in rng.integers(0, 120, 3)))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def image_bytes(size: tuple[int, int], seed: int = 0, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (seed * 40 % 256, 120, 200)).save(buf, format=fmt)
    return buf.getvalue()


def ImageRefBytes(data: bytes) -> ImageRef:
    return ImageRef(data=data, where="in-memory")


def write_json(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records, indent=1))
    return path


def make_v2(root: Path) -> Path:
    """A ScreenSpot-v2 download: three split files + ``screenspotv2_image/`` (PNG and JPEG)."""
    imgs = root / "screenspotv2_image"
    screenshot(imgs / "mobile_a1.png", (360, 640), 1)
    screenshot(imgs / "pc_b2.jpg", (640, 360), 2, fmt="JPEG")
    screenshot(imgs / "web_c3.png", (800, 600), 3)
    write_json(root / "screenspot_mobile_v2.json", [
        {"img_filename": "mobile_a1.png", "bbox": [10, 20, 30, 40], "instruction": "open settings",
         "data_type": "icon", "data_source": "android"},
        {"img_filename": "mobile_a1.png", "bbox": [100, 500, 200, 60], "instruction": "tap Sign in",
         "data_type": "text", "data_source": "android"},
    ])
    write_json(root / "screenspot_desktop_v2.json", [
        {"img_filename": "pc_b2.jpg", "bbox": [600, 5, 35, 20], "instruction": "close this window",
         "data_type": "icon", "data_source": "windows"},
    ])
    write_json(root / "screenspot_web_v2.json", [
        {"img_filename": "web_c3.png", "bbox": [42, 102, 197, 70], "instruction": "view the details of the item",
         "data_type": "text", "data_source": "shop"},
    ])
    return root


def make_pro(root: Path) -> Path:
    """A ScreenSpot-Pro download: ``annotations/<app>_<os>.json`` + ``images/<app>_<os-ish>/``."""
    screenshot(root / "images" / "vscode_mac" / "screenshot_2024-12-03.png", (1280, 832), 4)
    write_json(root / "annotations" / "vscode_macos.json", [
        {"img_filename": "vscode_mac/screenshot_2024-12-03.png", "bbox": [473, 183, 503, 219],
         "instruction": "Refresh the file explorer.", "instruction_cn": "刷新文件资源管理器。",
         "id": "vscode_macos_0", "application": "vscode", "platform": "macos", "img_size": [1280, 832],
         "ui_type": "icon", "group": "Dev"},
        {"img_filename": "vscode_mac/screenshot_2024-12-03.png", "bbox": [20.5, 700.25, 300, 720],
         "instruction": "Open the terminal panel", "instruction_cn": "打开终端面板",
         "id": "vscode_macos_1", "application": "vscode", "platform": "macos", "img_size": [1280, 832],
         "ui_type": "text", "group": "Dev"},
    ])
    return root


def hf_parquet(path: Path, rows: list[dict], schema: pa.Schema | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return path


IMAGE_STRUCT = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def make_hf_v1_parquet(path: Path) -> Path:
    """``rootsautomation/ScreenSpot`` columns: normalized xyxy boxes, image as {bytes, path}."""
    schema = pa.schema([("file_name", pa.string()), ("bbox", pa.list_(pa.float64())), ("instruction", pa.string()),
                        ("data_type", pa.string()), ("data_source", pa.string()), ("image", IMAGE_STRUCT)])
    rows = [
        {"file_name": "pc_ede36f9b.png", "bbox": [0.9479, 0.1444, 0.9938, 0.2074], "instruction": "close this window",
         "data_type": "icon", "data_source": "windows",
         "image": {"bytes": image_bytes((960, 540), 1), "path": "pc_ede36f9b.png"}},
        {"file_name": "mobile_105a4c27.jpg", "bbox": [0.1, 0.5, 0.4, 0.55], "instruction": "search for music",
         "data_type": "text", "data_source": "ios",
         "image": {"bytes": image_bytes((390, 844), 2, "JPEG"), "path": None}},
    ]
    return hf_parquet(path, rows, schema)


# -- loading ----------------------------------------------------------------------------------
def test_v2_directory_converts_xywh_to_pixel_xyxy(tmp_path):
    ds = load_screenspot(make_v2(tmp_path))
    assert isinstance(ds, GroundingDataset) and len(ds) == 4 and ds.skipped == []
    by = {s.instruction: s for s in ds}
    s = by["tap Sign in"]
    assert s.box == (100.0, 500.0, 300.0, 560.0)
    assert (s.width, s.height) == (360, 640)  # from the PNG header (v2 has no img_size)
    assert (s.split, s.platform, s.source, s.data_type) == ("mobile", "mobile", "android", "text")
    d = by["close this window"]
    assert d.box == (600.0, 5.0, 635.0, 25.0) and (d.split, d.source) == ("desktop", "windows")
    assert d.image.load().shape == (360, 640, 3)  # the JPEG decodes
    assert by["view the details of the item"].box == (42.0, 102.0, 239.0, 172.0)
    assert len({s.id for s in ds}) == 4


def test_v1_single_file_finds_its_image_folder(tmp_path):
    screenshot(tmp_path / "screenspot_imgs" / "web_1.png", (500, 400))
    f = write_json(tmp_path / "screenspot_web.json", [
        {"img_filename": "web_1.png", "bbox": [1, 2, 3, 4], "instruction": "go", "data_type": "text",
         "data_source": "forum"}])
    (s,) = load_screenspot(f)
    assert s.box == (1.0, 2.0, 4.0, 6.0) and s.split == "web" and s.source == "forum"
    assert s.image.path == (tmp_path / "screenspot_imgs" / "web_1.png").resolve()
    # image_dir overrides the conventional folder
    other = tmp_path / "elsewhere"
    screenshot(other / "web_1.png", (50, 40))
    (s2,) = load_screenspot(f, image_dir=other)
    assert (s2.width, s2.height) == (50, 40)


def test_pro_layout(tmp_path):
    ds = load_screenspot(make_pro(tmp_path))
    a, b = ds
    assert a.id == "vscode_macos_0" and a.box == (473.0, 183.0, 503.0, 219.0)
    assert (a.split, a.source, a.platform, a.data_type) == ("vscode_macos", "vscode", "macos", "icon")
    assert a.extra["group"] == "Dev" and a.extra["instruction_cn"] == "刷新文件资源管理器。"
    assert b.box == (20.5, 700.25, 300.0, 720.0) and (b.width, b.height) == (1280, 832)
    # the annotation file alone resolves images/ beside annotations/
    assert len(load_screenspot(tmp_path / "annotations" / "vscode_macos.json")) == 2


def test_pro_img_size_must_match_the_image(tmp_path):
    make_pro(tmp_path)
    f = tmp_path / "annotations" / "vscode_macos.json"
    recs = json.loads(f.read_text())
    recs[1]["img_size"] = [2560, 1664]  # a 2x annotation for a 1x screenshot
    write_json(f, recs)
    with pytest.raises(DataError) as e:
        load_screenspot(tmp_path)
    assert e.value.record == 1 and e.value.field == "img_size" and "vscode_macos.json" in str(e.value)


def test_several_versions_in_one_directory_need_fmt(tmp_path):
    make_v2(tmp_path)
    screenshot(tmp_path / "screenspot_imgs" / "web_1.png", (500, 400))
    write_json(tmp_path / "screenspot_web.json", [
        {"img_filename": "web_1.png", "bbox": [1, 2, 3, 4], "instruction": "go", "data_type": "text",
         "data_source": "forum"}])
    with pytest.raises(DataError, match="fmt="):
        load_screenspot(tmp_path)
    assert len(load_screenspot(tmp_path, fmt="v1")) == 1
    assert len(load_screenspot(tmp_path, fmt="v2")) == 4


def test_real_gui_g1_sample(shared_data):
    (s,) = load_screenspot(shared_data / "screens" / "gui-g1_1033.json")
    assert (s.width, s.height) == (1920, 1080)
    assert s.box == (1207.68, 1024.92, 1351.68, 1080.0)
    assert s.instruction == "click the UI element Enhance Client Relationships and Boost Sales"
    assert (s.data_type, s.platform) == ("text", "web")
    assert s.image.load().shape == (1080, 1920, 3)


def test_real_2560x1440_screenshot_as_pro(tmp_path, shared_data):
    src = shared_data / "screens" / "os-atlas_web_6f93090a.png"
    (tmp_path / "images" / "web_linux").mkdir(parents=True)
    shutil.copyfile(src, tmp_path / "images" / "web_linux" / src.name)  # a copy, not a symlink
    write_json(tmp_path / "annotations" / "chrome_linux.json", [
        {"img_filename": f"web_linux/{src.name}", "bbox": [2200, 40, 2320, 90], "instruction": "open the menu",
         "instruction_cn": "打开菜单", "id": "chrome_linux_0", "application": "chrome", "platform": "linux",
         "img_size": [2560, 1440], "ui_type": "icon", "group": "Office"}])
    (s,) = load_screenspot(tmp_path)
    assert (s.width, s.height) == (2560, 1440) and s.box == (2200.0, 40.0, 2320.0, 90.0)
    assert not (tmp_path / "images" / "web_linux" / src.name).is_symlink()
    env = gym.make(ENV_ID, data=tmp_path, text_frame="grid1000")
    obs, info = env.reset(options={"index": 0})
    assert obs["screenshot"].shape == (1440, 2560, 3) and info["image_size"] == (2560, 1440)
    gx, gy = convert_point((2260, 65), Frame.PIXEL, Frame.GRID1000, Screen(2560, 1440))
    _, reward, terminated, _, info = env.step(Action.click(gx, gy, frame=Frame.GRID1000))
    assert reward == 1.0 and terminated and info["pred_point"] == pytest.approx((2260, 65))


def test_parquet_rootsautomation_schema(tmp_path):
    f = make_hf_v1_parquet(tmp_path / "data" / "test-00000-of-00001.parquet")
    ds = load_screenspot(tmp_path)  # the directory: finds data/*.parquet
    a, b = ds
    assert (a.width, a.height) == (960, 540)
    assert a.box == pytest.approx((0.9479 * 960, 0.1444 * 540, 0.9938 * 960, 0.2074 * 540))
    assert (a.split, a.platform, a.source, a.data_type) == ("desktop", "desktop", "windows", "icon")
    assert (b.width, b.height, b.split) == (390, 844, "mobile")
    assert b.image.load().shape == (844, 390, 3)
    assert ds.path == tmp_path and load_screenspot(f)[1].box == b.box


def test_parquet_pro_schema_pixel_boxes_raw_bytes_and_string_bbox(tmp_path):
    rows = [
        {"image": image_bytes((400, 300), 1), "bbox": "[300, 2077, 324, 2100]", "instruction": "plot a chart",
         "img_size": [4000, 3000], "ui_type": "icon", "application": "origin", "platform": "windows",
         "group": "Scientific", "id": "origin_windows_0"},
        {"image": image_bytes((400, 300), 2), "bbox": "[10, 20, 30, 40]", "instruction": "pick a colour",
         "img_size": [400, 300], "ui_type": "text", "application": "origin", "platform": "windows",
         "group": "Scientific", "id": "origin_windows_1"},
    ]
    f = hf_parquet(tmp_path / "pro.parquet", rows)
    with pytest.raises(DataError) as e:  # row 0's img_size disagrees with its 400x300 image
        load_screenspot(f)
    assert e.value.record == 0 and e.value.field == "img_size"
    rows[0]["img_size"] = [400, 300]
    rows[0]["bbox"] = "[300, 207, 324, 210]"
    (a, b) = load_screenspot(hf_parquet(f, rows))
    assert a.box == (300.0, 207.0, 324.0, 210.0) and b.box == (10.0, 20.0, 30.0, 40.0)
    assert (a.id, a.split, a.source, a.data_type) == ("origin_windows_0", "origin_windows", "origin", "icon")


def test_parquet_bbox_format_override(tmp_path):
    rows = [{"image": image_bytes((200, 100)), "bbox": [10, 20, 30, 40], "instruction": "x"}]
    f = hf_parquet(tmp_path / "a.parquet", rows)
    assert load_screenspot(f)[0].box == (10, 20, 30, 40)
    assert load_screenspot(f, bbox_format="xywh")[0].box == (10, 20, 40, 60)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        load_screenspot(f, bbox_format="xyxy_norm")


def test_parquet_image_path_column_resolves_inside_image_dir(tmp_path):
    screenshot(tmp_path / "imgs" / "web_9.png", (300, 200))
    rows = [{"image": {"bytes": None, "path": "web_9.png"}, "bbox": [1, 1, 5, 5], "instruction": "x"}]
    f = hf_parquet(tmp_path / "p.parquet", rows, pa.schema(
        [("image", IMAGE_STRUCT), ("bbox", pa.list_(pa.int64())), ("instruction", pa.string())]))
    (s,) = load_screenspot(f, image_dir=tmp_path / "imgs")
    assert (s.width, s.height, s.split) == (300, 200, "web")


# -- writing ----------------------------------------------------------------------------------
def _same(a: GroundingSample, b: GroundingSample) -> None:
    assert (a.instruction, a.width, a.height, a.data_type, a.source) == (b.instruction, b.width, b.height, b.data_type, b.source)
    assert a.box == pytest.approx(b.box, abs=1e-9)
    assert np.array_equal(a.image.load(), b.image.load())


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_write_screenspot_v1_v2_round_trip(tmp_path, version):
    src = load_screenspot(make_v2(tmp_path / "src"))
    out = write_screenspot(src, tmp_path / "out", version=version)
    suffix = "_v2" if version == "v2" else ""
    folder = {"v1": "screenspot_imgs", "v2": "screenspotv2_image"}[version]
    recs = json.loads((out / f"screenspot_mobile{suffix}.json").read_text())
    assert recs[1] == {"img_filename": "mobile_a1.png", "bbox": [100, 500, 200, 60], "instruction": "tap Sign in",
                       "data_type": "text", "data_source": "android"}
    assert sorted(p.name for p in (out / folder).iterdir()) == ["mobile_a1.png", "pc_b2.jpg", "web_c3.png"]
    back = load_screenspot(out)
    assert len(back) == len(src)
    for a, b in zip(sorted(src, key=lambda s: s.instruction), sorted(back, key=lambda s: s.instruction)):
        _same(a, b)
        assert a.split == b.split


def test_write_pro_round_trip_and_bytes_images(tmp_path):
    src = list(load_screenspot(make_pro(tmp_path / "src")))
    data = image_bytes((320, 200), 5, "JPEG")
    src.append(GroundingSample(id="synth/7", image=ImageRefBytes(data), instruction="press OK",
                               box=(10.5, 20, 50, 40), width=320, height=200, data_type="text",
                               platform="linux", split=None, source="synthapp"))
    out = write_screenspot(src, tmp_path / "out", version="pro")
    rec = json.loads((out / "annotations" / "vscode_macos.json").read_text())[0]
    assert set(rec) == {"img_filename", "bbox", "instruction", "instruction_cn", "id", "application", "platform",
                        "img_size", "ui_type", "group"}
    assert rec["bbox"] == [473, 183, 503, 219] and rec["img_size"] == [1280, 832]
    synth = json.loads((out / "annotations" / "synthapp_linux.json").read_text())[0]
    assert synth["img_filename"] == "synthapp_linux/synth_7.jpg" and synth["bbox"] == [10.5, 20, 50, 40]
    back = load_screenspot(out)
    assert [s.id for s in back] == ["synth/7", "vscode_macos_0", "vscode_macos_1"]
    for a in src:
        (b,) = [s for s in back if s.instruction == a.instruction]
        _same(a, b)


def test_write_v2_needs_a_screenspot_split(tmp_path):
    s = GroundingSample(id="a", image=ImageRefBytes(image_bytes((64, 64))), instruction="x", box=(1, 1, 2, 2),
                        width=64, height=64, split="train", platform="android")
    with pytest.raises(ValueError, match="split"):
        write_screenspot([s], tmp_path, version="v2")
    out = write_screenspot([s], tmp_path, version="v2", split="mobile")
    (rec,) = json.loads((out / "screenspot_mobile_v2.json").read_text())
    assert rec["img_filename"] == "mobile_a.png" and rec["bbox"] == [1, 1, 1, 1]


@pytest.mark.parametrize("normalized", [False, True])
def test_write_parquet_round_trip(tmp_path, normalized):
    src = load_screenspot(make_v2(tmp_path / "src"))
    f = write_screenspot_parquet(src, tmp_path / "ss.parquet", normalized=normalized)
    table = pq.read_table(f)
    box0 = table.column("bbox")[0].as_py()
    assert all(0 <= v <= 1 for v in box0) == normalized
    assert table.schema.field("image").type == IMAGE_STRUCT
    back = load_screenspot(f)
    assert len(back) == len(src)
    for a, b in zip(src, back):
        _same(a, b)
        assert (a.split, a.id) == (b.split, b.id)


# -- bad input --------------------------------------------------------------------------------
def _v2_with_record1(tmp_path: Path, text: str) -> Path:
    """A v2 mobile file whose record 1 is ``text`` (raw JSON, so NaN/Infinity can appear)."""
    make_v2(tmp_path)
    good = json.dumps({"img_filename": "mobile_a1.png", "bbox": [10, 20, 30, 40], "instruction": "ok",
                       "data_type": "icon", "data_source": "android"})
    f = tmp_path / "screenspot_mobile_v2.json"
    f.write_text(f"[{good},\n {text}]")
    return f


BAD_RECORDS = {
    "missing instruction": ('{"img_filename": "mobile_a1.png", "bbox": [1, 2, 3, 4]}', "instruction"),
    "missing bbox": ('{"img_filename": "mobile_a1.png", "instruction": "x"}', "bbox"),
    "missing image": ('{"bbox": [1, 2, 3, 4], "instruction": "x"}', "img_filename"),
    "NaN in bbox": ('{"img_filename": "mobile_a1.png", "bbox": [1, NaN, 3, 4], "instruction": "x"}', "bbox"),
    "Infinity in bbox": ('{"img_filename": "mobile_a1.png", "bbox": [1, 2, Infinity, 4], "instruction": "x"}', "bbox"),
    "bbox of 3": ('{"img_filename": "mobile_a1.png", "bbox": [1, 2, 3], "instruction": "x"}', "bbox"),
    "bbox strings": ('{"img_filename": "mobile_a1.png", "bbox": ["1", "2", "3", "4"], "instruction": "x"}', "bbox"),
    "negative width": ('{"img_filename": "mobile_a1.png", "bbox": [10, 2, -3, 4], "instruction": "x"}', "bbox"),
    "empty instruction": ('{"img_filename": "mobile_a1.png", "bbox": [1, 2, 3, 4], "instruction": " "}', "instruction"),
    "image not found": ('{"img_filename": "nope.png", "bbox": [1, 2, 3, 4], "instruction": "x"}', "img_filename"),
    "path escape": ('{"img_filename": "../x.png", "bbox": [1, 2, 3, 4], "instruction": "x"}', "img_filename"),
    "absolute path": ('{"img_filename": "/etc/passwd", "bbox": [1, 2, 3, 4], "instruction": "x"}', "img_filename"),
    "not an object": ('[1, 2, 3]', None),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_bad_record_raises_naming_file_record_field(tmp_path, case):
    text, fld = BAD_RECORDS[case]
    if case == "path escape":
        screenshot(tmp_path / "x.png", (40, 40))  # exists, but outside the image folder
    f = _v2_with_record1(tmp_path, text)
    with pytest.raises(DataError) as e:
        load_screenspot(tmp_path)
    err = e.value
    assert err.path == str(f) and err.record == 1 and err.field == fld
    assert "screenspot_mobile_v2.json" in str(err) and "record 1" in str(err)


def test_pro_negative_area_box(tmp_path):
    make_pro(tmp_path)
    f = tmp_path / "annotations" / "vscode_macos.json"
    recs = json.loads(f.read_text())
    recs[0]["bbox"] = [503, 183, 473, 219]
    write_json(f, recs)
    with pytest.raises(DataError, match="negative area") as e:
        load_screenspot(tmp_path)
    assert (e.value.record, e.value.field) == (0, "bbox")


def test_undecodable_and_truncated_images(tmp_path):
    make_v2(tmp_path)
    imgs = tmp_path / "screenspotv2_image"
    (imgs / "web_c3.png").write_bytes(b"this is not a PNG")
    with pytest.raises(DataError) as e:
        load_screenspot(tmp_path)
    assert "screenspot_web_v2.json" in str(e.value) and e.value.record == 0 and e.value.field == "img_filename"

    # Truncated past the header: the size reads, the pixels don't.
    screenshot(imgs / "web_c3.png", (800, 600), 3)
    whole = (imgs / "web_c3.png").read_bytes()
    (imgs / "web_c3.png").write_bytes(whole[: len(whole) // 2])
    ds = load_screenspot(tmp_path)
    index = next(i for i, s in enumerate(ds) if s.split == "web")
    env = gym.make(ENV_ID, data=ds)
    with pytest.raises(DataError) as e:
        env.reset(options={"index": index})
    assert "screenspot_web_v2.json, record 0" in str(e.value) and "decode" in str(e.value)
    with pytest.raises(DataError) as e:
        load_screenspot(tmp_path, verify_images=True)
    assert e.value.record == 0 and "screenspot_web_v2.json" in str(e.value)


def test_corrupt_json_and_unknown_format(tmp_path):
    f = tmp_path / "screenspot_web_v2.json"
    f.write_text('[{"img_filename": "a.png", ')
    with pytest.raises(DataError, match="not valid JSON") as e:
        load_screenspot(f)
    assert e.value.path == str(f)
    g = write_json(tmp_path / "mine.json", [{"image": "a.png", "box": [1, 2, 3, 4], "instruction": "x"}])
    with pytest.raises(DataError, match="fmt="):
        load_screenspot(g)


def test_corrupt_parquet(tmp_path):
    good = make_hf_v1_parquet(tmp_path / "good.parquet").read_bytes()
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError) as e:
        load_screenspot(bad)
    assert e.value.path == str(bad) and "parquet" in str(e.value)
    bad.write_bytes(b"PAR1 garbage, not a parquet file PAR1")
    with pytest.raises(DataError):
        load_screenspot(bad)
    # one row's screenshot is garbage: that row is named
    rows = pq.read_table(tmp_path / "good.parquet").to_pylist()
    rows[1]["image"] = {"bytes": b"\x89PNG\r\n\x1a\n broken", "path": "x.png"}
    f = hf_parquet(tmp_path / "row.parquet", rows, pq.read_schema(tmp_path / "good.parquet"))
    with pytest.raises(DataError) as e:
        load_screenspot(f)
    assert (e.value.path, e.value.record, e.value.field) == (str(f), 1, "image")
    no_col = hf_parquet(tmp_path / "nocol.parquet", [{"image": b"x", "instruction": "y"}])
    with pytest.raises(DataError, match="bbox"):
        load_screenspot(no_col)


def test_on_error_skip_keeps_good_records_and_reports(tmp_path, caplog):
    make_v2(tmp_path)
    f = tmp_path / "screenspot_mobile_v2.json"
    recs = json.loads(f.read_text())
    recs += [
        {"img_filename": "mobile_a1.png", "bbox": [1, 2, 3], "instruction": "bad box"},
        {"img_filename": "../../etc/passwd", "bbox": [1, 2, 3, 4], "instruction": "escape"},
        {"img_filename": "mobile_a1.png", "bbox": [1, 2, 3, 4]},
    ]
    write_json(f, recs)
    with pytest.raises(DataError):
        load_screenspot(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tasks.screenspot"):
        ds = load_screenspot(tmp_path, on_error="skip")
    assert len(ds) == 4 and {s.instruction for s in ds} >= {"open settings", "tap Sign in"}
    assert len(ds.skipped) == 3
    assert [w for w, _ in ds.skipped] == [
        f"{f}, record 2, field 'bbox'", f"{f}, record 3, field 'img_filename'", f"{f}, record 4, field 'instruction'"]
    assert "skipped 3 bad record(s)" in caplog.text
    env = gym.make(ENV_ID, data=tmp_path, on_error="skip")
    assert len(env.unwrapped.dataset) == 4 and len(env.unwrapped.dataset.skipped) == 3


# -- the env ----------------------------------------------------------------------------------
def test_check_env_and_spaces(tmp_path):
    env = gym.make(ENV_ID, data=make_v2(tmp_path))
    check_env(env.unwrapped)
    assert env.unwrapped.action_space == guienv.action_space()
    assert len(env.unwrapped.dataset) == 4


def test_reset_picks_by_index_or_seed(tmp_path):
    env = gym.make(ENV_ID, data=make_v2(tmp_path))
    ds = env.unwrapped.dataset
    obs, info = env.reset(options={"index": 2})
    s = ds[2]
    assert obs["instruction"] == s.instruction and obs["screenshot"].shape == (s.height, s.width, 3)
    assert info["id"] == s.id and info["index"] == 2 and info["image_size"] == (s.width, s.height)
    assert info["bbox"].dtype == np.float64 and tuple(info["bbox"]) == s.box
    assert (info["split"], info["platform"], info["source"], info["data_type"]) == (s.split, s.platform, s.source, s.data_type)
    picks = [env.reset(seed=7)[1]["index"] for _ in range(2)]
    assert picks[0] == picks[1]
    assert len({env.reset(seed=k)[1]["index"] for k in range(20)}) > 1
    with pytest.raises(IndexError):
        env.reset(options={"index": 4})


def _inside_outside(box, w, h):
    x1, y1, x2, y2 = box
    inside = ((x1 + x2) / 2, (y1 + y2) / 2)
    outside = (x2 + 1, inside[1]) if x2 + 1 < w else (x1 - 1, inside[1])
    return inside, outside


@pytest.mark.parametrize("frame", [Frame.PIXEL, Frame.NORMALIZED, Frame.GRID1000, Frame.RESIZED])
def test_oracle_click_scores_one_and_a_miss_zero(tmp_path, frame):
    env = gym.make(ENV_ID, data=make_v2(tmp_path))
    for i in range(len(env.unwrapped.dataset)):
        _, info = env.reset(options={"index": i})
        w, h = info["image_size"]
        screen = Screen(w, h)
        inside, outside = _inside_outside(info["bbox"], w, h)
        for point, want in ((inside, 1.0), (outside, 0.0)):
            env.reset(options={"index": i})
            p = convert_point(point, Frame.PIXEL, frame, screen)
            _, reward, terminated, truncated, out = env.step(Action.click(*p, frame=frame))
            assert (reward, out["correct"], terminated, truncated) == (want, want == 1.0, True, False)
            assert out["pred_point"] == pytest.approx(point)
            assert out["action"]["frame"] == "pixel"


def test_box_answers_space_samples_and_invalid_actions(tmp_path):
    env = gym.make(ENV_ID, data=make_v2(tmp_path))
    _, info = env.reset(options={"index": 0})
    w, h = info["image_size"]
    x1, y1, x2, y2 = info["bbox"]
    # a box answer counts by its centre
    assert env.step(Action.box_answer((x1 - 2, y1 - 2, x2 + 2, y2 + 2)))[1] == 1.0
    env.reset(options={"index": 0})
    assert env.step(Action.box_answer((0, 0, w, h)))[1] == 0.0  # centre outside the small target
    # a sample of the action space (normalized frame)
    env.reset(options={"index": 0})
    sample = to_space(Action.click((x1 + x2) / 2, (y1 + y2) / 2), Screen(w, h))
    assert env.step(sample)[1] == 1.0
    # non-grounding or unreadable actions score 0 and never crash
    for a in (Action.scroll("down"), Action.simple("wait"), {"type": "click"}, 42, Action.invalid("x")):
        env.reset(options={"index": 0})
        _, reward, terminated, _, out = env.step(a)
        assert reward == 0.0 and terminated and out["pred_point"] is None and out["correct"] is False


def test_step_order_is_enforced(tmp_path):
    env = ScreenSpotEnv(make_v2(tmp_path))
    with pytest.raises(RuntimeError):
        env.step(Action.click(1, 1))
    env.reset(seed=0)
    env.step(Action.click(1, 1))
    with pytest.raises(RuntimeError):
        env.step(Action.click(1, 1))


def test_in_memory_samples_and_empty_data(tmp_path):
    data = image_bytes((100, 80))
    s = GroundingSample(id="m0", image=ImageRefBytes(data), instruction="hit", box=(10, 10, 30, 20), width=100, height=80)
    env = gym.make(ENV_ID, data=[s])
    env.reset()
    assert env.step(Action.click(20, 15))[1] == 1.0
    with pytest.raises(DataError):
        gym.make(ENV_ID, data=[])
    with pytest.raises(TypeError):
        gym.make(ENV_ID, data=[{"instruction": "x"}])


def test_size_mismatch_between_record_and_image_is_caught_at_reset():
    s = GroundingSample(id="m0", image=ImageRefBytes(image_bytes((100, 80))), instruction="hit",
                        box=(10, 10, 30, 20), width=200, height=80)
    env = gym.make(ENV_ID, data=[s])
    with pytest.raises(DataError, match="100x80"):
        env.reset()


MODEL_TEXT = '{{"action": "click", "coordinate": [{x:.4f}, {y:.4f}]}}'


@pytest.mark.parametrize("frame", [Frame.PIXEL, Frame.NORMALIZED, Frame.GRID1000])
def test_model_text_is_read_in_text_frame(tmp_path, frame):
    env = gym.make(ENV_ID, data=make_v2(tmp_path), text_frame=frame)
    _, info = env.reset(options={"index": 1})
    w, h = info["image_size"]
    inside, outside = _inside_outside(info["bbox"], w, h)
    for point, want in ((inside, 1.0), (outside, 0.0)):
        env.reset(options={"index": 1})
        x, y = convert_point(point, Frame.PIXEL, frame, Screen(w, h))
        _, reward, _, _, out = env.step(MODEL_TEXT.format(x=x, y=y))
        assert reward == want, out
    # GUI-G1's box answer counts by its centre; guienv JSON names its own frame, which wins
    x1, y1, x2, y2 = info["bbox"]
    (a, b), (c, d) = (convert_point(p, Frame.PIXEL, frame, Screen(w, h)) for p in ((x1, y1), (x2, y2)))
    env.reset(options={"index": 1})
    assert env.step(f'<think>the sign-in button</think>[{{"bbox_2d": [{a:.4f}, {b:.4f}, {c:.4f}, {d:.4f}]}}]')[1] == 1.0
    env.reset(options={"index": 1})
    assert env.step(json.dumps(Action.click(*inside).to_dict()))[1] == 1.0
    for junk in ("", "I think it's the blue button", '{"action": "click", "coordinate": [1e999, 5]}', "\x00" * 100):
        env.reset(options={"index": 1})
        _, reward, terminated, _, out = env.step(junk)
        assert reward == 0.0 and terminated


def test_model_text_in_the_resized_frame_of_a_large_screenshot(tmp_path, shared_data):
    """Qwen2.5-VL answers in pixels of its smart-resized input (Qwen2.5-VL technical report, arXiv 2502.13923)."""
    max_pixels = 1280 * 28 * 28
    (tmp_path / "shots").mkdir()
    shutil.copyfile(shared_data / "screens" / "os-atlas_web_6f93090a.png", tmp_path / "shots" / "big.png")
    write_json(tmp_path / "shots" / "list.json", [
        {"img_filename": "big.png", "instruction": "open the menu", "bbox_xyxy": [2200, 40, 2320, 90],
         "img_size": [2560, 1440], "data_type": "icon", "platform": "web"}])
    env = gym.make(ENV_ID, data=tmp_path / "shots" / "list.json", text_frame="resized", max_pixels=max_pixels)
    env.reset(options={"index": 0})
    screen = Screen(2560, 1440, Resize(max_pixels=max_pixels))
    rw, rh = screen.resized
    assert rw * rh <= max_pixels and rw < 2560
    x, y = convert_point((2260, 65), Frame.PIXEL, Frame.RESIZED, screen)
    _, reward, _, _, out = env.step(MODEL_TEXT.format(x=x, y=y))
    assert reward == 1.0 and out["pred_point"] == pytest.approx((2260, 65), abs=1e-3)
    # the same numbers read as original pixels miss: this is the bug several evaluators have
    env2 = gym.make(ENV_ID, data=tmp_path / "shots" / "list.json", text_frame="pixel")
    env2.reset(options={"index": 0})
    assert env2.step(MODEL_TEXT.format(x=x, y=y))[1] == 0.0


def test_render_draws_box_and_prediction(tmp_path):
    env = gym.make(ENV_ID, data=make_v2(tmp_path), render_mode="rgb_array")
    web = next(i for i, s in enumerate(env.unwrapped.dataset) if s.split == "web")  # the 800x600 one
    obs, info = env.reset(options={"index": web})
    x1, y1, x2, _ = (int(v) for v in info["bbox"])
    env.step(Action.click(700, 500))
    frame = env.render()
    assert frame.shape == obs["screenshot"].shape and frame.dtype == np.uint8
    assert tuple(frame[y1, (x1 + x2) // 2]) == (0, 200, 0)  # the GT box outline
    assert tuple(frame[500, 700 + 12]) == (230, 0, 0)  # the prediction's crosshair
    assert np.array_equal(frame[300, 400], obs["screenshot"][300, 400])  # elsewhere unchanged
    assert obs["screenshot"][y1, (x1 + x2) // 2].tolist() != [0, 200, 0]  # observation untouched


def test_async_vector_env(tmp_path):
    root = make_v2(tmp_path)
    fns = [lambda: gym.make(ENV_ID, data=str(root)) for _ in range(2)]
    venv = gym.vector.AsyncVectorEnv(fns, shared_memory=False)
    try:
        obs, infos = venv.reset(seed=[0, 1])
        assert len(obs["screenshot"]) == 2 and all(o.ndim == 3 for o in obs["screenshot"])
        boxes = infos["bbox"]
        assert boxes.shape == (2, 4)
        # batched actions in the vector action space: one to_space sample per sub-env
        single = venv.single_action_space
        samples = [
            to_space(Action.click((b[0] + b[2]) / 2, (b[1] + b[3]) / 2), Screen(*(int(v) for v in size)))
            for b, size in zip(boxes, infos["image_size"])
        ]
        actions = concatenate(single, samples, create_empty_array(single, 2))
        _, rewards, terminated, _, infos = venv.step(actions)
        assert rewards.tolist() == [1.0, 1.0] and terminated.all()
        assert list(infos["correct"]) == [True, True]
    finally:
        venv.close()


@pytest.mark.parametrize("corrupt, reason", [
    (lambda text: text.replace('"tap Sign in"', '"tap Sign in \udcff"'), "not UTF-8 text"),
    (lambda text: "[" * 100_000 + "]" * 100_000, "nested too deeply"),
])
def test_corrupt_annotation_file_written_by_the_writer(tmp_path, corrupt, reason):
    out = write_screenspot(load_screenspot(make_v2(tmp_path / "src")), tmp_path / "out", version="v2")
    ann = out / "screenspot_mobile_v2.json"
    ann.write_bytes(corrupt(ann.read_text(encoding="utf-8")).encode("utf-8", "surrogateescape"))
    with pytest.raises(DataError, match=reason) as e:
        load_screenspot(out)
    assert e.value.path == str(ann)
    # the file is unreadable as a whole: skip leaves it out and keeps the other files
    ds = load_screenspot(out, on_error="skip")
    assert len(ds) == 2 and any("screenspot_mobile_v2.json" in where for where, _ in ds.skipped)
