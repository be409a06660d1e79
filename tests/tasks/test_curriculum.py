"""Curriculum: difficulty scores, stages, the promotion rule, exact state round trip, the random
baseline and variance-aware sampling (tasks/curriculum.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tasks.curriculum import (
    Curriculum,
    CurriculumConfig,
    DifficultyConfig,
    TaskDifficulty,
    difficulty_scores,
    split_stages,
    task_difficulty,
)


def _scores(n=12):
    # Relative sizes from large (easy) to small (hard), shuffled so index order != difficulty order.
    sizes = np.geomspace(0.1, 0.001, n)
    perm = np.random.default_rng(3).permutation(n)
    recs = [TaskDifficulty(1, float(sizes[i])) for i in perm]
    return difficulty_scores(recs, DifficultyConfig(steps=0, size=1)), sizes[perm]


def test_difficulty_components_order_tasks_easy_to_hard():
    s, sizes = _scores()
    assert np.argmax(s) == np.argmin(sizes) and np.argmin(s) == np.argmax(sizes)
    assert s.min() == 0.0 and s.max() == 1.0
    assert np.all(np.diff(s[np.argsort(-sizes)]) > 0)  # strictly harder as the target shrinks
    # Longer trajectories are harder; a lower base-model pass rate is harder.
    recs = [TaskDifficulty(k, None) for k in (1, 4, 2)]
    assert list(np.argsort(difficulty_scores(recs, DifficultyConfig(steps=1, size=1)))) == [0, 2, 1]
    recs = [TaskDifficulty(1, 0.01, p) for p in (0.9, 0.1, 0.5)]
    assert list(np.argsort(difficulty_scores(recs, DifficultyConfig(steps=0, size=0, pass_rate=1)))) == [0, 2, 1]
    # Weighted mean of the components present: size says task 0 is harder, steps say task 1.
    recs = [TaskDifficulty(1, 0.001), TaskDifficulty(5, 0.1)]
    assert difficulty_scores(recs, DifficultyConfig(steps=3, size=1))[1] > difficulty_scores(recs, DifficultyConfig(steps=3, size=1))[0]
    assert difficulty_scores(recs, DifficultyConfig(steps=1, size=3))[0] > difficulty_scores(recs, DifficultyConfig(steps=1, size=3))[1]
    with pytest.raises(ValueError):
        DifficultyConfig(steps=0, size=0, pass_rate=0)


def test_task_difficulty_of_real_records():
    from guienv.types import Episode, Step
    from tasks.synthapp import SynthConfig, make_grounding_samples

    s = make_grounding_samples(1, SynthConfig(width=224, height=392, distractors=1, clutter=0))[0]
    d = task_difficulty(s)
    x1, y1, x2, y2 = s.box
    assert d.steps == 1 and d.relative_size == pytest.approx((x2 - x1) * (y2 - y1) / (224 * 392))
    from guienv.actions import Action

    steps = tuple(Step(s.image, 100, 200, Action.click(5, 5), candidates=((0, 0, 10, 20),)) for _ in range(3))
    e = task_difficulty(Episode("e", "goal", steps))
    assert e.steps == 3 and e.relative_size == pytest.approx(200 / 20000)
    with pytest.raises(TypeError):
        task_difficulty("not a task")


def test_stages_are_difficulty_quantiles_or_threshold_cuts():
    s, _ = _scores(12)
    st = split_stages(s, 3)
    assert [len(g) for g in st] == [4, 4, 4]
    assert max(s[st[0]]) <= min(s[st[1]]) and max(s[st[1]]) <= min(s[st[2]])
    assert sorted(np.concatenate(st).tolist()) == list(range(12))
    cut = split_stages(s, thresholds=[0.5])
    assert all(s[i] < 0.5 for i in cut[0]) and all(s[i] >= 0.5 for i in cut[1])


def test_batches_come_from_the_current_stage_and_cover_it_before_repeating():
    s, _ = _scores(12)
    cur = Curriculum(s, CurriculumConfig(stages=3, max_steps=None, seed=1))
    stage0 = set(cur.stage_members[0].tolist())
    first = cur.next_batch(4)
    assert set(first) == stage0  # one full pass over the 4 easiest tasks, no repeats
    assert set(cur.next_batch(3)) <= stage0


def test_promotion_by_threshold_needs_a_full_window_and_min_steps():
    cur = Curriculum(np.arange(9.0), CurriculumConfig(stages=3, window=2, min_steps=3, promote_threshold=0.5, max_steps=None))
    assert not cur.record(0.9)  # window not full
    assert not cur.record(0.9)  # window full, but only 2 steps in the stage (< min_steps)
    assert cur.record(0.9) and cur.stage == 1
    assert cur.history[-1]["why"] == "threshold" and cur.history[-1]["step"] == 3
    # Low rewards never promote without a budget; the window restarts in a new stage.
    for _ in range(10):
        assert not cur.record(0.1)
    assert cur.stage == 1
    cur.record(0.2), cur.record(0.8)  # mean 0.5 over the window of the last two steps
    assert cur.stage == 2
    for _ in range(5):  # the last stage never ends
        assert not cur.record(1.0)
    assert cur.stage == 2
    assert set(cur.next_batch(3)) == set(cur.stage_members[2].tolist())


def test_promotion_by_step_budget():
    cur = Curriculum(np.arange(6.0), CurriculumConfig(stages=2, max_steps=4, promote_threshold=2.0))
    flags = [cur.record(0.0) for _ in range(4)]
    assert flags == [False, False, False, True] and cur.stage == 1 and cur.history[0]["why"] == "budget"


def test_state_round_trip_continues_exactly():
    s, _ = _scores(20)
    cfg = CurriculumConfig(stages=3, window=2, promote_threshold=0.5, max_steps=5, replay=0.25, variance_sampling=0.25, seed=7)
    a = Curriculum(s, cfg)
    rng = np.random.default_rng(0)
    for _ in range(6):
        ids = a.next_batch(4)
        a.record(float(rng.random()), ids, rng.integers(0, 5, len(ids)), [4] * len(ids))
    blob = json.dumps(a.state_dict())  # checkpoints store it as JSON
    b = Curriculum(s, cfg)
    b.load_state_dict(json.loads(blob))
    for _ in range(8):
        x, y = a.next_batch(4), b.next_batch(4)
        assert x == y
        m = float(rng.random())
        assert a.record(m, x, [1] * 4, [4] * 4) == b.record(m, y, [1] * 4, [4] * 4)
    assert a.stage == b.stage and a.history == b.history
    with pytest.raises(ValueError, match="tasks"):
        Curriculum(s[:10], cfg).load_state_dict(a.state_dict())


def test_random_baseline_is_one_shuffled_stage_without_promotion():
    s, _ = _scores(12)
    cur = Curriculum(s, CurriculumConfig(mode="random", seed=2, max_steps=1))
    assert cur.num_stages == 1
    order = cur.next_batch(12)
    assert sorted(order) == list(range(12))  # a permutation of every task
    by_difficulty = list(np.argsort(s, kind="stable"))
    assert order != by_difficulty and order != by_difficulty[::-1]
    assert not cur.record(1.0) and cur.stage == 0
    again = Curriculum(s, CurriculumConfig(mode="random", seed=2)).next_batch(12)
    other = Curriculum(s, CurriculumConfig(mode="random", seed=3)).next_batch(12)
    assert again == order and other != order


def test_replay_and_cumulative_pools():
    cur = Curriculum(np.arange(12.0), CurriculumConfig(stages=3, replay=0.5, max_steps=1, seed=0))
    cur.record(0.0)
    assert cur.stage == 1
    batch = cur.next_batch(8)
    early = set(cur.stage_members[0].tolist())
    assert sum(i in early for i in batch) == 4 and sum(i in set(cur.stage_members[1].tolist()) for i in batch) == 4
    cum = Curriculum(np.arange(12.0), CurriculumConfig(stages=3, cumulative=True, max_steps=1, seed=0))
    cum.record(0.0)
    assert set(cum.next_batch(8)) == set(range(8))


def test_variance_sampling_prefers_tasks_whose_groups_disagree():
    cur = Curriculum(np.zeros(4), CurriculumConfig(mode="random", variance_sampling=1.0, seed=0))
    # Task 0: half right (max outcome variance); tasks 1-3: always right or always wrong.
    cur.record(0.0, [0, 1, 2, 3], [40, 80, 0, 80], [80, 80, 80, 80])
    counts = np.bincount(cur.next_batch(400), minlength=4)
    assert counts[0] > 300 and counts.sum() == 400


def test_config_validation():
    for bad in (dict(mode="sorted"), dict(metric="loss"), dict(window=0), dict(replay=1.5), dict(max_steps=0),
                dict(difficulty={"pass_rate": 1.0})):
        with pytest.raises(ValueError):
            CurriculumConfig(**bad)
    assert CurriculumConfig(difficulty={"size": 2.0}).difficulty == DifficultyConfig(size=2.0)


def test_config_loads_through_the_shared_loader(tmp_path):
    import yaml

    from guienv.config import config_to_dict, load_yaml
    from guienv.errors import DataError

    cfg = CurriculumConfig(stages=2, difficulty=DifficultyConfig(size=2.0), max_steps=None, seed=3)
    path = tmp_path / "cur.yaml"
    path.write_text(yaml.safe_dump(config_to_dict(cfg)))
    assert load_yaml(CurriculumConfig, path) == cfg
    assert CurriculumConfig.from_dict({"stages": 2, "difficulty": {"size": 2.0}}).difficulty == DifficultyConfig(size=2.0)
    with pytest.raises(DataError, match=r"curriculum\.difficulty\.sizee"):
        CurriculumConfig.from_dict({"difficulty": {"sizee": 1.0}}, "train.yaml")
    with pytest.raises(DataError, match=r"train\.yaml.*curriculum\.stages: must be an integer"):
        CurriculumConfig.from_dict({"stages": "three"}, "train.yaml")
    with pytest.raises(DataError, match="window and stages"):
        load_yaml(CurriculumConfig, path, overrides=["window=0"])
