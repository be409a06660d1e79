"""``guienv train`` end to end on the tiny model: YAML config, metrics.jsonl / TensorBoard / plot /
held-out evaluation plumbing, and exact resume after a real ``kill -9`` of a training process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.tiny_model import build_tiny_model
from guienv.config import apply_override
from guienv.errors import DataError
from guienv.frames import Screen
from guienv.run.checkpoints import latest_checkpoint
from guienv.run.train import add_train_args, train
from guienv.run.train_config import TrainConfig

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]

# A reward term random text can earn (its digit fraction), registered by a plugin module the
# config imports (reward.imports), so GRPO groups have non-zero variance and every step updates.
PLUGIN = '''
from rewards.composite import TERMS, register_term
if "digit_fraction" not in TERMS:
    @register_term("digit_fraction")
    def digit_fraction(inp):
        t = inp.text
        return sum(c.isdigit() for c in t) / max(len(t), 1)
'''

CONFIG = """
model: {{path: {model}, max_pixels: 12544, image_backend: pil}}
data:
  train_size: 8
  eval_size: 4
  synth: {{width: 224, height: 392, target_size: [0.01, 0.08], distractors: 2, clutter: 0}}
reward:
  imports: [guienv_test_reward_plugin]
  composite: {{terms: [{{name: gui_g1}}, {{name: digit_fraction, weight: 0.5}}]}}
