"""``guienv train`` with ``data.source: env``: online multi-turn RL in a Gymnasium env.

    guienv train --config configs/multiturn_synthapp.yaml --out runs/mt      # tiny VL model, SynthApp apps
    guienv train --config configs/multiturn_alfworld.yaml --out runs/alf     # tiny text model, ALFWorld
    guienv train --config configs/multiturn_miniwob.yaml --out runs/wob      # tiny VL model, MiniWoB++ (Appium)

The run: the policy (``model.kind`` vl or text) and an env pool (:mod:`agents.env_pool`; each rank
runs its own envs, groups never straddle ranks); the task sets of :mod:`guienv.run.train_env`;
held-out success before training; an SFT warm-up on the expert's demonstrations
(:mod:`agents.experts`, ``sft.steps > 0``) and held-out success after it; ``train.steps`` multi-turn
GRPO steps (:mod:`agents.multiturn_trainer`; advantages ``multiturn.advantage``: grpo, salt or gigpo)
over a CRAFT-GUI-style curriculum of trajectory lengths (``curriculum.mode: staged``, difficulty
``steps``; ``random`` is the ablation); held-out success at the end. Held-out episodes run through
``guienv eval``'s own episode loop (:func:`guienv.run.evaluate.run_episodes`) with the policy as an
agent (:class:`agents.policy_agent.PolicyAgent`, greedy) and the same history wrapper.

Outputs in ``DIR`` as for single-step training: ``config.yaml``, ``metrics.jsonl`` (success rate,
mean turns, invalid-action rate, advantage statistics, curriculum stage, failures, the time split
env / generation / scoring / update), ``tb/``, ``curves.png``, ``checkpoints/`` (model, optimizer,
scheduler, RNG per rank, the curriculum's and the warm-up sampler's state: a rerun resumes exactly),
``demonstrations.json`` (the warm-up's expert statistics), ``eval_before.json``,
``eval_after_sft.json``, ``eval.json``, ``final/``.

Faults: a group with a failed trajectory is retried or dropped (``multiturn.on_failure``); more than
``multiturn.max_failure_rate`` of a step's trajectories failing saves a checkpoint of the state
before that step and stops the run with the reasons.
"""

from __future__ import annotations

import json
import math
import os
import time
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
from guienv.run.distributed import barrier, init_distributed
from guienv.run.metrics import MetricsLog, clean_value, plot_curves
from guienv.run.threads import configure_threads
from guienv.run.train_config import TrainConfig
from guienv.run.train_env import env_spec, env_tasks, task_lengths
from guienv.run.train_model import (
    engine_text,
    load_agent,
    make_generation,
    make_optimizer,
    make_scheduler,
    prepare_policy,
    resolve_model_path,
)

__all__ = ["default_template", "train_multiturn"]

MT_PLOT_KEYS = ("success_rate", "mean_turns", "invalid_rate", "adv_std", "kl", "stage", "sft_loss", "eval_success")


def default_template(env_id: str, is_vision: bool) -> str:
    """The prompt template a policy uses in ``env_id`` (``guienv eval``'s defaults)."""
    if is_vision:
        return "synthapp"
    return "alfworld" if "alfworld" in env_id.lower() else "text"


@dataclass
class _Run:
    cfg: TrainConfig
    out: Path
    dist: Any
    policy: Any
    train_model: Any
    autocast: Any
    template: str
    spec: Any  # agents.env_pool.EnvSpec
    pool: Any
    engine: Any
    train_tasks: list
    eval_tasks: list
    log: Any
    server: Any = None  # an Appium server this run started (MiniWoB)

    def close(self) -> None:
        self.pool.close()
        if self.server is not None:
            self.server.stop()

    @property
    def main(self) -> bool:
        return self.dist.is_main


# -- setup ----------------------------------------------------------------------------------------
def _text_model_path(cfg: TrainConfig, out: Path, dist) -> str:
    if cfg.model.path != "tiny":
        return cfg.model.path
    path = out / "tiny-text-model"
    if dist.is_main and not (path / "config.json").exists():
        from agents.tiny_model import build_tiny_text_model

        build_tiny_text_model(path)
    barrier(dist)
    return str(path)


