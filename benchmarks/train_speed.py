"""GRPO training step speed, guienv against TRL on the same work: step time, the generation/update
split, tokens/s, peak memory and (on a GPU) update MFU.

Builds (or loads) a model, makes SynthApp grounding screens of the chosen size, and runs
``--steps`` timed GRPO steps of :class:`agents.grpo.GRPOTrainer` (after one warm-up step), each
with ``--prompts`` prompts x ``--group`` completions of exactly ``--new-tokens`` tokens
(``min_new_tokens``, so every step does the same work). With ``--trl`` TRL's ``GRPOTrainer``
(``trl.trainer.grpo_trainer``) runs the same steps. Each side runs in its own subprocess (peak RSS /
peak CUDA memory is per side); ``--repeats R`` alternates them (guienv, trl, guienv, trl, ...) and
reports the ratios TRL / guienv as mean and min-max over the repeats.

Same work on both sides (checked, the run fails loudly where a check fails):

* the same weights and screens and the same prompt tokens: TRL's conversational prompt is built from
  guienv's own template messages (:meth:`agents.policy.Policy.messages`, :func:`guienv.prompts.step_messages`);
  each side records the model's trainable parameter count and, per step, every trained row's prompt
  token ids (a hash), image token count, pixel-value sum and completion length, and the two records must be equal (TRL's dataset is not shuffled, so
  step k sees the same P prompts on both sides);
* group size, completion length, temperature 0.9, top_p 1, top_k 0 (off), no repetition penalty
  (TRL 1.16's defaults, ``trl/trainer/grpo_config.py``), the same suppressed vision tokens;
* the loss: guienv ``aggregation: constant`` (Dr. GRPO, Liu et al., "Understanding R1-Zero-Like
  Training", arXiv 2503.20783, sec. 3.1) == TRL ``loss_type="dr_grpo"``, no std scaling, beta 0,
  eps 0.2, one inner epoch (neither side recomputes old log-probs), no difficulty weighting;
* AdamW at a constant lr with no weight decay, gradient clipping at 1.0;
* precision, gradient checkpointing (non-reentrant), one optimizer step per generation batch of
  P x G sequences, micro-batches of ``--micro-batch`` sequences (TRL: ``per_device_train_batch_size``
  with ``gradient_accumulation_steps = P*G / micro_batch``), the same weights (one saved folder).

What stays different (each side's own implementation, measured as it is): guienv samples a group
with ``num_return_sequences`` (one prefill per prompt) and encodes each distinct prompt's images once
per training forward; TRL repeats every prompt G times (P x G images through the vision tower in
generation and in the loss forward), keeps images in a ``datasets`` table, computes token entropies
for its logs and logs every step. The sampled token values differ (different RNG streams), their
counts do not. ``--precision bf16-mixed``: accelerate wraps TRL's ``model.forward`` in the bf16
autocast, so TRL also generates under autocast, while guienv generates with the fp32 weights
(its autocast covers the update only); ``bf16`` (bf16 weights, the GPU command) and ``fp32`` match.
guienv also masks the suppressed vision tokens out of the training log-softmax; TRL does not.

Timing: guienv's step is ``collect`` (encode, sample, score, advantages) + ``update``; TRL's
generation is its ``_generate_and_score_completions`` (timed by subclassing), its step the time
between consecutive ``on_step_end`` callbacks (so its data loading counts, as guienv's encoding does),
update = step - generation. Update MFU (GPU only, NaN on the CPU): model FLOPs of the trained tokens
~ 6 x trainable params per token plus attention 12 x layers x hidden x sequence length per token
(Chowdhery et al., "PaLM", arXiv 2204.02311, appendix B; recomputation under gradient checkpointing
is not counted) over the update time and the device's dense bf16 peak (``--peak-tflops`` overrides).

    # the lead's GPU run: random-init Qwen2.5-VL-3B architecture (benchmarks/generation_speed.py)
    python benchmarks/train_speed.py --model 3b --precision bf16 --gradient-checkpointing \\
        --size 1920x1080 --max-pixels 1003520 --prompts 4 --group 8 --new-tokens 64 --steps 3 --trl --repeats 1 --json FILE
    # CPU smoke run (seconds)
    python benchmarks/train_speed.py --smoke --trl --json FILE

TRL's VL path needs a ``ProcessorMixin``: with torchvision it is transformers' ``AutoProcessor``; without
it (CPU-only installs, whose ``Qwen2_5_VLProcessor`` insists on a torchvision video processor) an
image-only subclass with the PIL image processor (:func:`image_only_processor`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GEN_KEYS = ("do_sample", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_new_tokens", "min_new_tokens",
            "suppress_tokens", "num_beams")  # the sampling settings both sides' generation configs must agree on
# transformers 5 leaves unset fields None, which generate() treats as these no-op values
NEUTRAL = {"repetition_penalty": 1.0, "num_beams": 1}
TEMPERATURE = 0.9
TOP_P = 1.0
LR = 1e-6
EPS = 0.2
MAX_GRAD_NORM = 1.0
# dense bf16 peak TFLOPS (vendor data sheets), matched on the CUDA device name
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0}


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


def has_torchvision() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # a torchvision built against another torch fails to load with RuntimeError/OSError
        return False
    return True


def peak_gib(torch) -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB -> GiB (process RSS)


def sync(torch) -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def row_key(ids) -> str:
    """A short hash of one prompt's token ids (the record both sides' prompts are compared by)."""
    return hashlib.sha1(np.asarray(list(ids), dtype=np.int64).tobytes()).hexdigest()[:16]


def peak_tflops(a) -> float:
    import torch

    if a.peak_tflops:
        return float(a.peak_tflops)
    if not torch.cuda.is_available():
        return float("nan")
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), float("nan"))


def model_shape(model) -> dict:
    """Parameter counts (language model / vision tower, all and trainable) and the LM's depth and width."""
    cfg = getattr(model.config, "text_config", model.config)
    vis = getattr(model.config, "vision_config", None)
    out = dict(lm_params=0, lm_trainable=0, vision_params=0, vision_trainable=0, layers=int(cfg.num_hidden_layers),
               hidden=int(cfg.hidden_size), merge=int(getattr(vis, "spatial_merge_size", 2) or 2))
    for name, p in model.named_parameters():
        part = "vision" if ".visual." in f".{name}" else "lm"
        out[f"{part}_params"] += p.numel()
        out[f"{part}_trainable"] += p.numel() if p.requires_grad else 0
    out["trainable_params"] = out["lm_trainable"] + out["vision_trainable"]
    return out


