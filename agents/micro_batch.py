"""Gradient accumulation over micro-batches, with one gradient all-reduce per optimizer step.

Both trainers (GRPO and the SFT warm-up) split a rank's rows into micro-batches and call
``backward`` on each. Under DDP every ``backward`` would all-reduce the gradients; only the last
micro-batch's needs to (``DistributedDataParallel.no_sync`` skips the others). FSDP2 (``fully_shard``)
has no ``no_sync``: its module's ``set_requires_gradient_sync(False)`` defers the reduce-scatter
until it is switched back on for the last micro-batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


def micro_batches(n_rows: int, size: int) -> list[list[int]]:
    """Row indices ``0..n_rows-1`` in consecutive chunks of at most ``size``."""
    if size < 1:
        raise ValueError(f"micro-batch size must be >= 1, got {size}")
    return [list(range(i, min(i + size, n_rows))) for i in range(0, n_rows, size)]


@contextlib.contextmanager
def gradient_sync(model: Any, last: bool) -> Iterator[None]:
    """Context for one micro-batch's forward/backward through ``model`` (plain module, DDP or FSDP2
    wrapper): gradients are synchronised across ranks only when ``last`` is true."""
    if hasattr(model, "no_sync"):  # DDP
        with contextlib.nullcontext() if last else model.no_sync():
            yield
        return
    if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
        model.set_requires_gradient_sync(last)
    yield
