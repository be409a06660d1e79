"""AndroidControl episodes as a lazy :class:`EpisodeDataset`, and :func:`load_androidcontrol`, the one loader for
the release shards and the UI-S1 / UI-R1 conversions (told apart per file and record).

AndroidControl (Li et al., "On the Effects of Data Scale on UI Control Agents", arXiv 2406.03679;
``google-research/google-research: android_control/README.md``).
"""

from __future__ import annotations

import glob as globlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, overload

from guienv.errors import DataError
from guienv.io import iter_jsonl, read_json
from guienv.types import Episode
from tasks.androidcontrol.common import CandidateMode, OnError, where_reason
from tasks.androidcontrol.release import parse_release_episode
from tasks.androidcontrol.ui_r1 import parse_ui_r1_records
from tasks.androidcontrol.ui_s1 import parse_ui_s1_episode
from tasks.tfrecord import RecordReader, decode_example, iter_records

SPLIT_NAMES = ("train", "validation", "test")
SUBSPLIT_NAMES = ("IDD", "app_unseen", "task_unseen", "category_unseen")
# Shards a directory is searched for; the release names them android_control-00000-of-00020.
SHARD_PATTERNS = ("*tfrecord*", "*.gz", "android_control-*-of-*")
logger = logging.getLogger(__name__)


# -- dataset --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Lazy:
    """Where to re-read one release episode (``lazy=True``)."""

    id: str
    path: str
    index: int
    offset: int
    split: str | None
    subsplits: tuple[str, ...]
    with_elements: bool
    candidate_mode: str
    stamp: tuple[int, int]  # the shard's (size, mtime_ns) when indexed: a rewritten shard is refused


def _stamp(path: str | os.PathLike) -> tuple[int, int]:
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DataError(path, f"cannot stat the shard ({exc.strerror or exc})") from exc
    return st.st_size, st.st_mtime_ns


class _Skips:
    """The errors ``on_error="skip"`` left out, with how many records and episodes they cost."""

    def __init__(self, on_error: OnError):
        self.on_error = on_error
        self.errors: list[DataError] = []
        self.records = self.episodes = 0

    def __call__(self, err: DataError, *, records: int = 1, episodes: int = 1) -> None:
        if self.on_error == "raise":
            raise err
        self.errors.append(err)
        self.records += records
        self.episodes += episodes


class EpisodeDataset(Sequence[Episode]):
    """A sequence of :class:`~guienv.types.Episode`.

    ``skipped`` holds one ``(where, reason)`` pair per record (or unreadable file remainder) left
    out under ``on_error="skip"``, as ``tasks.screenspot`` does; ``where`` names file, record and
    field. ``lost_records``/``lost_episodes`` count what those errors cost (a bad UI-R1 step drops
    its whole episode; an unreadable file remainder counts as one). With ``lazy=True`` release
    episodes are indexed at load time (every record is fully parsed and checked once) and re-read
    from their shard on access; a shard whose size or mtime changed since is a DataError.
    """

    def __init__(
        self,
        entries: Sequence[Episode | _Lazy],
        skipped: Sequence[tuple[str, str]] = (),
        sources: Sequence[str] = (),
        *,
        lost_records: int = 0,
        lost_episodes: int = 0,
    ):
        self._entries = list(entries)
        self.skipped: list[tuple[str, str]] = list(skipped)
        self.sources: list[str] = list(sources)
        self.lost_records, self.lost_episodes = lost_records, lost_episodes
        self._reader = RecordReader()
        self._index = {e.id: i for i, e in enumerate(self._entries)}

    def __len__(self) -> int:
        return len(self._entries)

    @overload
    def __getitem__(self, i: int) -> Episode: ...
    @overload
    def __getitem__(self, i: slice) -> list[Episode]: ...
    def __getitem__(self, i: int | slice) -> Episode | list[Episode]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        entry = self._entries[i]
        return entry if isinstance(entry, Episode) else self._materialize(entry)

    def _materialize(self, ref: _Lazy) -> Episode:
        now = _stamp(ref.path)
        if now != ref.stamp:
            raise DataError(ref.path, f"the shard changed since it was indexed (size, mtime_ns {ref.stamp} -> {now}); "
                            f"episode {ref.id} may no longer be record {ref.index}: load the dataset again",
                            record=ref.index)
        data = self._reader.read(ref.path, ref.index, ref.offset)
        features = decode_example(data, path=ref.path, record=ref.index)
        return parse_release_episode(
            features,
            path=ref.path,
            record=ref.index,
            split=ref.split,
            subsplits=ref.subsplits,
            with_elements=ref.with_elements,
            candidate_mode=ref.candidate_mode,  # type: ignore[arg-type]
        )

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self._entries]

    def index_of(self, episode_id: str | int) -> int:
        try:
            return self._index[str(episode_id)]
        except KeyError:
            raise KeyError(f"no episode with id {episode_id!r}") from None

    def split_of(self, i: int) -> str | None:
        return self._entries[i].split

    def close(self) -> None:
        self._reader.close()

    def __repr__(self) -> str:
        lazy = sum(isinstance(e, _Lazy) for e in self._entries)
        return f"EpisodeDataset({len(self)} episodes, {lazy} lazy, {len(self.skipped)} skipped)"


