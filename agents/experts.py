"""Experts that play multi-turn tasks, and their demonstrations for the SFT warm-up.

A tiny or weak model starts RL at zero success: every GRPO group then scores the same and carries no
signal. The warm-up imitates an expert first. Each expert answers a turn's view and info with the
text the policy should write, in the policy's own answer format and coordinate frame:

* ``synthapp``: the app's oracle (``info["oracle_action"]``, pixel frame) as a Qwen ``mobile_use``
  JSON action in the policy's frame (:func:`agents.sft.action_answer`);
* ``miniwob``: the DOM solver of :mod:`agents.miniwob_oracle` (reads the observation's element
  list), same answer format;
* ``alfworld``: the engine planner's next command (``info["expert_plan"][0]``, the env's
  ``expert_plan=True``) as verl-agent's ``<action>...</action>``.

:func:`collect_demonstrations` plays the tasks with the expert through the same rollout engine and
prompt builder as training, keeping the turns of episodes the expert solved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.miniwob_oracle import OracleError, oracle_action
from agents.multiturn import EpisodeTask, RolloutEngine
from agents.sft import action_answer
from guienv.actions import Action
from guienv.frames import Frame, Resize, Screen

__all__ = ["EXPERTS", "Demonstration", "collect_demonstrations", "expert_for", "make_expert"]

Expert = Callable[[Mapping[str, Any], Mapping[str, Any]], str]


@dataclass(frozen=True)
class Demonstration:
    """One expert turn: the encoded prompt the policy sees and the answer text it should write."""

    prompt: Any = None  # agents.policy.Encoded
    answer: str = ""
    task_id: int = 0


def _screen(view: Mapping[str, Any], resize: Resize | None) -> Screen:
    h, w = np.asarray(view["screenshot"]).shape[:2]
    return Screen(w, h, resize or Resize())


def synthapp_expert(frame: Frame | str, resize: Resize | None) -> Expert:
    frame = Frame(frame)

    def act(view: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        return action_answer(Action.from_dict(info["oracle_action"]), _screen(view, resize), frame)

    return act


def miniwob_expert(frame: Frame | str, resize: Resize | None) -> Expert:
    frame = Frame(frame)

    def act(view: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        try:
            a = oracle_action(str(info.get("task")), view, info)
        except OracleError:
            a = Action.finish("infeasible")
        return action_answer(a, _screen(view, resize), frame)

    return act


def alfworld_expert(frame: Any = None, resize: Any = None) -> Expert:
    def act(view: Mapping[str, Any], info: Mapping[str, Any]) -> str:
        plan = info.get("expert_plan")
        if plan is None:
            raise ValueError("the ALFWorld expert needs the env's expert plan: env kwargs expert_plan: true")
        return f"<action>{plan[0] if plan else 'look'}</action>"

    return act


EXPERTS: dict[str, Callable[..., Expert]] = {
    "synthapp": synthapp_expert,
    "miniwob": miniwob_expert,
    "alfworld": alfworld_expert,
}


def expert_for(env_id: str) -> str | None:
    """The expert's name for a guienv env id (None when there is none)."""
    low = env_id.lower()
    for name in EXPERTS:
        if name in low:
            return name
    return None


def make_expert(name: str, frame: Frame | str | None = None, resize: Resize | None = None) -> Expert:
    if name not in EXPERTS:
        raise ValueError(f"unknown expert {name!r}; known: {sorted(EXPERTS)}")
    return EXPERTS[name](frame or Frame.PIXEL, resize)


def collect_demonstrations(engine: RolloutEngine, tasks: Sequence[EpisodeTask], expert: Expert, *,
                           batch: int | None = None, solved_only: bool = True) -> tuple[list[Demonstration], dict[str, float]]:
    """Play every task once with ``expert`` (``batch`` tasks at a time, default the pool size) and
    return the turns of the episodes it solved (``solved_only``) as demonstrations, plus counts."""
    batch = batch or engine.pool.size
    demos: list[Demonstration] = []
    solved = failed = episodes = 0
    for lo in range(0, len(tasks), batch):
        chunk = list(tasks[lo:lo + batch])
        ro = engine.run(chunk, 1, temperature=0.0, act=lambda views, infos: [expert(v, i) for v, i in zip(views, infos)])
        for g, task in enumerate(chunk):
            episodes += 1
            if ro.failures[g][0] is not None:
                failed += 1
                continue
            ok = ro.successes[g][0]
            solved += ok
            if ok or not solved_only:
                demos += [Demonstration(t.prompt, t.text, task.id) for t in ro.turns[g][0]]
    return demos, {"episodes": episodes, "solved": solved, "failed": failed, "turns": len(demos)}
