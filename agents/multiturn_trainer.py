"""Online multi-turn GRPO: step advantages (GRPO, SALT or GiGPO) on every token of each turn.

One training step:

1. **Roll out** the step's ``P`` tasks x ``G`` trajectories with :class:`~agents.multiturn.RolloutEngine`
   (lockstep, one batched generate call per turn). Groups with a failed trajectory are retried or
   dropped (``multiturn.on_failure``), never scored as zeros; a failure rate above
   ``multiturn.max_failure_rate`` raises :class:`RolloutFailure`.
2. **Advantages** per turn from :func:`agents.advantages.estimate` over the groups: GRPO's outcome
   advantage (DeepSeekMath, arXiv 2402.03300, eq. 3, every turn of trajectory i gets
   ``R_i - mean_j R_j``), SALT's trajectory-graph step advantage (Li et al., arXiv 2510.20022, the
   mean of ``A_i`` over the trajectories through the same transition) or GiGPO's episode + anchor
   state advantage (Feng et al., arXiv 2505.10978, eq. 7-9; verl-agent ``gigpo/core_gigpo.py``).
3. **Loss**: every turn is one row of the GRPO update (:meth:`agents.grpo.GRPOTrainer.update`):
   its own prompt (the observation and history at that turn), its completion, and its turn's
   advantage on every completion token; the clipped surrogate, KL and aggregation of
   :mod:`agents.grpo_loss` apply per turn. How turns are normalised (``multiturn.turn_weighting``):

   - ``turn`` (verl-agent): each turn is one sample, weight 1. With ``token-mean`` aggregation the
     loss is the mean over all completion tokens of all turns; with ``sequence-mean`` or
     ``constant`` the mean over turns. A 6-turn trajectory counts 6 times as much as a 1-turn one.
   - ``trajectory``: each turn weighs ``1 / turns`` of its trajectory, so every trajectory carries
     the same total weight (weights multiply numerators only, see :func:`agents.grpo_loss.aggregate`).

   With one turn and the ``grpo`` estimator this is exactly the single-step trainer's update
   (``tests/agents/test_multiturn_trainer.py`` checks the parameters after one step agree).

Log-probs for the ratio come from the training forward pass (``pi_old`` is the first inner epoch's
detached forward, as in :mod:`agents.grpo`); the sampling log-probs stay in the rollout
(:class:`~agents.multiturn.Turn`) and feed the truncated importance-sampling correction of an
engine/trainer mismatch (``generation.importance_correction: tis``, :mod:`agents.engines`); a
generation engine installed on the policy (vLLM) is synced after every update.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.advantages import estimate
from agents.distributed import DistInfo
from agents.engines import EngineConfig
from agents.grpo import GRPOTrainer, GRPOTrainerConfig, Rollout
from agents.multiturn import EpisodeTask, MultiTurnConfig, MultiTurnRollout, RolloutEngine, rollout_stats
from agents.task_reward import Scored

if TYPE_CHECKING:
    import torch

__all__ = ["MultiTurnTrainer", "RolloutFailure", "turn_rows"]


class RolloutFailure(RuntimeError):
    """Too many trajectories of a step failed (env crashes, lost sessions): the run stops."""


def turn_rows(ro: MultiTurnRollout, advantages: np.ndarray, weighting: str = "turn") -> Rollout:
    """The GRPO update's rows for a rollout: one per turn (group -> trajectory -> turn order, the
    order :func:`agents.advantages.estimate` returns advantages in), its prompt, completion,
    advantage and weight."""
    prompts, comps, adv, wts, scored, ids, texts, lps = [], [], [], [], [], [], [], []
    k = 0
    for g, grp in enumerate(ro.groups):
        for j, traj in enumerate(grp.trajectories):
            turns = ro.turns[g][j]
            if len(turns) != len(traj.steps):
                raise ValueError(f"group {g} trajectory {j}: {len(turns)} turns for {len(traj.steps)} steps")
            w = 1.0 if weighting == "turn" else 1.0 / max(len(turns), 1)
            for turn, st in zip(turns, traj.steps):
                prompts.append(turn.prompt)
                comps.append(turn.completion)
                adv.append(advantages[k])
                wts.append(w)
                scored.append(Scored(st.reward, {}, bool(ro.successes[g][j]), st.valid))
                texts.append(turn.text)
                lps.append(list(turn.logprobs))
                k += 1
            ids.append(ro.tasks[g].id)
    if k != len(advantages):
        raise ValueError(f"{len(advantages)} advantages for {k} turns")
    return Rollout(ids, [], comps, scored, np.asarray(adv, dtype=np.float64), np.asarray(wts, dtype=np.float64), 1,
                   texts, row_prompts=prompts, sample_logprobs=lps)


class MultiTurnTrainer:
    """Multi-turn GRPO steps (see the module docstring) on ``tasks`` (:class:`~agents.multiturn.EpisodeTask`),
    drawn by a sampler (a :class:`~tasks.curriculum.Curriculum`'s ``next_batch``)."""

    def __init__(self, policy: Any, grpo: GRPOTrainerConfig, config: MultiTurnConfig, engine: RolloutEngine,
                 tasks: Sequence[EpisodeTask], optimizer: torch.optim.Optimizer, scheduler: Any = None, *,
                 dist: DistInfo | None = None, train_model: Any = None, ref_model: Any = None,
                 autocast: torch.dtype | None = None, generation: EngineConfig | None = None):
        self.policy = policy
        self.grpo_config = grpo
        self.config = config
        self.engine = engine
        self.tasks = list(tasks)
        self.adv_config = config.advantage_config()
        self.update_trainer = GRPOTrainer(policy, grpo, None, [], optimizer, scheduler, dist=dist,  # type: ignore[arg-type]
                                          train_model=train_model, ref_model=ref_model, autocast=autocast,
                                          generation=generation)
        self.update_trainer.dummy_prompt = self._dummy_prompt
        self.dist = self.update_trainer.dist
        self.outcomes: list[tuple[int, int]] = []  # (task id, successes) of every scored group of the last step

    def _dummy_prompt(self) -> Any:
        return self.policy.encode_messages([{"role": "user", "content": [{"type": "text", "text": "."}]}], [])

    # -- rollouts ---------------------------------------------------------------------------------
    def run(self, tasks: Sequence[EpisodeTask]) -> MultiTurnRollout:
        c = self.grpo_config
        return self.engine.run(tasks, c.group_size, temperature=c.temperature, top_p=c.top_p,
                               max_new_tokens=c.max_new_tokens)

    def collect(self, sampler: Callable[[int], list[int]]) -> tuple[MultiTurnRollout, dict[str, float]]:
        """This rank's scored groups of the step (failed groups retried or dropped) and the rollout metrics."""
        cfg, d = self.config, self.dist
        ids = sampler(self.grpo_config.prompts_per_step)
        lo, hi = d.shard(len(ids))
        ro = self.run([self.tasks[i] for i in ids[lo:hi]])
        attempted = rollout_stats(ro)
        retried = 0
        if cfg.on_failure == "retry":
            for _ in range(cfg.retries):
                bad = set(ro.failed_groups())
                if not bad:
                    break
                again = self.run([ro.tasks[g] for g in sorted(bad)])
                retried += len(bad)
                for k, v in rollout_stats(again).items():
                    attempted[k] += v
                good = [g for g in range(len(ro.groups)) if g not in bad]
                ro = MultiTurnRollout.concat([ro.select(good), again])
        bad = set(ro.failed_groups())
        reasons = [f for fs in ro.failures for f in fs if f is not None]
        used = ro.select([g for g in range(len(ro.groups)) if g not in bad])
        self.outcomes = [(t.id, int(sum(s))) for t, s in zip(used.tasks, used.successes)]
        stats = self._stats(attempted, used, len(bad), retried, reasons)
        return used, stats

    def _stats(self, attempted: dict[str, float], used: MultiTurnRollout, dropped: int, retried: int,
               reasons: list[str]) -> dict[str, float]:
        d = self.dist
        mine = rollout_stats(used)
        keys = sorted(mine)
        tot_used = dict(zip(keys, d.all_reduce_sum([mine[k] for k in keys])))
        att_fail, att_n, drop, retr = d.all_reduce_sum([attempted["failed"], attempted["trajectories"], dropped, retried])
        n = max(tot_used["trajectories"], 1.0)
        turns = max(tot_used["turns"], 1.0)
        rate = att_fail / max(att_n, 1.0)
        if rate > self.config.max_failure_rate:
            shown = "; ".join(sorted(set(reasons))[:3]) or "(reasons on other ranks)"
            raise RolloutFailure(f"{int(att_fail)} of {int(att_n)} trajectories failed this step ({rate:.0%} > "
                                 f"multiturn.max_failure_rate {self.config.max_failure_rate:.0%}): {shown}")
        return {
            "success_rate": tot_used["succeeded"] / n,
            "accuracy": tot_used["succeeded"] / n,  # the curriculum's default promotion metric
            "reward": tot_used["return_sum"] / n,
            "mean_turns": tot_used["turns"] / n,
            "invalid_rate": tot_used["invalid"] / turns,
            "completion_len": tot_used["completion_tokens"] / turns,
            "failed_trajectories": att_fail,
            "failure_rate": rate,
            "dropped_groups": drop,
            "retried_groups": retr,
            "groups_used": tot_used["trajectories"] / max(self.grpo_config.group_size, 1),
        }

    # -- the step ---------------------------------------------------------------------------------
    def advantages(self, ro: MultiTurnRollout) -> np.ndarray:
        if not ro.groups:
            return np.zeros(0)
        return estimate(ro.groups, self.adv_config)

    def step(self, sampler: Callable[[int], list[int]]) -> tuple[dict[str, float], MultiTurnRollout]:
        """Roll out, estimate step advantages, update. Returns the metrics (global) and this rank's rollout."""
        t0 = time.perf_counter()
        ro, stats = self.collect(sampler)
        t1 = time.perf_counter()
        adv = self.advantages(ro)
        rows = turn_rows(ro, adv, self.config.turn_weighting)
        t2 = time.perf_counter()
        stats.update(self._advantage_stats(adv, ro))
        stats.update(self.update_trainer.update(rows))
        t3 = time.perf_counter()
        stats.update(time_env=ro.times.get("env", 0.0), time_generate=ro.times.get("generate", 0.0) + ro.times.get("prompt", 0.0),
                     time_rollout=t1 - t0, time_scoring=t2 - t1, time_update=t3 - t2)
        return stats, ro

    def _advantage_stats(self, adv: np.ndarray, ro: MultiTurnRollout) -> dict[str, float]:
        d = self.dist
        n, s, s2, nz, amax = len(adv), float(adv.sum()), float((adv ** 2).sum()), float((np.abs(adv) > 1e-9).sum()), \
            float(np.abs(adv).max(initial=0.0))
        n, s, s2, nz = d.all_reduce_sum([n, s, s2, nz])
        amax = max(d.all_gather(amax))
        mean = s / max(n, 1.0)
        return {"adv_mean": mean, "adv_std": float(np.sqrt(max(s2 / max(n, 1.0) - mean * mean, 0.0))),
                "adv_nonzero_frac": nz / max(n, 1.0), "adv_abs_max": amax}
