"""``guienv eval`` with a model agent, batched: the tiny random-init Qwen2.5-VL (built here, loaded
through ``from_pretrained``) end to end on the synthetic benchmark and on fixture files of each
benchmark format; ``guienv score`` re-scores an eval run from its files; batching and resuming.

The random-init model scores about 0: what is tested is the plumbing (episodes, slices, raw text,
frames, files). The oracle's 100% is in tests/guienv/run/test_eval.py.
"""

from __future__ import annotations

import json

import pytest

from agents.tiny_model import build_tiny_model
from guienv.run.cli import main
from tasks.androidcontrol import load_androidcontrol
from tasks.screenspot import load_screenspot

QWEN_ARGS = ["--max-pixels", str(64 * 28 * 28), "--max-new-tokens", "6", "--dtype", "float32", "--device", "cpu"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen25vl")


def _metrics(out) -> dict:
    return json.loads((out / "metrics.json").read_text())


def _jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _check_model_run(out, n_episodes: int) -> tuple[dict, list[dict], list[dict]]:
    """Files of a model run: one record per episode, one step row per step with the raw text."""
    m, recs, rows = _metrics(out), _jsonl(out / "predictions.jsonl"), _jsonl(out / "steps.jsonl")
    assert m["overall"]["episodes"] == n_episodes == len(recs)
    assert sorted(r["index"] for r in recs) == list(range(n_episodes))
    assert len(rows) == sum(r["steps"] for r in recs)
    assert all(isinstance(r["text"], str) and r["frame"] == "resized" for r in rows)
    assert all(len(r["texts"]) == r["steps"] for r in recs)
    assert 0.0 <= m["overall"]["success_rate"] <= 1.0
    assert m["agent"] == "qwen" and m["agent_config"]["frame"] == "resized"
    html = (out / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "data:image/jpeg;base64," in html
    return m, recs, rows


@pytest.mark.slow
def test_qwen_on_the_bundled_synthetic_benchmark(tiny, tmp_path, capsys):
    out = tmp_path / "synth"
    assert main(["eval", "--agent", "qwen", "--model", str(tiny), "--episodes", "2", "--batch-size", "2",
                 "--out", str(out), *QWEN_ARGS]) == 0
    m, recs, rows = _check_model_run(out, 2)
    assert m["agent_config"]["template"] == "synthapp"
    assert all(r["steps"] >= 1 for r in recs)
    printed = capsys.readouterr().out
    assert f"report: {out}/report.html" in printed


@pytest.mark.slow
def test_qwen_on_screenspot_v2_files_and_score_agrees(tiny, screenspot_dir, tmp_path):
    out = tmp_path / "ss"
    assert main(["eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--agent", "qwen",
                 "--model", str(tiny), "--batch-size", "4", "--out", str(out), *QWEN_ARGS]) == 0
    samples = load_screenspot(screenspot_dir)
    m, _, rows = _check_model_run(out, len(samples))
    pub = m["published"]
    assert set(pub["by_platform"]) == {s.platform for s in samples}
    assert set(pub["by_split"]) == {s.split for s in samples}
    assert pub["overall"]["text_samples"] + pub["overall"]["icon_samples"] == len(samples)
    assert m["agent_config"]["template"] == "gui-g1"
    assert sorted(r["id"] for r in rows) == sorted(s.id for s in samples)
    assert main(["score", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--predictions",
                 str(out / "steps.jsonl"), "--out", str(tmp_path / "score")]) == 0
    scored = _metrics(tmp_path / "score")
    assert {k: scored[k] for k in pub} == pub


@pytest.mark.slow
def test_qwen_on_androidcontrol_tfrecord_high_level_and_score_agrees(tiny, androidcontrol_file, tmp_path):
    out = tmp_path / "ac"
    assert main(["eval", "--benchmark", "androidcontrol", "--data", str(androidcontrol_file), "--agent", "qwen",
                 "--model", str(tiny), "--batch-size", "2", "--mode", "high", "--protocol", "os-atlas",
                 "--out", str(out), *QWEN_ARGS]) == 0
    episodes = load_androidcontrol(androidcontrol_file)
    m, recs, rows = _check_model_run(out, len(episodes))
    assert (m["mode"], m["protocol"], m["agent_config"]["template"]) == ("high", "os-atlas", "androidcontrol-high")
    n_steps = sum(len(e.steps) for e in episodes)
    assert m["published"]["overall"]["steps"] == n_steps == len(rows)
    assert set(m["published"]["by_type"]) == {s.action.type.value for e in episodes for s in e.steps}
    assert {(r["episode_id"], r["step_index"]) for r in rows} == {(str(e.id), i) for e in episodes for i in range(len(e.steps))}
    assert main(["score", "--benchmark", "androidcontrol", "--data", str(androidcontrol_file), "--protocol", "os-atlas",
                 "--predictions", str(out / "steps.jsonl"), "--out", str(tmp_path / "score")]) == 0
    scored = _metrics(tmp_path / "score")
    assert {k: scored[k] for k in m["published"]} == m["published"]


@pytest.mark.parametrize("bench", ["screenspot", "androidcontrol"])
def test_guienv_score_reproduces_eval_metrics_of_baselines(bench, screenspot_dir, androidcontrol_file, tmp_path):
    """Non-trivial numbers (random agent: some types right, clicks mostly wrong; oracle: all
    right) come out identical when `guienv score` reads the run's steps.jsonl."""
    data = screenspot_dir if bench == "screenspot" else androidcontrol_file
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", bench, "--data", str(data), "--agent", "oracle", "random",
                 "--batch-size", "3", "--out", str(out)]) == 0
    for agent in ("oracle", "random"):
        m = _metrics(out / agent)
        score_out = tmp_path / f"score-{agent}"
        assert main(["score", "--benchmark", bench, "--data", str(data), "--predictions",
                     str(out / agent / "steps.jsonl"), "--out", str(score_out)]) == 0
        scored = _metrics(score_out)
        assert {k: scored[k] for k in m["published"]} == m["published"]
        assert scored["overall"]["missing"] == 0
    assert _metrics(out / "oracle")["published"]["overall"] != _metrics(out / "random")["published"]["overall"]


