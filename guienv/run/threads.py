"""torch's CPU threads for a run, and a warning when other processes already keep the CPU busy.

torch runs each CPU op on its intra-op thread pool (OpenMP), and every op ends at a barrier where
the pool's threads wait for each other. When another process holds one of the cores, the thread on
it is descheduled for a time slice while the others spin at the barrier, so a small model's steps,
made of thousands of tiny ops, slow down many times over (measured in BENCHMARKS.md, "The main job
in a fresh virtualenv"). ``train.torch_threads`` sets the pool size; the run warns when other
processes are using the cores its threads need. The count is set before a colocated vLLM CPU
engine starts: once it has bound its threads, vLLM replaces ``torch.set_num_threads`` with a no-op
for the process (``vllm/v1/worker/cpu_worker.py``).
"""

from __future__ import annotations

import os
import time
from typing import Any

__all__ = ["busy_cpu_warning", "configure_threads", "other_cpu_load", "set_torch_threads"]


def set_torch_threads(n: int | None) -> int:
    """Use ``n`` intra-op threads (``None``: torch's default, ``OMP_NUM_THREADS`` or the cores);
    returns the count in use."""
    import torch

    if n is not None:
        if n < 1:
            raise ValueError(f"train.torch_threads must be >= 1, got {n}")
        torch.set_num_threads(n)
    return torch.get_num_threads()


def _cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot (``/proc/stat``)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
    return sum(v) - idle, sum(v)


def _own_jiffies() -> int:
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def other_cpu_load(window_s: float = 0.25) -> float:
    """How many cores other processes keep busy now: CPU time over ``window_s`` seconds, this
    process's own excluded (``/proc/stat``; elsewhere the 1-minute load average)."""
    try:
        b0, t0 = _cpu_jiffies()
        s0 = _own_jiffies()
        time.sleep(window_s)
        b1, t1 = _cpu_jiffies()
        s1 = _own_jiffies()
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]
    cores = os.cpu_count() or 1
    return max(0.0, (b1 - b0) - (s1 - s0)) / max(t1 - t0, 1) * cores


def busy_cpu_warning(threads: int, device: str, load: float | None = None, cores: int | None = None) -> str | None:
    """A warning when ``threads`` CPU threads (``device`` "cpu") will share their cores: ``load``
    (default :func:`other_cpu_load`), the cores other processes keep busy, leaves fewer than
    ``threads`` cores free (by more than half a core)."""
    if device != "cpu" or threads < 2:
        return None
    cores = cores if cores is not None else len(os.sched_getaffinity(0))
    load = load if load is not None else other_cpu_load()
    if cores - load >= threads - 0.5:
        return None
    return (f"the CPU is busy (other processes use {load:.1f} of {cores} cores) and torch uses {threads} threads: "
            f"they wait on each other at every op while another process holds a core, which slows a small "
            f"model's steps several times over; set train.torch_threads=1 (or OMP_NUM_THREADS=1), or wait for the CPU")


def configure_threads(n: int | None, device: Any, log: Any, main: bool = True) -> int:
    """A run's start: ``n`` threads (:func:`set_torch_threads`); the main rank logs the busy-CPU
    warning when there is one. Returns the count in use."""
    threads = set_torch_threads(n)
    busy = busy_cpu_warning(threads, str(device).split(":")[0]) if main else None
    if busy:
        log(f"warning: {busy}")
    return threads
