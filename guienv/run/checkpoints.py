"""``DIR/checkpoints/step-NNNNNN/`` of ``guienv train``: model (HF folder or peft adapter),
optimizer (one shard per rank under FSDP), scheduler, RNG states per rank and ``state.json``
(written last: it marks the folder complete). Resuming from one continues the run exactly."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from guienv.errors import DataError
from guienv.run.distributed import barrier

__all__ = ["checkpoint_dir", "latest_checkpoint", "load_optimizer", "load_rng", "load_scheduler", "save_checkpoint", "save_model"]


def checkpoint_dir(out: Path, step: int) -> Path:
    """Where the checkpoint of global step ``step`` lives."""
    return out / "checkpoints" / f"step-{step:06d}"


def latest_checkpoint(out: Path) -> Path | None:
    """The newest complete checkpoint (its ``state.json`` written) of the run in ``out``, or None."""
    root = out / "checkpoints"
    if not root.is_dir():
        return None
    done = sorted(p for p in root.iterdir() if p.is_dir() and p.name.startswith("step-") and (p / "state.json").exists())
    return done[-1] if done else None


def save_model(policy, path: Path, fsdp: bool, dist) -> None:
    """An HF folder (or peft adapter folder) with tokenizer and image processor. Under FSDP the
    full state dict is gathered (collective, offloaded to CPU) and rank 0 writes it through a
    meta-device copy of the model, so the files use the same ``save_pretrained`` key layout as an
    unsharded run."""
    model = policy.model
    if fsdp:
        import torch
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        sd = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        if dist.is_main:
            with torch.device("meta"):
                model = type(model)(model.config)
            model.load_state_dict(sd, assign=True)
            model.tie_weights()
    if dist.is_main:
        path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(path)
        policy.tokenizer.save_pretrained(path)
        policy.image_processor.save_pretrained(path)


def save_checkpoint(out: Path, step: int, policy, optimizer, scheduler, state: dict, dist, fsdp: bool, keep: int) -> Path:
    import torch

    final = checkpoint_dir(out, step)
    tmp = final.with_name(final.name + ".tmp")
    if dist.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier(dist)
    save_model(policy, tmp / "model", fsdp, dist)
    if fsdp:  # each rank keeps the optimizer state of its own shards (resume needs the same world size)
        torch.save(_to_local(optimizer.state_dict()), tmp / f"optimizer-rank{dist.rank}.pt")
    elif dist.is_main:
        torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    if dist.is_main:
        if scheduler is not None:
            torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    rng = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / f"rng-rank{dist.rank}.pt")
    barrier(dist)
    if dist.is_main:
        (tmp / "state.json").write_text(json.dumps(state))  # written last: marks the folder complete
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        old = sorted(p for p in (out / "checkpoints").iterdir() if p.is_dir() and p.name.startswith("step-") and not p.name.endswith(".tmp"))
        for p in old[:-keep]:
            shutil.rmtree(p, ignore_errors=True)
    barrier(dist)
    return final


def _to_local(obj: Any) -> Any:
    from torch.distributed.tensor import DTensor

    if isinstance(obj, DTensor):
        return obj.to_local().detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_local(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_local(v) for v in obj]
    return obj


def load_optimizer(optimizer, ckpt: Path, dist, fsdp: bool) -> None:
    """Restore the optimizer; under FSDP each rank reads its shard's state and re-wraps it as
    DTensors laid out like the parameters."""
    import torch

    if not fsdp:
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location=dist.device, weights_only=False))
        return
    from torch.distributed.tensor import DTensor

    f = ckpt / f"optimizer-rank{dist.rank}.pt"
    if not f.exists():
        raise DataError(ckpt, f"no optimizer shard for rank {dist.rank} (FSDP resumes need the same world size)")
    optimizer.load_state_dict(torch.load(f, map_location=dist.device, weights_only=False))
    for p, st in optimizer.state.items():
        if isinstance(p, DTensor):
            for k, v in st.items():
                if torch.is_tensor(v) and not isinstance(v, DTensor) and v.shape == p.to_local().shape and v.dim() > 0:
                    st[k] = DTensor.from_local(v.to(p.to_local().device), p.device_mesh, p.placements, run_check=False)


def load_scheduler(scheduler, ckpt: Path) -> None:
    """Restore the learning-rate schedule (checkpoints without one keep the fresh schedule)."""
    import torch

    if scheduler is not None and (ckpt / "scheduler.pt").exists():
        scheduler.load_state_dict(torch.load(ckpt / "scheduler.pt", weights_only=False))


def load_rng(ckpt: Path, rank: int) -> None:
    import torch

    f = ckpt / f"rng-rank{rank}.pt"
    if not f.exists():
        raise DataError(ckpt, f"no RNG state for rank {rank} (was the run resumed with another world size?)")
    rng = torch.load(f, weights_only=False)
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
