"""``DIR/checkpoints/step-NNNNNN/`` of ``guienv train``: model (HF folder or peft adapter),
optimizer (one shard per rank under FSDP), scheduler, RNG states per rank and ``state.json``
and ``complete.json`` (written last: the size of every other file). A checkpoint is written into
``step-NNNNNN.tmp/`` and renamed when complete; resume takes the newest checkpoint whose files all
match ``complete.json`` (a truncated or missing file, an unreadable ``state.json``) and warns about
each newer broken one it skips. Resuming from one continues the run exactly."""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from guienv.errors import DataError
from guienv.run.distributed import barrier

__all__ = ["CheckpointSaveError", "check_checkpoint", "checkpoint_dir", "latest_checkpoint", "load_optimizer",
           "load_rng", "load_scheduler", "prepare_out", "read_state", "save_checkpoint", "save_model", "seed_all"]

# Outputs of an earlier run that --no-resume removes (checkpoints/ and tb/ too).
RUN_FILES = ("metrics.jsonl", "pass_rates.json", "eval_before.json", "eval_after_sft.json", "demonstrations.json")

MANIFEST = "complete.json"
# Errors of a write that ran out of room: ENOSPC, or EFBIG/EDQUOT (a file-size limit, a quota).
_FULL_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
# How torch / safetensors report a failed write (their errors keep no errno).
_FULL_TEXT = ("no space left", "file too large", "quota exceeded", "unexpected pos", "file write failed",
              "filetoolarge", "storagefull")


class CheckpointSaveError(OSError):
    """A checkpoint could not be written (the message names its folder); nothing of it is left
    for resume to pick. ``errno`` is ENOSPC when the disk (or a size limit or quota) was full."""


def checkpoint_dir(out: Path, step: int) -> Path:
    """Where the checkpoint of global step ``step`` lives."""
    return out / "checkpoints" / f"step-{step:06d}"


def _is_step_dir(p: Path) -> bool:
    return p.is_dir() and p.name.startswith("step-") and p.name[5:].isdigit()  # never step-N.tmp


def check_checkpoint(ckpt: Path) -> str | None:
    """Why ``ckpt`` can't be resumed from (a missing or truncated file, an unreadable
    ``state.json``), or None when every file matches its ``complete.json``."""
    try:
        manifest = json.loads((ckpt / MANIFEST).read_text(encoding="utf-8"))
        files = manifest["files"]
    except FileNotFoundError:
        return f"no {MANIFEST} (the save did not finish)"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"unreadable {MANIFEST} ({exc})"
    if not isinstance(files, dict) or "state.json" not in files:
        return f"{MANIFEST} lists no state.json"
    for rel, size in sorted(files.items()):
        f = ckpt / rel
        try:
            have = f.stat().st_size
        except OSError:
            return f"{rel} is missing"
        if have != size:
            return f"{rel} has {have} bytes, {size} were written (truncated or changed)"
    try:
        read_state(ckpt)
    except DataError as exc:
        return exc.detail
    return None


def latest_checkpoint(out: Path) -> Path | None:
    """The newest valid checkpoint (:func:`check_checkpoint`) of the run in ``out``, or None;
    each newer broken one is skipped with a warning naming its path and what is wrong."""
    root = out / "checkpoints"
    if not root.is_dir():
        return None
    for p in sorted((p for p in root.iterdir() if _is_step_dir(p)), reverse=True):
        problem = check_checkpoint(p)
        if problem is None:
            return p
        warnings.warn(f"skipping broken checkpoint {p}: {problem}; resuming from an older one", stacklevel=2)
    return None


def read_state(ckpt: Path) -> dict[str, Any]:
    """``ckpt/state.json`` (the loop state: step, phase, samplers); DataError naming it if unreadable."""
    f = ckpt / "state.json"
    try:
        state = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f, f"unreadable checkpoint state ({exc})") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise DataError(f, "checkpoint state without an integer 'step'", field="step")
    return state


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
        if getattr(policy, "image_processor", None) is not None:  # text policies have none
            policy.image_processor.save_pretrained(path)


def save_checkpoint(out: Path, step: int, policy, optimizer, scheduler, state: dict, dist, fsdp: bool, keep: int) -> Path:
    """Write the checkpoint of ``step`` (into ``step-N.tmp/``, renamed when complete) and keep the
    newest ``keep``. A failed write (a full disk) removes the partial folder and raises
    :class:`CheckpointSaveError` naming it; the checkpoints before it stay as they were."""
    final = checkpoint_dir(out, step)
    tmp = final.with_name(final.name + ".tmp")
    try:
        _write_checkpoint(tmp, policy, optimizer, scheduler, state, dist, fsdp)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        full = _disk_full(exc)
        if not full and not isinstance(exc, OSError):
            raise
        what = "no space left on device (or a file-size limit or quota was hit)" if full else "write failed"
        cause = (str(exc).strip().splitlines() or [""])[0][:200]
        raise CheckpointSaveError(errno.ENOSPC if full else getattr(exc, "errno", None) or errno.EIO,
                                  f"cannot save checkpoint {final}: {what}; the partial {tmp} was removed "
                                  f"(resume uses the checkpoints before it) [{type(exc).__name__}: {cause}]") from exc
    if dist.is_main:
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        old = sorted(p for p in (out / "checkpoints").iterdir() if _is_step_dir(p))
        # Newer folders are what a resume from an older checkpoint skipped (broken): stale now.
        stale = [p for p in old if p.name > final.name]
        for p in old[:-keep - len(stale)] + stale:
            shutil.rmtree(p, ignore_errors=True)
    barrier(dist)
    return final


def _disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it wraps) is a write that ran out of room."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _FULL_ERRNOS:
            return True
        if any(t in str(seen).lower() for t in _FULL_TEXT):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _write_checkpoint(tmp: Path, policy, optimizer, scheduler, state: dict, dist, fsdp: bool) -> None:
    import torch

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
        (tmp / "state.json").write_text(json.dumps(state))
        _write_manifest(tmp)


def _write_manifest(folder: Path) -> None:
    """``complete.json`` with the size of every file, each synced to disk first, so a checkpoint
    that lists its files is all there after a crash or power loss."""
    sizes = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        with f.open("rb") as fh:
            os.fsync(fh.fileno())
        sizes[f.relative_to(folder).as_posix()] = f.stat().st_size
    with (folder / MANIFEST).open("w", encoding="utf-8") as fh:
        json.dump({"files": sizes}, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())


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


# -- the run directory ------------------------------------------------------------------------
def seed_all(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def prepare_out(out: Path, dist, resume: bool) -> Path | None:
    """Create ``out`` (or clear an earlier run's outputs without ``resume``); the checkpoint to resume from."""
    if dist.is_main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DataError(out, f"cannot create the output directory (--out): {exc.strerror or exc}") from None
    barrier(dist)
    ckpt = latest_checkpoint(out) if resume else None
    if not resume and dist.is_main and (out / "checkpoints").exists():
        shutil.rmtree(out / "checkpoints")
        for f in RUN_FILES:
            (out / f).unlink(missing_ok=True)
        shutil.rmtree(out / "tb", ignore_errors=True)
    barrier(dist)
    return ckpt
