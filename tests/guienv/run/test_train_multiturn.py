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
sft: {{steps: 60, batch_size: 4, lr: 0.003}}
grpo: {{group_size: 3, prompts_per_step: 2, max_new_tokens: 24, micro_batch_size: 8, lr: 0.001, temperature: 1.0}}
train: {{steps: 3, save_every: 1, keep_checkpoints: 2, eval_batch_size: 3, progress: false}}
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
    assert [r["phase"] for r in rows] == ["sft"] * 60 + ["grpo"] * 3
    assert rows[59]["sft_loss"] < rows[0]["sft_loss"]
    for r in rows[60:]:
        for k in ("success_rate", "mean_turns", "invalid_rate", "adv_std", "adv_nonzero_frac", "stage", "failure_rate",
                  "time_env", "time_generate", "time_update"):
            assert k in r, k
        assert 1.0 <= r["mean_turns"] <= 3.0
    # After the warm-up some actions are valid: the invalid penalty separates trajectories of one task.
    assert any(r["adv_nonzero_frac"] > 0 for r in rows[60:])
    for key in ("eval_before", "eval_after_sft", "eval_after"):
        ev = summary[key]
        assert ev["episodes"] == 3 and 0.0 <= ev["success"] <= 1.0 and 1.0 <= ev["mean_turns"] <= 3.0
    assert any("held-out success: before" in line for line in logs)


def test_synthapp_resume_continues_exactly(synthapp):
    root, cfg, out_a, summary, _ = synthapp
    out_b = root / "b"
    stopped = train(TrainConfig.from_yaml(cfg), out_b, stop_after=61, log=lambda *a: None)
    assert stopped == {"stopped_at": 61, "last_checkpoint": 61}  # one GRPO step done, in the curriculum
    train(TrainConfig.from_yaml(cfg), out_b, log=lambda *a: None)
    ra, rb = _rows(out_a), _rows(out_b)
    assert [r["step"] for r in rb] == list(range(1, 64))
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
  train_size: 1
  eval_size: 1
multiturn: {{max_turns: 3, pool: inline, advantage: {{name: salt, identity: history}}, invalid_penalty: 0.1,
             history: {{observations: 1}}}}
curriculum: {{mode: random}}
sft: {{steps: 40, batch_size: 4, lr: 0.003}}
grpo: {{group_size: 3, prompts_per_step: 1, max_new_tokens: 16, micro_batch_size: 6, lr: 0.001, temperature: 1.0}}
train: {{steps: 1, save_every: 1, keep_checkpoints: 2, eval_batch_size: 1, progress: false, eval_before: false}}
"""


def test_alfworld_text_policy_grpo_salt_on_the_real_engine(tmp_path, shared_data):
    """GRPO+SALT steps of the tiny text model on the real ALFWorld engine (then in worker processes),
    after a warm-up on the engine planner's commands; then the same run stopped and resumed."""
    from agents.advantages import estimate
    from agents.env_pool import EnvSpec, make_pool
    from agents.multiturn import EpisodeTask, MultiTurnConfig, RolloutEngine
    from agents.multiturn_trainer import turn_rows
    from agents.text_policy import load_text_policy

    model = build_tiny_text_model(tmp_path / "tiny-text")
    game = shared_data / "alfworld"
    cfg = tmp_path / "alf.yaml"
    cfg.write_text(ALFWORLD.format(model=model, game=game))
    out = tmp_path / "out"
    summary = train(TrainConfig.from_yaml(cfg), out, log=lambda *a: None)
    demos = json.loads((out / "demonstrations.json").read_text())
    assert demos["expert"] == "alfworld" and demos["turns"] > 0
    rows = _rows(out)
    assert [r["phase"] for r in rows] == ["sft"] * 40 + ["grpo"]
    assert rows[39]["sft_loss"] < rows[0]["sft_loss"]
    assert all(r["failure_rate"] == 0.0 and 1 <= r["mean_turns"] <= 3 for r in rows[40:])
    assert summary["eval_after"]["episodes"] == 1

    # Exact resume on the real engine (worker processes are new after the restart).
    out_b = tmp_path / "b"
    assert train(TrainConfig.from_yaml(cfg), out_b, stop_after=40, log=lambda *a: None)["stopped_at"] == 40
    train(TrainConfig.from_yaml(cfg), out_b, log=lambda *a: None)
    for x, y in zip(rows, _rows(out_b)):
        for k in x:
            if k not in TIMING:
                assert x[k] == pytest.approx(y[k], rel=1e-5, abs=1e-7), (x["step"], k)

    # The plumbing on the trained policy: outcomes differ, advantages follow, each turn carries its own.
    pol = load_text_policy(str(out / "final"))
    mt = MultiTurnConfig(max_turns=3, advantage={"name": "salt", "identity": "history"}, invalid_penalty=0.1,
                         history={"observations": 1})
    with make_pool(EnvSpec("guienv/ALFWorld-v0", {"game": str(game), "max_steps": 4}), 4, "process") as pool:
        torch.manual_seed(0)
        ro = RolloutEngine(pol, pool, mt, "alfworld").run([EpisodeTask(0, 0, {"index": 0})], 4, temperature=1.0,
                                                          max_new_tokens=16)
    adv = estimate(ro.groups, mt.advantage_config())
    returns = [tr.total_reward for grp in ro.groups for tr in grp.trajectories]
    assert len(set(returns)) > 1 and np.abs(adv).max() > 0
    r_ = turn_rows(ro, adv)
    k = 0
    for g, grp in enumerate(ro.groups):
        for j, tr in enumerate(grp.trajectories):
            for t in range(len(tr.steps)):
                assert r_.completions[k] == ro.turns[g][j][t].completion and r_.advantages[k] == adv[k]
                k += 1


