"""Single-turn grounding evaluation throughput: ``guienv eval`` against a plain per-sample ``generate`` loop.

Both sides read the same ScreenSpot-v2-format file (``--data``, default: ``--samples`` SynthApp
grounding screens written by :func:`tasks.screenspot.write_screenspot`), run the same model with the
same pixel bounds, the same GUI-G1 prompt (:func:`guienv.prompts.gui_g1`) and the same
``--max-new-tokens``, greedily:

* **guienv**: what ``guienv eval --benchmark screenspot --agent qwen`` runs
  (:func:`guienv.run.evaluate.run_eval` with :class:`agents.qwen.QwenAgent`, ``--batch-size``
  envs in lockstep, one batched left-padded ``generate`` per round, the files and HTML report written);
* **loop**: how GUI grounding evaluation scripts for Qwen2.5-VL are commonly written (the Qwen2.5-VL
  model card's inference snippet, which e.g. ScreenSpot-Pro's evaluation, repository
  likaixin2000/ScreenSpot-Pro-GUI-Grounding, ``eval_screenspot_pro.py``, runs one sample per call;
  GUI-G1, Zhou et al., arXiv 2505.15810, evaluates with such scripts): per sample, chat messages
  with the image path and pixel bounds, ``processor.apply_chat_template``, qwen-vl-utils
  ``process_vision_info``, ``processor(...)``, ``model.generate`` (greedy), trim, ``batch_decode``,
  parse the first four comma-separated numbers as the box. Without torchvision (CPU-only installs) the HF processor
  and qwen-vl-utils cannot load: the loop then uses an image-only processor
  (:func:`benchmarks.train_speed.image_only_processor`) and resizes the image the way
  ``process_vision_info`` does (smart resize, PIL bicubic).

Each side runs in its own subprocess, alternating over ``--repeats`` (one warm-up sample first,
untimed); reported: samples/s, generated tokens, the ratio guienv / loop, and whether both
produced the same predictions (greedy: the same texts; batched left-padded decoding can differ
from one-at-a-time in the last bits of the logits, so ``--batch-size 1`` is the exact check).

    python benchmarks/eval_speed.py --smoke --json FILE
    python benchmarks/eval_speed.py --model 3b --samples 64 --batch-size 16 --size 1920x1080 --max-pixels 1003520 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

_NUM = r"(-?\d+(?:\.\d+)?)"
BOX = re.compile(r",\s*".join([_NUM] * 4))  # four comma-separated numbers (a bbox_2d list, "(x1,y1),(x2,y2)" without parentheses)


def write_data(n: int, w: int, h: int, out: Path) -> Path:
    from tasks.screenspot import write_screenspot
    from tasks.synthapp import SynthConfig, make_grounding_samples

    cfg = SynthConfig.desktop_preset(width=w, height=h) if w > h else SynthConfig(width=w, height=h)
    return write_screenspot(make_grounding_samples(n, cfg), out, version="v2", split="mobile")


def records(data: Path) -> list[dict]:
    """The ScreenSpot-v2 records in file order, as an evaluation script reads them."""
    files = sorted(data.glob("screenspot_*_v2.json"))
    if len(files) != 1:
        raise ValueError(f"--data {data}: expected one screenspot_<split>_v2.json, found {[f.name for f in files]}")
    rows = json.loads(files[0].read_text())
    for r in rows:
        r["img_path"] = str(data / "screenspotv2_image" / r["img_filename"])
    return rows


def box_center(text: str) -> list[float] | None:
    """The first four comma-separated numbers of a model answer as a box, its centre (None when
    there are none; the ``2`` of a ``bbox_2d`` key is not a coordinate)."""
    m = BOX.search(text.replace("(", "").replace(")", "")) if isinstance(text, str) else None
    if m is None:
        return None
    x1, y1, x2, y2 = (float(v) for v in m.groups())
    return [(x1 + x2) / 2, (y1 + y2) / 2]


def input_records(batch: dict, pad_id: int) -> list[dict]:
    """Per sample of a model-input batch: its prompt token ids (a hash, padding dropped), token
    count, image grid and the sum of its pixel values (what both sides must feed the model alike)."""
    from benchmarks.train_speed import row_key

    grid = batch["image_grid_thw"].tolist()
    sizes = [int(t * h * w) for t, h, w in grid]
    pix = batch["pixel_values"].float().split(sizes)
    out = []
    for i, (ids, att) in enumerate(zip(batch["input_ids"].tolist(), batch["attention_mask"].tolist())):
        ids = [t for t, m in zip(ids, att) if m]
        out.append(dict(prompt_key=row_key(ids), prompt_tokens=len(ids), grid=grid[i], pixel_sum=float(pix[i].double().sum())))
    return out


def same_inputs(g: list[dict], lp: list[dict], pixels: bool = True) -> list[str]:
    """Where the two sides' model inputs differ; ``pixels=False``: not the pixel values (guienv's
    torchvision image processor resizes with its own kernel, not PIL's, so only the tokens and grids
    can be equal)."""
    errs = []
    for i, (x, y) in enumerate(zip(g, lp)):
        for k in ("prompt_key", "prompt_tokens", "grid"):
            if x[k] != y[k]:
                errs.append(f"sample {i}: {k} differ: guienv {x[k]} vs loop {y[k]}")
        if pixels and abs(x["pixel_sum"] - y["pixel_sum"]) > 1e-3 * max(1.0, abs(y["pixel_sum"])):
            errs.append(f"sample {i}: pixel values differ: sum guienv {x['pixel_sum']:.4f} vs loop {y['pixel_sum']:.4f}")
    if len(g) != len(lp):
        errs.append(f"sample counts differ: guienv {len(g)}, loop {len(lp)}")
    return errs


def sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def dtype_name(a) -> str:
    return "bfloat16" if a.precision == "bf16" else "float32"


# -- guienv eval ---------------------------------------------------------------------------------
def run_guienv(a, model: Path, data: Path) -> dict:
    import torch

    from agents.qwen import QwenAgent, QwenAgentConfig
    from guienv.io import read_jsonl
    from guienv.run.evaluate import EvalConfig, run_eval

    agent = QwenAgent(QwenAgentConfig(model=str(model), template="gui-g1", max_pixels=a.max_pixels, max_new_tokens=a.max_new_tokens,
                                      dtype=dtype_name(a), image_backend=a.image_backend, logprobs=False))
    seen: list[dict] = []
    build = agent.inputs

    def recording_inputs(observations):  # the real method, its batches recorded (same-input check)
        batch = build(observations)
        seen.extend(input_records(batch, agent.tokenizer.pad_token_id))
        return batch

    agent.inputs = recording_inputs
    with tempfile.TemporaryDirectory() as tmp:
        run_eval(EvalConfig(benchmark="screenspot", data=str(data), agent="qwen", batch_size=1, limit=1, out=f"{tmp}/warm"), agent)
        sync(torch)
        seen.clear()
        t0 = time.perf_counter()
        metrics = run_eval(EvalConfig(benchmark="screenspot", data=str(data), agent="qwen", batch_size=a.batch_size,
                                      out=f"{tmp}/run"), agent)
        sync(torch)
        seconds = time.perf_counter() - t0
        preds = sorted(read_jsonl(Path(tmp) / "run" / "predictions.jsonl")[0], key=lambda r: r["index"])
    texts = [p["texts"][0] for p in preds]
    tok = agent.tokenizer
    gen = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in texts]
    return dict(seconds=seconds, samples=len(texts), samples_per_s=len(texts) / seconds, texts=texts,
                points=[box_center(t) for t in texts], decoded_tokens=int(sum(gen)), accuracy=metrics.get("accuracy"),
                image_processor=type(agent.image_processor).__name__, batch_size=a.batch_size, inputs=seen)


# -- the per-sample loop -------------------------------------------------------------------------
def vision_inputs(messages: list[dict], torchvision: bool):
    """qwen-vl-utils' ``process_vision_info`` where it loads; else the same resize by hand
    (open, RGB, smart resize within the message's pixel bounds, PIL bicubic)."""
    if torchvision:
        from qwen_vl_utils import process_vision_info

        return process_vision_info(messages)[0]
    from PIL import Image

    from guienv.frames import smart_resize

    out = []
    for part in messages[0]["content"]:
        if part["type"] == "image":
            im = Image.open(part["image"]).convert("RGB")
            h, w = smart_resize(im.height, im.width, min_pixels=part["min_pixels"], max_pixels=part["max_pixels"])
            out.append(im.resize((w, h), resample=Image.BICUBIC))
    return out


def run_loop(a, model: Path, data: Path) -> dict:
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    from benchmarks.train_speed import has_torchvision, hf_processor
    from guienv.frames import QWEN_MIN_PIXELS
    from guienv.prompts import gui_g1

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    m = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(model), dtype=getattr(torch, dtype_name(a)),
                                                           attn_implementation="sdpa").to(dev).eval()
    proc = hf_processor(model, QWEN_MIN_PIXELS, a.max_pixels)  # HF AutoProcessor with torchvision, else image-only
    tv = has_torchvision()
    rows = records(data)
    seen: list[dict] = []

    def one(r: dict) -> str:
        text = gui_g1({"instruction": r["instruction"]})[0]["content"][1]["text"]
        messages = [{"role": "user", "content": [
            {"type": "image", "image": r["img_path"], "min_pixels": QWEN_MIN_PIXELS, "max_pixels": a.max_pixels},
            {"type": "text", "text": text}]}]
        prompt = proc.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = proc(text=[prompt], images=vision_inputs(messages, tv), padding=True, return_tensors="pt").to(dev)
        inputs.pop("mm_token_type_ids", None)
        seen.extend(input_records(inputs, proc.tokenizer.pad_token_id))
        with torch.no_grad():
            out = m.generate(**inputs, max_new_tokens=a.max_new_tokens, do_sample=False)
        trimmed = [o[len(i):] for i, o in zip(inputs["input_ids"], out)]
        return proc.batch_decode(trimmed, skip_special_tokens=True, clean_up_tokenization_spaces=False)[0]

    one(rows[0])  # warm-up
    sync(torch)
    seen.clear()
    t0 = time.perf_counter()
    texts = [one(r) for r in rows]
    sync(torch)
    seconds = time.perf_counter() - t0
    gen = [len(proc.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    return dict(seconds=seconds, samples=len(texts), samples_per_s=len(texts) / seconds, texts=texts,
                points=[box_center(t) for t in texts], decoded_tokens=int(sum(gen)),
                image_processor=type(proc.image_processor).__name__, batch_size=1, inputs=seen)


# -- orchestration -------------------------------------------------------------------------------
def run_side(a, side: str, model: Path, data: Path, out: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--model", str(model), "--data", str(data),
           "--json", str(out), "--max-new-tokens", str(a.max_new_tokens), "--max-pixels", str(a.max_pixels),
           "--batch-size", str(a.batch_size), "--precision", a.precision, "--image-backend", a.image_backend]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True)
    if proc.returncode != 0:
        return {"error": f"{side} exited {proc.returncode}: {proc.stderr[-3000:]}"}
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny | 3b (random-init Qwen2.5-VL-3B architecture, CUDA) | a model folder")
    ap.add_argument("--data", help="a ScreenSpot-v2 directory with one screenspot_<split>_v2.json (default: SynthApp screens)")
    ap.add_argument("--samples", type=int, default=32, help="SynthApp screens written when --data is not given")
    ap.add_argument("--size", default="1920x1080", help="SynthApp screenshot WxH")
    ap.add_argument("--max-pixels", type=int, default=1280 * 28 * 28)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=8, help="guienv eval's --batch-size")
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    ap.add_argument("--image-backend", default="pil", choices=["auto", "pil", "torchvision"],
                    help="guienv's image processor (default pil: the same resampling as qwen-vl-utils + the HF processor, "
                         "so pixel values are compared; guienv eval's own default is auto, torchvision where it imports)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--smoke", action="store_true", help="tiny model, 6 screens 224x392, 8 tokens, batch 3")
    ap.add_argument("--side", choices=["guienv", "loop"], help=argparse.SUPPRESS)
    ap.add_argument("--json", help="write results here")
    a = ap.parse_args(argv)
    if a.smoke:
        a.model, a.samples, a.size, a.max_pixels, a.max_new_tokens, a.batch_size = "tiny", 6, "224x392", 50176, 8, 3
    if not torch.cuda.is_available() and a.precision == "bf16":
        a.precision = "fp32"
    if a.model == "3b" and not torch.cuda.is_available():
        print("--model 3b needs a CUDA GPU")
        return 1
    if a.samples < 1 or a.batch_size < 1 or a.repeats < 1 or a.max_new_tokens < 1:
        ap.error("--samples, --batch-size, --repeats and --max-new-tokens must be >= 1")
    if a.side:
        res = (run_guienv if a.side == "guienv" else run_loop)(a, Path(a.model), Path(a.data))
        Path(a.json).write_text(json.dumps(res))
        return 0

    from benchmarks.train_speed import build_model

    w, h = (int(v) for v in a.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        model = build_model(a.model, Path(tmp))
        data = Path(a.data) if a.data else write_data(a.samples, w, h, Path(tmp) / "screenspot")
        n = len(records(data))
        runs: dict[str, list[dict]] = {"guienv": [], "loop": []}
        for r in range(a.repeats):
            for side in runs:
                runs[side].append(run_side(a, side, model, data, Path(tmp) / f"{side}-{r}.json"))
    failed = [x["error"] for rs in runs.values() for x in rs if "error" in x]
    res: dict = {"args": vars(a), "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU", "samples": n,
                 "runs": runs}
    if not failed:
        g, lp = runs["guienv"][0], runs["loop"][0]
        same_text = [x == y for x, y in zip(g["texts"], lp["texts"])]
        res["pixels_compared"] = "Pil" in g["image_processor"]
        res["same_input_errors"] = same_inputs(g["inputs"], lp["inputs"], pixels=res["pixels_compared"])
        res["same_inputs"] = not res["same_input_errors"]
        res["same_predictions"] = sum(same_text)
        res["same_points"] = sum(x == y for x, y in zip(g["points"], lp["points"]))
        res["decoded_tokens"] = {"guienv": g["decoded_tokens"], "loop": lp["decoded_tokens"]}
        ratio = [x["samples_per_s"] / y["samples_per_s"] for x, y in zip(runs["guienv"], runs["loop"])]
        res["ratio_guienv_over_loop"] = {"mean": float(np.mean(ratio)), "min": float(np.min(ratio)), "max": float(np.max(ratio))}
    print(f"{n} samples, max_new_tokens {a.max_new_tokens}, {a.precision}, max_pixels {a.max_pixels}, guienv batch {a.batch_size}, {res['device']}")
    for side, rs in runs.items():
        for x in rs:
            print(f"{side:7} failed: {x['error'][-1500:]}" if "error" in x else
                  f"{side:7} {x['samples_per_s']:8.2f} samples/s  ({x['seconds']:.2f}s, {x['decoded_tokens']} tokens, {x['image_processor']})")
    if not failed:
        r = res["ratio_guienv_over_loop"]
        for e in res["same_input_errors"]:
            print(f"SAME-INPUT CHECK FAILED: {e}")
        if res["same_inputs"]:
            print("same inputs: prompt token ids, image grids" + (" and pixel values" if res["pixels_compared"] else
                  " (pixel values not compared: guienv's torchvision resize)") + " equal on both sides for every sample")
        print(f"same predictions: {res['same_predictions']}/{n} texts, {res['same_points']}/{n} points; "
              f"guienv/loop samples/s {r['mean']:.2f} (min {r['min']:.2f}, max {r['max']:.2f})")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2, default=str))
    if failed or not res["same_inputs"]:
        return 2
    return 0 if res["same_predictions"] == n or a.batch_size > 1 else 3


if __name__ == "__main__":
    sys.exit(main())
