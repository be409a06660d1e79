"""torch's CPU threads for a run (``train.torch_threads``) and the busy-CPU warning."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from guienv.errors import DataError
from guienv.run.threads import busy_cpu_warning, other_cpu_load
from guienv.run.train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[3]


def test_warns_only_when_the_threads_would_share_their_cores():
    assert busy_cpu_warning(2, "cpu", load=0.1, cores=2) is None          # idle: both cores free
    assert busy_cpu_warning(2, "cpu", load=0.4, cores=2) is None          # 1.6 free cores for 2 threads: fine
    msg = busy_cpu_warning(2, "cpu", load=1.0, cores=2)                    # one core taken
    assert msg is not None and "use 1.0 of 2 cores" in msg and "train.torch_threads=1" in msg
    assert busy_cpu_warning(4, "cpu", load=3.0, cores=8) is None
    assert busy_cpu_warning(1, "cpu", load=9.0, cores=2) is None          # one thread has no barrier to wait at
    assert busy_cpu_warning(2, "cuda", load=9.0, cores=2) is None
    busy_cpu_warning(2, "cpu")                                            # reads this machine's load without failing


def test_other_cpu_load_sees_a_busy_process_and_not_itself():
    import threading

    base = other_cpu_load(0.3)
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert other_cpu_load(0.5) > base + 0.6                           # the spinning child: about one core
    finally:
        busy.kill()
        busy.wait()
    stop = time.perf_counter() + 0.6
    spin = threading.Thread(target=lambda: [None for _ in iter(lambda: time.perf_counter() < stop, False)])
    spin.start()
    try:
        assert other_cpu_load(0.4) < base + 0.5                           # this process's own work is not "other"
    finally:
        spin.join()


def test_set_torch_threads_in_a_fresh_process():
    # A fresh interpreter: a colocated vLLM CPU engine started earlier in this test process replaces
    # torch.set_num_threads with a no-op once it has bound its threads (vllm/v1/worker/cpu_worker.py).
    code = ("import torch; from guienv.run.threads import set_torch_threads as s\n"
            "assert s(1) == 1 == torch.get_num_threads()\n"
            "assert s(None) == 1\n"
            "try:\n    s(0)\nexcept ValueError as e:\n    assert 'torch_threads' in str(e)\nelse:\n    raise SystemExit('no error')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.parametrize("value", ["0", "-2", "two", "true"])
def test_bad_torch_threads_names_the_file_and_key(tmp_path, value):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(f"train: {{torch_threads: {value}}}\n")
    with pytest.raises(DataError, match=r"bad\.yaml.*train\.torch_threads|train\.torch_threads.*bad\.yaml"):
        TrainConfig.from_yaml(cfg)
    assert TrainConfig.from_yaml(cfg, ["train.torch_threads=3"]).train.torch_threads == 3


def test_a_run_start_logs_the_warning_only_on_the_main_rank():
    code = ("from guienv.run.threads import configure_threads\n"
            "seen = []\n"
            "assert configure_threads(2, 'cpu', seen.append, main=False) == 2 and seen == []\n"
            "assert configure_threads(2, 'cpu', seen.append) == 2\n"
            "print(seen)\n")
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
    try:
        time.sleep(0.3)
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})
    finally:
        for b in busy:
            b.kill()
            b.wait()
    assert res.returncode == 0, res.stderr[-2000:]
    assert "warning: the CPU is busy" in res.stdout and "train.torch_threads=1" in res.stdout
