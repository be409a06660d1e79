"""The multi-turn engine and trainer on the tiny random-init Qwen2.5-VL and real SynthApp envs:
lockstep rollouts, per-turn records, every turn's tokens carrying its step's advantage, faults as
dropped groups, and the one-turn equivalence with the single-step GRPO trainer."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents.advantages import GRPOAdvantageConfig, estimate
from agents.env_pool import EnvSpec, make_pool
from agents.experts import collect_demonstrations, make_expert
from agents.grpo import GRPOTrainer, GRPOTrainerConfig, Rollout
from agents.multiturn import EpisodeTask, MultiTurnConfig, RolloutEngine
from agents.multiturn_trainer import MultiTurnTrainer, RolloutFailure, turn_rows
from agents.policy import Policy
from agents.qwen import QwenAgent, QwenAgentConfig
from agents.sft import DemoSFTTrainer, SFTConfig
from agents.step_batch import group_normalize
from agents.task_reward import TaskReward
from agents.tiny_model import build_tiny_model
from agents.train_prompts import grounding_prompt
from tasks.synthapp import SynthConfig, make_grounding_samples

pytestmark = pytest.mark.slow

MAX_PIXELS = 16 * 28 * 28
SYNTH = {"width": 224, "height": 392}
FAULTY_ID = "guienv-test/FaultySynthApp-v0"


class FaultySynthApp(gym.Wrapper):
    """SynthApp whose step ``at`` raises (an Appium session lost mid-episode) when reset with
    ``options["fault_at"]``."""

    def __init__(self, **kwargs):
        from guienv.envs.synthapp import SynthAppEnv

        super().__init__(SynthAppEnv(**kwargs))
        self.at, self.t = None, 0

    def reset(self, *, seed=None, options=None):
        options = dict(options or {})
        self.at, self.t = options.pop("fault_at", None), 0
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        self.t += 1
        if self.t == self.at:
            raise RuntimeError("Appium session lost")
        return self.env.step(action)


if FAULTY_ID not in gym.registry:
    gym.register(FAULTY_ID, entry_point=f"{__name__}:FaultySynthApp")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "qwen25vl")


@pytest.fixture(scope="module")
def warm(tiny, tmp_path_factory):
    """The tiny model after 60 SFT steps on the oracle's demonstrations of two apps: it now writes
    some valid actions, so sampled trajectories of one task end differently."""
    pol = policy(tiny)
    cfg = MultiTurnConfig(max_turns=3, pool="inline")
    with make_pool(EnvSpec("guienv/SynthApp-v0", {"mode": "app", "config": SYNTH}), 2, "inline") as pool:
        demos, st = collect_demonstrations(RolloutEngine(pol, pool, cfg, "synthapp"), app_tasks(2),
                                           make_expert("synthapp", pol.frame, pol.resize))
    assert st == {"episodes": 2, "solved": 2, "failed": 0, "turns": 4}
    torch.manual_seed(0)
    trainer = DemoSFTTrainer(pol, SFTConfig(batch_size=4, micro_batch_size=4), demos,
                             torch.optim.AdamW(pol.model.parameters(), lr=3e-3))
    rng = np.random.default_rng(0)
    for _ in range(60):
        row = trainer.step(lambda n: [int(i) for i in rng.integers(0, len(demos), n)])
    assert row["sft_loss"] < 1.0
    path = tmp_path_factory.mktemp("warm") / "model"
    pol.model.save_pretrained(path)
    pol.tokenizer.save_pretrained(path)
    pol.image_processor.save_pretrained(path)
    return path


def policy(tiny, template: str = "synthapp") -> Policy:
    return Policy(QwenAgent(QwenAgentConfig(model=str(tiny), template=template, max_pixels=MAX_PIXELS, dtype="float32",
                                            image_backend="pil")))


def app_tasks(n: int, k: int = 2) -> list[EpisodeTask]:
    return [EpisodeTask(i, i, {"index": i, "task_seed": 0, "steps": k}, k) for i in range(n)]


def test_engine_records_aligned_turns_in_lockstep(tiny):
    pol = policy(tiny)
    cfg = MultiTurnConfig(max_turns=3, pool="inline")
    with make_pool(EnvSpec("guienv/SynthApp-v0", {"mode": "app", "config": SYNTH}), 6, "inline") as pool:
        torch.manual_seed(0)
        ro = RolloutEngine(pol, pool, cfg, "synthapp").run(app_tasks(2), 3, temperature=1.0, max_new_tokens=12)
    assert len(ro.groups) == 2 and ro.group_size == 3
    for g, grp in enumerate(ro.groups):
        assert grp.seed == g and grp.options["index"] == g  # the group shares the task and the seed
        for j, traj in enumerate(grp.trajectories):
            turns = ro.turns[g][j]
            assert 1 <= len(traj.steps) == len(turns) <= 3
            assert traj.done and ro.failures[g][j] is None
            for t, (turn, st) in enumerate(zip(turns, traj.steps)):
                assert st.step == t and st.group_id == g and st.traj_id == j
                assert len(turn.completion) == len(turn.logprobs) >= 1
                assert all(lp <= 0.0 for lp in turn.logprobs)
                assert turn.text == pol.decode(turn.completion)
            if len(turns) > 1:  # later turns see the earlier actions: the prompt grows
                assert len(turns[1].prompt.ids) > len(turns[0].prompt.ids)
    # The first turn of every member of a group saw the same prompt.
    first = [ro.turns[0][j][0].prompt.ids for j in range(3)]
    assert all(torch.equal(first[0], f) for f in first)


def test_turn_rows_give_every_turn_its_step_advantage(warm):
    pol = policy(warm)
    cfg = MultiTurnConfig(max_turns=3, pool="inline", invalid_penalty=0.1, advantage={"name": "salt"})
    with make_pool(EnvSpec("guienv/SynthApp-v0", {"mode": "app", "config": SYNTH}), 8, "inline") as pool:
        torch.manual_seed(1)
        ro = RolloutEngine(pol, pool, cfg, "synthapp").run(app_tasks(2), 4, temperature=1.0, max_new_tokens=24)
    adv = estimate(ro.groups, cfg.advantage_config())
    rows = turn_rows(ro, adv, "turn")
    flat = [(g, j, t) for g, grp in enumerate(ro.groups) for j, tr in enumerate(grp.trajectories) for t in range(len(tr.steps))]
    assert len(rows.completions) == len(flat) == len(adv)
    for r, (g, j, t) in enumerate(flat):
        assert rows.completions[r] == ro.turns[g][j][t].completion
        assert rows.prompt_of(r) is ro.turns[g][j][t].prompt
        assert rows.advantages[r] == adv[r]
    # The warmed-up model's trajectories of one app differ (valid and invalid actions, penalised):
    # the estimator gives non-zero advantages where the outcomes differ, zero where they agree.
    assert np.abs(adv).max() > 0
    for g, grp in enumerate(ro.groups):
        if len({tr.total_reward for tr in grp.trajectories}) == 1:
            assert all(a == 0 for a in adv[[r for r, x in enumerate(flat) if x[0] == g]])
    per_traj = turn_rows(ro, adv, "trajectory").weights
    lens = [len(tr.steps) for grp in ro.groups for tr in grp.trajectories for _ in range(len(tr.steps))]
    np.testing.assert_allclose(per_traj, 1.0 / np.array(lens))


def test_failed_trajectories_drop_their_group_and_too_many_stop_the_run(tiny):
    pol = policy(tiny)
    G = 2
    tasks = [EpisodeTask(0, 0, {"index": 0, "task_seed": 0, "steps": 3}, 3),
             EpisodeTask(1, 1, {"index": 1, "task_seed": 0, "steps": 3, "fault_at": 1}, 3)]
    spec = EnvSpec(FAULTY_ID, {"mode": "app", "config": SYNTH})
    gcfg = GRPOTrainerConfig(group_size=G, prompts_per_step=2, max_new_tokens=8, micro_batch_size=8, lr=1e-3)
    with make_pool(spec, 4, "inline") as pool:
        for on_failure, max_rate in (("drop", 0.6), ("retry", 0.7)):
            cfg = MultiTurnConfig(max_turns=2, pool="inline", on_failure=on_failure, retries=1, max_failure_rate=max_rate)
            opt = torch.optim.AdamW(pol.model.parameters(), lr=1e-3)
            tr = MultiTurnTrainer(pol, gcfg, cfg, RolloutEngine(pol, pool, cfg, "synthapp"), tasks, opt)
            stats, ro = tr.step(lambda n: [0, 1][:n])
            # Task 1 always fails: its group never reaches the loss, and the failure is counted.
            assert [t.id for t in ro.tasks] == [0] and tr.outcomes[0][0] == 0
            assert stats["dropped_groups"] == 1
            assert stats["failed_trajectories"] == (2 if on_failure == "drop" else 4)
            assert stats["retried_groups"] == (0 if on_failure == "drop" else 1)
            # The rate counts every attempt: a retried group's failures count again.
            assert stats["failure_rate"] == pytest.approx(0.5 if on_failure == "drop" else 4 / 6)
        cfg = MultiTurnConfig(max_turns=2, pool="inline", max_failure_rate=0.25)
        tr = MultiTurnTrainer(pol, gcfg, cfg, RolloutEngine(pol, pool, cfg, "synthapp"), tasks,
                              torch.optim.AdamW(pol.model.parameters(), lr=1e-3))
        with pytest.raises(RolloutFailure, match="Appium session lost"):
            tr.step(lambda n: [0, 1][:n])


def test_one_turn_with_the_grpo_estimator_is_the_single_step_update(tiny):
    """SynthApp grounding screens as a one-step env: the multi-turn update equals the single-step
    GRPO trainer's on the same completions (same prompts, rewards, advantages, parameters after)."""
    G, P = 4, 2
    synth = SynthConfig(**SYNTH)
    pol_mt, pol_ss = policy(tiny, "gui-g1"), policy(tiny, "gui-g1")
    gcfg = GRPOTrainerConfig(group_size=G, prompts_per_step=P, max_new_tokens=16, micro_batch_size=3, lr=1e-2,
                             difficulty_weight=False)
    cfg = MultiTurnConfig(max_turns=1, pool="inline", advantage={"name": "grpo"})
    tasks = [EpisodeTask(i, i, {"index": i}, 1) for i in range(P)]
    with make_pool(EnvSpec("guienv/SynthApp-v0", {"mode": "grounding", "config": SYNTH}), P * G, "inline") as pool:
        engine = RolloutEngine(pol_mt, pool, cfg, "gui-g1")
        torch.manual_seed(3)
        ro = engine.run(tasks, G, temperature=1.0, max_new_tokens=16)
    assert all(len(tr.steps) == 1 for grp in ro.groups for tr in grp.trajectories)
    # The same prompt as single-step training builds for the same screen.
    samples = make_grounding_samples(P, synth)
    prompts = [grounding_prompt(s, 1.0, "gui-g1") for s in samples]
    for g in range(P):
        enc = pol_ss.encode(prompts[g])
        assert torch.equal(enc.ids, ro.turns[g][0][0].prompt.ids)
        assert torch.equal(enc.pixel_values, ro.turns[g][0][0].prompt.pixel_values)
    comps = [ro.turns[g][j][0].completion for g in range(P) for j in range(G)]
    texts = [pol_ss.decode(c) for c in comps]
    scored = TaskReward({"terms": [{"name": "hit"}]}, pol_ss.frame, pol_ss.resize).score(texts, [p for p in prompts for _ in range(G)])
    env_r = np.array([grp.trajectories[j].steps[0].reward for grp in ro.groups for j in range(G)])
    np.testing.assert_array_equal(env_r, [s.reward for s in scored])
    adv_ss = group_normalize(env_r, np.repeat(np.arange(P), G), False, 1e-6)
    adv_mt = estimate(ro.groups, GRPOAdvantageConfig())
    np.testing.assert_array_equal(adv_mt, adv_ss)
    if not np.abs(adv_ss).max() > 0:  # no signal in this draw: give the update something to move on
        adv_ss = adv_mt = np.linspace(-1, 1, P * G)
    ss_rows = Rollout(list(range(P)), [pol_ss.encode(p) for p in prompts], comps, scored, adv_ss, np.ones(P * G), G, texts)
    mt_rows = turn_rows(ro, adv_mt, "turn")
    before = copy.deepcopy(pol_ss.model.state_dict())
    opt_ss = torch.optim.AdamW(pol_ss.model.parameters(), lr=1e-2)
    opt_mt = torch.optim.AdamW(pol_mt.model.parameters(), lr=1e-2)
    st_ss = GRPOTrainer(pol_ss, gcfg, None, prompts, opt_ss).update(ss_rows)
    tr = MultiTurnTrainer(pol_mt, gcfg, cfg, engine, tasks, opt_mt)
    st_mt = tr.update_trainer.update(mt_rows)
    assert st_mt["loss"] == pytest.approx(st_ss["loss"], abs=1e-7)
    after_ss, after_mt = pol_ss.model.state_dict(), pol_mt.model.state_dict()
    assert any(not torch.equal(before[k], after_ss[k]) for k in before)
    for k in after_ss:
        torch.testing.assert_close(after_mt[k], after_ss[k], rtol=0, atol=1e-7)


