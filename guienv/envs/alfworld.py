"""``guienv/ALFWorld-v0``: ALFWorld's text games on the real TextWorld/PDDL engine.

Needs ``pip install alfworld`` (brings ``textworld[pddl]``: the PDDL engine and Fast Downward).
No data download is needed for a game directory you already have: a directory with
``initial_state.pddl`` (and ``traj_data.json`` for the task text) or a ``game.tw-pddl`` file
(JSON with ``pddl_domain``, ``grammar``, ``pddl_problem``), e.g. ``../shared/data/alfworld/``.

Game files are built as ALFWorld's own tooling does (``scripts/alfworld-generate``): domain
``alfred.pddl`` + grammar ``alfred.twl2`` with the task inserted (``add_task_to_grammar``) +
problem ``initial_state.pddl``. A multi-agent problem (several ``- agent`` objects, like the debug
game ``alice``/``bob``/``charlie``) is turned into a single-agent one by keeping one agent
(``agent=``, default the first) and dropping the others' declarations and facts. With
``multi_agent=True`` the game runs as-is: the engine's commands carry an ``"alice : "`` prefix,
the env shows the acting agent's commands without it and adds it back.

Running (ALFWorld, Shridhar et al., arXiv 2010.03768; alfworld/alfworld ``README.md``): ``textworld.gym.register_game(path, EnvInfos(won=True,
admissible_commands=True, ...), wrappers=[AlfredDemangler()])``. Observation: the engine's text
feedback (the welcome banner stripped); ``info`` holds ``task``, ``admissible_commands``, ``won``,
``invalid``, ``action`` (the command sent), ``prompt`` (verl-agent's ``<think>``/``<action>``
prompt) and, with ``expert_plan=True``, ``expert_plan`` (the engine planner's remaining commands).

Actions are model text: the command inside the first ``<action>...</action>`` (verl-agent
convention; without tags the whole text, unless ``require_action_tag``), lower-cased with
whitespace collapsed. A command that is not admissible is **invalid**: ``info["invalid"] = True``;
with ``invalid_action="engine"`` (default) it is still sent to the engine, which answers
``"Nothing happens."`` and changes nothing (the step counts, as in ALFWorld); with ``"noop"`` it
is not sent and the observation is that same ``"Nothing happens."``. verl-agent instead replaces an
invalid action by a random admissible one; we don't (it would hide the model's mistake).

Reward: ``reward_scale * won`` on the winning step (10 as verl-agent; 1 for plain success).
Episodes terminate when won and truncate after ``max_steps`` (50, verl-agent) steps.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym

from guienv.config import config_to_dict, load_config
from guienv.envs.mdp import render_text
from guienv.envs.options import int_option, reset_options
from guienv.errors import DataError, MissingDependency
from guienv.prompts import ALFWORLD_PROMPT, ALFWORLD_PROMPT_NO_HISTORY, alfworld_prompt
from guienv.spaces import AnyText

INSTALL_HINT = "ALFWorld needs the alfworld package: pip install alfworld (it brings textworld[pddl])"
NOTHING_HAPPENS = "Nothing happens."
_ACTION_TAG = re.compile(r"<action>(.*?)</action>", re.IGNORECASE | re.DOTALL)
_THINK_TAG = re.compile(r"<think>.*?</think>", re.IGNORECASE | re.DOTALL)
_BANNER = re.compile(r"^\s*-=\s*Welcome to TextWorld, ALFRED!\s*=-\s*", re.IGNORECASE)
_MAX_COMMAND = 200


@dataclass(frozen=True)
class ALFWorldConfig:
    max_steps: int = 50
    reward_scale: float = 10.0  # reward = reward_scale * won
    agent: str | None = None  # which agent of a multi-agent problem to keep/act as (default: first)
    multi_agent: bool = False  # run a multi-agent game as-is with "<agent> : " prefixes
    invalid_action: str = "engine"  # "engine" (send, engine says "Nothing happens.") or "noop"
    require_action_tag: bool = False
    expert_plan: bool = False  # put the engine planner's commands in info["expert_plan"] (slower)
    history_length: int = 2  # past (observation, action) pairs shown in info["prompt"]
    task_seed: int = 0  # picks ALFWorld's task template deterministically
    cache_dir: str | None = None  # where built game files go (default: a temp dir)


# -- game files ----------------------------------------------------------------------------
def _require_alfworld():
    try:
        import alfworld.info  # noqa: F401
        import textworld  # noqa: F401
        import textworld.gym  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise MissingDependency(INSTALL_HINT) from exc


def problem_agents(problem: str) -> list[str]:
    """Names declared ``- agent`` in a PDDL problem's ``:objects``."""
    m = re.search(r"\(:objects(.*?)\)", problem, re.DOTALL | re.IGNORECASE)
    body = m.group(1) if m else ""
    return re.findall(r"([^\s()]+)\s+-\s+agent\b", body)


