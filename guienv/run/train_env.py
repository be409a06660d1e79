"""Task sets of multi-turn training online (``data.source: env``): which episodes train, which are
held out, and how long each is (the trajectory-length curriculum's difficulty).

* SynthApp app tasks (``guienv/SynthApp-v0``): task ``i`` resets with ``options={"index": i,
  "task_seed": seed, "steps": steps[i % len(steps)]}`` (held out: ``task_seed = seed + 1000``),
  so train and held-out apps never coincide; its length is ``steps`` (the goal needs exactly
  that many actions).
* ALFWorld (``guienv/ALFWorld-v0`` with ``games``/``game``): task ``i`` plays game
  ``i mod n`` (``options={"index": ...}``); held-out tasks the same games from other seeds
  (an ALFWorld game is deterministic, so held-out success measures the policy, not new games,
  unless the held-out env kwargs name other games via ``data.options``); its length is the
  engine planner's plan length (ALFWorld, Shridhar et al., arXiv 2010.03768, the expert's
  trajectory), read at reset with ``expert_plan=True``.
* any other env: task ``i`` resets with seed ``seed * 100003 + i`` (held out: an offset of
  ``10**6``) and ``data.options``; its length is ``info["k"]`` or the expert plan when the env
  reports them, else 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agents.env_pool import EnvSpec
from agents.multiturn import EpisodeTask
from guienv.run.train_config import DataConfig

__all__ = ["env_spec", "env_tasks", "task_lengths"]

HELD_OUT_SEED = 10**6


def env_spec(cfg: DataConfig) -> EnvSpec:
    return EnvSpec(str(cfg.env_id), dict(cfg.env_kwargs))


def _kind(env_id: str) -> str:
    low = env_id.lower()
    return "synthapp" if "synthapp" in low else "alfworld" if "alfworld" in low else "other"


def _games(kwargs: Mapping[str, Any]) -> int:
    if kwargs.get("games") is not None:
        return max(len(kwargs["games"]), 1)
    return 1


def env_tasks(cfg: DataConfig) -> tuple[list[EpisodeTask], list[EpisodeTask]]:
    """Training and held-out tasks (ids ``0..n-1`` in each list)."""
    kind = _kind(str(cfg.env_id))
    extra = dict(cfg.options)

    def make(i: int, held: bool) -> EpisodeTask:
        if kind == "synthapp":
            k = int(cfg.steps[i % len(cfg.steps)])
            opts = {**extra, "index": i, "task_seed": cfg.seed + (1000 if held else 0), "steps": k}
            return EpisodeTask(i, i, opts, k)
        seed = cfg.seed * 100003 + i + (HELD_OUT_SEED if held else 0)
        opts = dict(extra)
        if kind == "alfworld":
            opts["index"] = i % _games(cfg.env_kwargs)
        return EpisodeTask(i, seed, opts or None, 1)

    return [make(i, False) for i in range(cfg.train_size)], [make(i, True) for i in range(cfg.eval_size)]


def task_lengths(spec: EnvSpec, tasks: list[EpisodeTask]) -> list[EpisodeTask]:
    """``tasks`` with ``length`` read from the env at reset where the task set does not fix it:
    ``info["k"]`` (SynthApp), else the expert plan's length (ALFWorld with ``expert_plan``)."""
    if _kind(spec.id) == "synthapp" or not tasks:
        return tasks
    env = spec.make()
    out = []
    try:
        for t in tasks:
            _obs, info = env.reset(seed=t.seed, options=dict(t.options) if t.options else None)
            if info.get("k") is not None:
                n = int(info["k"])
            elif info.get("expert_plan") is not None:
                n = max(len(info["expert_plan"]), 1)
            else:
                n = 1
            out.append(EpisodeTask(t.id, t.seed, t.options, n))
    finally:
        env.close()
    return out