def test_engine_prompt_is_the_one_guienv_eval_builds(tiny):
    """The engine's turn prompt equals QwenAgent's (what ``guienv eval`` prompts with) on the same
    history-wrapped observation, turn after turn of a real SynthApp episode."""
    from guienv.envs.history import HistoryWrapper

    pol = policy(tiny)
    agent = pol.agent
    cfg = MultiTurnConfig(max_turns=3, pool="inline")
    engine = RolloutEngine(pol, None, cfg, "synthapp")
    env = HistoryWrapper(gym.make("guienv/SynthApp-v0", mode="app", config=SYNTH), cfg.history, pol.frame, pol.resize)
    raw = gym.make("guienv/SynthApp-v0", mode="app", config=SYNTH)
    hist = engine.history()
    opts = {"index": 3, "task_seed": 0, "steps": 3}
    view, info = env.reset(seed=3, options=opts)
    obs, rinfo = raw.reset(seed=3, options=opts)
    hist.reset(obs, rinfo)
    compared = 0
    for _ in range(3):
        mine = engine.prompt(hist.view())
        theirs = agent.inputs([view])
        assert torch.equal(mine.ids, theirs["input_ids"][0])
        assert torch.equal(mine.pixel_values, theirs["pixel_values"])
        assert "Previous actions" in agent.prompt(view) or not hist.view().get("history")
        compared += 1
        action = engine.env_action(obs, '{"action": "click", "coordinate": [40, 60]}')
        view, *_ = env.step(action)
        obs, _r, term, trunc, rinfo = raw.step(action)
        hist.record(action, obs, rinfo)
        if term or trunc:
            break
    assert compared == 3  # three turns compared, the last two with a history
