"""guienv.io: the one JSON/JSONL reader and writer and the image helpers every layer uses.

Files are written with the project's own writers (write_jsonl, encode_png, Pillow's encoders) and
then corrupted the way real files break (a cut tail, invalid UTF-8, a record nested too deeply)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from guienv.errors import DataError
from guienv.io import (
    PNG_MAGIC,
    decode_image,
    encode_png,
    iter_jsonl,
    loads_json,
    png_bytes,
    read_json,
    read_jsonl,
    write_jsonl,
)

ROWS = [{"id": 1, "text": "héllo"}, {"id": 2, "nested": {"a": [1, 2]}}, {"id": 3}]
DEEP = b"[" * 100_000 + b"]" * 100_000


def _written(tmp_path, rows=ROWS):
    path = tmp_path / "rows.jsonl"
    assert write_jsonl(path, rows) == len(rows)
    return path


def test_write_then_read_round_trip_keeps_unicode(tmp_path):
    path = _written(tmp_path)
    assert "héllo" in path.read_text(encoding="utf-8")  # non-ASCII kept, not \\u-escaped
    assert not path.with_name("rows.jsonl.tmp").exists()
    assert read_jsonl(path) == (ROWS, True)
    assert [v for _, v in iter_jsonl(path)] == ROWS
    assert [no for no, _ in iter_jsonl(path)] == [1, 2, 3]


def test_loads_json_names_the_source_for_every_failure():
    with pytest.raises(DataError, match=r"f\.json, record line 4: not valid JSON"):
        loads_json("{oops", "f.json", record="line 4")
    with pytest.raises(DataError, match="not UTF-8 text"):
        loads_json(b'{"a": "\xff"}', "f.json")
    with pytest.raises(DataError, match="nested too deeply"):
        loads_json(DEEP, "f.json")


@pytest.mark.parametrize(
    "bad, reason",
    [(b'{"id": "\xff\xfe"}', "not UTF-8 text"), (DEEP, "nested too deeply"), (b"[1, 2]", "must be a JSON object")],
)
def test_a_corrupt_line_raises_naming_it_or_is_yielded_to_skip(tmp_path, bad, reason):
    path = _written(tmp_path)
    lines = path.read_bytes().split(b"\n")
    lines[1] = bad  # line 2 breaks
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match=rf"rows\.jsonl, record line 2: .*{reason}"):
        list(iter_jsonl(path))
    got = list(iter_jsonl(path, errors="yield"))
    assert [no for no, _ in got] == [1, 2, 3]
    assert isinstance(got[1][1], DataError) and got[1][1].record == "line 2" and reason in str(got[1][1])
    assert [v for _, v in got if not isinstance(v, DataError)] == [ROWS[0], ROWS[2]]  # reading went on
    with pytest.raises(DataError, match="line 2"):
        read_jsonl(path)


def test_read_jsonl_drops_only_an_interrupted_last_line(tmp_path):
    path = _written(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4])  # the last write was cut
    with pytest.warns(UserWarning, match="unfinished last line 3"):
        rows, clean = read_jsonl(path, drop_cut_tail=True)
    assert rows == ROWS[:2] and clean is False
    with pytest.raises(DataError, match="line 3"):
        read_jsonl(path)
    assert read_jsonl(tmp_path / "missing.jsonl") == ([], True)


def test_read_json_errors_name_the_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_bytes(DEEP)
    with pytest.raises(DataError, match=r"a\.json: JSON nested too deeply"):
        read_json(path)
    with pytest.raises(DataError, match="is a directory"):
        read_json(tmp_path)
    path.write_text('{"k": [1, 2]}', encoding="utf-8")
    assert read_json(path) == {"k": [1, 2]}


def test_png_bytes_passes_png_through_and_reencodes_other_formats(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, size=(12, 20, 3), dtype=np.uint8)
    png = encode_png(arr)
    assert png.startswith(PNG_MAGIC) and png_bytes(png) == png
    assert np.array_equal(decode_image(png), arr)
    assert encode_png(Image.fromarray(arr)) == png
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="BMP")
    (tmp_path / "a.bmp").write_bytes(buf.getvalue())
    out = png_bytes(tmp_path / "a.bmp")
    assert out.startswith(PNG_MAGIC) and np.array_equal(decode_image(out), arr)  # BMP is lossless
    with pytest.raises(DataError, match="not found"):
        png_bytes(tmp_path / "missing.png", "shot 3")
    with pytest.raises(DataError, match="cannot"):
        png_bytes(b"not an image", "shot 4")


def test_decode_image_refuses_decompression_bombs(monkeypatch):
    png = encode_png(np.zeros((64, 64, 3), dtype=np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 4096 pixels is "a bomb" now
    with pytest.raises(DataError, match="<screenshot>"):
        decode_image(png, "<screenshot>")
