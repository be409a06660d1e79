"""``guienv eval`` on text envs (the real ALFWorld engine with the planner expert, the MDP env),
``--history-*`` on SynthApp app mode, and ``run_episodes``, the loop the trainer calls."""

from __future__ import annotations

import json

import gymnasium as gym
import pytest

import guienv  # noqa: F401  registers the env ids
from guienv.envs.history import HistoryWrapper
from guienv.history import HistoryConfig
from guienv.prompts import observation_messages
from guienv.run.cli import main
from guienv.run.evaluate import EpisodeResult, EvalConfig, make_env, rebuild_report, run_episodes, run_eval


def _lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


class FixedTextAgent:
    """Answers one command (or the first admissible one) and keeps the prompt text it was shown."""

    name = "fixed"

    def __init__(self, command: str | None = None):
        self.command, self.prompts = command, []

    def act(self, observation, info):
        self.prompts.append(observation_messages("text", observation)[-1]["content"][0]["text"])
        return f"<action>{self.command or observation['admissible_commands'][0]}</action>"

    def act_batch(self, observations, infos):
        return [self.act(o, i) for o, i in zip(observations, infos)]


@pytest.mark.realstack
def test_eval_alfworld_expert_wins_the_real_game_and_writes_the_files(shared_data, tmp_path, capsys):
    pytest.importorskip("alfworld", reason="pip install alfworld")
    out = tmp_path / "alf"
    assert main(["eval", "--benchmark", "alfworld", "--data", str(shared_data / "alfworld"), "--agent", "expert",
                 "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["overall"]["episodes"] == 1 and m["overall"]["success_rate"] == 1.0
    assert m["overall"]["mean_return"] == 10.0 and m["config"]["benchmark"] == "alfworld"
    (rec,) = _lines(out / "predictions.jsonl")
    rows = _lines(out / "steps.jsonl")
    assert rec["success"] and rec["steps"] == len(rows) > 1 and rec["instruction"]
    assert all(isinstance(a, str) and a.startswith("<action>") for a in rec["actions"])
    assert [r["action"] for r in rows] == rec["actions"] and rows[-1]["reward"] == 10.0
    assert all(r["command"] == r["action"][len("<action>"):-len("</action>")] for r in rows)
    assert not any(r["invalid"] for r in rows)
    assert (out / "report.html").stat().st_size > 0 and "alfworld / agent=expert" in capsys.readouterr().out
    rebuild_report(out)  # the report rebuilds without screens to replay
    assert "<html" in (out / "report.html").read_text().lower()


def test_eval_mdp_records_text_actions_and_shows_the_text_history(tmp_path):
    agent = FixedTextAgent("a1")
    m = run_eval(EvalConfig(benchmark="mdp", data="chain", episodes=3, out=str(tmp_path / "mdp"),
                            history=HistoryConfig(observations=2)), agent)
    recs, rows = _lines(tmp_path / "mdp" / "predictions.jsonl"), _lines(tmp_path / "mdp" / "steps.jsonl")
    assert m["overall"]["episodes"] == 3 and len(rows) == sum(r["steps"] for r in recs)
    assert all(r["action"] == "<action>a1</action>" and r["command"] == "a1" and not r["invalid"] for r in rows)
    # each episode's return equals stepping the plain env with the same seeds and commands
    env = gym.make("guienv/MDP-v0", spec="chain")
    for rec in recs:
        env.reset(seed=rec["index"], options={"index": 0})
        total, done = 0.0, False
        while not done:
            _, r, t, tr, _ = env.step("a1")
            total, done = total + r, t or tr
        assert rec["return"] == pytest.approx(total)
    env.close()
    assert "Step 1. Current observation:" in agent.prompts[0] and "Observation" not in agent.prompts[0].split("Step 1")[0]
    assert "[Observation 1:" in agent.prompts[1] and "Action 1: 'a1']" in agent.prompts[1]
    assert m["config"]["history"]["observations"] == 2


def test_eval_mdp_cli_runs_the_default_spec_and_flags_invalid_actions(tmp_path):
    out = tmp_path / "mdp"
    assert main(["eval", "--benchmark", "mdp", "--agent", "random", "--episodes", "2", "--out", str(out)]) == 0
    rows = _lines(out / "steps.jsonl")
    assert rows and all(r["invalid"] for r in rows)  # clicks name no MDP action: flagged, never a crash
    assert json.loads((out / "metrics.json").read_text())["overall"]["success_rate"] == 0.0


def test_run_episodes_takes_seed_options_plans_and_does_not_depend_on_the_batch_size():
    cfg = EvalConfig(benchmark="mdp", data="chain")
    plans = [(s, {"index": 0}) for s in range(5)]
    one = run_episodes([make_env(cfg)], FixedTextAgent("a2"), plans)
    envs = [make_env(cfg) for _ in range(3)]
    three = run_episodes(envs, FixedTextAgent("a2"), plans)
    assert [r.index for r in one] == list(range(5)) and all(isinstance(r, EpisodeResult) for r in one)
    assert [(r.episode_return, r.steps, r.success) for r in one] == [(r.episode_return, r.steps, r.success) for r in three]
    assert all(r.reset_kwargs == {"seed": i, "options": {"index": 0}} for i, r in enumerate(one))
    assert one[0].record["actions"] == one[0].actions == ["<action>a2</action>"] * one[0].steps
    for e in envs:
        assert isinstance(e, HistoryWrapper)
        e.close()
    with pytest.raises(ValueError, match="expected"):
        run_episodes([make_env(cfg)], FixedTextAgent(), [(1, 2, 3, 4)])


def test_eval_synthapp_history_options_wrap_the_env_and_the_oracle_still_solves_it(tmp_path):
    out = tmp_path / "app"
    assert main(["eval", "--benchmark", "synthapp", "--episodes", "3", "--history-screens", "1",
                 "--history-actions", "4", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["overall"]["success_rate"] == 1.0
    assert m["config"]["history"] == {"screens": 1, "actions": 4, "observations": 2, "feedback": True}
    rebuild_report(out)  # the stored history config loads back and the wrapped env replays the screens
    assert "<img" in (out / "report.html").read_text()
    env = make_env(EvalConfig(history=HistoryConfig(screens=1, actions=4)))
    assert isinstance(env, HistoryWrapper)
    obs, info = env.reset(seed=0)
    obs, *_ = env.step(info["oracle_action"])
    assert obs["history"].startswith("1. ") and len(obs["previous_screenshots"]) == 1
    env.close()
    default = make_env(EvalConfig())  # no --history-*: HistoryConfig()'s 8 actions, no previous screens
    assert isinstance(default, HistoryWrapper) and default.history.config == HistoryConfig()
    default.close()
    assert not isinstance(make_env(EvalConfig(mode="grounding")), HistoryWrapper)  # one-step screens


def test_history_options_on_a_one_step_benchmark_are_a_clear_error(screenspot_dir, tmp_path, capsys):
    assert main(["eval", "--benchmark", "screenspot", "--data", str(screenspot_dir), "--history-actions", "2",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--history-* options apply to ['alfworld', 'mdp', 'miniwob', 'synthapp'], not 'screenspot'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="non-negative"):
        main(["eval", "--benchmark", "synthapp", "--history-screens", "-1", "--out", str(tmp_path / "y")])


class IndexAgent:
    """Answers an action index (the MDP env takes them as they are)."""

    name = "index"

    def act_batch(self, observations, infos):
        return [1 for _ in observations]


def test_run_episodes_passes_index_actions_of_text_envs_unchanged():
    (res,) = run_episodes([make_env(EvalConfig(benchmark="mdp"))], IndexAgent(), [(0, None)])
    assert res.actions == [1] * res.steps and all(r["command"] == "a1" and not r["invalid"] for r in res.rows)


def test_expert_plan_agent_plays_the_plan_then_falls_back():
    from agents.baselines import ExpertPlanAgent

    agent = ExpertPlanAgent()
    assert agent.act({}, {"expert_plan": ["go to sinkbasin 1", "look"]}) == "<action>go to sinkbasin 1</action>"
    assert agent.act({}, {"expert_plan": [], "admissible_commands": ["inventory", "look"]}) == "<action>look</action>"
    assert agent.act({}, {"expert_plan": [], "admissible_commands": ["inventory"]}) == "<action>inventory</action>"
    assert agent.act({}, {}) == "<action>look</action>"
    assert agent.act_batch([{}, {}], [{"expert_plan": ["a"]}, {}]) == ["<action>a</action>", "<action>look</action>"]
