"""Process-group setup for ``guienv train`` under torchrun / accelerate launch, and the wrapper
(DDP or FSDP2) the training forward and backward run through."""

from __future__ import annotations

import os

__all__ = ["barrier", "init_distributed", "wrap_distributed"]


def init_distributed(mode: str, device: str | None):
    """DistInfo from the launcher's environment (torchrun / accelerate launch set RANK,
    WORLD_SIZE, LOCAL_RANK, MASTER_ADDR/PORT); initialises the process group when needed."""
    import torch

    from agents.distributed import DistInfo

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if mode == "none" or world == 1:
        dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
        return DistInfo(0, 1, 0, dev)
    cuda = torch.cuda.is_available() and (device is None or device.startswith("cuda"))
    dev = f"cuda:{local}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local)
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if cuda else "gloo")
    return DistInfo(rank, world, local, dev)


def barrier(dist) -> None:
    """Wait for every rank (a no-op in a single process)."""
    if dist.active:
        import torch

        torch.distributed.barrier()


def wrap_distributed(model, mode: str, dist):
    """The module forward/backward runs through: DDP, FSDP2 (``fully_shard``) or the model."""
    import torch

    if not dist.active or mode == "none":
        return model
    if mode == "fsdp":
        from torch.distributed.fsdp import fully_shard

        # One unit per decoder/vision block, one for the vision tower's own parameters (patch
        # embedding, merger: generate may call the tower outside the root forward), then the root
        # (tied embeddings and head, final norm).
        for mod in model.modules():
            if type(mod).__name__.endswith(("DecoderLayer", "VisionBlock")):
                fully_shard(mod)
        for name, mod in model.named_modules():
            if name.endswith("visual"):
                fully_shard(mod)
        fully_shard(model)
        # FSDP2 makes the first unit that runs the root: run the real root once (text only).
        with torch.no_grad():
            model(input_ids=torch.zeros((1, 1), dtype=torch.long, device=dist.device), use_cache=False)
        model.reshard()  # the root keeps its parameters unsharded after forward; the optimizer needs the shards
        return model
    ids = [dist.local_rank] if str(dist.device).startswith("cuda") else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
