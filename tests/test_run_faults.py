"""Faults of ``guienv train`` / ``eval`` / ``score`` / ``report`` (issue 14, run items): broken and
leftover checkpoints, a full disk while saving, bad arguments and interrupted eval folders. Every
file is written by the project's own code (a real tiny training run, a real eval) and then broken."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from agents.tiny_model import build_tiny_model
from guienv.errors import DataError
from guienv.run.checkpoints import check_checkpoint, latest_checkpoint
from guienv.run.train import train
from guienv.run.train_config import TrainConfig

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]

# SFT-only (fast): 3 steps, a checkpoint after each, the newest two kept.
CONFIG = """
model: {{path: {model}, max_pixels: 12544, image_backend: pil}}
data:
  train_size: 4
  eval_size: 2
  synth: {{width: 224, height: 392, target_size: [0.01, 0.08], distractors: 2, clutter: 0}}
sft: {{steps: 3, batch_size: 2, lr: 0.001}}
train: {{steps: 0, save_every: 1, keep_checkpoints: 2, eval_batch_size: 2, progress: false, eval_before: false,
         tensorboard: false, plot: false}}
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    model = build_tiny_model(root / "tiny")
    cfg_path = root / "train.yaml"
    cfg_path.write_text(CONFIG.format(model=model))
    return root, cfg_path


@pytest.fixture(scope="module")
def run_a(setup):
    root, cfg_path = setup
    out = root / "a"
    train(TrainConfig.from_yaml(cfg_path), out, log=lambda *a: None)
    return out


def _final_params(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "final" / "model.safetensors"))


def _killed_copy(run: Path, dest: Path) -> Path:
    """``run``'s folder as a kill right after its last checkpoint leaves it (no final outputs)."""
    shutil.copytree(run, dest)
    shutil.rmtree(dest / "final")
    for f in ("eval.json", "summary.json"):
        (dest / f).unlink(missing_ok=True)
    return dest


def _truncate(f: Path, keep: int) -> None:
    with f.open("r+b") as fh:
        fh.truncate(keep)


@pytest.mark.parametrize("broken", ["model/model.safetensors", "state.json", "optimizer.pt"])
def test_resume_skips_a_truncated_latest_checkpoint_with_a_warning(run_a, tmp_path, broken):
    out = _killed_copy(run_a, tmp_path / "b")
    latest = out / "checkpoints" / "step-000003"
    f = latest / broken
    _truncate(f, f.stat().st_size // 2)
    assert check_checkpoint(latest) is not None and broken in check_checkpoint(latest)
    with pytest.warns(UserWarning, match="step-000003") as rec:
        assert latest_checkpoint(out).name == "step-000002"
    assert broken in str(rec[0].message)
    if broken != "model/model.safetensors":
        return  # one full resume is enough: the fallback continues the run exactly
    with pytest.warns(UserWarning, match="skipping broken checkpoint"):
        train(TrainConfig.from_yaml(run_a.parent / "train.yaml"), out, log=lambda *a: None)
    pa, pb = _final_params(run_a), _final_params(out)
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], atol=1e-6, rtol=0)
    assert check_checkpoint(out / "checkpoints" / "step-000003") is None  # rewritten by the resumed run


def test_a_leftover_tmp_folder_is_never_the_latest_checkpoint(run_a, tmp_path):
    out = _killed_copy(run_a, tmp_path / "b")
    ck = out / "checkpoints"
    shutil.copytree(ck / "step-000003", ck / "step-000009.tmp")  # complete-looking, but never renamed
    assert latest_checkpoint(out).name == "step-000003"
    shutil.rmtree(ck / "step-000003")
    shutil.rmtree(ck / "step-000002")
    assert latest_checkpoint(out) is None


def test_a_checkpoint_without_its_completion_marker_is_skipped(run_a, tmp_path):
    out = _killed_copy(run_a, tmp_path / "b")
    (out / "checkpoints" / "step-000003" / "complete.json").unlink()
    with pytest.warns(UserWarning, match="complete.json"):
        assert latest_checkpoint(out).name == "step-000002"


_FULL_DISK = """
import resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG, like a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from guienv.run.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_full_disk_while_saving_names_the_checkpoint_and_leaves_nothing_to_resume(setup, tmp_path):
    root, cfg_path = setup
    out = tmp_path / "full"
    script = tmp_path / "full_disk.py"
    script.write_text(_FULL_DISK.format(limit=300_000))  # below model.safetensors (~900 kB), above the logs
    proc = subprocess.run([sys.executable, str(script), "train", "--config", str(cfg_path), "--out", str(out)],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert "no space left on device" in proc.stderr and "step-000001" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "unexpected pos" not in proc.stderr.split("[")[0]
    assert not list((out / "checkpoints").glob("*")) if (out / "checkpoints").exists() else True
    assert latest_checkpoint(out) is None
    # Space freed (no limit): the same command trains from the start.
    proc = subprocess.run([sys.executable, "-m", "guienv.run.cli", "train", "--config", str(cfg_path), "--out", str(out)],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert latest_checkpoint(out).name == "step-000003" and (out / "final" / "model.safetensors").exists()