def single_agent_problem(problem: str, agent: str | None = None, where: str = "<problem>") -> str:
    """Keep one agent of a multi-agent ALFWorld problem: drop the other agents' ``- agent``
    declarations and every fact line that mentions one of them."""
    agents = problem_agents(problem)
    if not agents:
        raise DataError(where, "the PDDL problem declares no agent (expected 'NAME - agent' in :objects)", field=":objects")
    keep = agents[0] if agent is None else agent
    if keep not in agents:
        raise DataError(where, f"agent {keep!r} is not in the problem's agents {agents}", field=":objects")
    drop = set(agents) - {keep}
    if not drop:
        return problem
    out = []
    for line in problem.splitlines():
        tokens = set(re.findall(r"[^\s()]+", line))
        if tokens & drop:
            stripped = line.strip()
            # a declaration "bob - agent" or a one-fact line "(atLocation bob loc)": drop it
            if re.fullmatch(r"[^\s()]+\s+-\s+agent", stripped) or re.fullmatch(r"\([^()]*\)", stripped):
                continue
            raise DataError(where, f"cannot drop agents {sorted(drop)} from line {line.strip()!r}")
        out.append(line)
    return "\n".join(out) + ("\n" if problem.endswith("\n") else "")


def task_grammar(grammar: str, traj_data: Mapping[str, Any], task_seed: int = 0) -> str:
    """ALFWorld's ``add_task_to_grammar`` with a deterministic template choice (it draws from the
    global ``random``; we seed it for the call and restore its state)."""
    from alfworld.agents.utils.misc import add_task_to_grammar

    state = random.getstate()
    try:
        random.seed(task_seed)
        return add_task_to_grammar(grammar, dict(traj_data), goal_desc_human_anns_prob=0.0, rng=random.Random(task_seed))
    finally:
        random.setstate(state)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def build_game_file(problem_dir: str | Path, *, agent: str | None = None, domain: str | Path | None = None,
                    grammar: str | Path | None = None, task_seed: int = 0, cache_dir: str | Path | None = None) -> Path:
    """Build a single-agent ``game.tw-pddl`` from ``problem_dir/initial_state.pddl`` (+
    ``traj_data.json``) with ALFWorld's domain and grammar; returns its path (content-addressed in
    ``cache_dir``, so parallel workers agree)."""
    _require_alfworld()
    import alfworld.info as ainfo

    problem_dir = Path(problem_dir)
    pddl = problem_dir / "initial_state.pddl"
    traj = problem_dir / "traj_data.json"
    try:
        problem = pddl.read_text(encoding="utf-8")
    except OSError as exc:
        raise DataError(pddl, f"cannot read the PDDL problem: {exc}") from exc
    problem = single_agent_problem(problem, agent, str(pddl))
    grammar_text = Path(grammar or ainfo.ALFRED_TWL2_PATH).read_text(encoding="utf-8")
    if traj.exists():
        try:
            traj_data = json.loads(traj.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise DataError(traj, f"cannot read JSON: {exc}") from exc
        for key in ("task_type", "pddl_params"):
            if key not in traj_data:
                raise DataError(traj, f"missing {key!r}", field=key)
        grammar_text = task_grammar(grammar_text, traj_data, task_seed)
    game = {
        "pddl_domain": Path(domain or ainfo.ALFRED_PDDL_PATH).read_text(encoding="utf-8"),
        "grammar": grammar_text,
        "pddl_problem": problem,
    }
    text = json.dumps(game)
    digest = hashlib.sha1(text.encode()).hexdigest()[:16]
    root = Path(cache_dir) if cache_dir else Path(tempfile.gettempdir()) / "guienv-alfworld"
    out = root / digest / "game.tw-pddl"
    if not out.exists():
        _write_atomic(out, text)
    return out


def _check_game_file(path: Path) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(path, f"cannot read the game file as JSON: {exc}") from exc
    for key in ("pddl_domain", "grammar", "pddl_problem"):
        if not isinstance(data.get(key), str):
            raise DataError(path, f"missing or non-text {key!r}", field=key)


# -- action text ---------------------------------------------------------------------------
def parse_command(text: Any, require_tag: bool = False) -> tuple[str | None, bool]:
    """``(command, format_ok)`` from model text: the first ``<action>`` block (or the whole text
    when tags are optional), lower-cased, whitespace collapsed, at most 200 characters.
    ``format_ok`` says both ``<think>...</think>`` and ``<action>...</action>`` were present.
    Never raises; returns ``(None, False)`` for unusable input."""
    if not isinstance(text, str):
        return None, False
    text = text[:20000]
    m = _ACTION_TAG.search(text)
    format_ok = bool(m) and bool(_THINK_TAG.search(text))
    if m:
        raw = m.group(1)
    elif require_tag:
        return None, False
    else:
        raw = text
    cmd = " ".join(raw.split()).lower()
    if not cmd or len(cmd) > _MAX_COMMAND:
        return None, format_ok
    return cmd, format_ok


# verl-agent's prompt lives in guienv.prompts (the "alfworld" template renders it from a text view);
# these names stay for callers of this module.
PROMPT_NO_HISTORY = ALFWORLD_PROMPT_NO_HISTORY
PROMPT = ALFWORLD_PROMPT
format_prompt = alfworld_prompt


# -- the env -------------------------------------------------------------------------------
class ALFWorldEnv(gym.Env):
    """ALFWorld text game(s). ``game``: a problem directory or a ``game.tw-pddl`` file; ``games``:
    several (``options={"index": i}`` picks one, else ``self.np_random``)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(self, game: str | Path | None = None, games: Sequence[str | Path] | None = None,
                 config: ALFWorldConfig | None = None, render_mode: str | None = None, **overrides: Any):
        _require_alfworld()
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        cfg = config or ALFWorldConfig()
        if overrides:
            cfg = load_config(ALFWorldConfig, {**config_to_dict(cfg), **overrides}, "ALFWorldEnv keyword options")
        if cfg.invalid_action not in ("engine", "noop"):
            raise ValueError(f"invalid_action must be 'engine' or 'noop', got {cfg.invalid_action!r}")
        self.config = cfg
        sources = list(games) if games is not None else ([game] if game is not None else [])
        if not sources:
            raise ValueError("ALFWorldEnv needs game= (a problem directory or game.tw-pddl) or games=[...]")
        self.game_files: list[Path] = []
        self.agents: list[str | None] = []
        for src in sources:
            path, agent = self._prepare(Path(src))
            self.game_files.append(path)
            self.agents.append(agent)
        self.render_mode = render_mode
        self.observation_space = AnyText(1 << 16)
        self.action_space = AnyText(4096)
        self._envs: dict[int, Any] = {}
        self._index = 0
        self._reset_state()

    def _prepare(self, src: Path) -> tuple[Path, str | None]:
        cfg = self.config
        if cfg.multi_agent:
            gf = src / "game.tw-pddl" if src.is_dir() else src
            if not gf.exists():
                raise DataError(gf, "game file not found")
            _check_game_file(gf)
            agents = problem_agents(json.loads(gf.read_text(encoding="utf-8"))["pddl_problem"])
            if not agents:
                raise DataError(gf, "multi_agent=True but the problem declares no agent", field="pddl_problem")
            agent = cfg.agent or agents[0]
            if agent not in agents:
                raise DataError(gf, f"agent {agent!r} is not in {agents}", field="pddl_problem")
            return gf, agent
        if src.is_dir() and (src / "initial_state.pddl").exists():
            return build_game_file(src, agent=cfg.agent, task_seed=cfg.task_seed, cache_dir=cfg.cache_dir), None
        gf = src / "game.tw-pddl" if src.is_dir() else src
        if not gf.exists():
            raise DataError(src, "neither initial_state.pddl nor game.tw-pddl found")
        _check_game_file(gf)
        if len(problem_agents(json.loads(gf.read_text(encoding="utf-8"))["pddl_problem"])) > 1:
            raise DataError(gf, "this game file is multi-agent: pass its directory (with initial_state.pddl) to build "
                                "a single-agent game, or multi_agent=True to run it as-is")
        return gf, None

    def _engine(self, i: int) -> Any:
        if i not in self._envs:
            import textworld
            import textworld.gym
            from alfworld.agents.environment.alfred_tw_env import AlfredDemangler

            infos = textworld.EnvInfos(won=True, admissible_commands=True, policy_commands=self.config.expert_plan)
            # the engine's own limit is far away: truncation is ours (terminated vs truncated)
            env_id = textworld.gym.register_game(str(self.game_files[i]), infos, max_episode_steps=1_000_000,
                                                 wrappers=[AlfredDemangler()])
            self._envs[i] = textworld.gym.make(env_id)
        return self._envs[i]

    def _reset_state(self) -> None:
        self._t = 0
        self._won = False
        self._task = ""
        self._obs = ""
        self._admissible: list[str] = []
        self._history: list[tuple[str, str]] = []
        self._plan: list[str] = []

    # -- engine text <-> agent text
    def _prefix(self) -> str:
        agent = self.agents[self._index]
        return f"{agent} : " if agent else ""

    def _own_commands(self, commands: Sequence[str]) -> list[str]:
        p = self._prefix()
        if not p:
            return list(commands)
        return [c[len(p):] for c in commands if c.startswith(p)]

    def _info(self, invalid: bool = False, command: str | None = None, format_ok: bool = False) -> dict[str, Any]:
        info = {
            "task": self._task,
            "admissible_commands": list(self._admissible),
            "won": self._won,
            "invalid": invalid,
            "action": command,
            "format_ok": format_ok,
            "t": self._t,
            "gamefile": str(self.game_files[self._index]),
            "prompt": format_prompt(self._task, self._obs, self._admissible,
                                    self._history[-self.config.history_length:] if self.config.history_length else (),
                                    self._t),
        }
        if self.config.expert_plan:
            info["expert_plan"] = list(self._plan)
        return info

    def _absorb(self, obs: str, infos: Mapping[str, Any]) -> None:
        self._obs = _BANNER.sub("", obs).strip()
        self._admissible = self._own_commands(infos.get("admissible_commands") or [])
        self._won = bool(infos.get("won"))
        if self.config.expert_plan:
            self._plan = self._own_commands(infos.get("policy_commands") or [])

    # -- gym API
    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        i = int_option(reset_options(options), "index", 0, len(self.game_files))
        self._index = int(self.np_random.integers(len(self.game_files))) if i is None else i
        self._reset_state()
        obs, infos = self._engine(self._index).reset()
        self._absorb(obs, infos)
        m = re.search(r"Your task is to:\s*(.*)", self._obs)
        self._task = m.group(1).strip() if m else ""
        return self._obs, self._info()

    def step(self, action: Any):
        cmd, format_ok = parse_command(action if isinstance(action, str) else getattr(action, "text", None),
                                       self.config.require_action_tag)
        invalid = cmd is None or cmd not in self._admissible
        prev_obs = self._obs
        reward = 0.0
        if invalid and (cmd is None or self.config.invalid_action == "noop"):
            self._obs = NOTHING_HAPPENS
        else:
            obs, _score, _done, infos = self._engine(self._index).step(self._prefix() + cmd)
            was_won = self._won
            self._absorb(obs, infos)
            if self._won and not was_won:
                reward = float(self.config.reward_scale)
        self._history.append((prev_obs, cmd if cmd is not None else str(action)[:_MAX_COMMAND]))
        self._t += 1
        terminated = self._won
        truncated = not terminated and self._t >= self.config.max_steps
        return self._obs, reward, terminated, truncated, self._info(invalid, cmd, format_ok)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return render_text(f"Task: {self._task}\nStep {self._t}\n{self._obs}\n\nAdmissible: {', '.join(self._admissible)}",
                           width=800, height=480)

    def close(self):
        for env in self._envs.values():
            try:
                env.close()
            except Exception:  # noqa: BLE001 - closing a dead engine must not raise
                pass
        self._envs.clear()
        super().close()


# -- a scripted expert ---------------------------------------------------------------------
def high_level_plan(traj_data: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """ALFRED's high-level PDDL plan ``[(action, args), ...]`` from ``traj_data.json`` (NoOp dropped)."""
    plan = []
    for step in traj_data.get("plan", {}).get("high_pddl", []):
        da = step.get("discrete_action", {})
        if da.get("action") and da["action"] != "NoOp":
            plan.append((da["action"], [str(a).lower() for a in da.get("args", [])]))
    return plan


_VERBS = {
    "PickupObject": lambda o, r=None: rf"^take {re.escape(o)} \d+ from ",
    "PutObject": lambda o, r: rf"^(move|put) {re.escape(o)} \d+ (to|in/on) {re.escape(r)}",
    "HeatObject": lambda o, r=None: rf"^heat {re.escape(o)} \d+ with ",
    "CoolObject": lambda o, r=None: rf"^cool {re.escape(o)} \d+ with ",
    "CleanObject": lambda o, r=None: rf"^clean {re.escape(o)} \d+ with ",
    "ToggleObject": lambda o, r=None: rf"^(use|toggle) {re.escape(o)} \d+",
    "SliceObject": lambda o, r=None: rf"^slice {re.escape(o)} \d+ with ",
}


class PlanFollowingExpert:
    """Follows ``traj_data.json``'s high-level plan with admissible commands: a ``GotoLocation``
    whose receptacle has several instances tries them in turn until the next plan step (or an
    ``open``) becomes admissible there. A scripted oracle for checking the engine plumbing."""

    name = "alfworld-plan"

    def __init__(self, traj_data: Mapping[str, Any]):
        self.plan = high_level_plan(traj_data)
        self.reset()

    def reset(self) -> None:
        self.k = 0  # index of the plan step being worked on
        self.tried: set[str] = set()

    def _next_pattern(self, k: int) -> re.Pattern | None:
        if k >= len(self.plan):
            return None
        action, args = self.plan[k]
        if action == "GotoLocation" or action not in _VERBS:
            return None
        return re.compile(_VERBS[action](*(args + [None])[:2]))

    def act(self, obs: str, info: Mapping[str, Any]) -> str:
        adm = list(info.get("admissible_commands") or [])
        while self.k < len(self.plan):
            action, args = self.plan[self.k]
            if action == "GotoLocation":
                nxt = self._next_pattern(self.k + 1)
                if nxt is not None and any(nxt.match(c) for c in adm):
                    self.k += 1  # already where the next step can happen
                    self.tried.clear()
                    continue
                closed = [c for c in adm if c.startswith(f"open {args[0]} ")]
                if closed and nxt is not None:
                    return closed[0]  # look inside before moving on
                goto = [c for c in adm if c.startswith(f"go to {args[0]} ") and c not in self.tried]
                if not goto:
                    return "look"
                self.tried.add(goto[0])
                return goto[0]
            pat = self._next_pattern(self.k)
            cands = [c for c in adm if pat is not None and pat.match(c)]
            if not cands:
                return "look"
            self.k += 1
            self.tried.clear()
            return cands[0]
        return "look"
