"""HistoryWrapper: observations are History.view() of the real env, actions pass through unchanged."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import guienv  # noqa: F401  registers the env ids
from guienv.actions import Action
from guienv.envs.history import HistoryWrapper
from guienv.frames import Frame, Resize
from guienv.history import History, HistoryConfig


def _same(a, b) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, np.ndarray) or isinstance(x, tuple):
            if len(x) != len(y) or not all(np.array_equal(p, q) for p, q in zip(x, y)):
                return False
        elif x != y:
            return False
    return True


def test_wrapper_views_equal_a_history_built_beside_the_plain_env():
    cfg, resize = HistoryConfig(screens=1, actions=3), Resize(max_pixels=256 * 28 * 28)
    wrapped = HistoryWrapper(gym.make("guienv/SynthApp-v0", mode="app", steps=3), cfg, Frame.GRID1000, resize)
    plain = gym.make("guienv/SynthApp-v0", mode="app", steps=3)
    hist = History(cfg, Frame.GRID1000, resize)
    wv, winfo = wrapped.reset(seed=7)
    obs, info = plain.reset(seed=7)
    hist.reset(obs, info)
    assert _same(wv, hist.view()) and winfo["oracle_action"] == info["oracle_action"]
    done, k = False, 0
    while not done and k < 12:
        action = "wait" if k == 0 else Action.from_dict(info["oracle_action"])
        k += 1
        wv, wr, wt, wtr, winfo = wrapped.step(action)
        obs, r, t, tr, info = plain.step(action)
        hist.record(action, obs, info)
        assert (wr, wt, wtr) == (r, t, tr) and winfo["invalid"] == info["invalid"]
        assert _same(wv, hist.view())
        done = t or tr
    assert done and wrapped.history.step == k >= 3
    assert wv["history"].count("\n") == 2 and '"frame": "grid1000"' in wv["history"]
    wrapped.close()
    plain.close()


def test_wrapper_on_a_text_env_gives_text_views():
    env = HistoryWrapper(gym.make("guienv/MDP-v0", spec="chain"), HistoryConfig(observations=1))
    v, info = env.reset(seed=2)
    assert v["step"] == 0 and v["history"] == [] and v["admissible_commands"] == info["admissible_commands"]
    first = v["observation"]
    v, _, _, _, info = env.step(1)  # an index passes through to the env unchanged
    assert info["action"] == "a1" and v["history"] == [(first, "a1")] and v["step"] == 1
    env.close()
