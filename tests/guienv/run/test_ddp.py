"""Distributed GRPO: ``guienv train`` under ``torchrun`` with 2 CPU processes (gloo) makes the same
update as one process on the same global batch (the step's prompts split across the ranks).

Sampling uses ``grpo.seed_per_prompt`` (each prompt's group drawn from a seed derived from the
step and its global index), so both runs see identical completions; everything after that is what
is being tested: rank-local advantages, the global loss normalisers, DDP's gradient averaging,
gradient clipping on the averaged gradient, the replicated curriculum and the rank-0 logging."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from agents.tiny_model import build_tiny_model
from guienv.run.train import train
from guienv.run.train_config import TrainConfig

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]

PLUGIN = '''
from rewards.composite import TERMS, register_term
if "digit_fraction_ddp" not in TERMS:
    @register_term("digit_fraction_ddp")
    def digit_fraction(inp):
        t = inp.text
        return sum(c.isdigit() for c in t) / max(len(t), 1)
'''

CONFIG = """
model: {{path: {model}, max_pixels: 12544, image_backend: pil}}
data:
  train_size: 8
  eval_size: 2
  synth: {{width: 224, height: 392, target_size: [0.01, 0.08], distractors: 2, clutter: 0}}
reward:
  imports: [guienv_ddp_reward_plugin]
  composite: {{terms: [{{name: gui_g1}}, {{name: digit_fraction_ddp}}]}}
curriculum: {{stages: 2, max_steps: 1}}
grpo: {{group_size: 4, prompts_per_step: 4, max_new_tokens: 8, micro_batch_size: {micro}, lr: 0.001, temperature: 1.0,
        seed_per_prompt: true, max_grad_norm: 0.02, aggregation: {aggregation}}}
train: {{steps: 1, save_every: 1, eval_before: false, tensorboard: false, plot: false, progress: false,
         distributed: {distributed}}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _params(out: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(out / "final" / "model.safetensors"))


def _row(out: Path) -> dict:
    return json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    plugins = root / "plugins"
    plugins.mkdir()
    (plugins / "guienv_ddp_reward_plugin.py").write_text(PLUGIN)
    sys.path.insert(0, str(plugins))
    yield root, plugins, build_tiny_model(root / "tiny")
    sys.path.remove(str(plugins))


@pytest.mark.parametrize("distributed,aggregation", [("ddp", "token-mean"), ("fsdp", "constant")])
def test_two_process_update_equals_single_process_update(setup, distributed, aggregation):
    root, plugins, model = setup
    tag = f"{distributed}-{aggregation}"
    cfg_multi = root / f"{tag}-multi.yaml"
    cfg_multi.write_text(CONFIG.format(model=model, micro=3, aggregation=aggregation, distributed=distributed))
    cfg_single = root / f"{tag}-single.yaml"
    cfg_single.write_text(CONFIG.format(model=model, micro=16, aggregation=aggregation, distributed="none"))
    single, multi = root / f"{tag}-single", root / f"{tag}-multi"
    train(TrainConfig.from_yaml(cfg_single), single, log=lambda *a: None)

    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=os.pathsep.join([str(plugins), str(REPO), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "guienv.run.train", "--config", str(cfg_multi), "--out", str(multi)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-4000:]
    assert "world 2" in stdout  # rank 0 logged the distributed run

    a, b = _row(single), _row(multi)
    for k in ("reward", "accuracy", "completion_len", "zero_var_frac", "loss", "grad_norm", "clip_frac",
              "reward_digit_fraction_ddp", "groups_used"):
        assert a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-7), k
    assert a["grad_norm"] > 0.02  # clipping (max_grad_norm 0.02) acted on the averaged gradient
    pa, pb = _params(single), _params(multi)
    from safetensors.torch import load_file

    init = load_file(str(model / "model.safetensors"))
    assert any(not torch.equal(init[k], pa[k]) for k in pa)  # the step moved the weights
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], atol=2e-6, rtol=1e-5)


def _torchrun(cfg: Path, out: Path, plugins: Path, *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=os.pathsep.join([str(plugins), str(REPO), os.environ.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "guienv.run.train", "--config", str(cfg), "--out", str(out), *extra]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, stderr[-4000:]
    return stdout


def test_fsdp_run_resumed_from_its_checkpoint_matches_the_uninterrupted_run(setup):
    """Sharded model and optimizer state saved at step 1, a new pair of processes resumes from it,
    and step 2 ends where the uninterrupted two-process run ends."""
    root, plugins, model = setup
    cfg = root / "fsdp-resume.yaml"
    cfg.write_text(CONFIG.format(model=model, micro=3, aggregation="constant", distributed="fsdp")
                   .replace("steps: 1, save_every: 1", "steps: 2, save_every: 1"))
    full, resumed = root / "fsdp-full", root / "fsdp-resumed"
    _torchrun(cfg, full, plugins)
    _torchrun(cfg, resumed, plugins, "--stop-after", "1")
    assert not (resumed / "final").exists() and (resumed / "checkpoints" / "step-000001" / "state.json").exists()
    assert "resuming at step 1" in _torchrun(cfg, resumed, plugins)
    ra = [json.loads(x) for x in (full / "metrics.jsonl").read_text().splitlines()]
    rb = [json.loads(x) for x in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in ra] == [r["step"] for r in rb] == [1, 2]
    for k in ("reward", "loss", "grad_norm", "completion_len"):
        assert ra[1][k] == pytest.approx(rb[1][k], rel=1e-5, abs=1e-7), k
    pa, pb = _params(full), _params(resumed)
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], atol=2e-6, rtol=1e-5)


MULTITURN = """
model: {{path: {model}, max_pixels: 12544, image_backend: pil, template: synthapp-short}}
data:
  source: env
  env_id: guienv/SynthApp-v0
  env_kwargs: {{mode: app, config: {{width: 224, height: 392}}}}
  steps: [2]
  train_size: 4
  eval_size: 3
multiturn: {{max_turns: 2, pool: inline, advantage: {{name: salt}}, invalid_penalty: 0.05}}
curriculum: {{mode: random}}
sft: {{steps: 2, batch_size: 4, lr: 0.001}}
grpo: {{group_size: 2, prompts_per_step: 4, max_new_tokens: 8, micro_batch_size: 4, lr: 0.001, temperature: 1.0}}
train: {{steps: 2, save_every: 1, eval_before: false, tensorboard: false, plot: false, progress: false, eval_batch_size: 2}}
"""


def test_multiturn_run_under_torchrun_splits_the_groups_and_the_held_out_episodes(setup):
    """Two ranks, each with its own env pool: the step's 4 tasks split 2 + 2 (a group never straddles
    ranks), the metrics count all of them once, and held-out episodes split 2 + 1 and add up to 3."""
    root, plugins, model = setup[0], setup[1], setup[2]
    cfg = root / "mt.yaml"
    cfg.write_text(MULTITURN.format(model=model))
    out = root / "mt"
    _torchrun(cfg, out, plugins)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["phase"] for r in rows] == ["sft", "sft", "grpo", "grpo"]
    for r in rows[2:]:
        assert r["groups_used"] == 4 and r["failure_rate"] == 0.0
    summary = json.loads((out / "eval.json").read_text())
    assert summary["eval_after"]["episodes"] == 3
    demos = json.loads((out / "demonstrations.json").read_text())
    assert demos["episodes"] == 4  # each rank played the expert on its half of the training tasks
