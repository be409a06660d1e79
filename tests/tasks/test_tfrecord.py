"""TFRecord framing, gzip and tf.train.Example features (tasks/tfrecord.py)."""

from __future__ import annotations

import gzip
import struct

import pytest

from guienv.errors import DataError
from tasks.tfrecord import (
    MAX_RECORD_BYTES,
    RecordReader,
    TFRecordWriter,
    decode_example,
    detect_compression,
    encode_example,
    frame_record,
    iter_records,
    masked_crc32c,
    read_examples,
    write_records,
)

PAYLOADS = [b"first record", b"", b"\x00\xff" * 700, "unicode \u00e9\u6f22".encode()]


def _offsets(payloads):
    out, pos = [], 0
    for p in payloads:
        out.append(pos)
        pos += 8 + 4 + len(p) + 4
    return out


@pytest.mark.parametrize("gz", [True, False])
def test_round_trip_with_empty_record(tmp_path, gz):
    path = tmp_path / ("r.tfrecord.gz" if gz else "r.tfrecord")
    assert write_records(path, PAYLOADS, gzip=gz) == len(PAYLOADS)
    assert path.read_bytes()[:2] == (b"\x1f\x8b" if gz else struct.pack("<Q", len(PAYLOADS[0]))[:2])
    assert detect_compression(path) == ("gzip" if gz else "none")
    recs = list(iter_records(path))
    assert [r.data for r in recs] == PAYLOADS
    assert [r.index for r in recs] == list(range(len(PAYLOADS)))
    assert [r.offset for r in recs] == _offsets(PAYLOADS)


def test_gzip_file_is_a_plain_gzip_of_the_framed_records(tmp_path):
    path = tmp_path / "r.gz"
    write_records(path, PAYLOADS, gzip=True)
    assert gzip.decompress(path.read_bytes()) == b"".join(frame_record(p) for p in PAYLOADS)
    # fixed mtime: equal content, identical bytes
    write_records(tmp_path / "again.gz", PAYLOADS, gzip=True)
    assert (tmp_path / "again.gz").read_bytes() == path.read_bytes()


def test_crc32c_is_castagnoli_and_masking_matches_the_reference_reader(tmp_path):
    import crc32c

    assert crc32c.crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (not zlib's crc32)
    # An independent implementation (the `tfrecord` package) reads our files and writes files we read.
    from tfrecord.reader import tfrecord_iterator
    from tfrecord.writer import TFRecordWriter as TheirWriter

    ours = tmp_path / "ours.tfrecord"
    write_records(ours, PAYLOADS, gzip=False)
    assert [bytes(r) for r in tfrecord_iterator(str(ours))] == PAYLOADS
    theirs = tmp_path / "theirs.tfrecord"
    w = TheirWriter(str(theirs))
    for p in PAYLOADS:
        w.write({"x": (p, "byte")})
    w.close()
    decoded = [decode_example(r.data)["x"] for r in iter_records(theirs)]
    assert decoded == [[p] for p in PAYLOADS]
    assert masked_crc32c(b"") == 0xA282EAD8


def _plain(tmp_path, payloads=PAYLOADS):
    path = tmp_path / "plain.tfrecord"
    write_records(path, payloads, gzip=False)
    return path, bytearray(path.read_bytes())


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_names_file_record_and_offset(tmp_path, gz):
    _, raw = _plain(tmp_path)
    cut = raw[: _offsets(PAYLOADS)[2] + 30]  # inside record 2's data
    target = tmp_path / ("cut.gz" if gz else "cut.tfrecord")
    if gz:
        full = gzip.compress(bytes(raw), mtime=0)
        target.write_bytes(full[: len(full) - 20])  # gzip stream cut short
    else:
        target.write_bytes(bytes(cut))
    it = iter_records(target)
    with pytest.raises(DataError) as ei:
        list(it)
    msg = str(ei.value)
    assert str(target) in msg
    if gz:
        assert "gzip stream is corrupt or truncated" in msg
    else:
        assert "record 2" in msg and "truncated" in msg and f"byte offset {_offsets(PAYLOADS)[2]}" in msg


def test_streaming_yields_good_records_before_a_corrupt_one(tmp_path):
    path, raw = _plain(tmp_path)
    raw[_offsets(PAYLOADS)[2] + 12 + 5] ^= 0x01  # flip one data byte of record 2
    path.write_bytes(bytes(raw))
    it = iter_records(path)
    assert next(it).data == PAYLOADS[0]
    assert next(it).data == PAYLOADS[1]
    with pytest.raises(DataError, match=r"record 2: data checksum mismatch .* byte offset"):
        next(it)


@pytest.mark.parametrize("gz", [False, True])
def test_flipped_data_byte_fails_data_crc(tmp_path, gz):
    _, raw = _plain(tmp_path)
    raw[_offsets(PAYLOADS)[0] + 12 + 3] ^= 0x40
    target = tmp_path / "bad"
    target.write_bytes(gzip.compress(bytes(raw)) if gz else bytes(raw))
    with pytest.raises(DataError) as ei:
        list(iter_records(target))
    assert str(target) in str(ei.value) and "record 0" in str(ei.value)
    assert "data checksum mismatch" in str(ei.value) and "byte offset 0" in str(ei.value)
    # check_crc=False reads the damaged payload as is
    assert next(iter_records(target, check_crc=False)).data != PAYLOADS[0]


def test_flipped_length_byte_fails_length_crc(tmp_path):
    path, raw = _plain(tmp_path)
    off = _offsets(PAYLOADS)[3]
    raw[off] ^= 0x02
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match=rf"record 3: length checksum mismatch in the record at byte offset {off}"):
        list(iter_records(path))


