"""GRPO training step speed: step time, tokens/s, peak memory and the generation/update split.

Builds (or loads) a model, makes SynthApp grounding screens of the chosen size, and runs
``--steps`` timed GRPO steps of :class:`agents.grpo.GRPOTrainer` (after one warm-up step), each
with ``--prompts`` prompts x ``--group`` completions of exactly ``--new-tokens`` tokens
(``min_new_tokens``, so every step does the same work). Reports per step: seconds, the fraction
spent generating (sampling + reward) vs updating (forward/backward/optimizer), generated tokens/s,
update tokens/s (prompt + completion tokens through forward and backward), peak GPU memory.

    # the lead's GPU run: random-init Qwen2.5-VL-3B architecture (benchmarks/generation_speed.py)
    python benchmarks/train_speed.py --model 3b --precision bf16 --gradient-checkpointing \\
        --size 1920x1080 --max-pixels 1003520 --prompts 4 --group 8 --new-tokens 64 --steps 3 [--trl]
    # CPU smoke run
    python benchmarks/train_speed.py --model tiny --size 224x392 --max-pixels 50176 --steps 2

``--trl`` also runs TRL's ``GRPOTrainer`` (``loss_type=dr_grpo``, same model, screens, group size,
completion length, temperature, precision and gradient checkpointing; reward
:func:`rewards.trl.grounding_reward_func`) and prints its mean step time beside guienv's. It needs
``pip install trl`` and transformers' Qwen2.5-VL processor (torchvision).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build_model(kind: str, root: Path) -> Path:
    if kind == "tiny":
        from agents.tiny_model import build_tiny_model

        return build_tiny_model(root / "tiny")
    if kind == "3b":
        from benchmarks.generation_speed import build  # Qwen2.5-VL-3B architecture, random init, bf16, CUDA

        return build(root / "qwen25vl-3b-random")
    return Path(kind)


def make_tasks(w: int, h: int, n: int):
    from agents.train_prompts import grounding_prompt
    from tasks.synthapp import SynthConfig, make_grounding_samples

    cfg = SynthConfig.desktop_preset(width=w, height=h) if w > h else SynthConfig(width=w, height=h)
    return [grounding_prompt(s) for s in make_grounding_samples(n, cfg)]


def peak_gib(torch) -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB -> GiB (process RSS)


def run_guienv(a, path: Path, tasks) -> dict:
    import torch

    from agents.grpo import GRPOTrainer, GRPOTrainerConfig
    from agents.policy import Policy
    from agents.task_reward import TaskReward
    from guienv.run.train_config import ModelConfig
    from guienv.run.train_model import load_agent

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    mcfg = ModelConfig(path=str(path), max_pixels=a.max_pixels, precision=a.precision, attn_implementation=a.attn,
                       image_backend=a.image_backend)
    agent = load_agent(mcfg, str(path), dev)
    policy = Policy(agent)
    if a.lora:
        from guienv.run.train_config import LoraConfig
        from guienv.run.train_model import apply_lora

        policy.model = apply_lora(policy.model, LoraConfig(r=16, alpha=32))
    if a.gradient_checkpointing:
        policy.model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if a.lora:
            policy.model.enable_input_require_grads()
    cfg = GRPOTrainerConfig(group_size=a.group, prompts_per_step=a.prompts, micro_batch_size=a.micro_batch,
                            max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, temperature=0.9, lr=1e-6,
                            aggregation="constant")
    opt = torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=cfg.lr)
    trainer = GRPOTrainer(policy, cfg, TaskReward("gui-g1", policy.frame, policy.resize), tasks, opt,
                          autocast=torch.bfloat16 if a.precision == "bf16-mixed" else None)
    it = iter(list(range(len(tasks))) * 1000)
    sampler = lambda n: [next(it) for _ in range(n)]  # noqa: E731
    rows = []
    for step in range(a.steps + 1):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
            if step == 1:
                torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        stats, ro = trainer.step(sampler, step)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        gen_tok = sum(len(c) for c in ro.completions)
        upd_tok = sum(len(ro.prompts[i // a.group].ids) + len(c) for i, c in enumerate(ro.completions))
        row = dict(step=step, seconds=dt, generate_s=stats["time_generate"], update_s=stats["time_update"],
                   gen_tokens=gen_tok, update_tokens=upd_tok)
        if step:  # step 0 is warm-up (kernels, allocator)
            rows.append(row)
        print(f"guienv step {step}{' (warm-up)' if not step else ''}: {dt:.2f}s, generate {stats['time_generate']:.2f}s, "
              f"update {stats['time_update']:.2f}s, {gen_tok} generated / {upd_tok} trained tokens")
    sec = np.mean([r["seconds"] for r in rows])
    return {
        "step_s": sec,
        "generate_frac": float(np.mean([r["generate_s"] / r["seconds"] for r in rows])),
        "update_frac": float(np.mean([r["update_s"] / r["seconds"] for r in rows])),
        "gen_tokens_per_s": float(np.mean([r["gen_tokens"] / r["generate_s"] for r in rows])),
        "update_tokens_per_s": float(np.mean([r["update_tokens"] / r["update_s"] for r in rows])),
        "peak_gib": peak_gib(torch),
        "image_tokens_per_prompt": int(policy.encode(tasks[0]).grid.prod(-1).sum()) // 4,
        "rows": rows,
    }


def run_trl(a, path: Path, tasks) -> dict:
    """TRL's GRPOTrainer on the same screens/settings; mean step time from a callback."""
    import torch
    from datasets import Dataset
    from PIL import Image
    from transformers import AutoProcessor, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from rewards.trl import grounding_reward_func

    n = a.prompts * (a.steps + 1)
    rows = []
    for i in range(n):
        t = tasks[i % len(tasks)]
        s = t.target
        rows.append({
            "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text":
                        f"Grounding instruction is: {s.instruction}. Report the bbox coordinates in JSON format."}]}],
            "image": Image.fromarray(s.image.load()), "bbox": list(s.box), "image_size": [s.width, s.height],
        })
    ds = Dataset.from_list(rows)
    proc = AutoProcessor.from_pretrained(str(path), min_pixels=4 * 28 * 28, max_pixels=a.max_pixels)
    times: list[float] = []

    class Timer(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.t)

    bf16 = a.precision in ("bf16", "bf16-mixed")
    args = GRPOConfig(
        output_dir=str(Path(tempfile.mkdtemp()) / "trl"), per_device_train_batch_size=a.prompts * a.group,
        num_generations=a.group, max_completion_length=a.new_tokens, temperature=0.9, learning_rate=1e-6,
        loss_type="dr_grpo", beta=0.0, max_steps=a.steps + 1, bf16=bf16, gradient_checkpointing=a.gradient_checkpointing,
        logging_steps=1, report_to=[], save_strategy="no", generation_kwargs={"min_new_tokens": a.new_tokens},
        model_init_kwargs={"dtype": torch.bfloat16 if a.precision == "bf16" else torch.float32, "attn_implementation": a.attn},
    )
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer = GRPOTrainer(model=str(path), reward_funcs=[grounding_reward_func(frame="resized")], args=args,
                          train_dataset=ds, processing_class=proc, callbacks=[Timer()])
    trainer.train()
    return {"step_s": float(np.mean(times[1:])) if len(times) > 1 else float("nan"), "peak_gib": peak_gib(torch),
            "steps": len(times)}


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny | 3b (random-init Qwen2.5-VL-3B architecture, CUDA) | a model folder")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--micro-batch", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--size", default="1920x1080", help="screenshot WxH")
    ap.add_argument("--max-pixels", type=int, default=1280 * 28 * 28)
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "bf16-mixed"])
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--image-backend", default="auto", choices=["auto", "pil", "torchvision"])
    ap.add_argument("--trl", action="store_true", help="also time TRL's GRPOTrainer on the same data and settings")
    ap.add_argument("--json", help="write results here")
    a = ap.parse_args(argv)
    if a.model == "3b" and not torch.cuda.is_available():
        print("--model 3b needs a CUDA GPU")
        return 1
    if not torch.cuda.is_available() and a.precision == "bf16":
        a.precision = "fp32"
    w, h = (int(v) for v in a.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = build_model(a.model, Path(tmp))
        tasks = make_tasks(w, h, max(a.prompts * 2, 8))
        print(f"model {a.model} ready in {time.perf_counter() - t0:.1f}s; {len(tasks)} screens {w}x{h}, max_pixels {a.max_pixels}")
        res = {"args": vars(a), "guienv": run_guienv(a, path, tasks)}
        if a.trl:
            import gc

            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            try:
                res["trl"] = run_trl(a, path, tasks)
            except Exception as exc:  # report, don't hide: TRL's VLM path needs torchvision and a processor
                res["trl"] = {"error": f"{type(exc).__name__}: {exc}"}
    g = res["guienv"]
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    print(f"\n{a.prompts} prompts x {a.group} completions x {a.new_tokens} tokens, {w}x{h} -> "
          f"{g['image_tokens_per_prompt']} image tokens/prompt, {a.precision}, gc={a.gradient_checkpointing}, lora={a.lora}, {dev}")
    print(f"{'':8} {'step s':>8} {'gen %':>6} {'upd %':>6} {'gen tok/s':>10} {'upd tok/s':>10} {'peak GiB':>9}")
    print(f"{'guienv':8} {g['step_s']:>8.2f} {100 * g['generate_frac']:>6.1f} {100 * g['update_frac']:>6.1f} "
          f"{g['gen_tokens_per_s']:>10.1f} {g['update_tokens_per_s']:>10.1f} {g['peak_gib']:>9.2f}")
    if "trl" in res:
        t = res["trl"]
        if "error" in t:
            print(f"{'trl':8} failed: {t['error']}")
        else:
            print(f"{'trl':8} {t['step_s']:>8.2f} {'':>6} {'':>6} {'':>10} {'':>10} {t['peak_gib']:>9.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
