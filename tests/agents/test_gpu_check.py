"""``benchmarks/gpu_check.sh --smoke`` (the CPU-sized version of the prepared GPU check) runs end
to end and writes one results file: every step present, passed or skipped with a reason, the
train and decode steps passed, the decode options' greedy tokens identical to the dynamic cache's
(this is where the compiled decode step, :mod:`agents.decoding`, runs in CI) and the markdown table
naming every step and its exact command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STEPS = ["env", "train", "generation", "decode", "engine"]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu-check")
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke", "--out", str(out),
                           "--python", sys.executable], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_every_step_is_recorded_passed_or_skipped_with_a_reason(report):
    res, _ = report
    assert res["mode"] == "smoke" and res["versions"]["torch"]
    steps = {s["name"]: s for s in res["steps"]}
    assert list(steps) == STEPS
    for s in steps.values():
        assert s["status"] in ("passed", "skipped"), (s["name"], s.get("reason"), s.get("error", "")[-1000:])
        if s["status"] == "skipped":
            assert s["reason"] and s["command"]
        assert s["command"].startswith((sys.executable, "python")) or s["name"] == "env"
    assert steps["train"]["status"] == steps["decode"]["status"] == steps["generation"]["status"] == "passed"
    # where the engine benchmark and vllm are both here (CI after the merge), the engine step must run and pass
    import importlib.util

    if (ROOT / "benchmarks" / "engine_speed.py").exists() and importlib.util.find_spec("vllm") is not None:
        assert steps["engine"]["status"] == "passed", steps["engine"].get("error", "")[-1500:]
    assert res["total_s"] < 600


def test_train_and_decode_results_are_the_scripts_own(report):
    res, _ = report
    steps = {s["name"]: s for s in res["steps"]}
    train, summary = steps["train"]["result"], steps["train"]["summary"]
    # train_speed.py's two JSON layouts: {"guienv", "trl"} now, {"runs": {"guienv": [...], "trl": [...]}} with --repeats
    sides = {k: (v[0] if isinstance(v, list) else v) for k, v in train.get("runs", train).items() if k in ("guienv", "trl")}
    assert set(sides) == {"guienv", "trl"}  # --trl ran: TRL's step time, or its error
    assert summary["guienv_step_s"] == pytest.approx(sides["guienv"]["step_s"]) and summary["guienv_step_s"] > 0
    assert summary["gen_tokens_per_s"] > 0
    if "runs" in train:  # the --repeats train_speed.py runs TRL without torchvision too: its side must pass
        assert "error" not in sides["trl"] and train["same_work"] is True, sides["trl"].get("error")
    if "error" not in sides["trl"]:
        assert summary["vs_trl"] == pytest.approx(sides["trl"]["step_s"] / sides["guienv"]["step_s"], rel=1e-6)
    dec = steps["decode"]["result"]
    assert dec["all_identical"] is True and steps["decode"]["summary"]["all_identical"] is True
    # the compiled step reads weights updated in place (as after an optimizer step), and the update
    # did change the tokens, so the comparison is not vacuous
    assert dec["after_weight_update"] == {"changed": True, "identical": {"static": True, "static+compile": True}}
    # sampled behaviour log-probs equal the teacher-forced ones under every option
    assert dec["logprobs_agree"] is True and set(dec["sampled_logprob_gap"]) == {"dynamic", "static", "static+compile"}
    assert all(0 <= g < 1e-3 for g in dec["sampled_logprob_gap"].values())
    assert {r["option"] for r in dec["rows"]} == {"dynamic", "static", "static+compile"}
    assert {r["path"] for r in dec["rows"]} == {"sample", "sample_logprobs", "agent"}
    for r in dec["rows"]:
        assert r["tokens"] == r["batch"] * 8  # min_new_tokens: every option decodes the same work
        assert r["identical_rows"] == r["batch"] and r["distinct_tokens"] > 4  # varied completions, all equal
        assert r["tokens_per_s"] == pytest.approx(r["tokens"] / r["seconds"])
        if r["option"] == "dynamic":
            assert r["speedup_vs_dynamic"] == pytest.approx(1.0)
    gen = steps["generation"]["result"]
    assert [r["batch"] for r in gen["rows"]] == [1, 4]


def test_markdown_names_every_step_and_its_command(report):
    res, md = report
    for s in res["steps"]:
        assert f"| {s['name']} | {s['status']} |" in md
        assert s["command"] in md
    assert "| path | batch | option |" in md  # the decode table, ready for BENCHMARKS.md


def test_the_full_check_without_a_gpu_records_why_and_exits_1(tmp_path):
    """Run where there is no CUDA GPU (here, and any CPU-only CI), the full check still writes its
    results file: the env step failed with its error and every measurement skipped naming why."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: the full check would run for minutes")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--out", str(tmp_path), "--python", sys.executable],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "no usable CUDA GPU" in proc.stderr
    res = json.loads((tmp_path / "gpu_check.json").read_text())
    assert res["mode"] == "gpu" and res["versions"]["torch"] == torch.__version__
    steps = {s["name"]: s for s in res["steps"]}
    assert list(steps) == STEPS and steps["env"]["status"] == "failed" and steps["env"]["error"]
    for name in STEPS[1:]:
        assert steps[name]["status"] == "skipped" and "no usable CUDA GPU" in steps[name]["reason"]
    assert "--model 3b" in steps["train"]["command"] and "--trl" in steps["train"]["command"]
    assert "--kind vl --model 3b --engines transformers vllm" in steps["engine"]["command"]