def _load_policy(cfg: TrainConfig, out: Path, ckpt: Path | None, dist):
    lora = cfg.model.lora
    if cfg.model.kind == "text":
        from agents.text_policy import load_text_policy

        base = _text_model_path(cfg, out, dist)
        path = str(ckpt / "model") if (ckpt and lora is None) else base
        policy = load_text_policy(path, device=dist.device, dtype="bfloat16" if cfg.model.precision == "bf16" else "float32",
                                  attn_implementation=cfg.model.attn_implementation)
    else:
        from agents.policy import Policy

        base = resolve_model_path(cfg.model, out, dist)
        path = str(ckpt / "model") if (ckpt and lora is None) else base
        policy = Policy(load_agent(cfg.model, path, dist.device), cache_mb=0.0)  # every turn's prompt is new
    train_model, autocast = prepare_policy(policy, cfg, ckpt, dist)
    return policy, train_model, autocast, base


def _sync_engine(r: _Run) -> None:
    """After the warm-up's optimizer steps, before anything samples again (GRPO syncs itself after every update)."""
    if r.policy.engine is not None:
        r.policy.engine.sync(r.train_model)


def _setup(cfg: TrainConfig, out: Path, dist, ckpt: Path | None, log: Any) -> _Run:
    from agents.env_pool import make_pool
    from agents.multiturn import RolloutEngine

    if dist.is_main:
        import yaml

        (out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    seed_all(cfg.train.seed + dist.rank)
    configure_threads(cfg.train.torch_threads, dist.device, log, dist.is_main)
    if cfg.grpo.prompts_per_step < dist.world:
        raise ValueError(f"grpo.prompts_per_step must be >= the world size {dist.world}")
    policy, train_model, autocast, base = _load_policy(cfg, out, ckpt, dist)
    gen = make_generation(cfg, policy, base, dist, ckpt is not None)
    mt = cfg.multiturn
    template = mt.template or default_template(str(cfg.data.env_id), policy.is_vision)
    spec = env_spec(cfg.data)
    server = None
    if "miniwob" in spec.id.lower() and not spec.kwargs.get("server_url"):
        # MiniWoB++ pages run in Chromium through Appium: a server for this run, as guienv eval does.
        from emulator.appium_server import AppiumServer

        server = AppiumServer().start()
        spec = type(spec)(spec.id, {**dict(spec.kwargs), "server_url": server.url})
    per_rank = math.ceil(cfg.grpo.prompts_per_step / dist.world) * cfg.grpo.group_size
    if mt.pool_workers is not None and mt.pool_workers < per_rank:
        raise ValueError(f"multiturn.pool_workers {mt.pool_workers} < the {per_rank} trajectories a rank plays per step "
                         f"(grpo.prompts_per_step / world x grpo.group_size)")
    pool = None
    try:
        pool = make_pool(spec, mt.pool_workers or per_rank, mt.pool, step_timeout_s=mt.step_timeout_s,
                         ray_address=mt.ray_address)
        train_tasks, eval_tasks = env_tasks(cfg.data)
        if cfg.curriculum.mode == "staged":
            train_tasks = task_lengths(spec, train_tasks)
    except BaseException:
        if pool is not None:
            pool.close()
        if server is not None:
            server.stop()
        raise
    engine = RolloutEngine(policy, pool, mt, template)
    if dist.is_main:
        lengths = sorted({t.length for t in train_tasks})
        log(f"guienv train (multi-turn): env {spec.id}, {len(train_tasks)} training tasks (lengths {lengths}), "
            f"{len(eval_tasks)} held out; {cfg.model.kind} model {base} "
            f"({sum(p.numel() for p in policy.model.parameters()) / 1e6:.2f}M params), template {template}, "
            f"advantage {mt.advantage.get('name')}, {pool.size} env slots ({mt.pool}); {engine_text(gen)}; world {dist.world}; "
            f"{'resuming' if ckpt else 'fresh run'}")
    return _Run(cfg, out, dist, policy, train_model, autocast, template, spec, pool, engine, train_tasks, eval_tasks, log,
                server)


# -- held-out evaluation ----------------------------------------------------------------------------
def _evaluate(r: _Run, tasks: list) -> dict[str, Any] | None:
    """Greedy held-out success through ``guienv eval``'s episode loop (this rank's share of the tasks)."""
    import gymnasium as gym
    import torch

    from agents.policy_agent import PolicyAgent
    from guienv.envs.history import HistoryWrapper
    from guienv.run.evaluate import run_episodes

    if not tasks:
        return None
    lo, hi = r.dist.shard(len(tasks))
    mine = tasks[lo:hi]
    agent = PolicyAgent(r.policy, r.template, max_new_tokens=r.cfg.grpo.max_new_tokens, temperature=0.0)
    n_env = max(1, min(len(mine), r.cfg.train.eval_batch_size))
    frame = getattr(r.policy, "frame", None) or "pixel"
    # The training rollouts' turn limit applies to held-out episodes too.
    envs = [HistoryWrapper(gym.wrappers.TimeLimit(gym.make(r.spec.id, **dict(r.spec.kwargs)), r.cfg.multiturn.max_turns),
                           r.cfg.multiturn.history, frame, getattr(r.policy, "resize", None)) for _ in range(n_env)]
    try:
        with torch.random.fork_rng(devices=[]):  # evaluation never moves the training RNG streams
            results = run_episodes(envs, agent, [(t.seed, dict(t.options) if t.options else None) for t in mine])
    finally:
        for e in envs:
            e.close()
    n, ok, turns, ret = r.dist.all_reduce_sum([len(results), sum(bool(x.success) for x in results),
                                                sum(x.steps for x in results), sum(x.episode_return for x in results)])
    n = max(n, 1.0)
    return {"episodes": n, "success": ok / n, "mean_turns": turns / n, "return": ret / n}


def _eval_file(r: _Run, name: str, label: str, compute: bool) -> dict[str, Any] | None:
    path = r.out / name
    if path.exists():
        return json.loads(path.read_text())
    if not compute:
        return None
    ev = _evaluate(r, r.eval_tasks)
    if r.main and ev is not None:
        path.write_text(json.dumps(ev, indent=2))
        r.log(f"held-out {label}: success {ev['success']:.3f}, mean turns {ev['mean_turns']:.2f} "
              f"({int(ev['episodes'])} episodes)")
    return ev


# -- the phases -----------------------------------------------------------------------------------
def _demonstrations(r: _Run):
    from agents.experts import collect_demonstrations, expert_for, make_expert

    name = r.cfg.data.expert
    if name == "auto":
        name = expert_for(r.spec.id)
    if name in (None, "none"):
        raise DataError(r.spec.id, "sft.steps > 0 needs an expert for the warm-up: set data.expert "
                                   "(synthapp, miniwob, alfworld) or sft.steps: 0", field="data.expert")
    lo, hi = r.dist.shard(len(r.train_tasks))
    expert = make_expert(name, getattr(r.policy, "frame", None), getattr(r.policy, "resize", None))
    # An expert cut off by the turn limit still played correct turns: they are kept too.
    demos, st = collect_demonstrations(r.engine, r.train_tasks[lo:hi], expert, solved_only=False)
    tot = dict(zip(sorted(st), r.dist.all_reduce_sum([st[k] for k in sorted(st)])))
    if r.main:
        (r.out / "demonstrations.json").write_text(json.dumps({"expert": name, **tot}, indent=2))
        r.log(f"SFT warm-up: expert {name} solved {int(tot['solved'])}/{int(tot['episodes'])} training tasks "
              f"({int(tot['turns'])} turns; {int(tot['failed'])} env failures)")
    if not demos:
        raise DataError(r.spec.id, f"the {name} expert played no turn (every episode failed): nothing to imitate",
                        field="data.expert")
    return demos


def _sft(r: _Run):
    from agents.sft import DemoSFTTrainer
    from tasks.curriculum import Curriculum, CurriculumConfig

    cfg = r.cfg
    demos = _demonstrations(r)
    opt = make_optimizer(r.policy.model, cfg.sft.lr, cfg.sft.weight_decay, cfg.sft.adam_betas)
    sch = make_scheduler(opt, cfg.sft.warmup_steps, cfg.sft.steps, cfg.sft.schedule)
    sampler = Curriculum(np.zeros(len(demos)), CurriculumConfig(mode="random", seed=cfg.train.seed + 17 + r.dist.rank))
    # Each rank imitates its own demonstrations: the sampler draws a full batch, the trainer keeps this rank's slice.
    trainer = DemoSFTTrainer(r.policy, cfg.sft, demos, opt, dist=r.dist, train_model=r.train_model, autocast=r.autocast)
    return trainer, opt, sch, sampler


def _grpo(r: _Run):
    from agents.multiturn_trainer import MultiTurnTrainer
    from tasks.curriculum import Curriculum, TaskDifficulty, difficulty_scores

    cfg = r.cfg
    opt = make_optimizer(r.policy.model, cfg.grpo.lr, cfg.grpo.weight_decay, cfg.grpo.adam_betas)
    sch = make_scheduler(opt, cfg.grpo.warmup_steps)
    ref = None
    if cfg.grpo.beta and cfg.model.lora is None:
        import copy

        ref = copy.deepcopy(r.policy.model).eval().requires_grad_(False)  # the policy at the start of RL
    trainer = MultiTurnTrainer(r.policy, cfg.grpo, cfg.multiturn, r.engine, r.train_tasks, opt, sch, dist=r.dist,
                               train_model=r.train_model, ref_model=ref, autocast=r.autocast, generation=cfg.generation)
    diffs = [TaskDifficulty(steps=t.length) for t in r.train_tasks]
    ccfg = cfg.curriculum
    scores = difficulty_scores(diffs, ccfg.difficulty) if ccfg.mode == "staged" else np.zeros(len(diffs))
    return trainer, opt, sch, Curriculum(scores, ccfg)


# -- the loop -------------------------------------------------------------------------------------
def train_multiturn(cfg: TrainConfig, out: str | os.PathLike, *, resume: bool = True, stop_after: int | None = None,
                    log: Any = print) -> dict[str, Any]:
    """Run (or resume) multi-turn training into ``out`` (see the module docstring); returns a
    summary with held-out success before, after the warm-up and at the end."""
    from tqdm import tqdm

    from agents.multiturn_trainer import RolloutFailure

    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(out, "the output directory (--out) is a file; give a directory (created if missing)")
    dist = init_distributed(cfg.train.distributed, cfg.model.device)
    ckpt = prepare_out(out, dist, resume)
    state = read_state(ckpt) if ckpt else {}
    start = int(state.get("step", 0))
    r = _setup(cfg, out, dist, ckpt, log)
    sft_steps, total = cfg.sft.steps, cfg.sft.steps + cfg.train.steps
    try:
        evals = {"before": _eval_file(r, "eval_before.json", "success before training", cfg.train.eval_before and start == 0),
                 "after_sft": _eval_file(r, "eval_after_sft.json", "success after the SFT warm-up", False)}
        phase, trainer, opt, sch, sampler, curriculum = None, None, None, None, None, None

        def enter(name: str, restore: bool) -> None:
            nonlocal phase, trainer, opt, sch, sampler, curriculum
            phase = name
            if name == "sft":
                trainer, opt, sch, sampler = _sft(r)
            else:
                trainer, opt, sch, curriculum = _grpo(r)
            # A checkpoint of the warm-up's last step holds the warm-up's optimizer: GRPO starts fresh from it.
            if restore and ckpt and state.get("phase") == name:
                load_optimizer(opt, ckpt, dist, False)
                load_scheduler(sch, ckpt)
                if name == "sft" and "sft_sampler" in state:
                    sampler.load_state_dict(state["sft_sampler"])
                if name == "grpo" and "curriculum" in state:
                    curriculum.load_state_dict(state["curriculum"])

        if start < total:
            enter("sft" if start < sft_steps else "grpo", restore=True)
        if ckpt:
            load_rng(ckpt, dist.rank)
        metrics = MetricsLog(out, start, cfg.train.tensorboard, r.main)
        bar = tqdm(total=total, initial=start, desc="guienv train", unit="step", disable=not (r.main and cfg.train.progress))

        def save(step: int) -> None:
            st: dict[str, Any] = {"step": step, "phase": phase, "world": dist.world}
            if sampler is not None:
                st["sft_sampler"] = sampler.state_dict()
            if curriculum is not None:
                st["curriculum"] = curriculum.state_dict()
            save_checkpoint(out, step, r.policy, opt, sch, st, dist, False, cfg.train.keep_checkpoints)

        last_saved = start
        try:
            for step in range(start + 1, total + 1):
                if phase == "sft" and step > sft_steps:
                    enter("grpo", restore=False)
                t0 = time.perf_counter()
                if phase == "sft":
                    row = trainer.step(sampler.next_batch)
                    sch.step()
                    if step == sft_steps or (cfg.train.eval_every and step % cfg.train.eval_every == 0):
                        _sync_engine(r)
                else:
                    try:
                        row, _ro = trainer.step(curriculum.next_batch)
                    except RolloutFailure as exc:
                        if step - 1 > last_saved:
                            save(step - 1)  # the state before this step: a rerun resumes here
                        raise RolloutFailure(f"step {step}: {exc}. Stopped; checkpoint of step {step - 1} saved "
                                             f"in {out / 'checkpoints'}") from None
                    outcomes = [o for part in dist.all_gather(trainer.outcomes) for o in part]
                    stage = curriculum.stage
                    promoted = curriculum.record(row[cfg.curriculum.metric], [t for t, _ in outcomes],
                                                 [h for _, h in outcomes], [cfg.grpo.group_size] * len(outcomes))
                    row.update(stage=stage, stage_difficulty=curriculum.stage_difficulty(), promoted=int(promoted))
                row = {"step": step, "phase": phase, **row, "step_time": time.perf_counter() - t0}
                if step == sft_steps and step < total:
                    evals["after_sft"] = _eval_file(r, "eval_after_sft.json", "success after the SFT warm-up", True)
                    if evals["after_sft"]:
                        row["eval_success"] = evals["after_sft"]["success"]
                elif cfg.train.eval_every and step % cfg.train.eval_every == 0 and step < total:
                    ev = _evaluate(r, r.eval_tasks)
                    if ev:
                        row.update({f"eval_{k}": v for k, v in ev.items() if k != "episodes"})
                metrics.write({k: clean_value(v) for k, v in row.items()})
                bar.update(1)
                bar.set_postfix({k: f"{row[k]:.3f}" for k in ("success_rate", "mean_turns", "sft_loss") if isinstance(row.get(k), float)})
                if step % cfg.train.save_every == 0 or step == total:
                    save(step)
                    last_saved = step
                if stop_after is not None and step >= stop_after:
                    barrier(dist)
                    return {"stopped_at": step, "last_checkpoint": last_saved}
        finally:
            bar.close()
            metrics.close()
        return _finish(r, evals, metrics, curriculum, total)
    finally:
        r.close()


def _finish(r: _Run, evals: dict[str, Any], metrics: MetricsLog, curriculum: Any, total: int) -> dict[str, Any]:
    after = _evaluate(r, r.eval_tasks)
    summary = {"steps": total, "eval_before": evals["before"], "eval_after_sft": evals["after_sft"], "eval_after": after,
               "curriculum": curriculum.history if curriculum is not None else []}
    save_model(r.policy, r.out / "final", False, r.dist)
    if r.main:
        (r.out / "eval.json").write_text(json.dumps(summary, indent=2))
        if r.cfg.train.plot:
            rows = metrics.rows()
            if evals["before"]:
                rows = [{"step": 0, "eval_success": evals["before"]["success"]}] + rows
            if after:
                rows = rows + [{"step": total, "eval_success": after["success"]}]
            plot_curves(rows, r.out / "curves.png", MT_PLOT_KEYS)
        b = f"{evals['before']['success']:.3f}" if evals["before"] else "n/a"
        mid = f", after the SFT warm-up {evals['after_sft']['success']:.3f}" if evals["after_sft"] else ""
        if after:
            r.log(f"held-out success: before {b}{mid}, after {after['success']:.3f} ({int(after['episodes'])} episodes, "
                  f"mean turns {after['mean_turns']:.2f})")
        names = ("metrics.jsonl", "tb", "curves.png", "eval.json", "final")
        r.log(f"outputs in {r.out}: " + ", ".join(f"{n}/" if (r.out / n).is_dir() else n for n in names if (r.out / n).exists()))
    barrier(r.dist)
    return summary

