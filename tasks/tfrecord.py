"""TFRecord files without TensorFlow: framing, gzip, and ``tf.train.Example`` features.

A TFRecord file is a sequence of records, each framed as (tensorflow/tensorflow,
``tensorflow/core/lib/io/record_writer.cc`` and ``record_reader.cc``)::

    uint64 length (little endian) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)

with ``masked_crc32c(b) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32)`` over CRC-32C
(Castagnoli). AndroidControl ships its shards as one GZIP stream of such records
(``compression_type='GZIP'``). The reader here streams records one at a time, verifies both
checksums, and raises :class:`~guienv.errors.DataError` naming the file, the record index and the
byte offset (in the uncompressed stream) on truncation, a bad checksum or a broken gzip stream.

Record payloads in AndroidControl are ``tf.train.Example`` protos; their message classes come from
the ``tfrecord`` PyPI package's generated ``example_pb2`` module, loaded on its own so that the
package's ``__init__`` (which imports torch) never runs.
"""

from __future__ import annotations

import gzip as gzip_lib
import importlib.util
import os
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, Any, Literal

import crc32c as _crc32c

from guienv.errors import DataError

Compression = Literal["auto", "gzip", "none"]
GZIP_MAGIC = b"\x1f\x8b"
_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")  # length, masked crc of the length
_FOOTER = struct.Struct("<I")
_GZIP_ERRORS = (gzip_lib.BadGzipFile, EOFError, zlib.error)
# An AndroidControl episode record (all its screenshots) is tens of MB; a length field beyond this
# is damage, and reading it would try to allocate it.
MAX_RECORD_BYTES = 1 << 30


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    crc = _crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class Record:
    """One record: its position in the file (``offset`` counts uncompressed bytes from the start of
    the record's header) and its payload."""

    index: int
    offset: int
    data: bytes


def detect_compression(path: str | os.PathLike) -> Literal["gzip", "none"]:
    """``gzip`` when the file starts with the gzip magic bytes, else ``none``.

    An uncompressed file could only start with ``1f 8b`` if its first record's length were
    ``0x8b1f`` modulo 65536; such a file then fails the length checksum and the error says so.
    """
    with open(path, "rb") as f:
        return "gzip" if f.read(2) == GZIP_MAGIC else "none"


def _resolve(path: str | os.PathLike, compression: Compression) -> Literal["gzip", "none"]:
    if compression == "auto":
        return detect_compression(path)
    if compression not in ("gzip", "none"):
        raise ValueError(f"compression must be 'auto', 'gzip' or 'none', got {compression!r}")
    return compression


def _open(path: str | os.PathLike, compression: Literal["gzip", "none"]) -> IO[bytes]:
    if compression == "gzip":
        return gzip_lib.open(path, "rb")
    return open(path, "rb", buffering=1 << 20)


def _read_exact(f: IO[bytes], n: int, path: Any, index: int, offset: int, what: str) -> bytes:
    try:
        buf = f.read(n)
    except _GZIP_ERRORS as exc:
        raise DataError(path, f"gzip stream is corrupt or truncated while reading the {what} of the "
                        f"record at byte offset {offset} ({exc})", record=index) from exc
    if len(buf) != n:
        raise DataError(path, f"file is truncated: the {what} of the record at byte offset {offset} "
                        f"needs {n} bytes, only {len(buf)} left", record=index)
    return buf


