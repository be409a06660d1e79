"""Batched versus one-sample-at-a-time generation of the VLM policy, side by side in one run.

Builds a random-init model with the Qwen2.5-VL-3B architecture (bf16, on the GPU), saves it, loads
it back through ``QwenAgent`` (the path users take), and times on the same screenshots:

* ``sequential``: ``agent.generate([obs])`` for each sample;
* ``batched``: ``agent.generate(batch)`` for batches of B samples (left padding).

Every sample generates exactly ``--new-tokens`` tokens (``min_new_tokens``), so both sides do the
same work. Reports samples/s, the ratio and peak GPU memory.

    python benchmarks/generation_speed.py --samples 32 --batch-sizes 1 8 32 --max-pixels 1003520 [--cache static --compile]
    # CPU smoke run: the tiny random-init VL model (float32; peak memory is the process RSS)
    python benchmarks/generation_speed.py --model tiny --samples 4 --batch-sizes 1 4 --new-tokens 8 --size 224x392 --max-pixels 50176
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


def qwen25vl_3b_config(tok):
    """Qwen2.5-VL-3B-Instruct's published architecture (config.json of the hub checkpoint)."""
    from transformers import Qwen2_5_VLConfig

    ids = lambda t: tok.convert_tokens_to_ids(t)  # noqa: E731
    return Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=151936, hidden_size=2048, intermediate_size=11008, num_hidden_layers=36,
            num_attention_heads=16, num_key_value_heads=2, max_position_embeddings=128000,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
            rms_norm_eps=1e-6, tie_word_embeddings=True,
            bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=ids("<|endoftext|>"),
        ),
        vision_config=dict(
            depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=2048,
            fullatt_block_indexes=[7, 15, 23, 31], patch_size=14, spatial_merge_size=2, temporal_patch_size=2,
            window_size=112,
        ),
        image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=True,
    )


def build(path: Path) -> Path:
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from agents.tiny_model import TinyModelConfig, build_tokenizer
    from guienv.vlm import make_image_processor

    tok = build_tokenizer(TinyModelConfig())
    config = qwen25vl_3b_config(tok)
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2_5_VLForConditionalGeneration(config).to(torch.bfloat16)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    make_image_processor().save_pretrained(path)
    del model
    torch.cuda.empty_cache()
    return path


def main(argv: list[str] | None = None) -> int:
    import torch

    from agents.qwen import QwenAgent, QwenAgentConfig

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="3b", choices=["3b", "tiny"], help="3b: CUDA, bf16; tiny: CPU, float32")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--max-pixels", type=int, default=1280 * 28 * 28)
    ap.add_argument("--size", default="1920x1080", help="screenshot WxH (ScreenSpot desktop/web size)")
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--image-backend", default="auto", choices=["auto", "pil", "torchvision"])
    ap.add_argument("--cache", default="dynamic", choices=["dynamic", "static"], help="the agent's KV cache (agents.decoding)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the decode step (needs --cache static)")
    ap.add_argument("--json", help="write results here")
    a = ap.parse_args(argv)
    cuda = a.model == "3b"
    if cuda and not torch.cuda.is_available():
        print("no GPU: --model 3b needs CUDA (--model tiny runs on the CPU)")
        return 1
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    w, h = (int(v) for v in a.size.split("x"))
    rng = np.random.default_rng(0)
    obs = [{"screenshot": rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "instruction": f"click the button number {i}"}
           for i in range(a.samples)]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        if cuda:
            path = build(Path(tmp) / "qwen25vl-3b-random")
        else:
            from agents.tiny_model import build_tiny_model

            path = build_tiny_model(Path(tmp) / "tiny")
        agent = QwenAgent(QwenAgentConfig(
            model=str(path), dtype="bfloat16" if cuda else "float32", device=None if cuda else "cpu",
            max_pixels=a.max_pixels, max_new_tokens=a.new_tokens, attn_implementation=a.attn,
            image_backend=a.image_backend if cuda else "pil", generate_kwargs={"min_new_tokens": a.new_tokens},
            cache=a.cache, compile=a.compile,
        ))
        device = torch.cuda.get_device_name() if cuda else "cpu"
        print(f"model built and loaded in {time.perf_counter() - t0:.1f}s on {device}")
        agent.generate(obs[:2])  # warm-up (kernels, allocator)
        sync()
        t = time.perf_counter()
        for o in obs:
            agent.inputs([o])
        sync()
        prep = (time.perf_counter() - t) / len(obs)
        print(f"image processor {type(agent.image_processor).__name__}: {prep * 1000:.1f} ms per screenshot")
        rows = []
        for bs in a.batch_sizes:
            sync()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            t = time.perf_counter()
            n_tok = 0
            for i in range(0, a.samples, bs):
                gens = agent.generate(obs[i : i + bs])
                n_tok += sum(len(g.token_ids) for g in gens)
            sync()
            dt = time.perf_counter() - t
            peak = (torch.cuda.max_memory_allocated() if cuda else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
            rows.append(dict(batch=bs, seconds=dt, samples_per_s=a.samples / dt, new_tokens_per_s=n_tok / dt,
                             peak_gib=peak / 2**30))
    base = rows[0]["seconds"] if rows[0]["batch"] == 1 else None
    resized = agent.resize.size(w, h)
    print(f"{a.samples} screenshots {w}x{h} -> {resized[0]}x{resized[1]} (max_pixels {a.max_pixels}), "
          f"{a.new_tokens} new tokens each, {'bf16' if cuda else 'float32'}, attn={a.attn}, cache={a.cache}, compile={a.compile}")
    print(f"{'batch':>5} {'seconds':>8} {'samples/s':>10} {'tokens/s':>9} {'vs batch 1':>10} {'peak GiB':>9}")
    for r in rows:
        ratio = base / r["seconds"] if base else float("nan")
        r["speedup_vs_batch1"] = ratio
        print(f"{r['batch']:>5} {r['seconds']:>8.2f} {r['samples_per_s']:>10.2f} {r['new_tokens_per_s']:>9.1f} "
              f"{ratio:>9.2f}x {r['peak_gib']:>9.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "device": device, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
