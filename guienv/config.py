"""One way to load configuration: dataclasses from YAML mappings, checked on the way in.

Every config class in guienv (training, rewards, judge, agents, envs, generators) is a plain
dataclass with defaults; this module turns a mapping (usually parsed YAML) into one:

* unknown keys are errors that name the file and the dotted key (``grpo.lr``), with the known keys;
* values are checked against the field's annotation (``int``, ``float``, ``bool``, ``str``,
  ``Literal[...]``, ``Optional``, unions, ``tuple[...]``/``list[...]``, mappings, enums and nested
  dataclasses); YAML 1.1 reads ``1e-6`` as a string, so numeric strings are accepted for floats;
* ``a.b=value`` overrides (the value parsed as YAML) apply before checking;
* range checks stay in each class's ``__post_init__``; their ``ValueError`` is re-raised as a
  :class:`~guienv.errors.DataError` naming the file and the block (a :class:`ConfigValueError`
  names the dotted key itself).

    cfg = load_yaml(TrainConfig, "configs/train_default.yaml", overrides=["train.steps=10"])
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from guienv.errors import DataError
from guienv.frames import QWEN_FACTOR

__all__ = ["ConfigValueError", "apply_override", "check_pixel_range", "config_to_dict", "load_config", "load_yaml", "read_yaml"]

T = TypeVar("T")
_MISSING = object()


class ConfigValueError(ValueError):
    """A value out of range, raised by a config class's ``__post_init__`` with the key (relative
    to the class, e.g. ``sft.steps`` or ``min_pixels``); :func:`load_config` re-raises it as a
    DataError naming the file and the full dotted key."""

    def __init__(self, key: str, message: str):
        self.key, self.message = key, message
        super().__init__(f"{key}: {message}")


def read_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML file that must hold a mapping (empty file: ``{}``)."""
    import yaml

    p = Path(path)
    if p.is_dir():
        raise DataError(path, "is a directory, not a YAML config file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DataError(path, f"cannot read config ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise DataError(path, f"not UTF-8 text ({exc})") from exc
    except yaml.YAMLError as exc:
        raise DataError(path, f"not valid YAML ({exc})") from exc
    except RecursionError:
        raise DataError(path, "YAML nested too deeply") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DataError(path, f"a config file must hold a mapping, got {type(data).__name__}")
    return data


def apply_override(data: dict, item: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to the nested mapping ``data``."""
    import yaml

    if "=" not in item:
        raise DataError("<override>", f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    parts = [p.strip() for p in key.strip().split(".")]
    if not all(parts):
        raise DataError("<override>", f"override {item!r} has an empty key")
    d = data
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise DataError("<override>", f"override {item!r}: {p!r} is not a block", field=key)
    try:
        d[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise DataError("<override>", f"override {item!r}: value is not valid YAML ({exc})", field=key) from None


def load_yaml(cls: type[T], path: str | os.PathLike, overrides: Sequence[str] = ()) -> T:
    """``cls`` built from the YAML file at ``path`` after the ``key=value`` overrides."""
    data = read_yaml(path)
    for item in overrides:
        apply_override(data, item)
    return load_config(cls, data, str(path))


def load_config(cls: type[T], data: Mapping[str, Any] | None, where: str = "<config>", prefix: str = "") -> T:
    """``cls`` (a dataclass) from ``data``, every key and value checked (see the module docstring).

    ``where`` names the source (a file path) in errors; ``prefix`` is the dotted path of this
    block inside it (``"grpo"``), so an error reads ``config.yaml: grpo.lr: must be a number``.
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"load_config needs a dataclass, got {cls!r}")
    label = prefix or "config"
    if data is None:
        data = {}
    if isinstance(data, cls):
        return data  # type: ignore[return-value]
    if not isinstance(data, Mapping):
        raise DataError(where, f"{label} must be a mapping, got {type(data).__name__}", field=prefix or None)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    bad_keys = [k for k in data if not isinstance(k, str)]
    if bad_keys:
        raise DataError(where, f"{label}: keys must be strings, got {bad_keys[0]!r}", field=prefix or None)
    unknown = sorted(set(data) - set(known))
    if unknown:
        key = _join(prefix, unknown[0])
        raise DataError(where, f"unknown key {key!r} (known in {label}: {', '.join(sorted(known))})", field=key)
    hints = typing.get_type_hints(cls)
    kwargs = {name: _check(hints.get(name, Any), value, where, _join(prefix, name)) for name, value in data.items()}
    try:
        return cls(**kwargs)
    except ConfigValueError as exc:
        key = _join(prefix, exc.key)
        raise DataError(where, exc.message, field=key) from None
    except (TypeError, ValueError) as exc:
        if isinstance(exc, DataError):
            raise
        raise DataError(where, f"{label}: {exc}", field=prefix or None) from exc


def check_pixel_range(min_pixels: Any, max_pixels: Any, keys: tuple[str, str] = ("min_pixels", "max_pixels")) -> None:
    """:class:`ConfigValueError` naming the option (``keys``) unless ``0 <= min_pixels <= max_pixels`` and
    ``max_pixels`` holds at least one 28x28 patch: smart resize cannot honour smaller bounds, and
    every resized-frame prediction would be scored wrong instead of the run failing up front."""
    lo, hi = keys
    for key, v in ((lo, min_pixels), (hi, max_pixels)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise ConfigValueError(key, f"must be an integer, got {v!r}")
    if max_pixels is not None and max_pixels < QWEN_FACTOR**2:
        raise ConfigValueError(hi, f"must be at least {QWEN_FACTOR**2} (one {QWEN_FACTOR}x{QWEN_FACTOR} patch), got {max_pixels}")
    if min_pixels is not None and min_pixels < 0:
        raise ConfigValueError(lo, f"must be >= 0, got {min_pixels}")
    if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
        raise ConfigValueError(lo, f"({min_pixels}) must not exceed {hi} ({max_pixels})")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as plain JSON/YAML-safe data (tuples become lists, enums their values)."""
    def plain(v: Any) -> Any:
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, Path):
            return str(v)
        raise TypeError(f"cannot serialise {type(v).__name__}")

    return json.loads(json.dumps(dataclasses.asdict(cfg), default=plain))


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _fail(where: str, key: str, what: str, value: Any) -> DataError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return DataError(where, f"{key}: must be {what}, got {shown}", field=key)


def _check(tp: Any, value: Any, where: str, key: str) -> Any:
    """``value`` checked (and lightly coerced) against the annotation ``tp``."""
    if tp is Any or tp is object:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        errors = []
        for arm in args:
            if arm is type(None):
                continue
            try:
                return _check(arm, value, where, key)
            except DataError as exc:
                errors.append(exc)
        names = " or ".join(_name(a) for a in args if a is not type(None))
        if len(errors) == 1:
            raise errors[0]
        raise _fail(where, key, names, value)
    if origin is typing.Literal:
        if value in args and not (isinstance(value, bool) and not any(isinstance(a, bool) for a in args)):
            return value
        raise _fail(where, key, "one of " + ", ".join(repr(a) for a in args), value)
    if tp is type(None):
        if value is None:
            return None
        raise _fail(where, key, "null", value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return load_config(tp, value, where, key)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        if isinstance(value, tp):
            return value
        try:
            return tp(value)
        except ValueError:
            raise _fail(where, key, "one of " + ", ".join(repr(m.value) for m in tp), value) from None
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _fail(where, key, "true or false", value)
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _fail(where, key, "an integer", value)
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise _fail(where, key, "a number", value)
    if tp is str:
        if isinstance(value, str):
            return value
        raise _fail(where, key, "a string", value)
    if tp is Path or tp is os.PathLike:
        if isinstance(value, (str, os.PathLike)):
            return Path(value) if tp is Path else value
        raise _fail(where, key, "a path", value)
    if origin in (tuple, list, typing.Sequence) or tp in (tuple, list) or origin is Sequence:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise _fail(where, key, "a list", value)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise _fail(where, key, f"a list of {len(args)} items", value)
            items = [_check(a, v, where, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value))]
        else:
            arm = args[0] if args else Any
            items = [_check(arm, v, where, f"{key}[{i}]") for i, v in enumerate(value)]
        return list(items) if (origin is list or tp is list) else tuple(items)
    if origin in (dict, Mapping, typing.Mapping) or tp in (dict, Mapping) or origin is Mapping:
        if not isinstance(value, Mapping):
            raise _fail(where, key, "a mapping", value)
        vt = args[1] if len(args) == 2 else Any
        return {k: _check(vt, v, where, f"{key}.{k}") for k, v in value.items()}
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise _fail(where, key, _name(tp), value)
    return value  # annotations this loader does not model (callables, protocols) pass through


def _name(tp: Any) -> str:
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false"}.get(tp, getattr(tp, "__name__", str(tp)))