def update_flops(shape: dict, seq_lens: list[int], image_tokens: list[int] | None = None) -> float:
    """Model FLOPs of one update over rows of ``seq_lens`` tokens (``image_tokens`` of them image
    placeholders). Per token: forward 2N, backward 2N for activation gradients and 2N for the
    trainable weights' gradients (6N when all train), plus causal attention 12 L d T for a length-T
    row (Chowdhery et al., "PaLM", arXiv 2204.02311, appendix B); the vision tower the same per
    patch (``merge**2`` patches per image token; its windowed attention not counted), each row's
    image counted with its row."""
    per_tok = 4 * shape["lm_params"] + 2 * shape["lm_trainable"]
    per_patch = 4 * shape["vision_params"] + 2 * shape["vision_trainable"]
    L, d, m2 = shape["layers"], shape["hidden"], shape["merge"] ** 2
    imgs = image_tokens if image_tokens is not None else [0] * len(seq_lens)
    return float(sum(per_tok * t + 12 * L * d * t * t + per_patch * m2 * k for t, k in zip(seq_lens, imgs)))


def settings(a) -> dict:
    """The settings both sides run with (printed, in the JSON)."""
    return dict(prompts=a.prompts, group=a.group, sequences_per_step=a.prompts * a.group, micro_batch=a.micro_batch,
                new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, temperature=TEMPERATURE, top_p=TOP_P, top_k=0,
                repetition_penalty=1.0, lr=LR, weight_decay=0.0, lr_schedule="constant", max_grad_norm=MAX_GRAD_NORM,
                eps=EPS, beta=0.0, inner_epochs=1, precision=a.precision, gradient_checkpointing=a.gradient_checkpointing,
                lora=a.lora, attn=a.attn, size=a.size, max_pixels=a.max_pixels, steps=a.steps, warmup_steps=1)


