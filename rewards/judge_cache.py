"""Persistent cache of judge verdicts (SQLite, stdlib only).

GRPO samples many rollouts per task and the same (screen, action) pair comes back again and again;
a judge verdict is paid for once (the pattern of public GUI RL judges such as ZeroGUI, arXiv
2505.23762, and DigiRL, arXiv 2406.11896). The key is ``(sample id, normalised action JSON, judge model id, prompt
version, context digest)``; the context digest covers the goal, step instruction and history text
so that two different contexts sharing a sample id can never share a verdict.

One connection per cache object, guarded by a lock (``check_same_thread=False``), WAL journal so
other processes can read while one writes, and a busy timeout so concurrent writers wait instead
of failing. Only real verdicts are stored: fallbacks and unparsable answers are not.

A cache file SQLite cannot read (truncated, overwritten, not a database) is moved aside to
``<path>.corrupt-<time>`` with a warning naming both paths, and a fresh cache starts in its place:
losing cached verdicts costs judge calls, never a training run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
import warnings
from dataclasses import dataclass

_SCHEMA = """
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    sample_id TEXT NOT NULL,
    action TEXT NOT NULL,
    model TEXT NOT NULL,
    prompt_version TEXT NOT NULL,
    context TEXT NOT NULL,
    verdict INTEGER,
    score REAL NOT NULL,
    raw TEXT NOT NULL,
    created REAL NOT NULL
)
"""


@dataclass(frozen=True)
class CacheKey:
    sample_id: str
    action: str  # normalised action JSON
    model: str
    prompt_version: str
    context: str = ""  # digest of goal / instruction / history

    @property
    def digest(self) -> str:
        blob = json.dumps(
            [self.sample_id, self.action, self.model, self.prompt_version, self.context],
            ensure_ascii=False,
            separators=(",", ":"),
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedVerdict:
    verdict: bool | None
    score: float
    raw: str


class JudgeCache:
    """``get``/``put`` verdicts in the SQLite file ``path`` (created with its parent folder)."""

    def __init__(self, path: str | os.PathLike, timeout_s: float = 30.0):
        self.path = os.fspath(path)
        self.timeout_s = timeout_s
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = self._connect()
        except sqlite3.DatabaseError as exc:
            if _busy(exc):
                raise
            self._conn = self._start_fresh(exc)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout_s, check_same_thread=False, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()
        except BaseException:
            conn.close()
            raise
        return conn

    def _start_fresh(self, exc: Exception) -> sqlite3.Connection:
        """Move an unreadable cache file (and its WAL/SHM files) aside and open a new one."""
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suffix):
                os.replace(self.path + suffix, aside + suffix)
        warnings.warn(f"judge cache {self.path} is unreadable ({exc}); moved it to {aside} and started a fresh cache",
                      RuntimeWarning, stacklevel=3)
        try:
            return self._connect()
        except sqlite3.DatabaseError as again:
            raise sqlite3.DatabaseError(f"judge cache {self.path}: cannot create a fresh cache ({again})") from again

    def _run(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                if _busy(exc):
                    raise sqlite3.OperationalError(f"judge cache {self.path}: {exc}") from exc
                # corruption found after opening (a damaged page): same recovery, then retry once
                self._conn.close()
                self._conn = self._start_fresh(exc)
                return self._conn.execute(sql, args).fetchall()

    def get(self, key: CacheKey) -> CachedVerdict | None:
        rows = self._run("SELECT verdict, score, raw FROM verdicts WHERE key = ?", (key.digest,))
        row = rows[0] if rows else None
        if row is None:
            return None
        verdict = None if row[0] is None else bool(row[0])
        return CachedVerdict(verdict, float(row[1]), row[2])

    def put(self, key: CacheKey, value: CachedVerdict) -> None:
        verdict = None if value.verdict is None else int(value.verdict)
        self._run(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.digest, key.sample_id, key.action, key.model, key.prompt_version, key.context,
                verdict, float(value.score), value.raw, time.time(),
            ),
        )

    def __len__(self) -> int:
        return int(self._run("SELECT COUNT(*) FROM verdicts")[0][0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _busy(exc: Exception) -> bool:
    """Lock contention (another writer), not damage: never a reason to drop the cache."""
    msg = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in msg or "busy" in msg)
