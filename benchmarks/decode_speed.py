"""Decode options side by side in one run: dynamic KV cache, static KV cache, static + compiled step.

Times :meth:`agents.policy.Policy.sample` (the GRPO rollout path),
:meth:`~agents.policy.Policy.sample_logprobs` (its ``output_scores`` path) and
:meth:`agents.qwen.QwenAgent.generate` (``guienv eval``'s path, ``agent``) under each option of
:mod:`agents.decoding` (``Policy.configure_decoding``, ``QwenAgentConfig.cache``/``compile``), at batch size 1 and B,
on the same SynthApp screens; every row decodes exactly ``--new-tokens`` greedy tokens
(``min_new_tokens``), so all options do the same work, and each option's tokens are compared with
the dynamic cache's (they must be identical). One warm-up call per option and batch size comes
first (it holds the ``torch.compile`` time, reported as ``warmup_s``). Reports decoded tokens/s,
ms per decode step and the ratio to the dynamic cache.

    # the lead's GPU run: random-init Qwen2.5-VL-3B architecture, bf16 (benchmarks/generation_speed.py)
    python benchmarks/decode_speed.py --model 3b --batch-sizes 1 8 --new-tokens 64 --json decode.json
    # CPU: the tiny VL model (float32)
    python benchmarks/decode_speed.py --model tiny [--smoke]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PATHS = ("sample", "sample_logprobs", "agent")
OPTIONS = {"dynamic": ("dynamic", False), "static": ("static", False), "static+compile": ("static", True)}


def sharpen(model, factor: float) -> None:
    """Scale the decoder's matrices (not the embeddings, not the vision tower) by ``factor``: a
    random-init model with tied embeddings and a 0.02 init greedily repeats its last prompt token,
    which would make every token comparison here trivially equal; scaled, its completions vary."""
    import torch

    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 2 and "embed" not in name and "visual" not in name:
                p.mul_(factor)


def load_policy(kind: str, root: Path, max_pixels: int):
    """(policy, device) for ``tiny`` (built here, CPU float32), ``3b`` (built here, CUDA bf16) or a folder."""
    import torch

    from agents.policy import Policy
    from agents.qwen import QwenAgent, QwenAgentConfig

    cuda = torch.cuda.is_available()
    if kind == "tiny":
        from agents.tiny_model import build_tiny_model

        path, dtype, dev = build_tiny_model(root / "tiny"), "float32", "cpu"  # sharpened below
    elif kind == "3b":
        if not cuda:
            raise SystemExit("--model 3b needs CUDA")
        from benchmarks.generation_speed import build

        path, dtype, dev = build(root / "qwen25vl-3b-random"), "bfloat16", "cuda"
    else:
        path, dtype, dev = Path(kind), ("bfloat16" if cuda else "float32"), ("cuda" if cuda else "cpu")
    agent = QwenAgent(QwenAgentConfig(model=str(path), dtype=dtype, device=dev, max_pixels=max_pixels,
                                      image_backend="pil" if dev == "cpu" else "auto"))
    if kind == "tiny":
        sharpen(agent.model, 40.0)
    return Policy(agent), dev


def prompts(policy, w: int, h: int, n: int):
    """The same screens as encoded training prompts and as ``guienv eval`` observations."""
    from agents.train_prompts import grounding_prompt
    from tasks.synthapp import SynthConfig, make_grounding_samples

    cfg = SynthConfig.desktop_preset(width=w, height=h) if w > h else SynthConfig(width=w, height=h)
    tasks = [grounding_prompt(s) for s in make_grounding_samples(n, cfg)]
    obs = [{"screenshot": t.load_images()[-1], "instruction": s.instruction}
           for t, s in zip(tasks, make_grounding_samples(n, cfg))]
    return [policy.encode(t) for t in tasks], obs


def _sync(dev: str) -> None:
    import torch

    if dev == "cuda":
        torch.cuda.synchronize()


def measure(policy, dev: str, encs, obs, option: str, batch: int, path: str, new_tokens: int, repeats: int) -> dict:
    """One option at one batch size on one path: warm-up, then ``repeats`` timed calls (the fastest kept)."""
    from agents.decoding import decoding_kwargs

    cache, comp = OPTIONS[option]
    policy.configure_decoding(cache=cache, compile=comp)
    agent = policy.agent
    agent.decoding = decoding_kwargs(cache, comp)
    agent.cfg.temperature, agent.cfg.max_new_tokens = 0.0, new_tokens
    agent.cfg.generate_kwargs = {"min_new_tokens": new_tokens}
    kw = dict(temperature=0.0, max_new_tokens=new_tokens, min_new_tokens=new_tokens)

    def call():
        if path == "agent":
            return [g.token_ids for g in agent.generate(obs[:batch])]
        if path == "sample":
            return policy.sample(encs[:batch], 1, **kw)
        return policy.sample_logprobs(encs[:batch], **kw)[0]

    try:
        _sync(dev)
        t = time.perf_counter()
        call()
        _sync(dev)
        warm = time.perf_counter() - t
        times, comps = [], None
        for _ in range(repeats):
            t = time.perf_counter()
            comps = call()
            _sync(dev)
            times.append(time.perf_counter() - t)
    finally:
        policy.configure_decoding()
        agent.decoding = {}
    best = min(times)
    n_tok = sum(len(c) for c in comps)
    return dict(option=option, cache=cache, compile=comp, batch=batch, path=path, seconds=best, seconds_all=times,
                warmup_s=warm, tokens=n_tok, tokens_per_s=n_tok / best, ms_per_step=1000 * best / new_tokens,
                completions=comps)


def after_weight_update(policy, encs, options, new_tokens: int) -> dict:
    """Perturb every weight in place, as an optimizer step does, and decode again under each option:
    a compiled (or CUDA-graphed) decode step must read the new weights, so its greedy tokens must
    still equal the dynamic cache's. ``changed``: the perturbation changed the dynamic cache's
    tokens (else the check would prove nothing)."""
    import torch

    kw = dict(temperature=0.0, max_new_tokens=new_tokens, min_new_tokens=new_tokens)
    before = policy.sample(encs, 1, **kw)
    gen = torch.Generator(device=policy.device).manual_seed(1)  # on the model's device: the 3B has 3.7e9 weights
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(0.5 * p.std().nan_to_num() * torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype))
    toks = {}
    try:
        for o in options:
            cache, comp = OPTIONS[o]
            policy.configure_decoding(cache=cache, compile=comp)
            toks[o] = policy.sample(encs, 1, **kw)
    finally:
        policy.configure_decoding()
    return {"changed": toks["dynamic"] != before,
            "identical": {o: toks[o] == toks["dynamic"] for o in options if o != "dynamic"}}


def sampled_logprob_gap(policy, encs, options, new_tokens: int) -> dict:
    """Under each option, sample at temperature 1 (top_p 1, no ``min_new_tokens``) with
    ``sample_logprobs`` and return the largest gap between the log-probs it reports and the
    teacher-forced :meth:`~agents.policy.Policy.token_logprobs` of the same tokens (the PPO ratio's
    denominator and numerator must agree; float32: ~1e-6)."""
    import torch

    gaps = {}
    try:
        for o in options:
            cache, comp = OPTIONS[o]
            policy.configure_decoding(cache=cache, compile=comp)
            torch.manual_seed(0)
            comps, lps = policy.sample_logprobs(encs, temperature=1.0, max_new_tokens=new_tokens)
            with torch.no_grad():
                ref, _ = policy.token_logprobs(policy.model, encs, comps, temperature=1.0)
            gaps[o] = max(abs(a - b) for i, c in enumerate(comps) for a, b in zip(lps[i], ref[i, :len(c)].tolist()))
    finally:
        policy.configure_decoding()
    return gaps


def markdown(rows: list[dict]) -> str:
    lines = ["| path | batch | option | tokens/s | ms/step | vs dynamic | warm-up s | greedy identical |",
             "|---|---:|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['path']} | {r['batch']} | {r['option']} | {r['tokens_per_s']:.1f} | {r['ms_per_step']:.2f} | "
                     f"{r['speedup_vs_dynamic']:.2f}x | {r['warmup_s']:.1f} | {'yes' if r['identical_to_dynamic'] else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny (CPU), 3b (CUDA, Qwen2.5-VL-3B architecture) or a model folder")
    ap.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    ap.add_argument("--paths", nargs="+", default=list(PATHS), choices=list(PATHS))
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", default=None, help="screenshot WxH (default: 224x392 tiny, 1920x1080 otherwise)")
    ap.add_argument("--max-pixels", type=int, default=None, help="default: 64*28*28 tiny, 1003520 otherwise")
    ap.add_argument("--smoke", action="store_true", help="CPU-sized: tiny model, batch 2 only (one compile), 8 tokens, 1 repeat; "
                    "implies --strict")
    ap.add_argument("--strict", action="store_true", help="exit 2 when an option's greedy tokens differ from the dynamic cache's "
                    "or its sampled log-probs from the teacher-forced ones by 1e-3 (float32 on the CPU: they must not; "
                    "in bf16 on a GPU fused kernels may flip near-ties: reported, not fatal)")
    ap.add_argument("--json", help="write results here")
    a = ap.parse_args(argv)
    if a.smoke:
        a.model, a.batch_sizes, a.new_tokens, a.repeats, a.strict = "tiny", [2], 8, 1, True
    tiny = a.model == "tiny"
    size = a.size or ("224x392" if tiny else "1920x1080")
    max_pixels = a.max_pixels or (64 * 28 * 28 if tiny else 1003520)
    w, h = (int(v) for v in size.split("x"))
    if "dynamic" not in a.options:
        a.options = ["dynamic", *a.options]  # the reference every ratio and token check is against
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        policy, dev = load_policy(a.model, Path(tmp), max_pixels)
        encs, obs = prompts(policy, w, h, max(a.batch_sizes))
        device = torch.cuda.get_device_name() if dev == "cuda" else "cpu"
        print(f"model {a.model} loaded in {time.perf_counter() - t0:.1f}s on {device}; "
              f"{len(encs)} prompts of {min(len(e.ids) for e in encs)}-{max(len(e.ids) for e in encs)} tokens")
        rows = []
        for p in a.paths:
            for bs in a.batch_sizes:
                for o in a.options:
                    rows.append(measure(policy, dev, encs, obs, o, bs, p, a.new_tokens, a.repeats))
                    if a.json:  # what is measured so far survives a timeout (gpu_check.sh runs this under one)
                        Path(a.json).write_text(json.dumps(dict(partial=True, model=a.model, device=device, rows=[
                            {k: v for k, v in r.items() if k != "completions"} for r in rows]), indent=2))
        gaps = sampled_logprob_gap(policy, encs[:a.batch_sizes[-1]], a.options, a.new_tokens)
        update = after_weight_update(policy, encs[:a.batch_sizes[-1]], a.options, a.new_tokens)
    ref = {(r["path"], r["batch"]): r for r in rows if r["option"] == "dynamic"}
    for r in rows:
        base = ref[(r["path"], r["batch"])]
        r["speedup_vs_dynamic"] = r["tokens_per_s"] / base["tokens_per_s"]
        r["identical_to_dynamic"] = r["completions"] == base["completions"]
        r["identical_rows"] = sum(x == y for x, y in zip(r["completions"], base["completions"]))
        r["distinct_tokens"] = len({t for c in r["completions"] for t in c})
    table = markdown(rows)
    print(f"{a.new_tokens} greedy tokens per row, {size} screens, max_pixels {max_pixels}, torch {torch.__version__}")
    print(table)
    print("sampled log-probs vs teacher-forced, largest gap: " + ", ".join(f"{o} {g:.2e}" for o, g in gaps.items()))
    print(f"after an in-place weight update (outputs changed: {update['changed']}): "
          + ", ".join(f"{o} {'identical' if v else 'DIFFERS'}" for o, v in update["identical"].items()))
    result = dict(smoke=a.smoke, model=a.model, device=device, torch=torch.__version__, args=vars(a), table=table,
                  all_identical=all(r["identical_to_dynamic"] for r in rows) and all(update["identical"].values()),
                  after_weight_update=update, sampled_logprob_gap=gaps,
                  logprobs_agree=all(g < 1e-3 for g in gaps.values()),
                  rows=[{k: v for k, v in r.items() if k != "completions"} for r in rows])
    if a.json:
        Path(a.json).write_text(json.dumps(result, indent=2))
    return 2 if a.strict and not (result["all_identical"] and result["logprobs_agree"]) else 0


if __name__ == "__main__":
    sys.exit(main())