# -- guienv --------------------------------------------------------------------------------------
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
                            max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, temperature=TEMPERATURE, top_p=TOP_P,
                            lr=LR, weight_decay=0.0, max_grad_norm=MAX_GRAD_NORM, eps_low=EPS, beta=0.0, inner_epochs=1,
                            aggregation="constant", normalize_std=False, difficulty_weight=False)
    params = [p for p in policy.model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.adam_betas)
    trainer = GRPOTrainer(policy, cfg, TaskReward("gui-g1", policy.frame, policy.resize), tasks, opt,
                          autocast=torch.bfloat16 if a.precision == "bf16-mixed" else None)
    it = iter(list(range(len(tasks))) * 1000)
    sampler = lambda n: [next(it) for _ in range(n)]  # noqa: E731
    image_id = policy.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    shape = model_shape(policy.model)
    rows = []
    for step in range(a.steps + 1):
        sync(torch)
        if step == 1 and torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        stats, ro = trainer.step(sampler, step)
        sync(torch)
        dt = time.perf_counter() - t0
        prompts = [ro.prompts[i // a.group] for i in range(len(ro.completions))]
        prompt_ids = [p.ids.tolist() for p in prompts]
        pix = [pixel_sums(p.pixel_values, p.grid)[0] for p in prompts]  # one screen per prompt
        comp = [len(c) for c in ro.completions]
        rows.append(dict(step=step, seconds=dt, generate_s=stats["time_generate"], update_s=stats["time_update"],
                         **work_record(prompt_ids, comp, image_id, pix)))
        print(f"guienv step {step}{' (warm-up)' if not step else ''}: {dt:.2f}s, generate {stats['time_generate']:.2f}s, "
              f"update {stats['time_update']:.2f}s, {rows[-1]['gen_tokens']} generated / {rows[-1]['update_tokens']} trained tokens",
              flush=True)
    from dataclasses import asdict

    from transformers import GenerationConfig

    res = summarize(rows, shape, a)
    gen_kw = policy._generation_kwargs(temperature=cfg.temperature, top_p=cfg.top_p, max_new_tokens=cfg.max_new_tokens,
                                       min_new_tokens=cfg.min_new_tokens, n=cfg.group_size)
    res["generation"] = generation_settings(GenerationConfig(**gen_kw))
    res["config"] = jsonable(dict(asdict(cfg), optimizer=type(opt).__name__, optimizer_defaults=opt.defaults,
                                  image_processor=type(policy.image_processor).__name__))
    return res


def generation_settings(gc) -> dict:
    d = gc.to_dict()
    return jsonable({k: d.get(k) if d.get(k) is not None else NEUTRAL.get(k) for k in GEN_KEYS})


def jsonable(d: dict) -> dict:
    return json.loads(json.dumps(d, default=str))


def work_record(prompt_ids: list[list[int]], completion_lens: list[int], image_id: int,
                pixel_sums: list[float] | None = None) -> dict:
    """What one step trained on, order-free (TRL shuffles rows inside a generation batch):
    per row its prompt's token-id hash, token count, image token count and pixel-value sum."""
    pix = pixel_sums if pixel_sums is not None else [0.0] * len(prompt_ids)
    keys = sorted(zip((row_key(p) for p in prompt_ids), (len(p) for p in prompt_ids),
                      (sum(1 for t in p if t == image_id) for p in prompt_ids), (float(v) for v in pix)))
    return dict(prompt_keys=[k[0] for k in keys], prompt_tokens=[k[1] for k in keys], image_tokens=[k[2] for k in keys],
                pixel_sums=[k[3] for k in keys], completion_tokens=sorted(completion_lens), gen_tokens=int(sum(completion_lens)),
                update_tokens=int(sum(len(p) for p in prompt_ids) + sum(completion_lens)),
                seq_lens=[len(p) + c for p, c in zip(prompt_ids, completion_lens)],
                row_image_tokens=[sum(1 for t in p if t == image_id) for p in prompt_ids])  # aligned with seq_lens


def pixel_sums(pixel_values, grid) -> list[float]:
    """The sum of each image's pixel-value rows (``pixel_values`` holds t*h*w rows per image of ``grid``)."""
    sizes = [int(t * h * w) for t, h, w in grid.tolist()]
    return [float(x.double().sum()) for x in pixel_values.float().split(sizes)]


def summarize(rows: list[dict], shape: dict, a) -> dict:
    import torch

    timed = rows[1:]  # step 0 is warm-up (kernels, allocator)
    peak = peak_tflops(a)
    mfu = [update_flops(shape, r["seq_lens"], r["row_image_tokens"]) / r["update_s"] / (peak * 1e12) for r in timed] if timed else []
    return {
        "step_s": float(np.mean([r["seconds"] for r in timed])),
        "generate_s": float(np.mean([r["generate_s"] for r in timed])),
        "update_s": float(np.mean([r["update_s"] for r in timed])),
        "generate_frac": float(np.mean([r["generate_s"] / r["seconds"] for r in timed])),
        "update_frac": float(np.mean([r["update_s"] / r["seconds"] for r in timed])),
        "gen_tokens_per_s": float(np.mean([r["gen_tokens"] / r["generate_s"] for r in timed])),
        "update_tokens_per_s": float(np.mean([r["update_tokens"] / r["update_s"] for r in timed])),
        "update_mfu": float(np.mean(mfu)) if mfu else float("nan"),
        "peak_tflops": peak,
        "peak_gib": peak_gib(torch),
        "model": shape,
        "rows": rows,
    }


# -- TRL -----------------------------------------------------------------------------------------
def image_only_processor(path: Path, min_pixels: int, max_pixels: int):
    """transformers' ``Qwen2_5_VLProcessor`` without its video processor (which needs torchvision):
    ``ProcessorMixin`` takes its sub-processors from ``__init__``'s parameters, so a subclass without
    ``video_processor`` is an image+text processor TRL accepts; images go through the PIL image
    processor guienv uses without torchvision (:func:`guienv.vlm.make_image_processor`)."""
    from transformers import AutoTokenizer, Qwen2_5_VLProcessor
    from transformers.processing_utils import ProcessorMixin

    from guienv.vlm import make_image_processor

    class ImageOnlyQwen2_5_VLProcessor(Qwen2_5_VLProcessor):
        def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
            self.image_token, self.video_token = "<|image_pad|>", "<|video_pad|>"
            self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
            self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
            ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)

    tok = AutoTokenizer.from_pretrained(str(path), padding_side="left", truncation_side="left")
    ip = make_image_processor(min_pixels=min_pixels, max_pixels=max_pixels, backend="pil")
    return ImageOnlyQwen2_5_VLProcessor(image_processor=ip, tokenizer=tok, chat_template=tok.chat_template)


def hf_processor(path: Path, min_pixels: int, max_pixels: int):
    if has_torchvision():
        from transformers import AutoProcessor

        return AutoProcessor.from_pretrained(str(path), min_pixels=min_pixels, max_pixels=max_pixels,
                                             padding_side="left", truncation_side="left")
    return image_only_processor(path, min_pixels, max_pixels)


def trl_rows(tasks, n: int) -> list[dict]:
    """TRL dataset rows: guienv's own template messages for each task (the image slot filled from
    the ``image`` column by TRL) and the reward columns of :func:`rewards.trl.grounding_reward_func`."""
    from PIL import Image

    from guienv.prompts import step_messages

    rows = []
    for i in range(n):
        t = tasks[i % len(tasks)]
        s = t.target
        msgs = step_messages(t.template, t.fields, len(t.images) - 1)  # what Policy.messages renders
        rows.append({"prompt": msgs, "image": Image.fromarray(t.load_images()[-1]), "bbox": [float(v) for v in s.box],
                     "image_size": [s.width, s.height]})
    return rows


def run_trl(a, path: Path, tasks) -> dict:
    import torch
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from agents.policy import VISION_TOKENS
    from guienv.frames import QWEN_MIN_PIXELS
    from rewards.trl import grounding_reward_func

    seqs = a.prompts * a.group
    if seqs % a.micro_batch:
        raise ValueError(f"--micro-batch {a.micro_batch} must divide prompts x group = {seqs} (TRL's gradient accumulation)")
    ds = Dataset.from_list(trl_rows(tasks, a.prompts * (a.steps + 1)))
    proc = hf_processor(path, QWEN_MIN_PIXELS, a.max_pixels)
    vocab = proc.tokenizer.get_vocab()
    banned = sorted(vocab[t] for t in VISION_TOKENS if t in vocab)  # what guienv's policy suppresses
    image_id = vocab["<|image_pad|>"]
    gen: list[float] = []
    records: list[dict] = []
    ends: list[float] = []

    class TimedGRPOTrainer(GRPOTrainer):
        def _generate_and_score_completions(self, inputs):
            sync(torch)
            t0 = time.perf_counter()
            out = super()._generate_and_score_completions(inputs)
            sync(torch)
            gen.append(time.perf_counter() - t0)
            pm, cm = out["prompt_mask"].bool().cpu(), out["completion_mask"].cpu()
            pids = [row[m].tolist() for row, m in zip(out["prompt_ids"].cpu(), pm)]
            pix = pixel_sums(out["pixel_values"], out["image_grid_thw"])  # one screen per row, in row order
            records.append(work_record(pids, [int(v) for v in cm.sum(1).tolist()], image_id, pix))
            return out

    class StepTimer(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            sync(torch)
            ends.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kw):
            sync(torch)
            ends.append(time.perf_counter())
            if state.global_step == 1 and torch.cuda.is_available():
                torch.cuda.reset_peak_memory_stats()

    bf16 = a.precision in ("bf16", "bf16-mixed")
    args = GRPOConfig(
        output_dir=str(Path(tempfile.mkdtemp()) / "trl"), per_device_train_batch_size=a.micro_batch,
        gradient_accumulation_steps=seqs // a.micro_batch, num_generations=a.group, max_completion_length=a.new_tokens,
        temperature=TEMPERATURE, top_p=TOP_P, top_k=0, repetition_penalty=1.0, learning_rate=LR, lr_scheduler_type="constant",
        warmup_steps=0, weight_decay=0.0, optim="adamw_torch", max_grad_norm=MAX_GRAD_NORM, loss_type="dr_grpo",
        scale_rewards="none", beta=0.0, epsilon=EPS, num_iterations=1, mask_truncated_completions=False, shuffle_dataset=False,
        max_steps=a.steps + 1, bf16=bf16, gradient_checkpointing=a.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False}, logging_steps=1, report_to=[], save_strategy="no",
        use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, seed=0,
        generation_kwargs={"min_new_tokens": a.new_tokens, "suppress_tokens": banned},
        model_init_kwargs={"dtype": torch.bfloat16 if a.precision == "bf16" else torch.float32, "attn_implementation": a.attn},
    )
    peft_config = None
    if a.lora:
        from peft import LoraConfig

        from guienv.run.train_config import LoraConfig as GuienvLora

        g = GuienvLora(r=16, alpha=32)  # what run_guienv applies: the language model's linear layers
        peft_config = LoraConfig(r=g.r, lora_alpha=g.alpha, lora_dropout=g.dropout, target_modules=g.target_modules)
    trainer = TimedGRPOTrainer(model=str(path), reward_funcs=[grounding_reward_func(frame="resized")], args=args,
                               train_dataset=ds, processing_class=proc, callbacks=[StepTimer()], peft_config=peft_config)
    shape = model_shape(trainer.model)
    trainer.train()
    steps = [e - s for s, e in zip(ends, ends[1:])]
    if len(steps) != a.steps + 1 or len(gen) != a.steps + 1:
        raise RuntimeError(f"TRL ran {len(steps)} optimizer steps and {len(gen)} generations, expected {a.steps + 1} of each")
    rows = []
    for step, (dt, g, rec) in enumerate(zip(steps, gen, records)):
        rows.append(dict(step=step, seconds=dt, generate_s=g, update_s=dt - g, **rec))
        print(f"trl step {step}{' (warm-up)' if not step else ''}: {dt:.2f}s, generate {g:.2f}s, update {dt - g:.2f}s, "
              f"{rec['gen_tokens']} generated / {rec['update_tokens']} trained tokens", flush=True)
    res = summarize(rows, shape, a)
    res["processor"] = type(proc).__name__ + "/" + type(proc.image_processor).__name__
    res["generation"] = generation_settings(trainer.generation_config)
    res["config"] = jsonable(dict(args.to_dict(), optimizer=type(trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer")
                                                                     else trainer.optimizer).__name__,
                                  image_processor=type(proc.image_processor).__name__))
    return res


