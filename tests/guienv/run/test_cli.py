"""The ``guienv`` command line: ``--help`` of the program and of every subcommand, through the
installed entry point's module (``python -m guienv``) and in-process; ``python -m guienv train``
rejects a badly typed config key before any model loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from guienv.run.cli import build_parser, main

REPO = Path(__file__).resolve().parents[3]
SUBCOMMANDS = ("eval", "score", "synth-export", "train", "appium", "emulator", "report", "tiny-model")


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def test_parser_has_every_subcommand():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(SUBCOMMANDS)


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_subcommand_help_works_in_process(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: guienv " + command)


def test_python_m_guienv_help_lists_the_subcommands():
    proc = subprocess.run([sys.executable, "-m", "guienv", "--help"], capture_output=True, text=True,
                          cwd=REPO, env=_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in SUBCOMMANDS:
        assert command in proc.stdout


def test_python_m_guienv_train_help_and_a_bad_config_key(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "guienv", "train", "--help"], capture_output=True, text=True,
                          cwd=REPO, env=_env(), timeout=120)
    assert proc.returncode == 0 and "--config" in proc.stdout and "checkpoints" in proc.stdout
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "guienv", "train", "--config", str(REPO / "configs" / "train_default.yaml"),
                           "--out", str(out), "--set", "train.steps=ten"],
                          capture_output=True, text=True, cwd=REPO, env=_env(), timeout=120)
    assert proc.returncode != 0
    assert "train.steps" in proc.stderr and "train_default.yaml" in proc.stderr
    assert not out.exists()  # failed while loading the config: no model built, nothing written


def test_eval_decode_options_reach_the_qwen_agent_and_are_checked_before_loading():
    from guienv.run.cli import make_agent

    args = build_parser().parse_args(["eval", "--agent", "qwen", "--model", "/no/such/model",
                                      "--cache", "dynamic", "--compile"])
    assert args.cache == "dynamic" and args.compile is True
    with pytest.raises(ValueError, match=r"^compile: needs cache 'static'"):  # before the (missing) model loads
        make_agent("qwen", args, "gui-g1")
    assert build_parser().parse_args(["eval", "--agent", "qwen", "--cache", "static"]).compile is False
