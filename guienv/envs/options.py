"""The one check of ``reset(options=...)``: known keys, integer values in range."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

import numpy as np

from guienv.errors import ResetOptionError

__all__ = ["int_option", "reset_options"]


def reset_options(options: Mapping[str, Any] | None, known: Collection[str] | None = None) -> dict[str, Any]:
    """``options`` as a dict (``None`` -> ``{}``); with ``known``, an unknown key raises
    :class:`~guienv.errors.ResetOptionError` (a typo must not silently serve another episode)."""
    out = dict(options or {})
    if known is not None:
        unknown = sorted(set(out) - set(known))
        if unknown:
            raise ResetOptionError(f"unknown reset option(s) {unknown}; known: {sorted(known)}")
    return out


def int_option(options: Mapping[str, Any], key: str, low: int = 0, stop: int | None = None) -> int | None:
    """``options[key]`` as an int in ``[low, stop)`` (``stop=None``: no upper bound); None when
    absent or None. Booleans, floats and strings raise :class:`~guienv.errors.ResetOptionError`."""
    v = options.get(key)
    if v is None:
        return None
    rng = f"in [{low}, {stop})" if stop is not None else f">= {low}"
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise ResetOptionError(f"options[{key!r}] must be an integer {rng}, got {v!r}")
    if v < low or (stop is not None and v >= stop):
        raise ResetOptionError(f"options[{key!r}] = {v} is out of range (must be {rng})")
    return int(v)
