"""``guienv train``: GRPO (optionally after an SFT warm-up) for a Qwen-VL GUI agent, from YAML.

    guienv train --config configs/train_default.yaml --out runs/demo
    torchrun --nproc_per_node 4 -m guienv train --config my.yaml --out runs/big    # DDP (or FSDP)
    accelerate launch --num_processes 4 -m guienv train --config my.yaml --out runs/big

The YAML file has one block per dataclass of :mod:`guienv.run.train_config` (every key optional; ``model.path`` defaults to
the tiny model, shaped by ``model.tiny``; unknown keys are errors naming the file and the key): ``model`` (:class:`ModelConfig`, LoRA via
peft as an option), ``data`` (:class:`DataConfig`: SynthApp grounding tasks generated on the fly
by default, ScreenSpot-format files, or AndroidControl episodes as step tasks), ``reward``
(:class:`RewardConfig`: a composite preset or term list; a CRAFT-GUI hybrid/judge block for step
tasks when :mod:`rewards.hybrid` is importable), ``curriculum``
(:class:`~tasks.curriculum.CurriculumConfig`), ``grpo`` (:class:`~agents.grpo.GRPOTrainerConfig`),
``sft`` (:class:`~agents.sft.SFTConfig`) and ``train`` (:class:`RunConfig`: steps, checkpoints,
evaluation, logging, distribution).

Output directory ``DIR``:

* ``config.yaml`` (resolved), ``metrics.jsonl`` (one row per step: reward and its terms, accuracy,
  KL, clip fraction, completion length, zero-variance fraction, curriculum stage, predicted box
  area ratio...), ``tb/`` (TensorBoard event files, same scalars), ``curves.png``;
* ``checkpoints/step-NNNNNN/`` every ``save_every`` steps (HF model folder or peft adapter,
  optimizer, scheduler, RNG states of python/numpy/torch per rank, curriculum and data-sampler
  state, ``complete.json`` last); a rerun with the same ``--out`` resumes exactly from the latest
  valid one (a broken newer one is skipped with a warning; ``--no-resume`` starts over), dropping
  metrics rows written after it;
* ``eval_before.json``, ``eval_after_sft.json`` (when there is a warm-up) and ``eval.json``:
  held-out accuracy (greedy; grounding tasks also by target kind and the click's distance from the
  target centre per axis) before training, after the warm-up and at the end, with the accuracy of
  always clicking the training targets' mean centre for reference; ``final/``: the trained model.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from guienv.errors import DataError
from guienv.run.checkpoints import (
    load_optimizer,
    load_rng,
    load_scheduler,
    prepare_out,
    read_state,
    save_checkpoint,
    save_model,
    seed_all,
)
from guienv.run.command import run_command
from guienv.run.distributed import barrier, init_distributed
from guienv.run.metrics import MetricsLog, clean_value, plot_curves
from guienv.run.threads import configure_threads
from guienv.run.train_config import RewardConfig, RunConfig, TrainConfig
from guienv.run.train_data import TaskData, load_tasks, mean_click_accuracy
from guienv.run.train_model import (
    check_model_path,
    engine_text,
    load_agent,
    make_generation,
    make_optimizer,
    make_scheduler,
    prepare_policy,
    resolve_model_path,
)
from tasks.curriculum import CurriculumConfig

__all__ = ["add_train_args", "main", "train"]



@dataclass
class _Setup:
    """What stays fixed for the whole run once the model and the tasks are loaded."""

    cfg: TrainConfig
    out: Path
    dist: Any  # agents.distributed.DistInfo
    fsdp: bool
    base_path: str
    policy: Any  # agents.policy.Policy
    train_model: Any  # the module forward/backward run through (DDP/FSDP wrapper or the model)
    autocast: Any
    data: TaskData
    reward: Any  # agents.task_reward.TaskReward
    log: Any
    prior: float | None  # held-out accuracy of always clicking the mean training target (grounding only)

    @property
    def main(self) -> bool:
        return self.dist.is_main

    @property
    def sft_steps(self) -> int:
        return self.cfg.sft.steps

    @property
    def total(self) -> int:
        return self.cfg.sft.steps + self.cfg.train.steps


@dataclass
class _Phase:
    """The optimisation state that a checkpoint holds and the warm-up -> GRPO switch replaces.
    ``name``: ``sft``, ``grpo`` or ``pending`` (resumed right at the end of the warm-up)."""

    name: str
    sft_sampler: Any  # tasks.curriculum.Curriculum drawing the warm-up batches
    optimizer: Any = None
    scheduler: Any = None
    ref_model: Any = None
    sft_trainer: Any = None
    grpo_trainer: Any = None
    curriculum: Any = None


# -- setup ----------------------------------------------------------------------------------------
def _check_settings(cfg: TrainConfig, dist, fsdp: bool) -> None:
    if fsdp and cfg.model.lora is not None:
        raise ValueError("train.distributed=fsdp with model.lora is not supported; use ddp for LoRA")
    if cfg.grpo.prompts_per_step < dist.world or (cfg.sft.steps and cfg.sft.batch_size < dist.world):
        raise ValueError(f"grpo.prompts_per_step and sft.batch_size must be >= the world size {dist.world}")


def _load_policy(cfg: TrainConfig, base_path: str, ckpt: Path | None, dist):
    """The policy: the base model (or the checkpoint's full model; a LoRA checkpoint holds only the
    adapter), LoRA and gradient checkpointing applied; and the module training runs through."""
    from agents.policy import Policy

    load_from = str(ckpt / "model") if (ckpt and cfg.model.lora is None) else base_path
    policy = Policy(load_agent(cfg.model, load_from, dist.device), cache_mb=cfg.model.encode_cache_mb)
    train_model, autocast = prepare_policy(policy, cfg, ckpt, dist)
    return policy, train_model, autocast


def _setup(cfg: TrainConfig, out: Path, dist, ckpt: Path | None, start: int, log: Any) -> _Setup:
    if dist.is_main:
        import yaml

        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    seed_all(cfg.train.seed + dist.rank)
    configure_threads(cfg.train.torch_threads, dist.device, log, dist.is_main)
    fsdp = cfg.train.distributed == "fsdp" and dist.active
    _check_settings(cfg, dist, fsdp)
    base_path = resolve_model_path(cfg.model, out, dist)
    policy, train_model, autocast = _load_policy(cfg, base_path, ckpt, dist)
    gen = make_generation(cfg, policy, base_path, dist, ckpt is not None)
    data = load_tasks(cfg.data, cfg.model.template, frame=policy.frame, resize=policy.resize)
    reward = _make_reward(cfg.reward, policy)
    s = _Setup(cfg, out, dist, fsdp, base_path, policy, train_model, autocast, data, reward, log,
               mean_click_accuracy(data))
    if s.main and s.prior is not None:
        log(f"reference: always clicking the training targets' mean centre scores {s.prior:.3f} on the held-out tasks")
    if s.main:
        log(f"guienv train: {len(data.train)} training tasks, {len(data.eval)} held out; model {base_path} "
            f"({sum(p.numel() for p in policy.model.parameters()) / 1e6:.2f}M params, frame {policy.frame.value}); "
            f"{engine_text(gen)}; world {dist.world}; {'resuming at step ' + str(start) if ckpt else 'fresh run'}")
    return s


def _make_reward(cfg: RewardConfig, policy):
    import importlib

    from agents.task_reward import TaskReward

    for name in cfg.imports:
        importlib.import_module(name)
    hybrid = None
    if cfg.hybrid is not None or cfg.judge is not None:
        try:
            from rewards.hybrid import HybridConfig, HybridReward
        except ImportError as exc:  # the judge modules are optional
            raise ValueError(f"reward.hybrid/judge given but rewards.hybrid cannot be imported ({exc})") from exc
        block = dict(cfg.hybrid or {})
        if cfg.judge is not None:
            block["judge"] = dict(cfg.judge)
        hybrid = HybridReward(HybridConfig.from_dict(block, "reward.hybrid"))
    composite = cfg.composite if cfg.composite is not None else (cfg.preset or "gui-g1")
    return TaskReward(composite, policy.frame, policy.resize, hybrid=hybrid, protocol=cfg.protocol)


# -- phases ---------------------------------------------------------------------------------------
def _grpo_trainer(s: _Setup, ph: _Phase, tasks: list, config: Any = None):
    from agents.grpo import GRPOTrainer

    config = config if config is not None else s.cfg.grpo
    return GRPOTrainer(s.policy, config, s.reward, tasks, ph.optimizer, ph.scheduler, dist=s.dist,
                       train_model=s.train_model, ref_model=ph.ref_model, autocast=s.autocast, generation=s.cfg.generation)


def _grpo_optimisation(s: _Setup, phase_start: bool):
    """Optimizer, scheduler and reference model of the GRPO phase (the reference is the model at
    the start of GRPO: after the warm-up when there is one)."""
    cfg = s.cfg
    opt = make_optimizer(s.policy.model, cfg.grpo.lr, cfg.grpo.weight_decay, cfg.grpo.adam_betas)
    sch = make_scheduler(opt, cfg.grpo.warmup_steps)
    ref = None
    if cfg.grpo.beta and cfg.model.lora is None:
        ref_path = s.base_path if not s.sft_steps else str(s.out / "ref-model")
        if phase_start and s.sft_steps:
            save_model(s.policy, s.out / "ref-model", s.fsdp, s.dist)
            barrier(s.dist)
        ref = load_agent(cfg.model, ref_path, s.dist.device).model.eval().requires_grad_(False)
    return opt, sch, ref


def _pass_rate_samples(cfg: TrainConfig) -> int:
    """Answers sampled per task to measure pass rates (0: not needed)."""
    return max(cfg.data.prefilter_k, cfg.curriculum.pass_rate_samples if cfg.curriculum.difficulty.pass_rate > 0 else 0)


def _pass_rates(s: _Setup, trainer, phase_start: bool) -> np.ndarray | None:
    """Per-task pass rates of the starting policy (GUI-G1's prefilter, the pass-rate difficulty),
    measured once at the start of GRPO and read back from ``pass_rates.json`` on resume."""
    import torch

    need_k = _pass_rate_samples(s.cfg)
    if not need_k:
        return None
    pr_file = s.out / "pass_rates.json"
    if pr_file.exists() and not phase_start:
        return np.array(json.loads(pr_file.read_text())["pass_rates"], dtype=np.float64)
    with torch.random.fork_rng(devices=[]):
        rates = trainer.pass_rates(s.data.train, need_k)
    if s.main:
        pr_file.write_text(json.dumps({"k": need_k, "pass_rates": rates.tolist()}))
    return rates


def _build_curriculum(s: _Setup, trainer, phase_start: bool):
    """The GRPO curriculum and its task list (after GUI-G1's prefilter when on)."""
    from tasks.curriculum import Curriculum, TaskDifficulty, difficulty_scores

    cfg = s.cfg
    rates = _pass_rates(s, trainer, phase_start)
    tasks, diffs = list(s.data.train), list(s.data.difficulty)
    if rates is not None:
        diffs = [TaskDifficulty(d.steps, d.relative_size, float(r)) for d, r in zip(diffs, rates)]
        if cfg.data.prefilter_k:
            keep = [i for i, r in enumerate(rates) if 0.0 < r < 1.0]
            if s.main:
                s.log(f"GUI-G1 prefilter (k={_pass_rate_samples(cfg)}): kept {len(keep)}/{len(tasks)} tasks "
                      f"({int((rates >= 1).sum())} all correct, {int((rates <= 0).sum())} all wrong dropped)")
            if not keep:
                raise ValueError("prefilter dropped every task (all answered all-right or all-wrong); lower prefilter_k or change data")
            tasks, diffs = [tasks[i] for i in keep], [diffs[i] for i in keep]
    ccfg = cfg.curriculum
    scores = difficulty_scores(diffs, ccfg.difficulty) if ccfg.mode == "staged" else np.zeros(len(tasks))
    return Curriculum(scores, ccfg), tasks


def _restore_phase(s: _Setup, state: dict, ckpt: Path | None, start: int) -> _Phase:
    """The phase at step ``start``: fresh, or as the checkpoint left it. The GRPO phase starts
    (fresh optimizer, reference snapshot, pass rates, curriculum) at the first step after the warm-up."""
    from agents.sft import SFTTrainer
    from tasks.curriculum import Curriculum

    cfg = s.cfg
    sampler = Curriculum(np.zeros(len(s.data.train)), CurriculumConfig(mode="random", seed=cfg.train.seed + 17))
    if start < s.sft_steps:
        ph = _Phase("sft", sampler)
        ph.optimizer = make_optimizer(s.policy.model, cfg.sft.lr, cfg.sft.weight_decay, cfg.sft.adam_betas)
        ph.scheduler = make_scheduler(ph.optimizer, cfg.sft.warmup_steps, s.sft_steps, cfg.sft.schedule)
        ph.sft_trainer = SFTTrainer(s.policy, cfg.sft, s.data.train, ph.optimizer, dist=s.dist,
                                    train_model=s.train_model, autocast=s.autocast)
    elif state.get("phase") == "grpo":
        ph = _Phase("grpo", sampler)
        ph.optimizer, ph.scheduler, ph.ref_model = _grpo_optimisation(s, phase_start=False)
    else:
        ph = _Phase("pending", sampler)
    if ckpt and ph.name != "pending":
        load_optimizer(ph.optimizer, ckpt, s.dist, s.fsdp)
        load_scheduler(ph.scheduler, ckpt)
    if ckpt and "sft_sampler" in state:
        sampler.load_state_dict(state["sft_sampler"])
    if ph.name == "grpo":
        ph.curriculum, tasks = _build_curriculum(s, _grpo_trainer(s, ph, s.data.train), phase_start=False)
        ph.grpo_trainer = _grpo_trainer(s, ph, tasks)
        ph.curriculum.load_state_dict(state["curriculum"])
    return ph


def _enter_grpo(s: _Setup, ph: _Phase) -> None:
    """Switch from the warm-up (or a resume at its end) to GRPO."""
    ph.name = "grpo"
    ph.optimizer, ph.scheduler, ph.ref_model = _grpo_optimisation(s, phase_start=True)
    probe = _grpo_trainer(s, ph, s.data.train, config=dataclasses.replace(s.cfg.grpo, beta=0.0))
    ph.curriculum, tasks = _build_curriculum(s, probe, phase_start=True)
    ph.grpo_trainer = _grpo_trainer(s, ph, tasks)


def _train_step(s: _Setup, ph: _Phase, step: int) -> dict[str, Any]:
    """One optimisation step of the current phase; its metrics row."""
    t0 = time.perf_counter()
    if ph.name == "sft":
        row = ph.sft_trainer.step(ph.sft_sampler.next_batch)
        ph.scheduler.step()
        cfg = s.cfg
        if s.policy.engine is not None and (step == s.sft_steps or (cfg.train.eval_every and step % cfg.train.eval_every == 0)):
            s.policy.engine.sync(s.train_model)  # the warm-up's weights, before anything samples again
    else:
        row, ro = ph.grpo_trainer.step(ph.curriculum.next_batch, step)
        # Every group sampled on every rank (filtered ones too) updates the per-task statistics.
        outcomes = [o for part in s.dist.all_gather(ph.grpo_trainer.outcomes) for o in part]
        stage_before = ph.curriculum.stage
        promoted = ph.curriculum.record(row[s.cfg.curriculum.metric], [t for t, _ in outcomes], [h for _, h in outcomes],
                                        [ro.group_size] * len(outcomes))
        row.update(stage=stage_before, stage_difficulty=ph.curriculum.stage_difficulty(), promoted=int(promoted))
    return {"step": step, "phase": ph.name, **row, "step_time": time.perf_counter() - t0}


def _save(s: _Setup, ph: _Phase, step: int) -> None:
    st = {"step": step, "phase": ph.name, "sft_sampler": ph.sft_sampler.state_dict(), "world": s.dist.world}
    if ph.curriculum is not None:
        st["curriculum"] = ph.curriculum.state_dict()
    save_checkpoint(s.out, step, s.policy, ph.optimizer, ph.scheduler, st, s.dist, s.fsdp, s.cfg.train.keep_checkpoints)


# -- held-out evaluation --------------------------------------------------------------------------
def _eval(trainer, tasks, cfg: RunConfig) -> dict[str, float] | None:
    import torch

    if not tasks:
        return None
    with torch.random.fork_rng(devices=[]):  # evaluation never moves the training RNG streams
        return {k: clean_value(v) for k, v in trainer.greedy_accuracy(tasks, cfg.eval_batch_size).items()}


def _eval_columns(ev: dict[str, Any]) -> dict[str, Any]:
    return {f"eval_{k}": v for k, v in ev.items() if k != "tasks" and isinstance(v, (int, float))}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def _eval_before(s: _Setup, evaluator, start: int) -> dict[str, Any] | None:
    """Held-out results before training (``eval_before.json``; measured once, on a fresh run)."""
    path = s.out / "eval_before.json"
    if path.exists():
        return json.loads(path.read_text())
    if not (s.cfg.train.eval_before and start == 0):
        return None
    ev = _eval(evaluator, s.data.eval, s.cfg.train)
    if s.main and ev is not None:
        path.write_text(json.dumps(ev, indent=2))
        s.log(f"held-out before training: accuracy {ev['accuracy']:.3f}, reward {ev['reward']:.3f}, "
              f"parse rate {ev['parse_rate']:.3f} ({int(ev['tasks'])} tasks)")
    return ev


def _eval_after_sft(s: _Setup, evaluator, row: dict[str, Any]) -> dict[str, Any] | None:
    """The warm-up's own result, before any GRPO step (``eval_after_sft.json``), added to ``row``."""
    from tqdm import tqdm

    ev = _eval(evaluator, s.data.eval, s.cfg.train)
    if ev:
        row.update(_eval_columns(ev))
        if s.main:
            (s.out / "eval_after_sft.json").write_text(json.dumps(ev, indent=2))
            tqdm.write(f"held-out after the SFT warm-up: accuracy {ev['accuracy']:.3f}, "
                       f"reward {ev['reward']:.3f}, parse rate {ev['parse_rate']:.3f}")
    return ev


# -- the end of the run ---------------------------------------------------------------------------
def _finish(s: _Setup, ph: _Phase, evaluator, metrics: MetricsLog, evals: dict[str, Any]) -> dict[str, Any]:
    """Final held-out evaluation, ``final/``, ``eval.json``, ``curves.png`` and the closing log lines."""
    eval_before, eval_sft, prior = evals["before"], evals["after_sft"], s.prior
    eval_after = _eval(evaluator, s.data.eval, s.cfg.train)
    summary = {"steps": s.total, "eval_before": eval_before, "eval_after": eval_after, "eval_after_sft": eval_sft,
               "mean_click_accuracy": prior,
               "curriculum": ph.curriculum.history if ph.curriculum is not None else []}
    save_model(s.policy, s.out / "final", s.fsdp, s.dist)
    if s.main:
        (s.out / "eval.json").write_text(json.dumps(summary, indent=2))
        if s.cfg.train.plot:
            rows = metrics.rows()
            if eval_after:
                rows = rows + [{"step": s.total, "eval_accuracy": eval_after["accuracy"]}]
                if eval_before:
                    rows = [{"step": 0, "eval_accuracy": eval_before["accuracy"]}] + rows
            plot_curves(rows, s.out / "curves.png")
        _log_summary(s, eval_before, eval_sft, eval_after, prior)
    # Ranks leave together: a rank that tears its gloo/NCCL group down while rank 0 is still
    # writing the outputs can abort at exit ("terminate called without an active exception").
    barrier(s.dist)
    return summary


def _log_summary(s: _Setup, eval_before, eval_sft, eval_after, prior) -> None:
    log = s.log
    if eval_after:
        b = f"{eval_before['accuracy']:.3f}" if eval_before else "n/a"
        ref = f"; mean-centre clicking: {prior:.3f}" if prior is not None else ""
        mid = f", after the SFT warm-up {eval_sft['accuracy']:.3f}" if eval_sft else ""
        log(f"held-out click accuracy: before {b}{mid}, after {eval_after['accuracy']:.3f} "
            f"({int(eval_after['tasks'])} tasks){ref}; reward after {eval_after['reward']:.3f}")
    if eval_after and eval_after.get("accuracy_by_kind"):
        log("  by target kind: " + ", ".join(f"{k} {v:.2f}" for k, v in eval_after["accuracy_by_kind"].items()) +
            (f"; click distance from the target centre |dx| {eval_after['dx']:.3f} of the width, "
             f"|dy| {eval_after['dy']:.3f} of the height" if eval_after.get("dx") is not None else ""))
    names = ("metrics.jsonl", "tb", "curves.png", "eval.json", "final")
    shown = [f"{n}/" if (s.out / n).is_dir() else n for n in names if (s.out / n).exists()]
    log(f"outputs in {s.out}: {', '.join(shown)}")


# -- the loop -------------------------------------------------------------------------------------
def train(cfg: TrainConfig, out: str | os.PathLike, *, resume: bool = True, stop_after: int | None = None,
          log: Any = print) -> dict[str, Any]:
    """Run (or resume) training into ``out``; returns a summary with held-out accuracy before and
    after. ``stop_after=k`` returns right after global step ``k`` without a final checkpoint or
    evaluation (what a kill at that point leaves behind; used by the resume tests)."""
    from tqdm import tqdm
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-checkpoint "Writing model shards" bars would bury the run's own
    if cfg.data.source == "env":  # multi-turn training online: its own loop
        from guienv.run.train_multiturn import train_multiturn

        return train_multiturn(cfg, out, resume=resume, stop_after=stop_after, log=log)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "the output directory (--out) is a file; give a directory (created if missing)")
    check_model_path(cfg.model.path)
    dist = init_distributed(cfg.train.distributed, cfg.model.device)
    ckpt = prepare_out(out, dist, resume)
    state = read_state(ckpt) if ckpt else {}
    start = int(state.get("step", 0))
    s = _setup(cfg, out, dist, ckpt, start, log)

    ph = _restore_phase(s, state, ckpt, start)
    evaluator = _grpo_trainer(s, ph, s.data.train, config=dataclasses.replace(cfg.grpo, beta=0.0))
    evals = {"before": _eval_before(s, evaluator, start), "after_sft": _read_json(out / "eval_after_sft.json")}
    if ckpt:
        load_rng(ckpt, dist.rank)

    metrics = MetricsLog(out, start, cfg.train.tensorboard, s.main)
    bar = tqdm(total=s.total, initial=start, desc="guienv train", unit="step", disable=not (s.main and cfg.train.progress))
    last_saved = start
    try:
        for step in range(start + 1, s.total + 1):
            if ph.name != "grpo" and step > s.sft_steps:
                _enter_grpo(s, ph)
            row = _train_step(s, ph, step)
            if step == s.sft_steps and step < s.total:
                evals["after_sft"] = _eval_after_sft(s, evaluator, row)
            elif cfg.train.eval_every and step % cfg.train.eval_every == 0 and step < s.total:
                ev = _eval(evaluator, s.data.eval, cfg.train)
                if ev:
                    row.update(_eval_columns(ev))
            metrics.write(row)
            bar.update(1)
            bar.set_postfix({k: f"{row[k]:.3f}" for k in ("reward", "accuracy", "sft_loss", "kl") if isinstance(row.get(k), float)})
            if step % cfg.train.save_every == 0 or step == s.total:
                _save(s, ph, step)
                last_saved = step
            if stop_after is not None and step >= stop_after:
                barrier(dist)
                return {"stopped_at": step, "last_checkpoint": last_saved}
    finally:
        bar.close()
        metrics.close()
    return _finish(s, ph, evaluator, metrics, evals)


# -- CLI ----------------------------------------------------------------------------------------
def _cmd_train(args: argparse.Namespace) -> int:
    cfg = TrainConfig.from_yaml(args.config, args.set or ())
    if args.steps is not None:
        cfg.train.steps = args.steps
    distributed = False
    try:
        train(cfg, args.out, resume=not args.no_resume, stop_after=args.stop_after)
    finally:
        import torch

        # A process group left alive at interpreter exit aborts gloo/NCCL worker threads.
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            distributed = True
            torch.distributed.destroy_process_group()
    if distributed:
        # Every output is written and closed. Interpreter finalisation in a worker can still hit
        # a joinable native thread of the torn-down backend and abort ("terminate called without
        # an active exception"), failing a finished run, so a successful worker leaves directly.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def add_train_args(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``guienv train`` on an ``argparse`` subparsers object."""
    t = subparsers.add_parser("train", help="GRPO (+ optional SFT warm-up) for a Qwen-VL GUI agent from a YAML config",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", required=True, help="YAML file (see configs/train_default.yaml)")
    t.add_argument("--out", required=True, help="output directory (resumed when it holds checkpoints)")
    t.add_argument("--steps", type=int, help="override train.steps (GRPO steps)")
    t.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key, e.g. grpo.lr=1e-5 (repeatable)")
    t.add_argument("--no-resume", action="store_true", help="start over even if DIR has checkpoints")
    t.add_argument("--stop-after", type=int, help=argparse.SUPPRESS)
    t.set_defaults(func=_cmd_train)
    return t


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="guienv-train")
    sub = p.add_subparsers(dest="command", required=True)
    add_train_args(sub)
    args = p.parse_args(["train", *(argv if argv is not None else sys.argv[1:])])
    return run_command("guienv train", args)


if __name__ == "__main__":
    sys.exit(main())