def test_screenspot_pro_groups_are_reported_and_rescored(tmp_path):
    """ScreenSpot-Pro annotations (xyxy boxes, 'group' per sample): eval reports per group, and
    `guienv score` agrees on a random run; the oracle is 100% in every group."""
    import numpy as np

    from guienv.io import encode_png
    from guienv.types import GroundingSample, ImageRef
    from tasks.screenspot import write_screenspot

    samples = []
    for i in range(6):
        img = np.full((360, 640, 3), 30 * i, np.uint8)
        box = (0.0, 0.0, 640.0, 360.0) if i % 3 == 0 else (100.0 + i, 50.0, 140.0 + i, 80.0)
        samples.append(GroundingSample(
            id=f"p{i}", image=ImageRef(data=encode_png(img), where=f"pro {i}"), instruction=f"widget {i}", box=box,
            width=640, height=360, data_type="icon" if i % 2 else "text", platform="windows",
            source=("vscode", "blender")[i % 2], extra={"group": ("Dev", "Creative")[i % 2]},
        ))
    data = write_screenspot(samples, tmp_path / "pro", version="pro")
    out = tmp_path / "eval"
    assert main(["eval", "--benchmark", "screenspot-pro", "--data", str(data), "--agent", "oracle", "random",
                 "--batch-size", "4", "--out", str(out)]) == 0
    oracle, rand = _metrics(out / "oracle"), _metrics(out / "random")
    assert set(oracle["published"]["by_group"]) == {"Dev", "Creative"} == set(oracle["by_group"])
    assert all(b["accuracy"] == 1.0 for b in oracle["published"]["by_group"].values())
    assert main(["score", "--benchmark", "screenspot", "--data", str(data), "--predictions",
                 str(out / "random" / "steps.jsonl"), "--out", str(tmp_path / "score")]) == 0
    scored = _metrics(tmp_path / "score")
    assert {k: scored[k] for k in rand["published"]} == rand["published"]
    assert 0 < rand["published"]["overall"]["accuracy"] < 1  # the two whole-screen boxes always hit


def test_batch_size_does_not_change_results(androidcontrol_file, tmp_path):
    runs = {}
    for b in (1, 2, 5):
        out = tmp_path / f"b{b}"
        assert main(["eval", "--benchmark", "androidcontrol", "--data", str(androidcontrol_file),
                     "--batch-size", str(b), "--out", str(out)]) == 0
        runs[b] = sorted(_jsonl(out / "predictions.jsonl"), key=lambda r: r["index"])
        assert _metrics(out)["config"]["batch_size"] == b
    assert runs[1] == runs[2] == runs[5]


def test_batched_resume_repairs_an_interrupted_run(screenspot_dir, tmp_path):
    out = tmp_path / "eval"
    args = ["eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--batch-size", "2", "--out", str(out)]
    assert main([*args, "--limit", "3"]) == 0
    assert len(_jsonl(out / "predictions.jsonl")) == 3
    # A crash: step rows of episode 4 were written, its record only half.
    with open(out / "steps.jsonl", "a") as f:
        f.write(json.dumps({"episode": 4, "step": 0, "index": 4, "id": "4", "action": {"type": "wait"}}) + "\n")
    with open(out / "predictions.jsonl", "a") as f:
        f.write('{"index": 4, "id": "4", "ret')
    with pytest.warns(UserWarning, match="unfinished last line"):
        assert main(args) == 0
    recs, rows = _jsonl(out / "predictions.jsonl"), _jsonl(out / "steps.jsonl")
    assert sorted(r["index"] for r in recs) == list(range(6))
    assert sorted(r["episode"] for r in rows) == list(range(6))  # the orphan row is gone, no duplicates
    assert _metrics(out)["resumed"] == 3
    assert main(["score", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--predictions",
                 str(out / "steps.jsonl"), "--out", str(tmp_path / "score")]) == 0
    assert _metrics(tmp_path / "score")["overall"]["accuracy"] == 1.0


def test_bad_eval_options_are_clear_errors(screenspot_dir, tmp_path, capsys):
    base = ["eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--out", str(tmp_path)]

    def fails(argv, match):  # one line on stderr, exit code 2
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("guienv eval: ") and err.count("\n") == 1 and match in err, err

    fails([*base, "--protocol", "qwen"], "--protocol applies to androidcontrol")
    fails([*base, "--mode", "low"], "--mode applies to")
    fails([*base, "--batch-size", "0"], "--batch-size")
    fails(["eval", "--benchmark", "androidcontrol", "--data", "x", "--protocol", "nope", "--out", str(tmp_path)],
          "unknown --protocol")
    with pytest.raises(SystemExit, match="needs --model"):
        main([*base, "--agent", "qwen"])
