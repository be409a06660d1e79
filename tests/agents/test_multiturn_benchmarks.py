"""The multi-turn benchmarks (``benchmarks/rollout_speed.py``, ``benchmarks/mdp_text_advantages.py``)
run end to end in ``--smoke`` mode as subprocesses, on tiny models built once, and write JSON whose
numbers hang together (the benchmarks are scripts, not a package: they are tested here, next to
the engine they measure, :mod:`agents.multiturn`)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    from agents.tiny_model import build_tiny_model, build_tiny_text_model

    d = tmp_path_factory.mktemp("bench-models")
    return build_tiny_text_model(d / "text"), build_tiny_model(d / "vl")


def _run(script: str, out: Path, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--smoke", "--out", str(out), *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_rollout_speed_smoke_counts_the_same_work_in_both_modes(models, tmp_path):
    text, vl = models
    res = _run("rollout_speed.py", tmp_path / "r.json", "--text-model", str(text), "--vl-model", str(vl))
    assert res["smoke"] is True and set(res["setups"]) == {"mdp-text", "synthapp-vl"}
    for name, s in res["setups"].items():
        st = s["settings"]
        assert st["live_trajectories"] == st["tasks"] * st["group_size"] == 4
        for mode in ("batched", "sequential"):
            runs = s["runs"][mode]
            assert len(runs) == 1
            for r in runs:
                assert set(r["times"]) == {"env", "generate", "prompt"}
                assert sum(r["times"].values()) <= r["wall_s"] + 1e-6
                assert r["steps_per_s"] == pytest.approx(r["steps"] / r["wall_s"])
                assert 1 <= r["steps"] <= st["live_trajectories"] * st["max_turns"]
        if name == "mdp-text":  # the goal is out of reach: every trajectory takes max_turns steps
            for mode in ("batched", "sequential"):
                assert s["runs"][mode][0]["steps"] == st["live_trajectories"] * st["max_turns"]
        assert s["speedup_median"] == pytest.approx(s["batched"]["steps_per_s_median"]
                                                    / s["sequential"]["steps_per_s_median"])
        assert s["speedup_min"] <= s["speedup_median"] * (1 + 1e-9) and s["speedup_median"] <= s["speedup_max"] * (1 + 1e-9)


def test_mdp_text_advantages_smoke_scores_every_estimator(models, tmp_path):
    from guienv.envs.mdp import evaluate_policy
    from tasks import mdp_specs

    res = _run("mdp_text_advantages.py", tmp_path / "m.json", "--model", str(models[0]))
    st = res["settings"]
    assert res["smoke"] is True and st["horizon"] == 3 and st["actions"] == ["a0", "a1"]
    # the LM's policy table: one row per (step, observation), the actions and the no-op
    pi = np.array(res["exact"]["pi"])
    assert pi.shape == (3, 5, 3) and (pi >= 0).all()
    np.testing.assert_allclose(pi.sum(-1), 1.0, atol=1e-3)
    # J recomputed from the table on the chain plus a self-loop action
    spec = mdp_specs.chain(length=3, n_actions=2, dead_end="trap", horizon=3)
    noop = mdp_specs.MDPSpec(spec.name, spec.actions + ("x",), spec.states, spec.start, spec.horizon)
    assert evaluate_policy(noop, pi / pi.sum(-1, keepdims=True)).J == pytest.approx(res["exact"]["J"], abs=2e-3)
    # the corridor is as long as the horizon: every trajectory takes exactly 3 steps
    assert res["steps_per_seed"] == st["tasks"] * st["group_size"] * 3
    for k in ("unmodelled_rate", "invalid_rate", "success_rate"):
        assert 0.0 <= res[k] <= 1.0
    assert set(res["estimators"]) == {"GRPO", "SALT(obs)", "SALT(history)", "GiGPO"}
    assert len(res["per_seed"]) == st["seeds"] == 2
    for seed in res["per_seed"]:
        for row in seed["estimators"].values():
            for target in ("step", "trajectory"):
                assert math.isfinite(row[f"mse_vs_{target}"])
                assert row[f"mse_vs_{target}"] >= row[f"bias_vs_{target}"] ** 2 - 1e-12
    # the MSE split: squared bias per (t, s, a) cell plus what is left (variance), both >= 0
    for name in res["estimators"]:
        for target in ("step", "trajectory"):
            x = res["decomposition"][name][target]
            assert x["cell_bias2"] >= 0 and x["variance"] >= -1e-12
            assert x["mse"] == pytest.approx(x["cell_bias2"] + x["variance"])
            assert x["mse"] == pytest.approx(np.mean([s["estimators"][name][f"mse_vs_{target}"] for s in res["per_seed"]]))
