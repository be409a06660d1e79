"""Faults of ``guienv train`` / ``eval`` / ``score`` / ``report`` (issue 14, run items): broken and
leftover checkpoints, a full disk while saving, bad arguments and interrupted eval folders. Every
file is written by the project's own code (a real tiny training run, a real eval) and then broken."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.tiny_model import build_tiny_model
from guienv.errors import DataError
from guienv.run.checkpoints import check_checkpoint, latest_checkpoint
from guienv.run.train import train
from guienv.run.train_config import TrainConfig

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]

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


# -- guienv eval / score / report / train arguments --------------------------------------------------
def _guienv(*argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m guienv ...`` in a real process (stderr as a user sees it)."""
    return subprocess.run([sys.executable, "-m", "guienv", *argv], cwd=REPO, env=_env(), capture_output=True,
                          text=True, timeout=timeout)


def _one_line_error(proc: subprocess.CompletedProcess, prog: str, *needles: str) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err[-2000:]
    assert err.startswith(f"{prog}: ") and all(n in err for n in needles), err
    return err


def _break_one_bbox(ss_dir: Path) -> Path:
    """The web file of a ScreenSpot-v2 folder written by ``write_screenspot``, its record 2's bbox cut."""
    f = next(ss_dir.glob("screenspot_web_v2.json"))
    records = json.loads(f.read_text())
    records[1]["bbox"] = records[1]["bbox"][:2]
    f.write_text(json.dumps(records))
    return f


def test_eval_bad_record_is_one_line_and_on_error_skip_runs_the_rest(screenspot_dir, tmp_path):
    bad = _break_one_bbox(screenspot_dir)
    proc = _guienv("eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--out", str(tmp_path / "r"))
    _one_line_error(proc, "guienv eval", bad.name, "bbox")
    out = tmp_path / "s"
    proc = _guienv("eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--out", str(out),
                   "--on-error", "skip")
    assert proc.returncode == 0, proc.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["overall"]["episodes"] == 5 and metrics["skipped_records"] == 1
    assert metrics["config"]["on_error"] == "skip"


@pytest.mark.parametrize("pixels", [["--max-pixels", "0"], ["--min-pixels", "5000", "--max-pixels", "4000"],
                                    ["--min-pixels", "-1"]])
def test_score_rejects_impossible_pixel_bounds(screenspot_dir, tmp_path, pixels):
    from guienv.run.cli import main

    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--out", str(out)]) == 0
    proc = _guienv("score", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--predictions",
                   str(out / "steps.jsonl"), "--out", str(tmp_path / "score"), "--frame", "resized", *pixels)
    _one_line_error(proc, "guienv score: error", "pixels")
    assert not (tmp_path / "score" / "metrics.json").exists()
    proc = _guienv("eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--out", str(tmp_path / "e2"),
                   "--agent", "api", "--model", "m", *pixels)
    _one_line_error(proc, "guienv eval", "pixels")


def test_report_of_an_interrupted_eval_renders_what_exists(tmp_path):
    from guienv.run.cli import main

    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "synthapp", "--episodes", "4", "--agent", "random", "--out", str(out)]) == 0
    full = json.loads((out / "metrics.json").read_text())
    (out / "metrics.json").unlink()  # what a run killed before its end leaves: no metrics.json, no report
    (out / "report.html").unlink()
    proc = _guienv("report", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "interrupted" in proc.stderr and "Traceback" not in proc.stderr
    html = (out / "report.html").read_text()
    assert "interrupted" in html and "synthapp" in html
    rate = full["overall"]["success_rate"]
    assert f'data-metric="summary.overall.success_rate" data-value="{json.dumps(rate)}"' in html
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(_guienv("report", str(empty)), "guienv report", "no metrics.json", "predictions.jsonl")


def test_train_argument_errors_name_the_key_or_path(setup, tmp_path):
    _, cfg_path = setup
    out = str(tmp_path / "t")
    err = _one_line_error(_guienv("train", "--config", str(cfg_path), "--out", out, "--set", "sft.steps=-5"),
                          "guienv train", "sft.steps", "train.yaml", ">= 0")
    assert "metrics.jsonl" not in err
    _one_line_error(_guienv("train", "--config", str(cfg_path), "--out", out, "--set", "model.max_pixels=0"),
                    "guienv train", "model.max_pixels")
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    _one_line_error(_guienv("train", "--config", str(cfg_path), "--out", str(a_file)), "guienv train",
                    str(a_file), "is a file")
    missing = tmp_path / "no" / "such" / "model"
    err = _one_line_error(_guienv("train", "--config", str(cfg_path), "--out", out, "--set", f"model.path={missing}"),
                          "guienv train", str(missing), "no such model folder")
    assert "repo" not in err.lower()
    with pytest.raises(DataError, match="sft.steps") as e:
        TrainConfig.from_yaml(cfg_path, ["sft.steps=-5"])
    assert e.value.field == "sft.steps"
