"""GRPO trainer on the tiny random-init Qwen2.5-VL (built and loaded through from_pretrained):
log-prob plumbing, multi-image and long-screenshot prompts, the update (gradient accumulation,
sign of the update, KL, zero-variance handling, LoRA, gradient checkpointing) and SFT answers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from agents.grpo import GRPOTrainer, GRPOTrainerConfig
from agents.micro_batch import gradient_sync, micro_batches
from agents.policy import Policy
from agents.qwen import QwenAgent, QwenAgentConfig
from agents.sft import SFTConfig, SFTTrainer, action_answer, target_answer
from agents.task_reward import TaskReward
from agents.tiny_model import build_tiny_model
from agents.train_prompts import TrainPrompt, grounding_prompt
from guienv.actions import Action, ActionType
from guienv.frames import Frame, Resize, Screen
from guienv.io import encode_png
from guienv.parsing import parse_action
from guienv.types import GroundingSample, ImageRef, Step
from rewards.composite import TERMS, register_term
from tasks.synthapp import SynthConfig, make_grounding_samples

pytestmark = pytest.mark.slow

MAX_PIXELS = 16 * 28 * 28
SYNTH = SynthConfig(width=224, height=392, target_size=(0.01, 0.08), distractors=2, clutter=0)

if "test_digit_fraction" not in TERMS:
    @register_term("test_digit_fraction")
    def _digits(inp, odd_zero: bool = False) -> float:
        """A reward random text earns: its fraction of digits (0 for odd-indexed tasks if asked)."""
        if odd_zero and int(str(inp.target.id).rsplit("-", 1)[-1]) % 2:
            return 0.0
        t = inp.text
        return sum(c.isdigit() for c in t) / max(len(t), 1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen25vl")


@pytest.fixture(scope="module")
def samples():
    return make_grounding_samples(6, SYNTH)


def policy(tiny) -> Policy:
    return Policy(QwenAgent(QwenAgentConfig(model=str(tiny), max_pixels=MAX_PIXELS, dtype="float32", image_backend="pil")))


def trainer(pol: Policy, tasks, reward="digits", lr=1e-2, **kw) -> GRPOTrainer:
    ref = kw.pop("ref", None)
    cfg = GRPOTrainerConfig(**{"group_size": 4, "prompts_per_step": 2, "max_new_tokens": 10, "micro_batch_size": 8,
                               "lr": lr, "temperature": 1.0, **kw})
    if reward == "digits":
        reward = {"terms": [{"name": "test_digit_fraction"}]}
    elif reward == "digits_even":
        reward = {"terms": [{"name": "test_digit_fraction", "params": {"odd_zero": True}}]}
    opt = torch.optim.AdamW([p for p in pol.model.parameters() if p.requires_grad], lr=lr)
    return GRPOTrainer(pol, cfg, TaskReward(reward, pol.frame, pol.resize), tasks, opt, ref_model=ref)


def cycle(ids):
    it = iter(list(ids) * 100)
    calls = []

    def sampler(n):
        calls.append(n)
        return [next(it) for _ in range(n)]

    sampler.calls = calls
    return sampler


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_teacher_forced_logprobs_match_sampling_and_ignore_padding(tiny, samples):
    from transformers import GenerationConfig

    pol = policy(tiny)
    enc = [pol.encode(grounding_prompt(s)) for s in samples[:2]]
    assert len(pol.banned_ids) == 5  # image/video pads and vision markers are never sampled
    torch.manual_seed(0)
    batch = pol.collate(enc)
    out = pol.model.generate(**batch, generation_config=GenerationConfig(
        do_sample=True, temperature=0.7, top_k=0, max_new_tokens=8, num_return_sequences=2, pad_token_id=pol.pad_id,
        eos_token_id=pol.eos_ids, suppress_tokens=pol.banned_ids, return_dict_in_generate=True, output_logits=True))
    new = out.sequences[:, batch["input_ids"].shape[1]:]
    raw = torch.stack(out.logits, 1).float()  # raw logits: apply the suppression as sampling did
    raw[..., pol.banned_ids] = float("-inf")
    gen_lp = torch.log_softmax(raw / 0.7, -1).gather(-1, new.unsqueeze(-1)).squeeze(-1)
    assert not torch.isin(new, torch.tensor(pol.banned_ids)).any()
    comps = pol._completion_lists(new)
    prompts = [enc[i // 2] for i in range(4)]
    with torch.no_grad():
        lp, mask = pol.token_logprobs(pol.model, prompts, comps, temperature=0.7)  # one padded batch
        for i, c in enumerate(comps):
            alone, _ = pol.token_logprobs(pol.model, [prompts[i]], [c], temperature=0.7)
            n = len(c)
            assert mask[i].sum() == n
            torch.testing.assert_close(lp[i, :n], alone[0, :n], atol=1e-5, rtol=0)
            torch.testing.assert_close(lp[i, :n], gen_lp[i, :n], atol=1e-4, rtol=0)


def test_shared_vision_encoding_gives_the_same_logprobs_and_gradients(tiny, samples):
    pol = policy(tiny)
    enc = [pol.encode(grounding_prompt(s)) for s in samples[:2]]
    prompts = [enc[0], enc[0], enc[1], enc[1], enc[1]]  # rows sharing prompt objects
    comps = [[305, 306, 307], [308, 309], [310], [311, 312, 313, 314], [315, 316]]
    out = []
    for share in (True, False):
        pol.share_vision = share
        pol.model.zero_grad()
        lp, m = pol.token_logprobs(pol.model, prompts, comps)
        (lp * m).sum().backward()
        out.append((lp.detach(), {k: p.grad.clone() for k, p in pol.model.named_parameters() if p.grad is not None}))
    (a, ga), (b, gb) = out
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    assert any("visual" in k for k in ga) and ga.keys() == gb.keys()
    for k in ga:
        torch.testing.assert_close(ga[k], gb[k], atol=1e-6, rtol=1e-4)


def _png(h, w, seed=0):
    return ImageRef(data=encode_png(np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)), where="test")


def test_multi_image_prompt_and_long_screenshot(tiny):
    pol = policy(tiny)
    # A long (scrolling) screenshot, 112 x 1400, shown after one previous screen.
    box = (20.0, 1100.0, 90.0, 1160.0)
    target = GroundingSample("long-0", _png(1400, 112), "tap the bottom button", box, 112, 1400)
    task = TrainPrompt("long-0", (_png(392, 224, 1), target.image), {"instruction": target.instruction}, target)
    enc = pol.encode(task)
    assert enc.grid.shape == (2, 3)
    n_pad = int((enc.ids == pol.model.config.image_token_id).sum())
    assert n_pad == int(enc.grid.prod(-1).sum()) // 4
    rw, rh = Screen(112, 1400, pol.resize).resized
    assert tuple(enc.grid[1, 1:].tolist()) == (rh // 14, rw // 14)  # the current screen is the last image
    comps = pol.sample([enc], 2, temperature=1.0, max_new_tokens=6)
    assert len(comps) == 2 and all(1 <= len(c) <= 6 for c in comps)
    lp, mask = pol.token_logprobs(pol.model, [enc, enc], comps)
    assert torch.isfinite(lp[mask.bool()]).all()
    # The GT answer written in the model's (resized) frame scores the full GUI-G1 reward after
    # mapping back to the 1400-pixel-tall original.
    reward = TaskReward("gui-g1", pol.frame, pol.resize)
    s = reward.score([target_answer(task, pol.frame, pol.resize)], [task])[0]
    assert s.correct and s.terms["gui_g1"] > 1.3 and s.size_ratio == pytest.approx(1.0, abs=0.2)


def test_grpo_step_updates_parameters_and_reports_metrics(tiny, samples):
    pol = policy(tiny)
    tr = trainer(pol, [grounding_prompt(s) for s in samples])
    before = params(pol.model)
    stats, ro = tr.step(cycle(range(6)), step=1)
    for k in ("reward", "accuracy", "kl", "clip_frac", "completion_len", "zero_var_frac", "loss", "grad_norm",
              "box_area_ratio", "reward_test_digit_fraction", "time_generate", "time_update"):
        assert k in stats
    assert np.isfinite(stats["loss"]) and stats["grad_norm"] > 0
    assert stats["ratio"] == pytest.approx(1.0)  # mu = 1: on-policy
    adv = ro.advantages.reshape(-1, 4)
    np.testing.assert_allclose(adv.sum(axis=1), 0.0, atol=1e-9)  # mean-centred per group
    np.testing.assert_allclose(adv, ro.rewards.reshape(-1, 4) - ro.rewards.reshape(-1, 4).mean(1, keepdims=True))
    assert all(1 <= len(c) <= 10 for c in ro.completions)
    after = params(pol.model)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def _fixed_rollout(pol, samples, n_prompts=2, seed=0):
    tr = trainer(pol, [grounding_prompt(s) for s in samples])
    torch.manual_seed(seed)
    ro = tr.rollout(list(range(n_prompts)))
    ro.advantages = np.random.default_rng(seed).normal(size=len(ro.advantages))
    ro.weights = np.random.default_rng(seed + 1).uniform(0.5, 1.5, size=len(ro.weights))
    return ro


# sequence-mean shares constant's normaliser (global sequence count); token-mean uses the global token count.
@pytest.mark.parametrize("aggregation", ["token-mean", "constant"])
def test_micro_batches_accumulate_to_the_full_batch_gradient(tiny, samples, aggregation):
    """Gradient accumulation over micro-batches uses the whole batch's normaliser (what DDP needs too)."""
    ro = _fixed_rollout(policy(tiny), samples)
    results = []
    for mb in (8, 3):
        pol = policy(tiny)
        tr = trainer(pol, [grounding_prompt(s) for s in samples], lr=1e-3, micro_batch_size=mb, aggregation=aggregation,
                     max_grad_norm=None)
        stats = tr.update(copy.deepcopy(ro))
        results.append(({k: p.grad.clone() for k, p in pol.model.named_parameters() if p.grad is not None}, stats["loss"]))
    (a, la), (b, lb) = results
    assert la == pytest.approx(lb, rel=1e-5) and la != 0
    assert a.keys() == b.keys() and len(a) > 10
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-7, rtol=1e-4)