def _read_one(f: IO[bytes], path: Any, index: int, offset: int, check_crc: bool) -> bytes | None:
    """The payload of the record starting at ``offset`` (``f`` positioned there), or ``None`` at a
    clean end of file."""
    try:
        first = f.read(1)
    except _GZIP_ERRORS as exc:
        raise DataError(path, f"gzip stream is corrupt or truncated at byte offset {offset} ({exc})",
                        record=index) from exc
    if not first:
        return None
    header = first + _read_exact(f, _HEADER.size - 1, path, index, offset, "header")
    length, length_crc = _HEADER.unpack(header)
    if check_crc and masked_crc32c(header[:8]) != length_crc:
        raise DataError(path, f"length checksum mismatch in the record at byte offset {offset} "
                        "(corrupt length field or not a TFRecord file)", record=index)
    if length > MAX_RECORD_BYTES:
        raise DataError(path, f"the record at byte offset {offset} claims {length} bytes of data, more than the "
                        f"{MAX_RECORD_BYTES} a record may hold (a corrupt length field)", record=index)
    data = _read_exact(f, length, path, index, offset, "data")
    (data_crc,) = _FOOTER.unpack(_read_exact(f, _FOOTER.size, path, index, offset, "data checksum"))
    if check_crc and masked_crc32c(data) != data_crc:
        raise DataError(path, f"data checksum mismatch in the record at byte offset {offset} "
                        f"({length} bytes of data)", record=index)
    return data


def iter_records(
    path: str | os.PathLike, *, compression: Compression = "auto", check_crc: bool = True
) -> Iterator[Record]:
    """Stream the records of one TFRecord file (gzip or plain), verifying both checksums."""
    try:
        f = _open(path, _resolve(path, compression))
    except OSError as exc:
        raise DataError(path, f"cannot open TFRecord file ({exc})") from exc
    with f:
        index = offset = 0
        while True:
            data = _read_one(f, path, index, offset, check_crc)
            if data is None:
                return
            yield Record(index, offset, data)
            offset += _HEADER.size + len(data) + _FOOTER.size
            index += 1


class RecordReader:
    """Random access to records by ``(index, offset)`` as reported by :func:`iter_records`.

    Keeps one open handle per file so reading records in file order costs one pass (gzip streams
    can only seek by decompressing). Handles are not pickled; call :meth:`close` when done.
    """

    def __init__(self, compression: Compression = "auto", check_crc: bool = True):
        self.compression = compression
        self.check_crc = check_crc
        self._handles: dict[str, IO[bytes]] = {}

    def read(self, path: str | os.PathLike, index: int, offset: int) -> bytes:
        key = str(path)
        f = self._handles.get(key)
        if f is None:
            if len(self._handles) >= 4:
                self.close()
            f = self._handles[key] = _open(key, _resolve(key, self.compression))
        try:
            f.seek(offset)
        except _GZIP_ERRORS as exc:
            raise DataError(path, f"gzip stream is corrupt or truncated before byte offset {offset} "
                            f"({exc})", record=index) from exc
        data = _read_one(f, path, index, offset, self.check_crc)
        if data is None:
            raise DataError(path, f"no record at byte offset {offset}: the file changed since it was "
                            "indexed", record=index)
        return data

    def close(self) -> None:
        for f in self._handles.values():
            f.close()
        self._handles.clear()

    def __getstate__(self) -> dict[str, Any]:
        return {"compression": self.compression, "check_crc": self.check_crc, "_handles": {}}


def frame_record(data: bytes) -> bytes:
    """``data`` framed as one TFRecord record."""
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data))


class TFRecordWriter:
    """Write records to ``path``; a gzip stream (AndroidControl's ``GZIP``) when ``gzip=True``.

    Use as a context manager. The gzip header's mtime is fixed at 0 so equal content gives
    byte-identical files.
    """

    def __init__(self, path: str | os.PathLike, *, gzip: bool = True, compresslevel: int = 6):
        self.path = Path(path)
        self._raw = open(self.path, "wb")
        self._f: IO[bytes] = (
            gzip_lib.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=compresslevel, mtime=0)
            if gzip
            else self._raw
        )
        self.count = 0

    def write(self, data: bytes) -> None:
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"a record is bytes, got {type(data).__name__}")
        self._f.write(frame_record(bytes(data)))
        self.count += 1

    def close(self) -> None:
        if self._f is not self._raw:
            self._f.close()
        self._raw.close()

    def __enter__(self) -> TFRecordWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()



