"""guienv/ALFWorld-v0 on the real TextWorld/PDDL engine with the real game in ../shared/data/alfworld
(ALFWorld's 3-agent debug game, task "put a hot potato in sinkbasin")."""

from __future__ import annotations

import json
import shutil

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("alfworld", reason="pip install alfworld")

from agents.rollout import rollout_group  # noqa: E402
from guienv.envs.alfworld import (  # noqa: E402
    ALFWorldEnv,
    PlanFollowingExpert,
    build_game_file,
    format_prompt,
    high_level_plan,
    parse_command,
    problem_agents,
    single_agent_problem,
)
from guienv.errors import DataError  # noqa: E402

ALF_ID = "guienv/ALFWorld-v0"
if ALF_ID not in gym.registry:
    gym.register(ALF_ID, entry_point="guienv.envs.alfworld:ALFWorldEnv")

pytestmark = [pytest.mark.realstack]


@pytest.fixture(scope="module")
def game_dir(shared_data, tmp_path_factory):
    return shared_data / "alfworld"


@pytest.fixture(scope="module")
def traj_data(game_dir):
    return json.loads((game_dir / "traj_data.json").read_text())


@pytest.fixture(scope="module")
def env(game_dir, tmp_path_factory):
    e = ALFWorldEnv(game_dir, cache_dir=str(tmp_path_factory.mktemp("games")))
    yield e
    e.close()


def test_single_agent_problem_keeps_one_agent(game_dir):
    problem = (game_dir / "initial_state.pddl").read_text()
    assert problem_agents(problem) == ["alice", "bob", "charlie"]
    single = single_agent_problem(problem)
    assert problem_agents(single) == ["alice"]
    assert "bob" not in single.split() and "(atLocation alice" in single
    assert len(single.splitlines()) == len(problem.splitlines()) - 4
    only_bob = single_agent_problem(problem, agent="bob")
    assert problem_agents(only_bob) == ["bob"]
    with pytest.raises(DataError):
        single_agent_problem(problem, agent="dave")
    with pytest.raises(DataError):
        single_agent_problem("(define (problem p) (:objects x - object))")


def test_built_game_file_uses_alfworld_domain_grammar_and_task(game_dir, tmp_path):
    import alfworld.info

    path = build_game_file(game_dir, cache_dir=tmp_path)
    game = json.loads(path.read_text())
    assert game["pddl_domain"] == open(alfworld.info.ALFRED_PDDL_PATH).read()
    assert "UNKNOWN GOAL" not in game["grammar"] and "{a.name}" not in game["grammar"]
    assert problem_agents(game["pddl_problem"]) == ["alice"]
    assert build_game_file(game_dir, cache_dir=tmp_path) == path  # content-addressed, deterministic
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "initial_state.pddl").write_text((game_dir / "initial_state.pddl").read_text())
    (broken / "traj_data.json").write_text("{not json")
    with pytest.raises(DataError, match="traj_data.json"):
        build_game_file(broken, cache_dir=tmp_path)


@pytest.mark.slow
def test_plan_following_expert_wins_on_the_real_engine(env, traj_data):
    obs, info = env.reset(seed=0)
    assert info["task"] in ("put a hot potato in sinkbasin.", "heat some potato and put it in sinkbasin.")
    assert "go to countertop 1" in info["admissible_commands"]
    assert "Welcome" not in obs and "Your task is to:" in obs
    expert = PlanFollowingExpert(traj_data)
    assert [a for a, _ in expert.plan] == ["GotoLocation", "PickupObject", "GotoLocation", "HeatObject",
                                           "GotoLocation", "PutObject"]
    total, steps = 0.0, 0
    while True:
        cmd = expert.act(obs, info)
        obs, r, term, trunc, info = env.step(f"<think>follow the plan</think><action>{cmd}</action>")
        total += r
        steps += 1
        assert not info["invalid"] and info["format_ok"]
        if term or trunc:
            break
    assert term and info["won"] and total == 10.0 and steps <= 12


