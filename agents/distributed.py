"""The process group as the trainers see it: rank, world size, device and the collectives they use."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"

    @property
    def active(self) -> bool:
        import torch

        return self.world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def all_reduce_sum(self, values: Sequence[float]) -> list[float]:
        import torch

        t = torch.tensor([float(v) for v in values], dtype=torch.float64)
        if self.active:
            backend = torch.distributed.get_backend()
            t = t.to(self.device if backend == "nccl" else "cpu")
            torch.distributed.all_reduce(t)
        return t.cpu().tolist()

    def all_gather(self, obj: Any) -> list[Any]:
        import torch

        if not self.active:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def shard(self, n: int) -> tuple[int, int]:
        """Contiguous ``[lo, hi)`` slice of ``n`` items for this rank (sizes differ by at most 1)."""
        base, extra = divmod(n, self.world)
        lo = self.rank * base + min(self.rank, extra)
        return lo, lo + base + (1 if self.rank < extra else 0)
