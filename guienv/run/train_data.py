"""Training and held-out tasks for ``guienv train`` (SynthApp, ScreenSpot-format files or
AndroidControl episodes), with the per-task difficulty records the curriculum orders them by."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from guienv.errors import DataError
from guienv.frames import Frame, Resize
from guienv.run.train_config import DataConfig

__all__ = ["TaskData", "load_tasks", "mean_click_accuracy"]


@dataclass
class TaskData:
    train: list  # agents.train_prompts.TrainPrompt
    eval: list
    difficulty: list  # tasks.curriculum.TaskDifficulty per train task


def _shuffled_split(items: list, n_eval: int, seed: int) -> tuple[list, list]:
    order = np.random.default_rng(seed).permutation(len(items))
    ev = [items[i] for i in sorted(order[:n_eval])]
    tr = [items[i] for i in sorted(order[n_eval:])]
    return tr, ev


def load_tasks(cfg: DataConfig, template: str, *, frame: Frame | str = Frame.PIXEL,
               resize: Resize | None = None) -> TaskData:
    """Training and held-out :class:`~agents.train_prompts.TrainPrompt` lists plus per-task difficulty
    records. ``frame``/``resize``: the policy's coordinate frame and pixel bounds, in which
    AndroidControl histories are written (as ``guienv eval`` writes them)."""
    from agents.train_prompts import episode_prompts, grounding_prompt
    from rewards.grounding import difficulty_weights
    from tasks.curriculum import TaskDifficulty, task_difficulty

    tmpl = cfg.template or (template if cfg.source != "androidcontrol" else "androidcontrol-low")
    if cfg.source in ("synthapp", "screenspot"):
        if cfg.source == "synthapp":
            from tasks.synthapp import SynthConfig, make_grounding_samples

            synth = SynthConfig.from_dict(cfg.synth)
            train = make_grounding_samples(cfg.train_size, synth, seed=cfg.seed)
            held = make_grounding_samples(cfg.eval_size, synth, seed=cfg.seed + 1000)
        else:
            from tasks.screenspot import load_screenspot

            kw = dict(image_dir=cfg.image_dir, on_error=cfg.on_error)
            samples = list(load_screenspot(cfg.path, **kw))
            if cfg.eval_path:
                train, held = samples, list(load_screenspot(cfg.eval_path, **kw))
            else:
                train, held = _shuffled_split(samples, cfg.eval_size, cfg.seed)
            if cfg.train_size and len(train) > cfg.train_size:
                train = train[: cfg.train_size]
        if not train:
            raise DataError(cfg.path or "<synthapp>", "no training samples")
        w = difficulty_weights(train)
        return TaskData([grounding_prompt(s, float(wi), tmpl) for s, wi in zip(train, w)],
                        [grounding_prompt(s, 1.0, tmpl) for s in held],
                        [task_difficulty(s) for s in train])
    from tasks.androidcontrol import load_androidcontrol

    eps = list(load_androidcontrol(cfg.path, on_error=cfg.on_error))
    if cfg.eval_path:
        tr_eps, ev_eps = eps, list(load_androidcontrol(cfg.eval_path, on_error=cfg.on_error))
    else:
        tr_eps, ev_eps = _shuffled_split(eps, cfg.eval_size, cfg.seed)
    train, diff = [], []
    for ep in tr_eps:
        for t in episode_prompts(ep, tmpl, cfg.history_images, frame=frame, resize=resize):
            train.append(t)
            d = task_difficulty(t.target)
            diff.append(TaskDifficulty(len(ep.steps), d.relative_size))
    held = [t for ep in ev_eps for t in episode_prompts(ep, tmpl, cfg.history_images, frame=frame, resize=resize)]
    if cfg.train_size and len(train) > cfg.train_size:
        train, diff = train[: cfg.train_size], diff[: cfg.train_size]
    if not train:
        raise DataError(cfg.path, "no training steps")
    return TaskData(train, held, diff)


def mean_click_accuracy(data: TaskData) -> float | None:
    """Held-out accuracy of always clicking the training targets' mean centre
    (:class:`~agents.baselines.MeanClickAgent`); None unless every task is a grounding task."""
    from agents.baselines import MeanClickAgent
    from guienv.types import GroundingSample

    tr = [t.target for t in data.train]
    ev = [t.target for t in data.eval]
    if not ev or not all(isinstance(x, GroundingSample) for x in tr + ev):
        return None
    return MeanClickAgent.fit(tr).accuracy(ev)