curriculum: {{stages: 2, window: 1, promote_threshold: 0.05, max_steps: 2, variance_sampling: 0.5}}
sft: {{steps: 1, batch_size: 2, lr: 0.001}}
grpo: {{group_size: 4, prompts_per_step: 2, max_new_tokens: 8, micro_batch_size: 4, lr: 0.001, temperature: 1.0, beta: 0.05}}
train: {{steps: 4, save_every: 2, keep_checkpoints: 2, eval_batch_size: 4, progress: false}}
"""
TIMING = ("time_generate", "time_update", "step_time")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    plugin_dir = root / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "guienv_test_reward_plugin.py").write_text(PLUGIN)
    sys.path.insert(0, str(plugin_dir))
    model = build_tiny_model(root / "tiny")
    cfg_path = root / "train.yaml"
    cfg_path.write_text(CONFIG.format(model=model))
    yield root, cfg_path, plugin_dir, model
    sys.path.remove(str(plugin_dir))


@pytest.fixture(scope="module")
def run_a(setup):
    root, cfg_path, _, _ = setup
    out = root / "a"
    summary = train(TrainConfig.from_yaml(cfg_path), out, log=lambda *a: None)
    return out, summary


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]


def _final_params(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "final" / "model.safetensors"))


def test_config_errors_name_the_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grpo: {group_sise: 8}\n")
    with pytest.raises(DataError, match="group_sise") as e:
        TrainConfig.from_yaml(bad)
    assert "bad.yaml" in str(e.value) and e.value.field == "grpo.group_sise"
    bad.write_text("optimiser: {}\n")
    with pytest.raises(DataError, match="optimiser"):
        TrainConfig.from_yaml(bad)
    bad.write_text("grpo: {zero_variance: drop}\n")
    with pytest.raises(DataError, match="zero_variance"):
        TrainConfig.from_yaml(bad)
    bad.write_text("curriculum: {difficulty: {hardness: 1}}\n")
    with pytest.raises(DataError, match="hardness"):
        TrainConfig.from_yaml(bad)
    bad.write_text("data: {source: screenspot}\n")
    with pytest.raises(DataError, match="data.path"):
        TrainConfig.from_yaml(bad)
    # --set overrides, values parsed as YAML; the default config file loads.
    cfg = TrainConfig.from_yaml(REPO / "configs" / "train_default.yaml",
                                ["curriculum.mode=random", "reward.composite={terms: [{name: hit}]}", "grpo.lr=1e-5"])
    assert cfg.curriculum.mode == "random" and cfg.reward.composite == {"terms": [{"name": "hit"}]} and cfg.grpo.lr == 1e-5
    d = {}
    apply_override(d, "a.b=3")
    assert d == {"a": {"b": 3}}


def test_cli_registers_train():
    import argparse

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command")
    add_train_args(sub)
    a = p.parse_args(["train", "--config", "c.yaml", "--out", "d", "--set", "grpo.lr=1", "--steps", "3"])
    assert a.config == "c.yaml" and a.out == "d" and a.set == ["grpo.lr=1"] and a.steps == 3 and callable(a.func)


def test_training_writes_metrics_tensorboard_plot_checkpoints_and_eval(run_a, setup):
    out, summary = run_a
    rows = _rows(out)
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["phase"] for r in rows] == ["sft"] + ["grpo"] * 4
    assert np.isfinite(rows[0]["sft_loss"])
    for r in rows[1:]:
        for k in ("reward", "accuracy", "kl", "clip_frac", "completion_len", "zero_var_frac", "stage", "loss",
                  "reward_gui_g1", "reward_digit_fraction"):
            assert k in r, k
        assert np.isfinite(r["loss"]) and r["grad_norm"] > 0 and r["kl"] >= 0
    assert rows[1]["kl"] == pytest.approx(0.0, abs=1e-6) and rows[-1]["kl"] > 0  # reference = policy after SFT
    assert {r["stage"] for r in rows[1:]} == {0, 1}  # promoted (threshold or budget) into the last stage
    assert list((out / "tb").glob("events.out.tfevents.*"))
    from PIL import Image

    with Image.open(out / "curves.png") as im:
        assert im.size[0] >= 360 and im.size[1] >= 220
    ev = json.loads((out / "eval.json").read_text())
    assert ev["eval_before"]["tasks"] == 4 and 0 <= ev["eval_after"]["accuracy"] <= 1
    # The warm-up's own held-out result (row of the last SFT step), and the mean-click reference.
    assert rows[0]["eval_accuracy"] == ev["eval_after_sft"]["accuracy"]
    assert ev["eval_after_sft"] == json.loads((out / "eval_after_sft.json").read_text())
    assert 0.0 <= ev["mean_click_accuracy"] <= 1.0
    by_kind = ev["eval_after"]["accuracy_by_kind"]  # SynthApp control kinds of the 4 held-out screens
    assert by_kind and set(by_kind) <= {"button", "icon", "field", "toggle", "row", "tab", "dialog"}
    assert all(0.0 <= v <= 1.0 for v in by_kind.values())
    for axis in ("dx", "dy"):  # only when some answer parsed to a point
        assert ev["eval_after"].get(axis) is None or 0.0 <= ev["eval_after"][axis] <= 1.0
    assert summary["eval_after"] == ev["eval_after"]
    ckpts = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert ckpts == ["step-000004", "step-000005"]  # keep_checkpoints: 2
    ck = out / "checkpoints" / "step-000004"
    for f in ("model/config.json", "model/model.safetensors", "optimizer.pt", "scheduler.pt", "rng-rank0.pt", "state.json"):
        assert (ck / f).exists(), f
    st = json.loads((ck / "state.json").read_text())
    assert st["step"] == 4 and st["phase"] == "grpo" and "curriculum" in st and "sft_sampler" in st
    # The trained model is a normal HF folder that differs from the starting weights.
    from safetensors.torch import load_file

    from agents.qwen import QwenAgent, QwenAgentConfig

    QwenAgent(QwenAgentConfig(model=str(out / "final"), dtype="float32", image_backend="pil"))
    base = load_file(str(setup[3] / "model.safetensors"))
    final = _final_params(out)
    assert any(not torch.equal(base[k], final[k]) for k in base)


def test_resume_after_kill_matches_the_uninterrupted_run(run_a, setup):
    root, cfg_path, plugin_dir, _ = setup
    out_a, _ = run_a
    out_b = root / "b"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(plugin_dir), str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "guienv.run.train", "--config", str(cfg_path), "--out", str(out_b)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 300
        while not (out_b / "checkpoints" / "step-000002" / "state.json").exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.time() < deadline, "no checkpoint after 300 s"
            time.sleep(0.05)
        assert proc.poll() is None  # still training: the kill lands mid-run
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert not (out_b / "final").exists()
    assert latest_checkpoint(out_b).name in ("step-000002", "step-000004")
    train(TrainConfig.from_yaml(cfg_path), out_b, log=lambda *a: None)

    ra, rb = _rows(out_a), _rows(out_b)
    assert [r["step"] for r in rb] == [1, 2, 3, 4, 5]  # rows written after the checkpoint were replaced
    for x, y in zip(ra, rb):
        assert x.keys() == y.keys()
        for k in x:
            if k not in TIMING:
                assert x[k] == pytest.approx(y[k], rel=1e-5, abs=1e-7), (x["step"], k)
    pa, pb = _final_params(out_a), _final_params(out_b)
    assert pa.keys() == pb.keys()
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], atol=1e-6, rtol=0)
    assert json.loads((out_a / "eval.json").read_text())["eval_after"] == json.loads((out_b / "eval.json").read_text())["eval_after"]


def test_screenspot_and_androidcontrol_files_become_tasks(tmp_path):
    """Real-format files written by the project's writers, read back through load_tasks."""
    from guienv.actions import Action
    from guienv.run.train_config import DataConfig
    from guienv.run.train_data import load_tasks
    from guienv.types import Episode, Step
    from tasks.androidcontrol import write_ui_s1_jsonl
    from tasks.synthapp import SynthConfig, export_screenspot, make_grounding_samples

    synth = SynthConfig(width=224, height=392, distractors=1, clutter=0)
    export_screenspot(10, tmp_path / "ss", synth)
    data = load_tasks(DataConfig(source="screenspot", path=str(tmp_path / "ss"), eval_size=3), "gui-g1")
    assert len(data.train) == 7 and len(data.eval) == 3 and len(data.difficulty) == 7
    assert {t.id for t in data.train}.isdisjoint({t.id for t in data.eval})
    w = [t.weight for t in data.train]
    assert min(w) == pytest.approx(0.5) and max(w) == pytest.approx(1.5)  # GUI-G1 difficulty weights

    shots = make_grounding_samples(4, synth)
    def ep(eid, n):
        steps = tuple(Step(shots[i].image, 224, 392, Action.click(*((np.array(shots[i].box[:2]) + shots[i].box[2:]) / 2)),
                           instruction=f"tap {i}", candidates=(shots[i].box,)) for i in range(n))
        return Episode(eid, f"goal {eid}", steps)
    write_ui_s1_jsonl([ep("1", 1), ep("2", 3), ep("3", 2)], tmp_path / "ac.jsonl")
    d = load_tasks(DataConfig(source="androidcontrol", path=str(tmp_path / "ac.jsonl"), eval_size=1, history_images=1),
                   "gui-g1")
    assert len(d.train) + len(d.eval) == 6
    assert all(t.template == "androidcontrol-low" for t in d.train)
    by_id = {t.id: (t, k) for t, k in zip(d.train, d.difficulty)}
    for tid, (t, k) in by_id.items():
        eid, i = tid.split(":")
        assert k.steps == {"1": 1, "2": 3, "3": 2}[eid]  # trajectory length: the curriculum's CRAFT-GUI axis
        assert len(t.images) == (2 if int(i) > 0 else 1)  # previous screen shown as an extra image
        assert t.fields["goal"] == f"goal {eid}" and len(t.history) == int(i)


