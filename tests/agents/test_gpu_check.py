"""``benchmarks/gpu_check.sh --smoke`` (the CPU-sized version of the prepared GPU check) runs end
to end and writes one results file: every step present, passed or skipped with a reason, the
train and decode steps passed, the decode options' greedy tokens identical to the dynamic cache's
(this is where the compiled decode step, :mod:`agents.decoding`, runs in CI) and the markdown table
naming every step and its exact command."""

from __future__ import annotations

import json
import math
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


def _check_side(r: dict, steps: int, seqs: int, new_tokens: int) -> None:
    assert "error" not in r, r.get("error")
    assert len(r["rows"]) == steps + 1  # warm-up + timed
    for row in r["rows"]:
        assert row["seconds"] > 0 and row["generate_s"] > 0 and row["update_s"] > 0
        assert row["generate_s"] + row["update_s"] == pytest.approx(row["seconds"], rel=0.05)
        assert row["completion_tokens"] == [new_tokens] * seqs  # min_new_tokens: every completion full length
        assert row["gen_tokens"] == seqs * new_tokens
        assert row["update_tokens"] == sum(row["prompt_tokens"]) + row["gen_tokens"]
        assert len(row["prompt_keys"]) == seqs and min(row["image_tokens"]) > 0
    assert r["step_s"] > 0 and r["peak_gib"] > 0
    assert r["gen_tokens_per_s"] == pytest.approx(sum(x["gen_tokens"] / x["generate_s"] for x in r["rows"][1:]) / steps)
    assert math.isnan(r["update_mfu"])  # CPU: no peak to divide by


def test_train_speed_ran_the_same_work_on_guienv_and_trl(report):
    """train_speed.py --trl as the check runs it (its JSON is kept whole in the report)."""
    res, _ = report
    train = {s["name"]: s for s in res["steps"]}["train"]["result"]
    st = train["settings"]
    seqs, T = st["prompts"] * st["group"], st["new_tokens"]
    assert st["sequences_per_step"] == seqs and st["top_k"] == 0 and st["beta"] == 0.0 and st["min_new_tokens"] == T
    assert train["same_work"] is True and train["same_work_errors"] == [[]]
    g, t = train["runs"]["guienv"][0], train["runs"]["trl"][0]
    for side in (g, t):
        _check_side(side, st["steps"], seqs, T)
    for rg, rt in zip(g["rows"], t["rows"]):  # the same prompts, images and completion lengths, step by step
        for key in ("prompt_keys", "prompt_tokens", "image_tokens", "completion_tokens", "update_tokens"):
            assert rg[key] == rt[key]
        assert rg["pixel_sums"] == pytest.approx(rt["pixel_sums"], rel=1e-3) and any(v != 0 for v in rg["pixel_sums"])
    assert g["generation"] == t["generation"] and g["generation"]["top_k"] == 0 and g["generation"]["suppress_tokens"]
    assert g["config"]["aggregation"] == "constant" and t["config"]["loss_type"] == "dr_grpo"
    assert t["config"]["per_device_train_batch_size"] * t["config"]["gradient_accumulation_steps"] == seqs  # one optimizer step
    assert t["processor"].startswith(("ImageOnlyQwen2_5_VLProcessor", "Qwen2_5_VLProcessor"))
    assert g["model"] == t["model"]  # same weights' shape, all trainable
    assert g["model"]["trainable_params"] == g["model"]["lm_params"] + g["model"]["vision_params"] > 0
    ratio = train["ratio_trl_over_guienv"]["step_s"]
    assert ratio["mean"] == pytest.approx(t["step_s"] / g["step_s"]) and ratio["min"] <= ratio["mean"] <= ratio["max"]


def test_engine_speed_ran_both_engines_on_the_same_work(report):
    res, _ = report
    step = {s["name"]: s for s in res["steps"]}["engine"]
    if step["status"] == "skipped":  # only where vllm does not import (CI has it: the first test insists)
        pytest.skip(step["reason"])
    data = step["result"]
    assert set(data["engines"]) == {"transformers", "vllm"}
    T = data["config"]["new_tokens"]
    for name, r in data["engines"].items():
        assert r["completion_tokens"] == [T] * len(r["completion_tokens"]), name  # min == max: the same work
        assert r["tokens_per_s"] > 0 and r["grpo_step_s"] > 0 and math.isfinite(r["loss"])
    assert data["ratios"]["vllm_over_transformers_tokens_per_s"] > 0


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