# -- orchestration -------------------------------------------------------------------------------
def same_work(g: dict, t: dict) -> list[str]:
    """Where the two sides' step records differ (empty: same prompts, images and completion lengths)."""
    errs = []
    if g.get("model") != t.get("model"):
        errs.append(f"models differ (trainable parameters, layers, hidden): guienv {g.get('model')} vs trl {t.get('model')}")
    for k in GEN_KEYS:
        if g.get("generation", {}).get(k) != t.get("generation", {}).get(k):
            errs.append(f"generation setting {k} differs: guienv {g.get('generation', {}).get(k)} vs trl {t.get('generation', {}).get(k)}")
    if len(g["rows"]) != len(t["rows"]):
        return errs + [f"step counts differ: guienv {len(g['rows'])}, trl {len(t['rows'])}"]
    for rg, rt in zip(g["rows"], t["rows"]):
        for key in ("prompt_tokens", "image_tokens", "completion_tokens", "prompt_keys"):
            if rg[key] != rt[key]:
                errs.append(f"step {rg['step']}: {key} differ: guienv {rg[key]} vs trl {rt[key]}")
        if not np.allclose(rg["pixel_sums"], rt["pixel_sums"], rtol=1e-3, atol=1e-2):
            errs.append(f"step {rg['step']}: pixel values differ: sums guienv {rg['pixel_sums']} vs trl {rt['pixel_sums']}")
    return errs