def _read_id_lists(path: str | os.PathLike, what: str) -> dict[str, list[str]]:
    try:
        obj = read_json(path)
    except DataError as exc:
        raise DataError(path, f"cannot read the {what} file ({exc.detail})") from exc
    if not isinstance(obj, Mapping):
        raise DataError(path, f"the {what} file must be a JSON object of id lists")
    out = {}
    for name, ids in obj.items():
        if not isinstance(ids, list) or not all(isinstance(i, (int, str)) and not isinstance(i, bool) for i in ids):
            raise DataError(path, "must be a list of episode ids", field=str(name))
        out[str(name)] = [str(i) for i in ids]
    return out


def _split_maps(splits: Any, subsplits: Any) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    split_of: dict[str, str] = {}
    if splits is not None:
        for name, ids in _read_id_lists(splits, "splits").items():
            for i in ids:
                if i in split_of and split_of[i] != name:
                    raise DataError(splits, f"episode {i} is in both {split_of[i]!r} and {name!r}", field=name)
                split_of[i] = name
    sub_of: dict[str, tuple[str, ...]] = {}
    if subsplits is not None:
        for name, ids in _read_id_lists(subsplits, "test subsplits").items():
            for i in ids:
                if name not in sub_of.get(i, ()):
                    sub_of[i] = sub_of.get(i, ()) + (name,)
    return split_of, sub_of


def _expand(paths: Any) -> list[Path]:
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted({q for pat in SHARD_PATTERNS for q in p.glob(pat) if q.is_file()})
            if not found:
                raise DataError(p, f"directory holds no shards (looked for {', '.join(SHARD_PATTERNS)})")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif any(c in str(item) for c in "*?["):
            found = sorted(Path(q) for q in globlib.glob(str(item)) if Path(q).is_file())
            if not found:
                raise DataError(item, "glob matches no files")
            out.extend(found)
        else:
            raise DataError(item, "no such file or directory")
    return out


def _json_kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    return {".jsonl": "jsonl", ".json": "json"}.get(suffix)


def _iter_json_source(path: Path) -> Iterator[tuple[Any, Any]]:
    """(record label, parsed object) of a .jsonl (per line) or .json (list items or one object)."""
    if _json_kind(path) == "jsonl":
        # a bad line comes back as its DataError, so on_error="skip" goes on with the next one
        for ln, value in iter_jsonl(path, objects=False, errors="yield"):
            yield f"line {ln}", value
        return
    obj = read_json(path)
    if isinstance(obj, list):
        yield from enumerate(obj)
    else:
        yield 0, obj