def write_records(path: str | os.PathLike, records: Iterable[bytes], *, gzip: bool = True) -> int:
    """Write ``records`` to a new TFRecord file; returns how many were written."""
    with TFRecordWriter(path, gzip=gzip) as w:
        for r in records:
            w.write(r)
        return w.count


# -- tf.train.Example ------------------------------------------------------------------------
def example_pb2() -> ModuleType:
    """The generated ``tf.train.Example`` module: TensorFlow's when it is already imported (two
    copies of the same proto names cannot share protobuf's default pool), else the ``tfrecord``
    package's, loaded without running that package's ``__init__``."""
    for name in ("tensorflow.core.example.example_pb2", "tfrecord.example_pb2"):
        if name in sys.modules:
            return sys.modules[name]
    spec = importlib.util.find_spec("tfrecord")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("reading TFRecord examples needs the 'tfrecord' package (pip install tfrecord)")
    location = Path(next(iter(spec.submodule_search_locations))) / "example_pb2.py"
    sub = importlib.util.spec_from_file_location("tfrecord.example_pb2", location)
    if sub is None or sub.loader is None:
        raise ImportError(f"cannot load {location}")
    module = importlib.util.module_from_spec(sub)
    sys.modules["tfrecord.example_pb2"] = module
    try:
        sub.loader.exec_module(module)
    except BaseException:
        del sys.modules["tfrecord.example_pb2"]
        raise
    return module


FeatureValue = list[bytes] | list[int] | list[float]


def decode_example(data: bytes, *, path: Any = "<bytes>", record: Any = None) -> dict[str, FeatureValue]:
    """A serialized ``tf.train.Example`` as ``{name: list of values}`` (bytes, int or float)."""
    from google.protobuf.message import DecodeError

    pb = example_pb2()
    try:
        ex = pb.Example.FromString(data)
    except DecodeError as exc:
        raise DataError(path, f"record is not a tf.train.Example ({exc})", record=record) from exc
    out: dict[str, FeatureValue] = {}
    for name, feature in ex.features.feature.items():
        kind = feature.WhichOneof("kind")
        out[name] = list(getattr(feature, kind).value) if kind else []
    return out


def encode_example(features: Mapping[str, Sequence[Any]]) -> bytes:
    """Serialize ``{name: values}`` as a ``tf.train.Example``.

    The list type follows the values: ``bytes``/``str`` (UTF-8) -> ``bytes_list``, ``int`` (and
    ``bool``) -> ``int64_list``, ``float`` -> ``float_list``. An empty list becomes an empty
    ``bytes_list``. Mixed lists raise ``TypeError``.
    """
    pb = example_pb2()
    ex = pb.Example()
    for name, values in features.items():
        values = list(values)
        feature = ex.features.feature[name]
        if all(isinstance(v, (bytes, bytearray, str)) for v in values):
            feature.bytes_list.value.extend(v.encode("utf-8") if isinstance(v, str) else bytes(v) for v in values)
        elif all(isinstance(v, (int,)) for v in values):
            feature.int64_list.value.extend(int(v) for v in values)
        elif all(isinstance(v, (int, float)) for v in values):
            feature.float_list.value.extend(float(v) for v in values)
        else:
            raise TypeError(f"feature {name!r} mixes value types: {sorted({type(v).__name__ for v in values})}")
    return ex.SerializeToString()


def read_examples(
    path: str | os.PathLike, *, compression: Compression = "auto"
) -> Iterator[tuple[Record, dict[str, FeatureValue]]]:
    """Stream ``(record, features)`` pairs of a TFRecord file of ``tf.train.Example`` protos."""
    for rec in iter_records(path, compression=compression):
        yield rec, decode_example(rec.data, path=path, record=rec.index)


__all__ = [
    "GZIP_MAGIC",
    "Record",
    "RecordReader",
    "TFRecordWriter",
    "decode_example",
    "detect_compression",
    "encode_example",
    "example_pb2",
    "frame_record",
    "iter_records",
    "masked_crc32c",
    "read_examples",
    "write_records",
]
