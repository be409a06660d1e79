"""Run an agent over a benchmark env; write ``predictions.jsonl``, ``steps.jsonl``,
``metrics.json`` and ``report.html``.

Episodes are addressed by index (``reset(options={"index": i})``; SynthApp and MiniWoB use
``seed=i``), so a rerun skips the indices already in ``predictions.jsonl`` (resumable).

Batching: ``batch_size`` envs run in lockstep. Every round asks the agent once for the actions of
all running episodes (``agent.generate(observations)`` when the agent has it, which also returns
the raw model text; else ``agent.act_batch(observations, infos)``), steps every env once, and
refills a slot whose episode ended with the next episode of the plan. For one-step benchmarks
(ScreenSpot) this batches samples; for trajectories (AndroidControl, SynthApp apps) it steps
``batch_size`` episodes synchronously. For a deterministic agent (greedy decoding, the oracle)
results do not depend on the batch size: envs are independent and reset by index or seed (a
sampling agent draws its random numbers in a different order; batched left-padded generation
may differ from unbatched in the last bits of the logits).

Files (one JSON object per line):

``predictions.jsonl``
    one line per finished episode: ``index``, ``id``, the slice keys (``split``, ``subsplit``,
    ``platform``, ``data_type``), ``return``, ``success``, ``steps``, ``actions`` (what the agent
    returned), ``verdicts`` (the env's per-step judgement), ``texts`` (raw model output, model
    agents only).
``steps.jsonl``
    one line per step in the format :mod:`rewards.scoring` reads, so
    ``guienv score --predictions DIR/steps.jsonl`` re-scores a run from its files: ScreenSpot lines
    carry ``id``/``index``, AndroidControl lines ``episode_id``/``episode_index``/``step_index``;
    all carry ``action`` (guienv action JSON as the env received it), ``text`` and ``frame`` (raw
    model output and the frame it was read in, model agents only), the ground truth (``gt``,
    ``gt_box``), the env's verdict and ``episode``/``step`` (the plan index and the step number).
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import gymnasium as gym
from tqdm import tqdm

from agents.protocol import Agent
from guienv.actions import Action
from guienv.config import load_config
from guienv.envs.history import HistoryWrapper
from guienv.errors import DataError
from guienv.history import HistoryConfig
from guienv.io import read_json, read_jsonl, write_jsonl
from guienv.parsing import as_action
from guienv.run.report import write_report

BENCHMARKS: dict[str, str] = {
    "synthapp": "guienv/SynthApp-v0",
    "screenspot": "guienv/ScreenSpot-v0",
    "screenspot-pro": "guienv/ScreenSpot-v0",
    "androidcontrol": "guienv/AndroidControl-v0",
    "miniwob": "guienv/MiniWoB-v0",
    "alfworld": "guienv/ALFWorld-v0",
    "mdp": "guienv/MDP-v0",
}
ONLINE = ("synthapp", "miniwob")  # generated episodes, addressed by seed
TEXT = ("alfworld", "mdp")  # text envs: text observations (History text views) and text actions
# Keys of the first step's info that name the slice an episode is reported in.
GROUP_KEYS = ("split", "subsplit", "platform", "data_type", "group")
# Env modes per benchmark (the first is the default): AndroidControl's published low/high settings,
# SynthApp's multi-step apps or one-step grounding screens.
MODES: dict[str, tuple[str, ...]] = {"androidcontrol": ("low", "high"), "synthapp": ("app", "grounding")}
DEFAULT_PROTOCOL = "qwen"  # AndroidControl step matching (= qwen-content-direction); the default of `guienv score` too
# Keys of a step's info that hold the env's verdict (copied to steps.jsonl).
VERDICT_KEYS = ("correct", "type_match", "exact_match", "grounding", "reason", "success", "invalid", "invalid_reason")
_SECRET_KEYS = {"api_key", "token", "hf_token", "auth_token", "password", "secret"}



def use_engine(agent: Any, engine: str, model_path: str | None, vllm: Mapping[str, Any] | None = None) -> Any:
    """Generate ``agent``'s answers with ``engine`` (:mod:`agents.engines`): the agents built on a
    local :class:`~agents.policy.Policy` / :class:`~agents.text_policy.TextPolicy` (``--agent text``)
    only; ``model_path`` is the folder the policy was loaded from. Returns the engine."""
    from agents.engines import EngineConfig, make_engine
    from agents.policy import Policy

    policy = getattr(agent, "policy", None)
    if not isinstance(policy, Policy):
        if engine == "transformers":
            return None
        raise DataError(type(agent).__name__, f"--engine {engine} applies to agents built on a local policy "
                                              "(--agent text); this agent generates on its own", field="--engine")
    return make_engine(EngineConfig(engine=engine, vllm=dict(vllm or {})), policy, model_path=model_path)


@dataclass
class EvalConfig:
    benchmark: str = "synthapp"
    data: str | None = None
    agent: str = "oracle"
    limit: int | None = None
    episodes: int = 100  # SynthApp: generated tasks; MiniWoB: episodes per task
    tasks: tuple[str, ...] = ("click-button", "click-link", "click-checkboxes", "enter-text", "focus-text")  # MiniWoB
    server_url: str | None = None  # MiniWoB: an Appium server; default starts one for the run
    seed: int = 0
    out: str = "runs/eval"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    batch_size: int = 1  # envs stepped in lockstep, one agent call per round
    mode: str | None = None  # androidcontrol: low | high; synthapp: app | grounding (default: the first)
    protocol: str | None = None  # androidcontrol step matching (rewards.action_match.PROTOCOLS); default qwen
    history_images: int = 0  # androidcontrol: previous screens in each prompt (training's data.history_images)
    report_episodes: int = 24  # episodes shown in report.html (failures first)
    on_error: str = "raise"  # screenspot/androidcontrol loaders: raise on a bad record, or skip it (logged)
    # Multi-step benchmarks (synthapp app mode, miniwob, alfworld, mdp): the bounded history each step's
    # view shows (guienv.history); None: HistoryConfig()'s defaults.
    history: HistoryConfig | None = None


def default_template(benchmark: str, mode: str | None = None) -> str:
    """The prompt template (:mod:`guienv.prompts`) a model agent uses on ``benchmark``."""
    if benchmark.startswith("screenspot"):
        return "gui-g1"
    if benchmark == "androidcontrol":
        return f"androidcontrol-{mode or 'low'}"
    if benchmark == "synthapp" and mode == "grounding":
        return "gui-g1"
    if benchmark == "alfworld":
        return "alfworld"
    if benchmark == "mdp":
        return "text"
    return "synthapp"


def check_config(cfg: EvalConfig) -> None:
    """ValueError naming the option for settings that cannot run."""
    if cfg.benchmark not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {cfg.benchmark!r}; known: {sorted(BENCHMARKS)}")
    if cfg.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {cfg.batch_size}")
    if cfg.on_error not in ("raise", "skip"):
        raise ValueError(f"--on-error must be raise or skip, got {cfg.on_error!r}")
    if cfg.mode is not None:
        modes = MODES.get(cfg.benchmark)
        if modes is None:
            raise ValueError(f"--mode applies to {sorted(MODES)}, not {cfg.benchmark!r}")
        if cfg.mode not in modes:
            raise ValueError(f"--mode for {cfg.benchmark} must be one of {modes}, got {cfg.mode!r}")
    if cfg.history_images and (cfg.benchmark != "androidcontrol" or cfg.history_images < 0):
        raise ValueError(f"--history-images applies to androidcontrol (>= 0), got {cfg.history_images} for {cfg.benchmark!r}")
    if cfg.history is not None and cfg.benchmark not in ONLINE + TEXT:
        raise ValueError(f"--history-* options apply to {sorted(ONLINE + TEXT)}, not {cfg.benchmark!r}")
    if cfg.history is not None and cfg.benchmark == "synthapp" and cfg.mode == "grounding":
        raise ValueError("--history-* options apply to synthapp's app mode, not --mode grounding (one-step screens)")
    if cfg.protocol is not None:
        if cfg.benchmark != "androidcontrol":
            raise ValueError(f"--protocol applies to androidcontrol, not {cfg.benchmark!r}")
        from rewards.action_match import PROTOCOLS

        if cfg.protocol not in PROTOCOLS:
            raise ValueError(f"unknown --protocol {cfg.protocol!r}; known: {sorted(PROTOCOLS)}")


def _jsonable(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if hasattr(v, "value") and isinstance(v.value, str):  # enums (Frame)
        return v.value
    return v if isinstance(v, (str, int, float, bool, type(None))) else str(v)


def make_env(cfg: EvalConfig, dataset: Any = None, agent: Any = None) -> gym.Env:
    """The benchmark's env; ``dataset`` (an already loaded one) is shared instead of loading
    ``cfg.data`` again (the extra envs of a batch). For AndroidControl the env writes the action
    history in the ``agent``'s coordinate frame and pixel bounds (its ``frame`` and ``resize``), as
    training does (``agents.train_prompts.episode_prompts`` in the policy's frame); ``env_kwargs``
    may still set them. Multi-step benchmarks (synthapp app mode, miniwob, alfworld, mdp) come
    wrapped in :class:`~guienv.envs.history.HistoryWrapper` with ``cfg.history`` (default
    :class:`~guienv.history.HistoryConfig`): observations are the agent's view, the history written
    in the agent's frame and pixel bounds, the builder the multi-turn trainer prompts with too."""
    check_config(cfg)
    kwargs = dict(cfg.env_kwargs)
    if cfg.benchmark in TEXT:
        return _wrap(cfg, gym.make(BENCHMARKS[cfg.benchmark], **_text_env_kwargs(cfg, kwargs, agent)), agent)
    if cfg.benchmark == "miniwob":
        kwargs.update(task=cfg.tasks[0], server_url=cfg.server_url)
    elif cfg.benchmark != "synthapp":
        if not cfg.data:
            raise ValueError(f"--data is required for benchmark {cfg.benchmark!r}")
        kwargs["data"] = dataset if dataset is not None else cfg.data
        if dataset is None:
            kwargs.setdefault("on_error", cfg.on_error)
    if cfg.mode is not None:
        kwargs["mode"] = cfg.mode
    if cfg.benchmark == "androidcontrol":
        kwargs["protocol"] = cfg.protocol or kwargs.get("protocol") or DEFAULT_PROTOCOL
        if cfg.history_images:
            kwargs["history_images"] = cfg.history_images
        if getattr(agent, "frame", None) is not None:
            kwargs.setdefault("text_frame", str(getattr(agent.frame, "value", agent.frame)))
            resize = getattr(agent, "resize", None)
            if resize is not None:
                kwargs.setdefault("min_pixels", resize.min_pixels)
                kwargs.setdefault("max_pixels", resize.max_pixels)
    return _wrap(cfg, gym.make(BENCHMARKS[cfg.benchmark], **kwargs), agent)


def _wrap(cfg: EvalConfig, env: gym.Env, agent: Any) -> gym.Env:
    # Multi-step envs show the episode's history like training's prompts (agents.train_prompts writes
    # an app episode's earlier actions into "history" in the policy's frame); one-step screens don't.
    if cfg.benchmark in TEXT:
        return HistoryWrapper(env, cfg.history or HistoryConfig())
    if cfg.benchmark in ONLINE and getattr(env.unwrapped, "mode", "app") != "grounding":
        return HistoryWrapper(env, cfg.history or HistoryConfig(), getattr(agent, "frame", None) or "pixel",
                              getattr(agent, "resize", None))
    return env


def alfworld_games(data: str | Path) -> list[Path]:
    """The ALFWorld games under ``data``: the folder itself when it is a game (``initial_state.pddl``
    or ``game.tw-pddl``), else its sub-folders that are (sorted by name); several paths may be
    joined with ``,``. DataError when none is found."""
    games: list[Path] = []
    for part in str(data).split(","):
        root = Path(part.strip())
        if not root.exists():
            raise DataError(root, "no such ALFWorld game folder or game file")
        if root.is_file() or (root / "initial_state.pddl").exists() or (root / "game.tw-pddl").exists():
            games.append(root)
            continue
        found = sorted(d for d in root.iterdir() if d.is_dir() and ((d / "initial_state.pddl").exists()
                                                                    or (d / "game.tw-pddl").exists()))
        if not found:
            raise DataError(root, "no ALFWorld game here (a folder with initial_state.pddl or game.tw-pddl, "
                                  "or a folder of such folders)")
        games.extend(found)
    return games


def _text_env_kwargs(cfg: EvalConfig, kwargs: dict[str, Any], agent: Any) -> dict[str, Any]:
    if cfg.benchmark == "alfworld":
        if not cfg.data:
            raise ValueError("--data is required for benchmark 'alfworld' (an ALFWorld game folder, or a folder of them)")
        kwargs.setdefault("games", [str(g) for g in alfworld_games(cfg.data)])
        if getattr(agent, "needs_expert_plan", False):  # the expert plays the engine planner's commands
            kwargs.setdefault("expert_plan", True)
    else:
        kwargs.setdefault("spec", cfg.data or "chain")
    return kwargs


def episode_plan(cfg: EvalConfig, env: gym.Env) -> list[tuple[int, dict[str, Any], str | None]]:
    """``(index, reset kwargs, slice name)`` for every episode of the run."""
    if cfg.benchmark == "miniwob":
        return [(t * cfg.episodes + i, {"seed": i, "options": {"task": task}}, task)
                for t, task in enumerate(cfg.tasks) for i in range(cfg.episodes)]
    if cfg.benchmark == "synthapp":
        return [(i, {"seed": i}, None) for i in range(cfg.episodes)]
    if cfg.benchmark == "alfworld":  # one episode per game
        return [(i, {"seed": i, "options": {"index": i}}, None) for i in range(len(env.unwrapped.game_files))]
    if cfg.benchmark == "mdp":  # generated episodes over the spec(s), seed = index
        n = len(env.unwrapped.specs)
        return [(i, {"seed": i, "options": {"index": i % n}}, env.unwrapped.specs[i % n].name if n > 1 else None)
                for i in range(cfg.episodes)]
    return [(i, {"options": {"index": i}}, None) for i in range(len(env.unwrapped.dataset))]


# -- one episode in progress ----------------------------------------------------------------------
@dataclass
class _Run:
    index: int
    reset_kwargs: dict[str, Any]
    obs: Any
    info: dict[str, Any]
    first: dict[str, Any]
    instruction: str
    total: float = 0.0
    actions: list[Any] = field(default_factory=list)
    verdicts: list[dict] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    last_info: dict[str, Any] = field(default_factory=dict)


@dataclass
class EpisodeResult:
    """One finished episode of :func:`run_episodes`: its plan position ``index``, the ``reset``
    keyword arguments it ran with, ``episode_return`` (sum of rewards), ``success``, ``steps``,
    ``texts`` (raw model output per step, model agents only), ``actions`` (what the env received,
    guienv action JSON or the text of a text env), plus ``record`` (its ``predictions.jsonl``
    line) and ``rows`` (its ``steps.jsonl`` lines)."""

    index: int
    reset_kwargs: dict[str, Any]
    episode_return: float
    success: bool
    steps: int
    texts: list[str]
    actions: list[Any]
    record: dict[str, Any]
    rows: list[dict[str, Any]]


def _is_text(obs: Any) -> bool:
    """A text env's observation, or its :class:`~guienv.history.History` text view."""
    return isinstance(obs, str) or (isinstance(obs, Mapping) and "screenshot" not in obs
                                    and isinstance(obs.get("observation"), str))


def _start(env: gym.Env, index: int, reset_kwargs: dict[str, Any], task: str | None) -> _Run:
    obs, info = env.reset(**reset_kwargs)
    first = dict(info)
    if task is not None:
        first["split"] = task
    if first.get("group") is None and "bbox" in info:
        # ScreenSpot-Pro's group (Dev, Creative, CAD, ...) is on the sample, not in the env's info.
        try:
            group = (env.unwrapped.dataset[int(info["index"])].extra or {}).get("group")
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            group = None
        if group is not None:
            first["group"] = str(group)
    if isinstance(obs, Mapping):
        instruction = obs.get("goal") or obs.get("instruction") or (obs.get("task") if _is_text(obs) else "")
    else:
        instruction = info.get("task") if isinstance(obs, str) else ""
    return _Run(index, reset_kwargs, obs, info, first, str(instruction or "")[:1000])


def _env_action(action: Any, text_env: bool) -> Any:
    # Text envs read their own text (ALFWorld's <action> tag, MDP names); screen envs get an Action.
    if text_env and (isinstance(action, (str, Action)) or (isinstance(action, int) and not isinstance(action, bool))):
        return action
    return as_action(action)


def act_batch(agent: Agent, observations: Sequence[Any], infos: Sequence[Mapping[str, Any]]) -> list[tuple[Any, str | None, str | None]]:
    """One agent call for a batch: ``(action, raw text or None, frame of the text or None)`` each.

    Agents with ``generate`` (model agents) are asked through it, which also gives the raw text;
    else ``agent.act_batch(observations, infos)`` (:class:`agents.protocol.Agent`). The action is
    an :class:`Action` for screen envs and kept as the agent's text for text envs."""
    gen = getattr(agent, "generate", None)
    if callable(gen):
        raw = [(g.action, g.text, _jsonable(getattr(g, "frame", None))) for g in gen(list(observations))]
    else:
        raw = [(a, None, None) for a in agent.act_batch(list(observations), list(infos))]
    if len(raw) != len(observations):
        raise RuntimeError(f"agent {getattr(agent, 'name', agent)!r} returned {len(raw)} actions for {len(observations)} observations")
    return [(_env_action(a, _is_text(o)), t, f) for (a, t, f), o in zip(raw, observations)]


def _action_json(action: Any) -> Any:
    return action.to_dict() if isinstance(action, Action) else _jsonable(action)


def _step_row(benchmark: str, run: _Run, before: Mapping[str, Any], after: Mapping[str, Any], action: Any,
              reward: float, text: str | None, frame: str | None) -> dict[str, Any]:
    k = len(run.actions)
    row: dict[str, Any] = {"episode": run.index, "step": k}
    if benchmark.startswith("screenspot"):
        row.update(id=str(before.get("id")), index=int(before.get("index", run.index)))
    elif benchmark == "androidcontrol":
        row.update(episode_id=str(before.get("episode_id")), episode_index=run.index,
                   step_index=int(before.get("step_index", k)))
    row["action"] = _action_json(action)
    if text is not None:
        row["text"] = text
        row["frame"] = frame
    row["reward"] = float(reward)
    gt = before.get("gt_action") if before.get("gt_action") is not None else before.get("oracle_action")
    if gt is not None:
        row["gt"] = gt
    box = before.get("bbox") if before.get("bbox") is not None else before.get("target_box")
    if box is not None:
        row["gt_box"] = [float(v) for v in box]
    row.update({key: after[key] for key in VERDICT_KEYS if key in after})
    if isinstance(after.get("action"), str) and not isinstance(action, Action):
        row["command"] = after["action"]  # the command a text env read from the text
    return _jsonable(row)


def _advance(env: gym.Env, run: _Run, benchmark: str, action: Any, text: str | None, frame: str | None) -> bool:
    """Step ``run``'s env with ``action``; True when the episode ended."""
    before = run.info
    gt_type = (before.get("gt_action") or {}).get("type", "")
    obs, reward, terminated, truncated, info = env.step(action)
    run.rows.append(_step_row(benchmark, run, before, info, action, reward, text, frame))
    run.total += float(reward)
    run.actions.append(_action_json(action))
    if text is not None:
        run.texts.append(text)
    if "exact_match" in info:  # trajectory benchmarks judge every step
        run.verdicts.append({k: info.get(k) for k in ("type_match", "exact_match", "grounding", "reason")} | {"gt_type": gt_type})
    elif "correct" in info:
        run.verdicts.append({"correct": bool(info["correct"])})
    run.obs, run.info, run.last_info = obs, info, info
    return bool(terminated or truncated)


def _record(run: _Run) -> dict[str, Any]:
    info, first = run.last_info, run.first
    # ALFWorld says "won"; envs without a success flag (the MDP env) succeed with a positive return
    success = bool(info.get("episode_success", info.get("success", info.get("won", run.total > 0))))
    rec = {"index": run.index, "id": first.get("id", first.get("episode_id", run.index))}
    rec.update({k: first.get(k) for k in GROUP_KEYS if first.get(k) is not None})
    rec.update({"return": run.total, "success": success, "steps": len(run.actions), "actions": run.actions,
                "verdicts": run.verdicts, "instruction": run.instruction})
    if run.texts:
        rec["texts"] = run.texts
    return _jsonable(rec)


def run_episodes(envs: Sequence[gym.Env], agent: Agent, plans: Sequence[Any], *, benchmark: str = "",
                 on_episode: Callable[[EpisodeResult], None] | None = None) -> list[EpisodeResult]:
    """Run the episodes ``plans`` through ``envs`` with ``agent`` in lockstep; the loop of
    ``guienv eval``, public for held-out evaluation during training.

    ``plans``: one entry per episode, ``(seed, options)`` (``env.reset(seed=seed, options=options)``,
    either may be None) or the ``(index, reset kwargs, slice name)`` triples of
    :func:`episode_plan`. ``envs``: independent envs of the same benchmark (``len(envs)`` episodes
    run at once); wrap them in :class:`~guienv.envs.history.HistoryWrapper` for multi-step prompts.
    Every round asks the agent once for all running episodes (:func:`act_batch`), steps every env
    once, and refills a finished slot with the next plan. ``benchmark`` names the step-row format
    (see the module docstring; ``""``: the generic one). ``on_episode`` is called with each result
    as it finishes (``guienv eval`` writes its files there).

    Returns one :class:`EpisodeResult` per plan, in plan order (``result.index`` is the plan's
    index: its position for ``(seed, options)`` plans)."""
    if not envs:
        raise ValueError("run_episodes needs at least one env")
    queue: deque[tuple[int, dict[str, Any], str | None]] = deque()
    for pos, plan in enumerate(plans):
        if len(plan) == 3:
            queue.append((int(plan[0]), dict(plan[1]), plan[2]))
        elif len(plan) == 2:
            seed, options = plan
            queue.append((pos, {"seed": seed, "options": None if options is None else dict(options)}, None))
        else:
            raise ValueError(f"plan {pos}: expected (seed, options) or (index, reset kwargs, slice), got {plan!r}")
    order = {p[0]: k for k, p in enumerate(queue)}
    results: list[EpisodeResult | None] = [None] * len(queue)
    slots: list[_Run | None] = [None] * len(envs)
    while True:
        for s, e in enumerate(envs):
            if slots[s] is None and queue:
                slots[s] = _start(e, *queue.popleft())
        active = [s for s in range(len(envs)) if slots[s] is not None]
        if not active:
            break
        outs = act_batch(agent, [slots[s].obs for s in active], [slots[s].info for s in active])
        for s, (action, text, frame) in zip(active, outs):
            run = slots[s]
            if not _advance(envs[s], run, benchmark, action, text, frame):
                continue
            rec = _record(run)
            res = EpisodeResult(run.index, run.reset_kwargs, run.total, bool(rec["success"]), len(run.actions),
                                list(run.texts), list(run.actions), rec, run.rows)
            results[order[run.index]] = res
            slots[s] = None
            if on_episode is not None:
                on_episode(res)
    return [r for r in results if r is not None]


# -- aggregates -----------------------------------------------------------------------------------
def summarize(records: list[dict[str, Any]]) -> dict[str, Any]:
    def block(rs: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(rs)
        return {
            "episodes": n,
            "success_rate": sum(r["success"] for r in rs) / n if n else 0.0,
            "mean_return": sum(r["return"] for r in rs) / n if n else 0.0,
            "mean_steps": sum(r["steps"] for r in rs) / n if n else 0.0,
        }

    out: dict[str, Any] = {"overall": block(records)}
    for key in GROUP_KEYS:
        groups: dict[str, list] = defaultdict(list)
        for r in records:
            if r.get(key) is not None:
                groups[str(r[key])].append(r)
        if groups:
            out[f"by_{key}"] = {g: block(rs) for g, rs in sorted(groups.items())}
    return out


def published_metrics(benchmark: str, records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The benchmark's own metrics (rewards.metrics): ScreenSpot text/icon accuracy per split and
    platform; AndroidControl type / grounding / step success / episode success per split."""
    from rewards.action_match import StepVerdict
    from rewards.metrics import GroundingRecord, StepRecord, androidcontrol_metrics, screenspot_metrics

    if benchmark.startswith("screenspot"):
        return screenspot_metrics([
            GroundingRecord(id=str(r["id"]), correct=bool(r["verdicts"] and r["verdicts"][0].get("correct")),
                            data_type=r.get("data_type"), split=r.get("split"), platform=r.get("platform"),
                            group=r.get("group"),
                            parsed=bool(r["actions"]) and r["actions"][0].get("type") != "invalid")
            for r in records
        ])
    if benchmark == "androidcontrol":
        steps = []
        for r in records:
            for i, v in enumerate(r["verdicts"]):
                verdict = StepVerdict(bool(v["type_match"]), bool(v["exact_match"]), v.get("grounding"),
                                      v.get("reason") or "", v.get("gt_type") or "")
                steps.append(StepRecord(str(r["id"]), i, verdict, v.get("gt_type") or "", r.get("split"), r.get("subsplit")))
        return androidcontrol_metrics(steps)
    return None


def agent_metadata(agent: Any) -> dict[str, Any]:
    """The agent's settings for metrics.json (secrets left out) and its coordinate frame."""
    cfg = getattr(agent, "cfg", None)
    if hasattr(cfg, "public"):
        meta = dict(cfg.public())
    elif is_dataclass(cfg) and not isinstance(cfg, type):
        meta = {k: v for k, v in asdict(cfg).items() if k not in _SECRET_KEYS}
    else:
        meta = {}
    if getattr(agent, "frame", None) is not None:
        meta["frame"] = agent.frame
    return _jsonable(meta)


# -- files ----------------------------------------------------------------------------------------
def _load_previous(out: Path) -> tuple[dict[int, dict], dict[int, list[dict]]]:
    """Finished episodes of an earlier run and their step rows. Files holding an interrupted last
    line, or step rows of an episode that did not finish, are rewritten without them (those
    episodes run again), so ``steps.jsonl`` never holds duplicates for ``guienv score``."""
    pred_path, steps_path = out / "predictions.jsonl", out / "steps.jsonl"
    preds, preds_clean = read_jsonl(pred_path, drop_cut_tail=True)
    done: dict[int, dict] = {}
    for no, rec in enumerate(preds, start=1):
        if isinstance(rec.get("index"), bool) or not isinstance(rec.get("index"), int):
            raise DataError(pred_path, "a record without an integer 'index'", record=f"record {no}", field="index")
        done[rec["index"]] = rec
    rows, rows_clean = read_jsonl(steps_path, drop_cut_tail=True)
    kept = [r for r in rows if r.get("episode") in done]
    steps: dict[int, list[dict]] = defaultdict(list)
    for r in kept:
        steps[int(r["episode"])].append(r)
    if not preds_clean or len(done) != len(preds):
        write_jsonl(pred_path, list(done.values()))
    if not rows_clean or len(kept) != len(rows):
        write_jsonl(steps_path, kept)
    lacking = [i for i in done if i not in steps and done[i].get("steps")]
    if lacking:
        warnings.warn(f"{steps_path}: no step rows for {len(lacking)} finished episode(s) from an earlier run "
                      f"(e.g. index {lacking[0]}); `guienv score` counts their steps as missing", stacklevel=2)
    return done, dict(steps)


def run_eval(cfg: EvalConfig, agent: Any) -> dict[str, Any]:
    """Run (or resume) the evaluation; returns the metrics written to ``cfg.out/metrics.json``."""
    check_config(cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    done, step_rows = _load_previous(out)
    # What an interrupted run leaves for `guienv report` (metrics.json comes only at the end).
    run_info = {"benchmark": cfg.benchmark, "agent": agent.name, "config": _jsonable(asdict(cfg))}
    (out / "run.json").write_text(json.dumps(run_info, indent=2, ensure_ascii=False), encoding="utf-8")
    with contextlib.ExitStack() as stack:
        if cfg.benchmark == "miniwob" and not cfg.server_url:
            from emulator.appium_server import AppiumServer

            cfg = replace(cfg, server_url=stack.enter_context(AppiumServer()).url)
        env = make_env(cfg, agent=agent)
        stack.callback(env.close)
        plan = episode_plan(cfg, env)
        if cfg.limit is not None:
            plan = plan[: cfg.limit]
        todo = [p for p in plan if p[0] not in done]
        envs = [env]
        shared = getattr(env.unwrapped, "dataset", None) if cfg.benchmark not in ONLINE else None
        for _ in range(min(cfg.batch_size, len(todo)) - 1):
            e = make_env(cfg, dataset=shared, agent=agent)
            stack.callback(e.close)
            envs.append(e)
        t0 = time.perf_counter()
        with (out / "predictions.jsonl").open("a", encoding="utf-8") as fp, \
                (out / "steps.jsonl").open("a", encoding="utf-8") as fs, \
                tqdm(total=len(todo), desc=f"eval {cfg.benchmark} ({agent.name})", unit="ep", disable=None) as bar:

            def write(res: EpisodeResult) -> None:
                for row in res.rows:  # steps before the episode line: a crash leaves no orphan record
                    fs.write(json.dumps(row, ensure_ascii=False) + "\n")
                fs.flush()
                fp.write(json.dumps(res.record, ensure_ascii=False) + "\n")
                fp.flush()
                done[res.index], step_rows[res.index] = res.record, res.rows
                bar.update()

            run_episodes(envs, agent, todo, benchmark=cfg.benchmark, on_episode=write)
        seconds = time.perf_counter() - t0
        n = len(plan)
        records = [done[p[0]] for p in plan if p[0] in done]
        metrics = {
            "benchmark": cfg.benchmark,
            "agent": agent.name,
            "agent_config": agent_metadata(agent),
            "config": _jsonable(asdict(cfg)),
            "resumed": n - len(todo),
            "seconds": round(seconds, 3),
            "episodes_per_second": round(len(todo) / seconds, 3) if seconds > 0 and todo else None,
            **summarize(records),
        }
        if cfg.benchmark == "androidcontrol":
            metrics["protocol"] = env.unwrapped.protocol
            metrics["mode"] = env.unwrapped.mode
        skipped = getattr(getattr(env.unwrapped, "dataset", None), "skipped", None)
        if cfg.on_error == "skip" and skipped is not None:
            metrics["skipped_records"] = len(skipped)  # bad records --on-error skip left out
        published = published_metrics(cfg.benchmark, records)
        if published is not None:
            metrics["published"] = published
        metrics["files"] = {"predictions": "predictions.jsonl", "steps": "steps.jsonl", "report": "report.html"}
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False), encoding="utf-8")

        plan_kwargs = {i: kw for i, kw, _ in plan}
        # text envs have no screens to replay
        write_report(out / "report.html", metrics, records, step_rows, env=None if cfg.benchmark in TEXT else env,
                     reset_kwargs=plan_kwargs,
                     max_episodes=cfg.report_episodes)
    return metrics


def rebuild_report(run_dir: str | Path, *, images: bool = True, **kwargs: Any) -> Path:
    """Re-render ``run_dir/report.html`` from the run's files; with ``images`` the env is rebuilt
    from the config in metrics.json to replay the shown episodes (not for miniwob). An interrupted
    run (no metrics.json) is rendered from what it wrote: summaries recomputed from
    ``predictions.jsonl`` and ``steps.jsonl``, the config from ``run.json``."""
    run = Path(run_dir)
    if not run.is_dir():
        raise DataError(run, "no such eval run folder (the --out of `guienv eval`)")
    records, _ = read_jsonl(run / "predictions.jsonl", drop_cut_tail=True)
    rows, _ = read_jsonl(run / "steps.jsonl", drop_cut_tail=True)
    steps: dict[int, list] = {}
    for r in rows:
        steps.setdefault(int(r["episode"]), []).append(r)
    metrics_path = run / "metrics.json"
    if metrics_path.exists():
        metrics = read_json(metrics_path)
    else:
        metrics = _interrupted_metrics(run, records)
    raw = dict(metrics.get("config") or {})
    raw["tasks"] = raw.get("tasks") or ()
    known = {f.name for f in fields(EvalConfig)}  # keys a newer or older version wrote are skipped
    cfg = load_config(EvalConfig, {k: v for k, v in raw.items() if k in known}, str(run / "metrics.json"), "config")
    env = None
    plan: dict[int, Any] = {}
    try:
        if images and cfg.benchmark not in ("miniwob",) + TEXT and raw.get("benchmark"):
            env = make_env(cfg)
            plan = {i: kw for i, kw, _ in episode_plan(cfg, env)}
        kwargs.setdefault("max_episodes", cfg.report_episodes)
        return write_report(run / "report.html", metrics, records, steps, env, plan, **kwargs)
    finally:
        if env is not None:
            env.close()


def _interrupted_metrics(run: Path, records: list[dict[str, Any]]) -> dict[str, Any]:
    """metrics.json as far as an interrupted run's files allow; DataError naming what is missing."""
    if not (run / "predictions.jsonl").exists():
        have = sorted(p.name for p in run.iterdir())
        raise DataError(run, "no metrics.json and no predictions.jsonl: nothing to report (is this the --out "
                             f"folder of `guienv eval`? it holds {have or 'nothing'})")
    info = read_json(run / "run.json") if (run / "run.json").exists() else {}
    bench = info.get("benchmark")
    metrics: dict[str, Any] = {"benchmark": bench or "unknown", "agent": info.get("agent", "unknown"),
                               "config": info.get("config") or {}, "interrupted": True, **summarize(records)}
    if bench:
        published = published_metrics(bench, records)
        if published is not None:
            metrics["published"] = published
    return metrics