@pytest.mark.slow
def test_invalid_and_hostile_actions(env):
    env.reset(seed=0)
    for junk in ["", "fly to the moon", "<action>go to the moon</action>", "x" * 5000, "go to 日本; rm -rf /", None, 3]:
        obs, r, term, trunc, info = env.step(junk)
        assert info["invalid"] and obs == "Nothing happens." and r == 0.0 and not term
    # an admissible command without tags is accepted; format_ok reports the missing tags
    obs, r, term, trunc, info = env.step("Go  to   Countertop 1")
    assert not info["invalid"] and info["action"] == "go to countertop 1" and not info["format_ok"]
    assert obs.startswith("You arrive at countertop 1")
    assert "Prior to this step, you have already taken 8 step(s)" in info["prompt"]


@pytest.mark.slow
def test_truncation_reward_scale_and_planner_expert(game_dir, tmp_path):
    e = gym.make(ALF_ID, game=game_dir, max_steps=3, reward_scale=1.0, expert_plan=True,
                 invalid_action="noop", require_action_tag=True, cache_dir=str(tmp_path), render_mode="rgb_array")
    obs, info = e.reset(seed=1)
    plan = info["expert_plan"]
    assert plan and plan[-1].startswith("move potato")
    assert e.step("look")[4]["invalid"]  # tags required
    out = e.step("<action>look</action>")
    assert not out[3]
    out = e.step("<action>inventory</action>")
    assert out[3] and not out[2]  # truncated at max_steps
    frame = e.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3
    obs, info = e.reset(seed=1)
    total = 0.0
    for cmd in info["expert_plan"]:
        obs, r, term, trunc, info = e.step(f"<action>{cmd}</action>")
        total += r
    assert term and total == 1.0
    e.close()


@pytest.mark.slow
def test_three_agent_game_as_is_with_prefixes(game_dir):
    e = ALFWorldEnv(game_dir, multi_agent=True)
    obs, info = e.reset(seed=0)
    assert len(info["admissible_commands"]) == 22 and not any(" : " in c for c in info["admissible_commands"])
    obs, r, term, trunc, info = e.step("<action>go to cabinet 1</action>")
    assert not info["invalid"] and "cabinet 1" in obs
    assert e.step("<action>bob : go to cabinet 2</action>")[4]["invalid"]
    e.close()
    with pytest.raises(DataError):
        ALFWorldEnv(game_dir, multi_agent=True, agent="dave")


def test_multi_agent_game_file_alone_is_refused_without_multi_agent(game_dir, tmp_path):
    shutil.copy(game_dir / "game.tw-pddl", tmp_path / "game.tw-pddl")
    with pytest.raises(DataError, match="multi-agent"):
        ALFWorldEnv(tmp_path / "game.tw-pddl")
    with pytest.raises(ValueError):
        ALFWorldEnv()


def test_action_parsing_and_prompt():
    assert parse_command("<think>a</think> <action> Take Potato 2 from CounterTop 2 </action>") == \
        ("take potato 2 from countertop 2", True)
    assert parse_command("<action>look</action><action>inventory</action>") == ("look", False)
    assert parse_command("look", require_tag=True) == (None, False)
    assert parse_command(None) == (None, False)
    assert parse_command("<action>" + "a" * 300 + "</action>")[0] is None
    p = format_prompt("put a hot potato in sinkbasin.", "You arrive at x.", ["look", "inventory"],
                      [("obs1", "look")], step=3)
    assert "Your task is to: put a hot potato in sinkbasin." in p and "'look', 'inventory'" in p
    assert "<think> </think>" in p and "<action> </action>" in p and "step 4" in p
    assert high_level_plan({"plan": {"high_pddl": [{"discrete_action": {"action": "NoOp", "args": []}}]}}) == []


@pytest.mark.slow
def test_group_rollout_on_the_real_engine(env, traj_data):
    class Expert:
        def __init__(self):
            self.e = PlanFollowingExpert(traj_data)

        def act(self, obs, info):
            if info["t"] == 0:
                self.e.reset()
            return self.e.act(obs, info)

    g = rollout_group(env, Expert(), 2, seed=3)
    for t in g.trajectories:
        assert t.total_reward == 10.0 and t.steps[-1].terminated and all(s.valid for s in t.steps)
    # identical prefixes: same observation keys step by step
    assert [s.obs_key for s in g.trajectories[0].steps] == [s.obs_key for s in g.trajectories[1].steps]
