"""Env protocol errors (Gymnasium's types), reset-option checks, missing optional packages."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import DependencyNotInstalled, ResetNeeded

import guienv  # noqa: F401  (registers the env ids)
from guienv.envs.options import int_option, reset_options
from guienv.errors import EnvProtocolError, MissingDependency, ResetOptionError


def test_error_types_are_gymnasium_and_builtin():
    assert issubclass(EnvProtocolError, ResetNeeded) and issubclass(EnvProtocolError, RuntimeError)
    assert issubclass(MissingDependency, DependencyNotInstalled) and issubclass(MissingDependency, ImportError)
    assert issubclass(ResetOptionError, ValueError) and issubclass(ResetOptionError, IndexError)


def test_reset_options():
    assert reset_options(None) == {}
    assert reset_options({"index": 1}, {"index"}) == {"index": 1}
    with pytest.raises(ResetOptionError, match=r"unknown reset option\(s\) \['indx'\]"):
        reset_options({"indx": 1}, {"index", "steps"})


@pytest.mark.parametrize("value", [True, 1.0, "1", [1]])
def test_int_option_rejects_non_integers(value):
    with pytest.raises(ResetOptionError, match="must be an integer"):
        int_option({"index": value}, "index", 0, 5)


def test_int_option_range():
    assert int_option({}, "index") is None and int_option({"index": None}, "index") is None
    assert int_option({"index": np.int64(4)}, "index", 0, 5) == 4
    for bad in (-1, 5):
        with pytest.raises(ResetOptionError, match="out of range"):
            int_option({"index": bad}, "index", 0, 5)
    assert int_option({"steps": 10**6}, "steps", 1) == 10**6


def test_step_before_reset_and_after_the_end_is_reset_needed():
    env = gym.make("guienv/SynthApp-v0", mode="grounding").unwrapped
    with pytest.raises(ResetNeeded):
        env.step("click(start_box='(1,1)')")
    env.reset(seed=0)
    env.step("click(start_box='(1,1)')")
    with pytest.raises(ResetNeeded, match="reset"):
        env.step("click(start_box='(1,1)')")


def test_bad_reset_option_is_one_error_type():
    env = gym.make("guienv/SynthApp-v0", mode="app").unwrapped
    with pytest.raises(ResetOptionError, match="unknown"):
        env.reset(options={"seed": 3})
    with pytest.raises(ResetOptionError, match="steps"):
        env.reset(options={"steps": 0})