def test_hybrid_reward_block_scores_step_tasks(setup):
    """reward.hybrid (CRAFT-GUI rules + judge) is wired for Step targets when rewards.hybrid imports."""
    pytest.importorskip("rewards.hybrid")
    from agents.policy import Policy
    from agents.qwen import QwenAgent, QwenAgentConfig
    from agents.train_prompts import TrainPrompt
    from guienv.actions import Action
    from guienv.run.train import _make_reward
    from guienv.run.train_config import RewardConfig
    from guienv.types import Step
    from tasks.synthapp import SynthConfig, make_grounding_samples

    pol = Policy(QwenAgent(QwenAgentConfig(model=str(setup[3]), max_pixels=12544, dtype="float32", image_backend="pil")))
    reward = _make_reward(RewardConfig(composite={"terms": [{"name": "accuracy", "params": {"protocol": "plain"}}]},
                                       hybrid={"judge_mode": "never", "format_weight": 0.2}), pol)
    s = make_grounding_samples(1, SynthConfig(width=224, height=392, distractors=1, clutter=0))[0]
    step = Step(s.image, 224, 392, Action.click(50, 60), instruction="tap", candidates=((40, 50, 60, 70),))
    task = TrainPrompt("e:0", (s.image,), {"goal": "g", "instruction": "tap", "history": ""}, step, "androidcontrol-low", goal="g")
    rx, ry = Screen(224, 392, pol.resize).resized
    good = f'{{"action": "click", "coordinate": [{round(50 * rx / 224)}, {round(60 * ry / 392)}]}}'
    bad = '{"action": "click", "coordinate": [1, 1]}'
    scores = reward.score([good, bad, "no action"], [task] * 3)
    assert [x.reward for x in scores] == pytest.approx([1.0, 0.2, 0.0])  # 0.2 format + 0.8 rule
    assert scores[0].terms["rule"] == 1.0 and scores[0].terms["judged"] == 0.0 and scores[0].correct