def test_update_raises_logprob_of_positive_advantage_completions(tiny, samples):
    pol = policy(tiny)
    ro = _fixed_rollout(pol, samples)
    ro.weights[:] = 1.0
    prompts = [ro.prompts[r // 4] for r in range(len(ro.completions))]
    with torch.no_grad():
        lp0, m = pol.token_logprobs(pol.model, prompts, ro.completions)
    tr = trainer(pol, [grounding_prompt(s) for s in samples], lr=3e-3, inner_epochs=2)
    stats = tr.update(ro)
    with torch.no_grad():
        lp1, _ = pol.token_logprobs(pol.model, prompts, ro.completions)
    delta = ((lp1 - lp0) * m).sum(1) / m.sum(1)
    adv = torch.as_tensor(ro.advantages)
    assert delta[adv > 0].mean() > delta[adv < 0].mean()
    assert float(torch.corrcoef(torch.stack([delta.double(), adv]))[0, 1]) > 0.3
    assert "clip_frac_last_epoch" in stats


def test_zero_variance_groups_keep_filter_resample(tiny, samples):
    tasks = [grounding_prompt(s) for s in samples]  # ids synthapp-0-0 .. -5: odd ones always score 0
    pol = policy(tiny)
    before = params(pol.model)
    stats, ro = trainer(pol, tasks, reward="gui-g1", zero_variance="filter").step(cycle([0, 1]))
    # A random model never answers a parsable box: every group is zero-variance, nothing to learn.
    assert stats["zero_var_frac"] == 1.0 and stats["groups_used"] == 0 and stats.get("skipped_update") == 1.0
    assert all(torch.equal(before[k], v) for k, v in params(pol.model).items())

    stats, ro = trainer(pol, tasks, reward="digits_even", zero_variance="keep").step(cycle([0, 1, 2, 3]))
    assert stats["zero_var_frac"] == pytest.approx(0.5) and stats["groups_used"] == 2
    tr = trainer(pol, tasks, reward="digits_even", zero_variance="filter")
    stats, ro = tr.step(cycle([0, 1]))
    assert ro.task_ids == [0] and stats["groups_used"] == 1
    assert [t for t, _ in tr.outcomes] == [0, 1]  # the curriculum still hears about the filtered group
    sampler = cycle([1, 3, 2, 4])
    stats, ro = trainer(pol, tasks, reward="digits_even", zero_variance="resample", resample_rounds=3).step(sampler)
    # Round 1 replaces both zero-variance groups with tasks 2 and 4 (even: informative).
    assert sampler.calls == [2, 2] and sorted(ro.task_ids) == [2, 4] and stats["resample_rounds"] == 1
    assert not ro.zero_variance().any()


def test_kl_to_frozen_reference(tiny, samples):
    pol = policy(tiny)
    ref = copy.deepcopy(pol.model).eval().requires_grad_(False)
    tr = trainer(pol, [grounding_prompt(s) for s in samples], lr=5e-3, beta=0.1, ref=ref)
    s1, _ = tr.step(cycle(range(6)))
    assert s1["kl"] == pytest.approx(0.0, abs=1e-6)  # policy == reference before the first update
    s2, _ = tr.step(cycle(range(6)))
    assert s2["kl"] > 1e-6
    with pytest.raises(ValueError, match="reference"):
        trainer(policy(tiny), [], beta=0.1)


def test_lora_trains_only_adapters(tiny, samples):
    from guienv.run.train_config import LoraConfig
    from guienv.run.train_model import apply_lora

    pol = policy(tiny)
    pol.model = apply_lora(pol.model, LoraConfig(r=4, alpha=8))
    names = [n for n, p in pol.model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names) and not any("visual" in n for n in names)
    before = params(pol.model)
    tr = trainer(pol, [grounding_prompt(s) for s in samples], lr=1e-2, beta=0.1)  # reference = adapter disabled
    s1, _ = tr.step(cycle(range(6)))
    s2, _ = tr.step(cycle(range(6)))
    after = params(pol.model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("lora_" in k for k in changed)
    assert s1["kl"] == pytest.approx(0.0, abs=1e-6) and s2["kl"] > 0


def test_gradient_checkpointing_gives_the_same_update_and_bf16_autocast_runs(tiny, samples):
    ro = _fixed_rollout(policy(tiny), samples)
    out = []
    for gc in (False, True):
        pol = policy(tiny)
        if gc:
            pol.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        trainer(pol, [grounding_prompt(s) for s in samples], lr=1e-3).update(copy.deepcopy(ro))
        out.append(params(pol.model))
    for k in out[0]:
        torch.testing.assert_close(out[0][k], out[1][k], atol=1e-6, rtol=1e-5)
    pol = policy(tiny)
    tr = trainer(pol, [grounding_prompt(s) for s in samples], lr=1e-3)
    tr.autocast = torch.bfloat16
    assert np.isfinite(tr.update(copy.deepcopy(ro))["loss"])


def test_action_answers_round_trip_through_the_parser():
    screen = Screen(1080, 2400, Resize(max_pixels=MAX_PIXELS))
    for a in (Action.click(540, 1200), Action.long_press(10, 20), Action.swipe((100, 2000), (100, 400)),
              Action.type_text("hello"), Action.open_app("Clock"), Action.simple("navigate_back"), Action.simple("wait"),
              Action.finish("complete"), Action.scroll("down")):
        text = action_answer(a, screen, Frame.RESIZED)
        back = parse_action(text, frame=Frame.RESIZED)
        assert back.is_valid, text
        want = ActionType.SWIPE if a.type is ActionType.SCROLL else a.type
        assert back.type is want, text
        if a.point is not None and a.type is not ActionType.SCROLL:
            px = back.to_frame(Frame.PIXEL, screen).point
            assert abs(px[0] - a.point[0]) <= 1080 / screen.resized[0] and abs(px[1] - a.point[1]) <= 2400 / screen.resized[1]


def test_sft_answers_earn_full_reward_and_sft_lowers_the_loss(tiny, samples):
    pol = policy(tiny)
    tasks = [grounding_prompt(s) for s in samples[:2]]
    reward = TaskReward("gui-g1", pol.frame, pol.resize)
    scored = reward.score([target_answer(t, pol.frame, pol.resize) for t in tasks], tasks)
    assert all(s.correct and s.terms["gui_g1"] > 1.2 for s in scored)
    step = Step(samples[0].image, 224, 392, Action.click(50, 60), candidates=((40, 50, 60, 70),))
    st = TrainPrompt("s", (step.image,), {"goal": "g", "instruction": "tap", "history": ""}, step, "androidcontrol-low")
    s = TaskReward({"terms": [{"name": "accuracy", "params": {"protocol": "plain"}}]}, pol.frame, pol.resize).score(
        [target_answer(st, pol.frame, pol.resize)], [st])[0]
    assert s.correct and s.reward == 1.0

    opt = torch.optim.AdamW(pol.model.parameters(), lr=1e-2)
    sft = SFTTrainer(pol, SFTConfig(steps=4, batch_size=2, micro_batch_size=1), tasks, opt)
    losses = [sft.step(lambda n: [0, 1][:n])["sft_loss"] for _ in range(4)]
    assert losses[-1] < losses[0] - 0.5


def test_micro_batches_cover_the_rows_in_order():
    assert micro_batches(5, 2) == [[0, 1], [2, 3], [4]]
    assert micro_batches(0, 3) == []
    with pytest.raises(ValueError):
        micro_batches(4, 0)


GRAD_SYNC_SCRIPT = """
import json, sys
import torch, torch.distributed as dist
from agents.micro_batch import gradient_sync, micro_batches

dist.init_process_group("gloo")
r = dist.get_rank()
x = torch.full((1, 3), float(r + 1))  # rank 0 sees 1s, rank 1 sees 2s
if sys.argv[1] == "ddp":
    model = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 2, bias=False))
    param = model.module.weight
else:
    from torch.distributed.fsdp import fully_shard
    model = fully_shard(torch.nn.Linear(3, 2, bias=False))
    param = model.weight
grads = []
for j, _ in enumerate(micro_batches(3, 1)):
    with gradient_sync(model, last=j == 2):
        model(x).sum().backward()
    g = param.grad
    grads.append(None if g is None else (g.full_tensor() if hasattr(g, "full_tensor") else g)[0, 0].item())
open(f"{sys.argv[2]}/rank{r}.json", "w").write(json.dumps(grads))
dist.barrier()  # no rank tears gloo down while the other still talks
dist.destroy_process_group()
"""


@pytest.mark.parametrize("wrapper", ["ddp", "fsdp2"])
def test_gradient_sync_reduces_only_after_the_last_micro_batch(tmp_path, wrapper):
    """Two gloo ranks accumulate three micro-batches: local sums until the last, then the average."""
    import json
    import os
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "grad_sync.py"
    script.write_text(GRAD_SYNC_SCRIPT, encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    repo = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(PYTHONPATH=os.pathsep.join([str(repo), env.get("PYTHONPATH", "")]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), str(script), wrapper, str(tmp_path)]
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    assert proc.returncode == 0, err[-3000:]
    rows = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert rows[0][-1] == rows[1][-1] == pytest.approx(4.5)  # (1+1+1 + 2+2+2) / 2: one reduce of the sums
    if wrapper == "ddp":  # before the last micro-batch each rank holds only its own running sum
        assert rows[0][:2] == pytest.approx([1.0, 2.0]) and rows[1][:2] == pytest.approx([2.0, 4.0])


def test_gradient_sync_on_a_plain_module_is_a_no_op():
    plain = torch.nn.Linear(2, 1)
    with gradient_sync(plain, last=False):  # a single-process module: nothing to defer
        plain(torch.ones(1, 2)).sum().backward()
    assert torch.equal(plain.weight.grad, torch.ones(1, 2))
