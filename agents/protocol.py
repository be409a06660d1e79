"""What every agent is: the one interface the evaluation loop and rollouts call.

An agent maps an env observation (and the env's ``info``, where ground truth and task names live)
to a :class:`~guienv.actions.Action`. ``act_batch`` takes the observations and infos of several envs
stepped in lockstep and returns one action each, in order; model agents batch the forward pass
there. ``close`` (optional) releases what the agent holds (HTTP pools, model memory).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from guienv.actions import Action


@runtime_checkable
class Agent(Protocol):
    """``act(observation, info) -> Action`` and ``act_batch(observations, infos) -> list[Action]``."""

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Action: ...

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]]) -> list[Action]: ...


def check_infos(observations: Sequence[Any], infos: Sequence[Any]) -> list[Any]:
    """``infos`` as a list, one per observation (a mismatch is a caller bug, raised at once)."""
    infos = list(infos)
    if len(infos) != len(observations):
        raise ValueError(f"{len(observations)} observations but {len(infos)} infos")
    return infos