MINIWOB = """
model: {{path: {model}, max_pixels: 12544, image_backend: pil}}
data:
  source: env
  env_id: guienv/MiniWoB-v0
  env_kwargs: {{task: click-button, max_steps: 3}}
  train_size: 2
  eval_size: 1
  expert: miniwob
multiturn: {{max_turns: 2, pool: inline, advantage: {{name: grpo}}}}
curriculum: {{mode: random}}
sft: {{steps: 1, batch_size: 2, lr: 0.001}}
grpo: {{group_size: 2, prompts_per_step: 1, max_new_tokens: 8, micro_batch_size: 4, lr: 0.001, temperature: 1.0}}
train: {{steps: 1, save_every: 1, eval_batch_size: 1, progress: false, eval_before: false}}
"""


@pytest.mark.realstack
def test_miniwob_over_real_appium(tmp_path):
    """The run starts its Appium server; Chromium sessions serve the MiniWoB++ pages."""
    cfg = tmp_path / "wob.yaml"
    cfg.write_text(MINIWOB.format(model=build_tiny_model(tmp_path / "tiny")))
    out = tmp_path / "out"
    summary = train(TrainConfig.from_yaml(cfg), out, log=lambda *a: None)
    demos = json.loads((out / "demonstrations.json").read_text())
    assert demos["solved"] == demos["episodes"] == 2  # the DOM oracle solves click-button through Appium
    rows = _rows(out)
    assert rows[-1]["phase"] == "grpo" and rows[-1]["failure_rate"] == 0.0
    assert summary["eval_after"]["episodes"] == 1
    assert np.isfinite(rows[-1]["loss"])


@pytest.mark.parametrize("name", ["multiturn_synthapp", "multiturn_alfworld", "multiturn_miniwob"])
def test_example_configs_load_and_name_their_env(name):
    from agents.multiturn import MultiTurnConfig

    repo = Path(__file__).resolve().parents[3]
    cfg = TrainConfig.from_yaml(repo / "configs" / f"{name}.yaml")
    assert cfg.data.source == "env" and cfg.data.env_id.startswith("guienv/")
    assert isinstance(cfg.multiturn, MultiTurnConfig)
    assert cfg.multiturn.advantage_config().name in ("grpo", "salt", "gigpo")
    assert cfg.model.kind == ("text" if "alfworld" in name else "vl")


@pytest.mark.parametrize("override,key", [
    ("multiturn.turn_weighting=episode", "turn_weighting"),
    ("multiturn.max_turns=0", "max_turns"),
    ("multiturn.history={screens: -1}", "screens"),
    ("multiturn.on_failure=ignore", "on_failure"),
    ("data.env_id=null", "env_id"),
    ("data.steps=[]", "steps"),
    ("model.kind=audio", "kind"),
])
def test_bad_multiturn_settings_name_the_file_and_key(tmp_path, override, key):
    from guienv.errors import DataError

    repo = Path(__file__).resolve().parents[3]
    with pytest.raises(DataError, match=key) as err:
        TrainConfig.from_yaml(repo / "configs" / "multiturn_synthapp.yaml", [override])
    assert "multiturn_synthapp.yaml" in str(err.value)


def test_a_text_policy_needs_env_tasks():
    from guienv.errors import DataError

    with pytest.raises((DataError, ValueError), match="text policy"):
        TrainConfig.from_dict({"model": {"kind": "text"}})
