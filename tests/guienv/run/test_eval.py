"""``guienv eval`` end to end: fixture files in the real formats, baseline agents, resumability.

The oracle must score 100% on every offline benchmark (a check of env and metric plumbing); the
random agent must not. The fixture files (``screenspot_dir``, ``androidcontrol_file``) are in
``conftest.py``.
"""

from __future__ import annotations

import json

import pytest

from guienv.run.cli import main


def _metrics(out) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_oracle_scores_100_percent_on_screenspot_and_random_does_not(screenspot_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "screenspot", "--data", str(screenspot_dir),
                 "--agent", "oracle", "random", "--out", str(out)]) == 0
    oracle, rand = _metrics(out / "oracle"), _metrics(out / "random")
    assert oracle["overall"]["success_rate"] == 1.0 and oracle["overall"]["episodes"] == 6
    assert oracle["published"]["overall"]["accuracy"] == 1.0
    assert rand["overall"]["success_rate"] < 1.0
    assert "screenspot / agent=oracle" in capsys.readouterr().out


def test_oracle_scores_100_percent_on_androidcontrol(androidcontrol_file, tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "androidcontrol", "--data", str(androidcontrol_file),
                 "--agent", "oracle", "--out", str(out)]) == 0
    m = _metrics(out)
    assert m["overall"] == {"episodes": 3, "success_rate": 1.0, "mean_return": 3.0, "mean_steps": 3.0}
    pub = m["published"]["overall"]
    assert pub["step_success_rate"] == 1.0 and pub["type_accuracy"] == 1.0
    assert pub["episode_success_rate"] == 1.0


def test_eval_resumes_and_skips_finished_samples(screenspot_dir, tmp_path):
    out = tmp_path / "eval"
    main(["eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--limit", "2", "--out", str(out)])
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 2
    main(["eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--out", str(out)])
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["index"] for line in lines) == list(range(6))
    assert _metrics(out)["resumed"] == 2


def test_oracle_solves_synthapp_and_random_mostly_fails(tmp_path):
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "synthapp", "--episodes", "20", "--agent", "oracle", "random",
                 "--out", str(out)]) == 0
    assert _metrics(out / "oracle")["overall"]["success_rate"] == 1.0
    assert _metrics(out / "random")["overall"]["success_rate"] < 0.5


def test_eval_without_data_for_offline_benchmark_is_a_clear_error(tmp_path, capsys):
    assert main(["eval", "--benchmark", "screenspot", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err == "guienv eval: --data is required for benchmark 'screenspot'\n"


@pytest.mark.realstack
@pytest.mark.slow
def test_eval_miniwob_oracle_reports_per_task_success(tmp_path):
    """Starts its own Appium server (loopback) and drives Chromium through the MiniWoB++ pages."""
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "miniwob", "--agent", "oracle", "--episodes", "1", "--out", str(out)]) == 0
    m = _metrics(out)
    assert set(m["by_split"]) == {"click-button", "click-link", "click-checkboxes", "enter-text", "focus-text"}
    assert all(block["success_rate"] == 1.0 for block in m["by_split"].values())
