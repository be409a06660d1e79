"""torch's CPU threads for a run, and a warning when other processes already keep the CPU busy.

torch runs each CPU op on its intra-op thread pool (OpenMP), and every op ends at a barrier where
the pool's threads wait for each other. When another process holds one of the cores, the thread on
it is descheduled for a time slice while the others spin at the barrier, so a small model's steps,
made of thousands of tiny ops, slow down many times over (measured in BENCHMARKS.md, "The main job
in a fresh virtualenv"). ``train.torch_threads`` sets the pool size; the run warns when the load
average says the threads will not have their cores to themselves. The count is set before a
colocated vLLM CPU engine starts: once it has bound its threads, vLLM replaces
``torch.set_num_threads`` with a no-op for the process (``vllm/v1/worker/cpu_worker.py``).
"""

from __future__ import annotations

import os

__all__ = ["busy_cpu_warning", "set_torch_threads"]


def set_torch_threads(n: int | None) -> int:
    """Use ``n`` intra-op threads (``None``: torch's default, ``OMP_NUM_THREADS`` or the cores);
    returns the count in use."""
    import torch

    if n is not None:
        if n < 1:
            raise ValueError(f"train.torch_threads must be >= 1, got {n}")
        torch.set_num_threads(n)
    return torch.get_num_threads()


def busy_cpu_warning(threads: int, device: str, load: float | None = None, cores: int | None = None) -> str | None:
    """A warning when ``threads`` CPU threads (``device`` "cpu") will share their cores: the 1-minute
    load average (``load``, default ``os.getloadavg()``) leaves fewer free cores than threads."""
    if device != "cpu" or threads < 2:
        return None
    cores = cores if cores is not None else len(os.sched_getaffinity(0))
    load = load if load is not None else os.getloadavg()[0]
    # A whole core's worth of other work over the last minute (a pip install just before leaves less)
    if cores - load >= threads - 1:
        return None
    return (f"the CPU is busy (1-minute load average {load:.1f} on {cores} cores) and torch uses {threads} threads: "
            f"they wait on each other at every op while another process holds a core, which slows a small "
            f"model's steps several times over; set train.torch_threads=1 (or OMP_NUM_THREADS=1), or wait for the CPU")