def load_androidcontrol(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    splits: str | os.PathLike | None = None,
    subsplits: str | os.PathLike | None = None,
    split: str | None = None,
    subsplit: str | None = None,
    on_error: OnError = "raise",
    with_elements: bool = True,
    candidate_mode: CandidateMode = "interactive",
    image_root: str | os.PathLike | None = None,
    lazy: bool = False,
) -> EpisodeDataset:
    """Load AndroidControl episodes.

    ``paths``: a file, a glob, a directory of shards (``SHARD_PATTERNS``: ``*tfrecord*``, ``*.gz``
    and the release's ``android_control-*-of-*``), or a list of these.
    ``.jsonl``/``.json`` files are read as the UI-S1 or UI-R1 conversion (told apart per record:
    ``steps`` vs ``gt``); anything else as a release shard (gzip or plain TFRecord, by magic).
    ``splits``/``subsplits``: ``splits.json`` / ``test_subsplits.json``; they set
    ``Episode.split`` and ``Episode.subsplit`` (the first subsplit listing the episode; all of them
    in ``extra["subsplits"]``). ``split``/``subsplit`` keep only matching episodes.
    ``on_error="skip"`` leaves out bad records (a framing error ends that file) and lists them in
    ``dataset.skipped`` (``(where, reason)`` pairs; ``lost_records``/``lost_episodes`` count what they
    cost), logging a warning with the counts. A file with no records (an empty shard) is such an
    error too, and a load that ends with no episodes raises a DataError saying why (nothing read,
    everything skipped, or the split filter). ``with_elements=False`` drops the
    accessibility elements after computing candidate boxes (memory). ``image_root``: where the
    JSON conversions' screenshot paths are resolved (default: the JSON file's directory).
    ``lazy=True`` keeps only an index of release episodes and re-reads them on access (memory:
    the test split's PNGs alone are gigabytes). A gzip stream seeks by decompressing, so reading
    lazily in index order costs one pass per shard but random order costs up to a shard per
    episode; ``gunzip`` the shards once (plain TFRecord, detected by magic) for O(1) seeks.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    if split is not None and splits is None:
        raise ValueError("split= needs the splits file (splits=...)")
    if subsplit is not None and subsplits is None:
        raise ValueError("subsplit= needs the test subsplits file (subsplits=...)")
    split_of, sub_of = _split_maps(splits, subsplits)
    files = _expand(paths)
    entries: list[Episode | _Lazy] = []
    skip = _Skips(on_error)
    seen: dict[str, str] = {}
    read = 0  # episodes parsed, before the split filter

    def keep(eid: str) -> bool:
        if split is not None and split_of.get(eid) != split:
            return False
        return subsplit is None or subsplit in sub_of.get(eid, ())

    def add(entry: Episode | _Lazy, source: str, records: int = 1) -> None:
        if entry.id in seen:
            skip(DataError(source, f"duplicate episode id {entry.id} (first seen in {seen[entry.id]})"), records=records)
            return
        seen[entry.id] = source
        entries.append(entry)

    for f in files:
        src = str(f)
        kind = _json_kind(f)
        if kind is None:
            n_records = 0
            try:
                stamp = _stamp(f) if lazy else (0, 0)
                for rec in iter_records(f):
                    n_records += 1
                    try:
                        features = decode_example(rec.data, path=src, record=rec.index)
                        eid_list = features.get("episode_id") or [None]
                        eid = str(eid_list[0])
                        ep = parse_release_episode(
                            features, path=src, record=rec.index, split=split_of.get(eid),
                            subsplits=sub_of.get(eid, ()), with_elements=with_elements, candidate_mode=candidate_mode,
                        )
                    except DataError as e:
                        skip(e)
                        continue
                    read += 1
                    if not keep(ep.id):
                        continue
                    if lazy:
                        add(_Lazy(ep.id, src, rec.index, rec.offset, ep.split, sub_of.get(ep.id, ()),
                                  with_elements, candidate_mode, stamp), src)
                    else:
                        add(ep, src)
                if n_records == 0:  # else the split filter would be blamed for a truncated download
                    skip(DataError(src, f"the shard holds no records ({f.stat().st_size} bytes)"), records=0, episodes=0)
            except DataError as e:  # framing / gzip error: the rest of this file is unreadable
                skip(e)
            continue
        root = Path(image_root) if image_root is not None else f.parent
        try:
            items = list(_iter_json_source(f))
        except DataError as e:
            skip(e)
            continue
        if not items:
            skip(DataError(src, f"the file holds no records ({f.stat().st_size} bytes)"), records=0, episodes=0)
            continue
        r1_records: list[tuple[int, Any]] = []
        for label, obj in items:
            try:
                if isinstance(obj, DataError):
                    raise obj
                if isinstance(obj, Mapping) and "steps" in obj:
                    ep = parse_ui_s1_episode(obj, path=src, record=label, root=root, fallback_id=f"{f.name}[{label}]")
                elif isinstance(obj, Mapping) and "gt" in obj:
                    r1_records.append((label, obj))
                    continue
                else:
                    raise DataError(src, "neither a UI-S1 episode (with 'steps') nor a UI-R1 step (with 'gt')", record=label)
            except DataError as e:
                skip(e)
                continue
            read += 1
            ep = replace(ep, split=split_of.get(ep.id), subsplit=(sub_of.get(ep.id) or (None,))[0])
            ep.extra["subsplits"] = sub_of.get(ep.id, ())
            if keep(ep.id):
                add(ep, src)
        if r1_records:
            for ep in parse_ui_r1_records(r1_records, path=src, root=root, skip=skip):
                read += 1
                ep = replace(ep, split=split_of.get(ep.id), subsplit=(sub_of.get(ep.id) or (None,))[0])
                ep.extra["subsplits"] = sub_of.get(ep.id, ())
                if keep(ep.id):
                    add(ep, src, records=len(ep.steps))
    pairs = [where_reason(e) for e in skip.errors]
    if pairs:
        logger.warning("load_androidcontrol: skipped %d bad record(s) (on_error='skip'), losing %d record(s) and "
                       "%d episode(s); first: %s: %s", len(pairs), skip.records, skip.episodes, *pairs[0])
    if not entries:
        raise DataError(files[0] if len(files) == 1 else f"{len(files)} files ({files[0]}, ...)", _why_empty(
            read, len(pairs), split, subsplit, pairs))
    return EpisodeDataset(entries, pairs, [str(f) for f in files], lost_records=skip.records, lost_episodes=skip.episodes)


def _why_empty(read: int, n_skipped: int, split: str | None, subsplit: str | None, pairs) -> str:
    """Why a load found no episodes: nothing read, everything skipped, or the filter."""
    if read == 0:
        why = f"no episodes: 0 read, {n_skipped} skipped"
        return why + (f" (first: {pairs[0][0]}: {pairs[0][1]})" if pairs else "")
    wanted = " and ".join(f"{k} {v!r}" for k, v in (("split", split), ("subsplit", subsplit)) if v is not None)
    return f"no episodes: {read} read, none in {wanted or 'the files (all duplicates)'}"