def test_bad_gzip_stream(tmp_path):
    path = tmp_path / "bad.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"this is not deflate data at all")
    with pytest.raises(DataError, match="gzip stream is corrupt or truncated") as ei:
        list(iter_records(path))
    assert str(path) in str(ei.value)
    # forcing gzip on a plain file is reported, not crashed on
    plain, _ = _plain(tmp_path)
    with pytest.raises(DataError, match="gzip"):
        list(iter_records(plain, compression="gzip"))


def test_not_a_tfrecord_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello, this is just text and certainly not framed records")
    with pytest.raises(DataError, match="length checksum mismatch"):
        list(iter_records(path))
    with pytest.raises(DataError, match="cannot open"):
        list(iter_records(tmp_path / "missing.tfrecord", compression="none"))


@pytest.mark.parametrize("gz", [True, False])
def test_random_access_by_offset(tmp_path, gz):
    path = tmp_path / "r"
    write_records(path, PAYLOADS, gzip=gz)
    reader = RecordReader()
    offs = _offsets(PAYLOADS)
    for i in (3, 0, 2, 1, 3):  # backwards seeks on gzip rewind the stream
        assert reader.read(path, i, offs[i]) == PAYLOADS[i]
    with pytest.raises(DataError, match="length checksum mismatch"):
        reader.read(path, 1, offs[1] + 1)  # not a record boundary
    reader.close()


def test_example_features_round_trip(tmp_path):
    feats = {"ids": [1, -2, 3 << 40], "names": [b"a", "b\u00e9"], "scores": [0.5, 2], "empty": []}
    path = tmp_path / "ex.tfrecord.gz"
    with TFRecordWriter(path) as w:
        w.write(encode_example(feats))
        w.write(encode_example({"only": [7]}))
    got = [f for _, f in read_examples(path)]
    assert got[0] == {"ids": [1, -2, 3 << 40], "names": [b"a", "b\u00e9".encode()], "scores": [0.5, 2.0], "empty": []}
    assert got[1] == {"only": [7]}
    with pytest.raises(TypeError, match="mixes"):
        encode_example({"bad": [1, b"x"]})
    with pytest.raises(DataError, match="record 4: record is not a tf.train.Example"):
        decode_example(b"\xff\xff\xff", path="f", record=4)


@pytest.mark.parametrize("claimed", [MAX_RECORD_BYTES + 1, 1 << 40])
@pytest.mark.parametrize("gz", [False, True])
def test_tfrecord_length_field_beyond_the_bound_is_a_data_error(tmp_path, claimed, gz):
    path = tmp_path / ("a.tfrecord.gz" if gz else "a.tfrecord")
    write_records(path, [b"one", b"two"], gzip=False)
    raw = bytearray(path.read_bytes())
    off = 8 + 4 + 3 + 4  # second record
    header = struct.pack("<Q", claimed)
    raw[off:off + 12] = header + struct.pack("<I", masked_crc32c(header))  # a valid checksum over the lie
    if gz:
        import gzip

        path.write_bytes(gzip.compress(bytes(raw)))
    else:
        path.write_bytes(bytes(raw))
    records = iter_records(path)
    assert next(records).data == b"one"
    with pytest.raises(DataError, match=rf"record 1: the record at byte offset {off} claims {claimed} bytes"):
        next(records)
