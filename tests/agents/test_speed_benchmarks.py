"""The speed side-by-sides (``benchmarks/train_speed.py``: guienv's GRPO step against TRL's
``GRPOTrainer``; ``benchmarks/eval_speed.py``: ``guienv eval`` against a per-sample ``generate``
loop) run end to end in ``--smoke`` mode as subprocesses, each side in its own process, and write
JSON whose same-work checks passed and whose numbers hang together.

TRL runs here without torchvision: its VL path gets an image-only ``Qwen2_5_VLProcessor``
(:func:`benchmarks.train_speed.image_only_processor`), the PIL image processor guienv uses too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))


def _run(script: str, out: Path, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--json", str(out), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_train_speed_same_work_check_catches_a_different_prompt():
    from benchmarks.train_speed import row_key, same_work, work_record

    a = work_record([[1, 2, 3, 9], [1, 2, 3, 9]], [4, 4], image_id=9)
    b = work_record([[1, 2, 3, 9], [1, 2, 4, 9]], [4, 4], image_id=9)
    assert row_key([1, 2, 3]) != row_key([1, 2, 4]) and a["image_tokens"] == [1, 1]
    assert same_work({"rows": [dict(a, step=0)]}, {"rows": [dict(a, step=0)]}) == []
    errs = same_work({"rows": [dict(a, step=0)]}, {"rows": [dict(b, step=0)]})
    assert errs and "prompt_keys" in errs[0]
    brighter = work_record([[1, 2, 3, 9], [1, 2, 3, 9]], [4, 4], image_id=9, pixel_sums=[5.0, 5.0])
    assert "pixel values" in same_work({"rows": [dict(a, step=0)]}, {"rows": [dict(brighter, step=0)]})[0]
    other = {"rows": [dict(a, step=0)], "model": {"trainable_params": 1}, "generation": {"top_k": 50}}
    errs = same_work({"rows": [dict(a, step=0)], "model": {"trainable_params": 2}, "generation": {"top_k": 0}}, other)
    assert any("models differ" in e for e in errs) and any("top_k" in e for e in errs)


def test_update_flops_counts_parameters_attention_and_vision():
    from benchmarks.train_speed import update_flops

    full = dict(lm_params=1000, lm_trainable=1000, vision_params=100, vision_trainable=100, layers=2, hidden=8, merge=2)
    assert update_flops(full, [10]) == 6 * 1000 * 10 + 12 * 2 * 8 * 100  # 6N per token + attention
    assert update_flops(full, [10, 10]) == 2 * update_flops(full, [10])
    assert update_flops(full, [10], [3]) == update_flops(full, [10]) + 6 * 100 * 4 * 3  # 4 patches per image token
    frozen = dict(full, lm_trainable=0, vision_trainable=0)  # LoRA-like: no weight gradients
    assert update_flops(frozen, [10]) == 4 * 1000 * 10 + 12 * 2 * 8 * 100


def test_eval_speed_smoke_feeds_both_sides_the_same_inputs(tmp_path):
    res = _run("eval_speed.py", tmp_path / "e.json")
    n = res["samples"]
    assert n == 6 and res["same_inputs"] is True and res["same_input_errors"] == []
    g, lp = res["runs"]["guienv"][0], res["runs"]["loop"][0]
    assert g["samples"] == lp["samples"] == n and g["batch_size"] == 3 and lp["batch_size"] == 1
    assert len(g["inputs"]) == len(lp["inputs"]) == n  # every sample's inputs recorded on both sides
    assert all(x["prompt_tokens"] > 0 and x["grid"][0] == 1 for x in g["inputs"])
    for side in (g, lp):
        assert side["seconds"] > 0 and side["samples_per_s"] == pytest.approx(n / side["seconds"])
        assert 0 < side["decoded_tokens"] <= n * res["args"]["max_new_tokens"]
    assert 0 <= res["same_predictions"] <= n
    r = res["ratio_guienv_over_loop"]
    assert r["mean"] == pytest.approx(g["samples_per_s"] / lp["samples_per_s"])


def test_eval_speed_box_reader_never_raises_on_model_text():
    from benchmarks.eval_speed import box_center

    assert box_center('[{"bbox_2d": [10, 20, 30, 40]}]') == [20.0, 30.0]
    for text in ("", "\n\n", "no numbers", "[1, 2, 3]", "\x00" * 5, "{" * 100):
        assert box_center(text) is None
