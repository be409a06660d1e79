"""Judge caches SQLite can no longer read are moved aside and rebuilt; a locked one is not damaged.
Each cache is written by the project's own JudgeCache, then corrupted."""

from __future__ import annotations

import sqlite3

import pytest

from rewards.judge_cache import CachedVerdict, CacheKey, JudgeCache


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
