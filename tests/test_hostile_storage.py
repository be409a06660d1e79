"""Damaged storage the package itself wrote: TFRecord shards whose length field lies, judge caches
SQLite can no longer read. Each is written with the project's own writer, then corrupted."""

from __future__ import annotations

import sqlite3
import struct

import pytest

from guienv.errors import DataError
from rewards.judge_cache import CachedVerdict, CacheKey, JudgeCache
from tasks.tfrecord import MAX_RECORD_BYTES, iter_records, masked_crc32c, write_records


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


def _key(i: int) -> CacheKey:
    return CacheKey(f"s{i}", '{"type": "click"}', "judge-model", "v1", "ctx")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty-pages"])
def test_unreadable_judge_cache_is_moved_aside_and_rebuilt(tmp_path, damage):
    db = tmp_path / "cache" / "judge.sqlite"
    with JudgeCache(db) as c:
        for i in range(200):
            c.put(_key(i), CachedVerdict(True, 1.0, "yes"))
    data = db.read_bytes()
    if damage == "garbage":
        db.write_bytes(b"this is not a database" * 100)
    elif damage == "truncated":
        db.write_bytes(data[:50])  # the header cut
    else:
        db.write_bytes(data[:100] + b"\xff" * (len(data) - 100))  # header intact, every page damaged
    with pytest.warns(RuntimeWarning, match=r"judge cache .*judge\.sqlite is unreadable .* moved it to .*corrupt-"):
        cache = JudgeCache(db)
    with cache:
        assert cache.get(_key(1)) is None  # a fresh, empty cache
        cache.put(_key(1), CachedVerdict(False, 0.0, "no"))
        assert cache.get(_key(1)) == CachedVerdict(False, 0.0, "no")
    aside = [p for p in db.parent.iterdir() if ".corrupt-" in p.name]
    assert aside, "the damaged file was deleted instead of kept for inspection"
    with JudgeCache(db) as again:  # what was written after the rebuild persists
        assert len(again) == 1


def test_a_locked_cache_is_not_mistaken_for_a_damaged_one(tmp_path):
    db = tmp_path / "judge.sqlite"
    with JudgeCache(db) as c:
        c.put(_key(0), CachedVerdict(True, 1.0, "yes"))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        cache = JudgeCache(db, timeout_s=0.2)  # WAL: reading while another process writes is fine
        assert cache.get(_key(0)) == CachedVerdict(True, 1.0, "yes")
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            cache.put(_key(1), CachedVerdict(True, 1.0, "yes"))  # a busy writer waits, then fails: no rebuild
        cache.close()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert not [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    with JudgeCache(db) as c:
        assert c.get(_key(0)) == CachedVerdict(True, 1.0, "yes")


def _deep_list(depth: int) -> list:
    x: list = []
    for _ in range(depth):
        x = [x]
    return x


def _deep_dict(depth: int) -> dict:
    d: dict = {}
    cur = d
    for _ in range(depth):
        cur["a"] = {}
        cur = cur["a"]
    return d


@pytest.mark.parametrize("field", ["point", "end", "box", "direction", "status", "text", "duration_ms", "type"])
@pytest.mark.parametrize("make", [_deep_list, _deep_dict])
def test_python_built_actions_nested_past_the_recursion_limit_are_invalid_not_a_crash(field, make):
    from guienv.parsing import as_action

    value = make(5000)
    base = {"type": "scroll" if field == "direction" else "finish" if field == "status" else "click",
            "point": [1, 2]}
    action = as_action({**base, field: value})
    assert not action.is_valid and action.reason
    assert len(action.reason) < 400  # the offending value shown shortened
