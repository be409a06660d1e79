"""Generation engines side by side: the policy's transformers ``generate`` versus a colocated vLLM.

On the same prompts, every completion exactly ``--new-tokens`` tokens (``min_new_tokens`` ==
``max_new_tokens``), so both engines do the same work. Per engine:

* generation: ``--steps`` rounds of ``--prompts`` prompts x ``--group`` samples (temperature 1),
  generated tokens per second;
* a GRPO step: that generation plus :meth:`agents.grpo.GRPOTrainer.update` on its completions
  (fixed advantages; the vLLM engine's weight sync after the optimizer step is part of it);

and the ratios (vllm / transformers tokens/s, transformers / vllm GRPO step time). The policy's
weights are restored before each engine, so both start from the same model.

    python benchmarks/engine_speed.py --smoke --json /tmp/speed.json                 # CPU: tiny text model
    python benchmarks/engine_speed.py --kind vl --model 3b --prompts 8 --group 8 --new-tokens 64 --steps 3 \\
        --json runs/engine_speed.json                                                # GPU: Qwen2.5-VL-3B architecture

``--model``: ``tiny`` (the tiny random-init text or VL model), ``3b`` (``--kind vl``: a random-init
Qwen2.5-VL-3B architecture, :func:`benchmarks.generation_speed.build`, bf16 on the GPU) or a local
model folder. vLLM (``vllm.LLM``, :mod:`agents.vllm_engine`) runs vision models only where
torchvision loads (a GPU machine); on CPU use ``--kind text``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _model_path(a: argparse.Namespace, tmp: Path) -> Path:
    if a.model == "tiny":
        from agents.tiny_model import build_tiny_model, build_tiny_text_model

        return build_tiny_text_model(tmp / "tiny-text") if a.kind == "text" else build_tiny_model(tmp / "tiny-vl")
    if a.model == "3b":
        if a.kind != "vl":
            raise SystemExit("engine_speed: --model 3b is the Qwen2.5-VL-3B architecture (--kind vl); give a folder for text")
        from generation_speed import build

        return build(tmp / "qwen25vl-3b-random")
    path = Path(a.model).expanduser()
    if not (path / "config.json").is_file():
        raise SystemExit(f"engine_speed: --model {a.model}: not tiny, 3b or a model folder with config.json")
    return path


def _policy(a: argparse.Namespace, path: Path):
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = a.dtype or ("bfloat16" if device == "cuda" else "float32")
    if a.kind == "text":
        from agents.text_policy import load_text_policy

        return load_text_policy(str(path), device=device, dtype=dtype)
    from agents.policy import Policy
    from agents.qwen import QwenAgent, QwenAgentConfig

    return Policy(QwenAgent(QwenAgentConfig(model=str(path), dtype=dtype, device=device, max_pixels=a.max_pixels)))


def _prompts(a: argparse.Namespace, policy) -> list:
    if a.kind == "text":
        return [policy.encode_messages([{"role": "user", "content": f"You are in room {i}. Find the key and open the door."}])
                for i in range(a.prompts)]
    rng = np.random.default_rng(0)
    w, h = (int(v) for v in a.size.split("x"))
    out = []
    for i in range(a.prompts):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)  # both engines smart-resize it with the same bounds
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"click the button number {i}"}]}]
        out.append(policy.encode_messages(msgs, [img]))
    return out


def _sync_device() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def run_engine(name: str, a: argparse.Namespace, policy, path: Path, prompts: list, state: dict) -> dict:
    import torch

    from agents.engines import EngineConfig, make_engine
    from agents.grpo import GRPOTrainer, GRPOTrainerConfig, Rollout
    from agents.task_reward import Scored

    policy.model.load_state_dict(state)
    opts: dict = {}
    if name == "vllm":
        opts = {"max_model_len": max(len(p.ids) for p in prompts) + a.new_tokens + 8}
        if policy.device.type == "cuda":
            opts["gpu_memory_utilization"] = a.gpu_memory_utilization
    t0 = time.perf_counter()
    engine = make_engine(EngineConfig(engine=name, vllm=opts), policy, model_path=str(path), sync=True)
    init_s = time.perf_counter() - t0
    P, G, T = a.prompts, a.group, a.new_tokens
    gen = dict(temperature=1.0, max_new_tokens=T, min_new_tokens=T)
    policy.sample(prompts[:1], 1, **{**gen, "max_new_tokens": min(T, 4), "min_new_tokens": min(T, 4)})  # warm-up
    cfg = GRPOTrainerConfig(group_size=G, prompts_per_step=P, max_new_tokens=T, min_new_tokens=T, temperature=1.0,
                            micro_batch_size=a.micro_batch, lr=1e-6, max_grad_norm=None)
    opt = torch.optim.AdamW([p for p in policy.model.parameters() if p.requires_grad], lr=1e-6)
    trainer = GRPOTrainer(policy, cfg, None, [], opt, generation=engine.config)  # type: ignore[arg-type]
    adv = np.tile(np.linspace(-1.0, 1.0, G), P)
    gen_s = upd_s = 0.0
    lengths: list[int] = []
    loss = float("nan")
    for _ in range(a.steps):
        _sync_device()
        t = time.perf_counter()
        comps = policy.sample(prompts, G, **gen)
        _sync_device()
        gen_s += time.perf_counter() - t
        lengths += [len(c) for c in comps]
        ro = Rollout(list(range(P)), prompts, comps, [Scored(0.0, {}, False, True)] * len(comps), adv.copy(),
                     np.ones(len(comps)), G)
        t = time.perf_counter()
        loss = trainer.update(ro)["loss"]
        _sync_device()
        upd_s += time.perf_counter() - t
    n_tok = P * G * T * a.steps
    policy.engine = None
    return {"init_s": init_s, "generate_s": gen_s / a.steps, "update_s": upd_s / a.steps,
            "grpo_step_s": (gen_s + upd_s) / a.steps, "tokens_per_s": n_tok / gen_s, "completion_tokens": lengths,
            "syncs": engine.syncs, "sync_s": engine.sync_time / max(engine.syncs, 1), "loss": float(loss)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kind", choices=["text", "vl"], default="text")
    ap.add_argument("--model", default="tiny", help="tiny | 3b (vl) | a model folder")
    ap.add_argument("--engines", nargs="+", choices=["transformers", "vllm"], default=["transformers", "vllm"])
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--micro-batch", type=int, default=16, help="sequences per forward/backward of the update")
    ap.add_argument("--max-pixels", type=int, default=1280 * 28 * 28, help="vl: smart-resize bound")
    ap.add_argument("--size", default="1280x720", help="vl: screenshot WxH")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], help="default: bfloat16 on GPU, float32 on CPU")
    ap.add_argument("--gpu-memory-utilization", type=float, default=0.3, help="vllm on GPU: its share next to training")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--smoke", action="store_true", help="text, tiny, 2 prompts x 2, 8 tokens, 1 step (CI)")
    a = ap.parse_args(argv)
    if a.smoke:
        a.kind, a.model, a.prompts, a.group, a.new_tokens, a.steps = "text", "tiny", 2, 2, 8, 1
    for key in ("prompts", "group", "new_tokens", "steps", "micro_batch"):
        if getattr(a, key) < (2 if key == "group" else 1):
            raise SystemExit(f"engine_speed: --{key.replace('_', '-')} must be >= {2 if key == 'group' else 1}")
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import torch

    torch.manual_seed(0)
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = _model_path(a, Path(tmp))
        policy = _policy(a, path)
        prompts = _prompts(a, policy)
        state = {k: v.detach().clone() for k, v in policy.model.state_dict().items()}
        for name in a.engines:
            results[name] = run_engine(name, a, policy, path, prompts, state)
            r = results[name]
            print(f"{name:>12}: {r['tokens_per_s']:9.1f} tokens/s, generate {r['generate_s']:.3f} s, update {r['update_s']:.3f} s, "
                  f"GRPO step {r['grpo_step_s']:.3f} s (start {r['init_s']:.1f} s, sync {r['sync_s']:.3f} s)")
    ratios = {}
    if "transformers" in results and "vllm" in results:
        t, v = results["transformers"], results["vllm"]
        ratios = {"vllm_over_transformers_tokens_per_s": v["tokens_per_s"] / t["tokens_per_s"],
                  "transformers_over_vllm_grpo_step_s": t["grpo_step_s"] / v["grpo_step_s"]}
        print(f"vllm / transformers: {ratios['vllm_over_transformers_tokens_per_s']:.2f}x tokens/s, "
              f"GRPO step {ratios['transformers_over_vllm_grpo_step_s']:.2f}x faster")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    out = {"config": {k: v for k, v in vars(a).items() if k != "json"}, "device": device, "engines": results,
           "ratios": ratios}
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