def run_side(a, side: str, model: Path, out: Path) -> dict:
    """One side in its own process (its own peak memory)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--side", side, "--model", str(model), "--json", str(out),
           "--steps", str(a.steps), "--prompts", str(a.prompts), "--group", str(a.group), "--micro-batch", str(a.micro_batch),
           "--new-tokens", str(a.new_tokens), "--size", a.size, "--max-pixels", str(a.max_pixels), "--precision", a.precision,
           "--attn", a.attn, "--image-backend", a.image_backend]
    cmd += ["--gradient-checkpointing"] * a.gradient_checkpointing + ["--lora"] * a.lora
    cmd += ["--peak-tflops", str(a.peak_tflops)] if a.peak_tflops else []
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(cmd, env=env, text=True, capture_output=True)
    sys.stdout.write(proc.stdout)
    if proc.returncode != 0:
        return {"error": f"{side} exited {proc.returncode}: {proc.stderr[-3000:]}"}
    return json.loads(out.read_text())


CONFIG_KEYS = {  # printed; the JSON has every field
    "guienv": ("group_size", "prompts_per_step", "micro_batch_size", "inner_epochs", "aggregation", "max_completion_length",
               "normalize_std", "difficulty_weight", "beta", "eps_low", "eps_high", "lr", "weight_decay", "max_grad_norm",
               "optimizer", "optimizer_defaults", "image_processor"),
    "trl": ("num_generations", "per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation",
            "num_iterations", "loss_type", "max_completion_length", "scale_rewards", "beta", "epsilon", "epsilon_high",
            "learning_rate", "lr_scheduler_type", "weight_decay", "max_grad_norm", "optim", "optimizer", "bf16",
            "gradient_checkpointing", "mask_truncated_completions", "shuffle_dataset", "image_processor"),
}
RATIO_KEYS = ("step_s", "generate_s", "update_s", "gen_tokens_per_s", "update_tokens_per_s", "peak_gib")


def ratios(pairs: list[tuple[dict, dict]]) -> dict:
    out = {}
    for k in RATIO_KEYS:
        v = [t[k] / g[k] for g, t in pairs if g.get(k) and t.get(k) is not None]
        out[k] = {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v))} if v else None
    return out


def fmt_row(name: str, r: dict) -> str:
    if "error" in r:
        return f"{name:8} failed: {r['error'][-600:]}"
    return (f"{name:8} {r['step_s']:>8.2f} {r['generate_s']:>7.2f} {r['update_s']:>7.2f} {100 * r['generate_frac']:>6.1f} "
            f"{r['gen_tokens_per_s']:>10.1f} {r['update_tokens_per_s']:>10.1f} {r['peak_gib']:>9.2f} {r['update_mfu']:>7.3f}")


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="tiny | 3b (random-init Qwen2.5-VL-3B architecture, CUDA) | a model folder")
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up step)")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group", type=int, default=8)
    ap.add_argument("--micro-batch", type=int, default=8, help="sequences per forward/backward (TRL: per_device_train_batch_size)")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--size", default="1920x1080", help="screenshot WxH")
    ap.add_argument("--max-pixels", type=int, default=1280 * 28 * 28)
    ap.add_argument("--precision", default="bf16", choices=["fp32", "bf16", "bf16-mixed"])
    ap.add_argument("--gradient-checkpointing", action="store_true")
    ap.add_argument("--lora", action="store_true")
    ap.add_argument("--attn", default="sdpa")
    ap.add_argument("--image-backend", default="auto", choices=["auto", "pil", "torchvision"])
    ap.add_argument("--trl", action="store_true", help="also time TRL's GRPOTrainer on the same work")
    ap.add_argument("--repeats", type=int, default=1, help="alternating runs per side (guienv, trl, guienv, ...)")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="device peak TFLOPS for MFU (default: bf16 peak by device name)")
    ap.add_argument("--smoke", action="store_true", help="tiny model, 224x392, 2 prompts x 2 x 4 tokens, 1 timed step")
    ap.add_argument("--side", choices=["guienv", "trl"], help=argparse.SUPPRESS)  # internal: run one side here
    ap.add_argument("--json", help="write results here")
    a = ap.parse_args(argv)
    if a.smoke:
        a.model, a.size, a.max_pixels, a.prompts, a.group, a.micro_batch, a.new_tokens = "tiny", "224x392", 50176, 2, 2, 2, 4
        a.steps = min(a.steps, 1)
    if a.model == "3b" and not torch.cuda.is_available():
        print("--model 3b needs a CUDA GPU")
        return 1
    if not torch.cuda.is_available() and a.precision == "bf16":
        a.precision = "fp32"
    if a.steps < 1 or a.repeats < 1:
        ap.error("--steps and --repeats must be >= 1")
    if (a.prompts * a.group) % a.micro_batch:
        ap.error(f"--micro-batch {a.micro_batch} must divide --prompts x --group = {a.prompts * a.group}")
    w, h = (int(v) for v in a.size.split("x"))
    tasks_n = max(a.prompts * 2, 8)

    if a.side:  # one side, this process
        tasks = make_tasks(w, h, tasks_n)
        res = (run_guienv if a.side == "guienv" else run_trl)(a, Path(a.model), tasks)
        Path(a.json).write_text(json.dumps(res, default=str))
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        path = build_model(a.model, Path(tmp))
        print(f"model {a.model} ready in {time.perf_counter() - t0:.1f}s; {w}x{h} screens, max_pixels {a.max_pixels}")
        sides = ["guienv", "trl"] if a.trl else ["guienv"]
        runs: dict[str, list[dict]] = {s: [] for s in sides}
        for r in range(a.repeats):
            for s in sides:
                runs[s].append(run_side(a, s, path, Path(tmp) / f"{s}-{r}.json"))
    dev = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    res: dict = {"args": vars(a), "device": dev, "settings": settings(a), "torchvision": has_torchvision(), "runs": runs}
    ok = True
    checks = []
    if a.trl:
        for g, t in zip(runs["guienv"], runs["trl"]):
            errs = ["a side failed"] if ("error" in g or "error" in t) else same_work(g, t)
            checks.append(errs)
        res["same_work_errors"] = checks
        res["same_work"] = all(not e for e in checks)
        good = [(g, t) for (g, t), e in zip(zip(runs["guienv"], runs["trl"]), checks) if not e]
        res["ratio_trl_over_guienv"] = ratios(good)
        ok = res["same_work"]
    ok = ok and all("error" not in r for rs in runs.values() for r in rs)
    print(f"\n{a.prompts} prompts x {a.group} completions x {a.new_tokens} tokens, {w}x{h}, {a.precision}, "
          f"gc={a.gradient_checkpointing}, lora={a.lora}, micro-batch {a.micro_batch}, {dev}")
    print("settings (both sides): " + json.dumps(res["settings"]))
    for s in sides:
        r0 = runs[s][0]
        if "error" not in r0:
            print(f"{s} generation: {json.dumps(r0['generation'])}")
            keys = CONFIG_KEYS[s]
            print(f"{s} config: {json.dumps({k: r0['config'].get(k) for k in keys})}")
    first = runs["guienv"][0]
    if "error" not in first:
        r0 = first["rows"][0]
        print(f"prompt tokens per row {sorted(set(r0['prompt_tokens']))}, image tokens per row {sorted(set(r0['image_tokens']))}")
    print(f"{'':8} {'step s':>8} {'gen s':>7} {'upd s':>7} {'gen %':>6} {'gen tok/s':>10} {'upd tok/s':>10} {'peak GiB':>9} {'MFU':>7}")
    for r in range(a.repeats):
        for s in sides:
            print(fmt_row(s, runs[s][r]))
    if a.trl:
        for i, e in enumerate(checks):
            for msg in e:
                print(f"SAME-WORK CHECK FAILED (repeat {i}): {msg[:2000]}")
        if res["same_work"]:
            print("same work: trainable parameters, sampling settings and, every step, prompt token ids, image tokens, "
                  "pixel values and completion lengths equal on both sides")
        for k, v in res["ratio_trl_over_guienv"].items():
            if v:
                print(f"trl/guienv {k}: {v['mean']:.3f} (min {v['min']:.3f}, max {v['max']:.3f})")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2, default=str))
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
