"""Persistent cache of judge verdicts (SQLite, stdlib only).

GRPO samples many rollouts per task and the same (screen, action) pair comes back again and again;
a judge verdict is paid for once (the pattern of public GUI RL judges such as ZeroGUI, arXiv
2505.23762, and DigiRL, arXiv 2406.11896). The key is ``(sample id, normalised action JSON, judge model id, prompt
version, context digest)``; the context digest covers the goal, step instruction and history text
so that two different contexts sharing a sample id can never share a verdict.

One connection per cache object, guarded by a lock (``check_same_thread=False``), WAL journal so
other processes can read while one writes, and a busy timeout so concurrent writers wait instead
of failing. Only real verdicts are stored: fallbacks and unparsable answers are not.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
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
        parent = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(parent, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(_SCHEMA)

    def get(self, key: CacheKey) -> CachedVerdict | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT verdict, score, raw FROM verdicts WHERE key = ?", (key.digest,)
            ).fetchone()
        if row is None:
            return None
        verdict = None if row[0] is None else bool(row[0])
        return CachedVerdict(verdict, float(row[1]), row[2])

    def put(self, key: CacheKey, value: CachedVerdict) -> None:
        verdict = None if value.verdict is None else int(value.verdict)
        with self._lock:
            self._conn.execute(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key.digest, key.sample_id, key.action, key.model, key.prompt_version, key.context,
                    verdict, float(value.score), value.raw, time.time(),
                ),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
