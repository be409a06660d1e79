"""``guienv/WebShop-v0``: WebShop's text environment (Yao et al. 2022) behind the guienv conventions.

The real engine is ``princeton-nlp/WebShop`` (package ``web_agent_site``); it is not on PyPI in
usable form and needs the product data and a search index (WebShop, Yao et al., arXiv 2207.01206; princeton-nlp/WebShop ``README.md``). When
``web_agent_site`` is not importable, constructing the env raises an ``ImportError`` that says how
to install it. Everything else here is plain text processing and works without it:

* :func:`parse_observation` turns the ``text`` observation mode (visible strings joined by
  ``" [SEP] "``) into a :class:`WebShopPage`: page kind (``search``, ``results``, ``item``,
  ``detail`` for Description/Features/Reviews, ``done``), the instruction, products
  ``(asin, title, price)``, the item's title/price/option strings, the purchase score.
* :func:`check_action` validates ``search[query]`` (only when the page has a search box) and
  ``click[value]`` (only for a listed clickable; the engine matches the lower-cased value and
  refuses ``click[search]``) against ``get_available_actions()`` (``has_search_bar``,
  ``clickables``), which the env takes from the engine. :func:`derive_available_actions` rebuilds
  it from text alone, except that option *names* ("size", "color") can't be told apart from option
  *values* in text, so there it lists every option string.
* :func:`score_to_reward`: the engine's reward is the purchase score in [0, 1]; ``reward="success"``
  (verl-agent) pays ``success_reward`` (10) only when the episode ends with score 1, ``"score"``
  pays the score, ``"scaled"`` pays ``success_reward * score``.

Actions are model text: the first ``<action>...</action>`` block (or the whole text), which must
read ``search[...]`` or ``click[...]``. Invalid actions are not sent (WebShop would do nothing):
the observation stays, reward 0, ``info["invalid"] = True``, the step counts. ``max_steps`` is 15
(verl-agent).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from guienv.envs.mdp import render_text
from guienv.envs.options import int_option, reset_options
from guienv.errors import MissingDependency
from guienv.spaces import AnyText

SEP = " [SEP] "
INSTALL_HINT = (
    "guienv/WebShop-v0 needs WebShop's engine (package web_agent_site), which is not on PyPI:\n"
    "  git clone https://github.com/princeton-nlp/WebShop && cd WebShop\n"
    "  ./setup.sh -d small     # installs requirements, downloads product data, builds the search index (Java 11)\n"
    "  pip install -e .        # or add the WebShop checkout to PYTHONPATH\n"
    "then gym.make('guienv/WebShop-v0'). Observation parsing and action checks "
    "(guienv.envs.webshop.parse_observation / check_action) work without it."
)
_ASIN = re.compile(r"^[A-Z0-9]{10}$")
_ACTION_TAG = re.compile(r"<action>(.*?)</action>", re.IGNORECASE | re.DOTALL)
_ACTION = re.compile(r"^\s*(search|click)\s*\[(.*)\]\s*$", re.IGNORECASE | re.DOTALL)
_PAGE = re.compile(r"^Page (\d+) \(Total results: (\d+)\)$")
_ITEM_TAIL = ("Description", "Features", "Reviews", "Buy Now")


@dataclass(frozen=True)
class Product:
    asin: str
    title: str
    price: str


@dataclass(frozen=True)
class WebShopPage:
    kind: str  # search | results | item | detail | done | unknown
    instruction: str | None
    segments: tuple[str, ...]
    products: tuple[Product, ...] = ()
    page: int | None = None
    total_results: int | None = None
    has_prev: bool = False
    has_next: bool = False
    title: str | None = None
    price: str | None = None
    rating: str | None = None
    option_strings: tuple[str, ...] = ()  # option names and values, in page order (see module doc)
    content: tuple[str, ...] = ()  # text of a Description/Features/Reviews page
    score: float | None = None  # purchase score on the done page
    purchased_asin: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)


def parse_observation(text: str) -> WebShopPage:
    """Structure a ``text``-mode WebShop observation. Never raises on odd input (kind ``unknown``)."""
    if not isinstance(text, str):
        text = str(text)
    segs = tuple(s.strip() for s in text.strip().split("[SEP]"))
    segs = tuple(s for s in segs if s != "")
    if not segs:
        return WebShopPage("unknown", None, segs)
    if segs[0].startswith("Thank you for shopping with us!"):
        return _parse_done(segs)
    instruction = None
    rest = list(segs)
    if rest[0] == "WebShop":
        rest = rest[1:]
    if rest and rest[0] == "Instruction:":
        instruction = rest[1] if len(rest) > 1 else ""
        rest = rest[2:]
    if rest == ["Search"]:
        return WebShopPage("search", instruction, segs)
    if not rest or rest[0] != "Back to Search":
        return WebShopPage("unknown", instruction, segs)
    rest = rest[1:]
    if rest and _PAGE.match(rest[0]):
        m = _PAGE.match(rest[0])
        rest = rest[1:]
        has_prev = bool(rest) and rest[0] == "< Prev"
        rest = rest[1:] if has_prev else rest
        has_next = bool(rest) and rest[0] == "Next >"
        rest = rest[1:] if has_next else rest
        products, i = [], 0
        while i < len(rest):
            if _ASIN.match(rest[i]):
                title = rest[i + 1] if i + 1 < len(rest) else ""
                price = rest[i + 2] if i + 2 < len(rest) and rest[i + 2].startswith("$") else ""
                products.append(Product(rest[i], title, price))
                i += 3 if price else 2
            else:
                i += 1
        return WebShopPage("results", instruction, segs, tuple(products), int(m.group(1)), int(m.group(2)),
                           has_prev, has_next)
    if rest and rest[0] == "< Prev":
        rest = rest[1:]
        if tuple(rest[-4:]) == _ITEM_TAIL:
            body = rest[:-4]
            rating = body[-1] if body and body[-1].startswith("Rating:") else None
            body = body[:-1] if rating else body
            pidx = max((k for k, s in enumerate(body) if s.startswith("Price:")), default=None)
            price = body[pidx][len("Price:"):].strip() if pidx is not None else None
            head = body[:pidx] if pidx is not None else body
            title = head[-1] if head else None
            options = tuple(head[:-1])
            return WebShopPage("item", instruction, segs, title=title, price=price,
                               rating=rating[len("Rating:"):].strip() if rating else None, option_strings=options)
        return WebShopPage("detail", instruction, segs, content=tuple(rest))
    return WebShopPage("unknown", instruction, segs)


def _parse_done(segs: tuple[str, ...]) -> WebShopPage:
    score = asin = None
    for k, s in enumerate(segs):
        if s.startswith("Your score") and k + 1 < len(segs):
            try:
                score = float(segs[k + 1])
            except ValueError:
                score = None
        if s == "Purchased" and k + 2 < len(segs) and segs[k + 1] == "asin":
            asin = segs[k + 2]
    return WebShopPage("done", None, segs, score=score, purchased_asin=asin)


def derive_available_actions(page: WebShopPage) -> dict[str, Any]:
    """``get_available_actions()``-style dict rebuilt from text (option strings over-approximate:
    option names are included, see the module docstring)."""
    if page.kind == "search":
        return {"has_search_bar": True, "clickables": ["search"]}
    clk: list[str] = []
    if page.kind in ("results", "item", "detail"):
        clk.append("back to search")
    if page.kind == "results":
        if page.has_prev:
            clk.append("< prev")
        if page.has_next:
            clk.append("next >")
        clk += [p.asin.lower() for p in page.products]
    elif page.kind == "item":
        clk.append("< prev")
        clk += list(page.option_strings)
        clk += [s.lower() for s in _ITEM_TAIL]
    elif page.kind == "detail":
        clk.append("< prev")
    return {"has_search_bar": False, "clickables": clk}


def format_available_actions(avail: Mapping[str, Any]) -> list[str]:
    """verl-agent's list: ``search[<your query>]`` when there is a search box, ``click[x]`` per
    clickable (the ``search`` button is left out: clicking it does nothing)."""
    out = ["search[<your query>]"] if avail.get("has_search_bar") else []
    out += [f"click[{c}]" for c in avail.get("clickables", []) if c != "search"]
    return out


def parse_webshop_command(text: Any) -> tuple[str, str] | None:
    """``(kind, argument)`` from model text (first ``<action>`` block or the whole text), or None."""
    if not isinstance(text, str):
        return None
    text = text[:20000]
    m = _ACTION_TAG.search(text)
    raw = m.group(1) if m else text
    a = _ACTION.match(raw)
    if not a:
        return None
    kind, arg = a.group(1).lower(), " ".join(a.group(2).split())
    if len(arg) > 500:
        return None
    return kind, arg


def check_action(action: tuple[str, str] | None, avail: Mapping[str, Any]) -> tuple[bool, str]:
    """``(valid, reason)`` of a parsed action against ``get_available_actions()``."""
    if action is None:
        return False, "not of the form search[...] or click[...]"
    kind, arg = action
    if kind == "search":
        if not avail.get("has_search_bar"):
            return False, "no search box on this page"
        if not arg:
            return False, "empty search query"
        return True, ""
    key = arg.lower()
    if key == "search":
        return False, "click[search] does nothing; use search[query]"
    if key not in {str(c).lower() for c in avail.get("clickables", [])}:
        return False, f"{arg!r} is not a clickable on this page"
    return True, ""


@dataclass(frozen=True)
class WebShopConfig:
    max_steps: int = 15
    reward: str = "success"  # success (verl-agent) | score | scaled
    success_reward: float = 10.0
    observation_mode: str = "text"


def score_to_reward(score: float, done: bool, config: WebShopConfig = WebShopConfig()) -> float:
    """Env reward from the engine's purchase score (see the module docstring)."""
    if not done:
        return 0.0
    if config.reward == "success":
        return float(config.success_reward) if score == 1.0 else 0.0
    if config.reward == "score":
        return float(score)
    if config.reward == "scaled":
        return float(config.success_reward) * float(score)
    raise ValueError(f"reward must be success, score or scaled, got {config.reward!r}")


PROMPT = (
    "You are an expert autonomous agent operating in the WebShop e-commerce environment.\n"
    "Your task is to: {task}.\n"
    "Your current observation is: {observation}.\n"
    "Your admissible actions of the current situation are:\n[\n{actions}\n].\n\n"
    "Now it's your turn to take one action for the current step.\n"
    "You should first reason step-by-step about the current situation, then think carefully which admissible "
    "action best advances the shopping goal. This reasoning process MUST be enclosed within <think> </think> tags.\n"
    "Once you've finished your reasoning, you should choose an admissible action for current step and present "
    "it within <action> </action> tags."
)


def _import_text_env() -> Any:
    try:
        from web_agent_site.envs.web_agent_text_env import WebAgentTextEnv
    except ImportError as exc:
        raise MissingDependency(INSTALL_HINT) from exc
    return WebAgentTextEnv


class WebShopEnv(gym.Env):
    """WebShop's text env. ``text_env``: an existing ``WebAgentTextEnv`` (or anything with its
    ``reset(session=)``, ``step(str)``, ``get_available_actions()``); otherwise one is created with
    ``observation_mode="text"`` and ``**webshop_kwargs`` (needs ``web_agent_site``).
    ``options={"index": i}`` picks goal/session ``i``, else ``self.np_random`` over
    ``range(n_sessions)`` (default: the engine's number of goals)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 2}

    def __init__(self, config: WebShopConfig | None = None, text_env: Any = None, n_sessions: int | None = None,
                 render_mode: str | None = None, **webshop_kwargs: Any):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.config = config or WebShopConfig()
        if text_env is None:
            cls = _import_text_env()
            text_env = cls(observation_mode=self.config.observation_mode, **webshop_kwargs)
        self.text_env = text_env
        if n_sessions is None:
            goals = getattr(getattr(text_env, "server", None), "goals", None)
            n_sessions = len(goals) if goals else 1
        self.n_sessions = int(n_sessions)
        self.render_mode = render_mode
        self.observation_space = AnyText(1 << 17)
        self.action_space = AnyText(4096)
        self._obs = ""
        self._avail: dict[str, Any] = {"has_search_bar": False, "clickables": []}
        self._t = 0
        self._instruction = ""
        self._done = False

    def _info(self, invalid: bool = False, reason: str = "", action: str | None = None, score: float | None = None) -> dict[str, Any]:
        page = parse_observation(self._obs)
        actions = format_available_actions(self._avail)
        return {
            "instruction": self._instruction,
            "available_actions": dict(self._avail),
            "admissible_commands": actions,
            "page": page,
            "invalid": invalid,
            "invalid_reason": reason,
            "action": action,
            "score": score,
            "won": score == 1.0,
            "t": self._t,
            "prompt": PROMPT.format(task=self._instruction, observation=self._obs, actions="\n".join(actions)),
        }

    def reset(self, *, seed: int | None = None, options: Mapping[str, Any] | None = None):
        super().reset(seed=seed)
        idx = int_option(reset_options(options), "index", 0)
        idx = int(self.np_random.integers(self.n_sessions)) if idx is None else idx
        obs, _ = self.text_env.reset(session=idx)
        self._obs, self._t, self._done = obs, 0, False
        self._avail = dict(self.text_env.get_available_actions())
        page = parse_observation(obs)
        self._instruction = page.instruction or ""
        return self._obs, self._info()

    def step(self, action: Any):
        parsed = parse_webshop_command(action if isinstance(action, str) else getattr(action, "text", None))
        valid, reason = check_action(parsed, self._avail) if not self._done else (False, "episode is over")
        reward, score, done = 0.0, None, False
        cmd = None
        if valid:
            # the engine lower-cases the argument anyway; send the canonical clickable key
            cmd = f"click[{parsed[1].lower()}]" if parsed[0] == "click" else f"search[{parsed[1]}]"
            obs, raw_reward, done, _ = self.text_env.step(cmd)
            self._obs = obs
            if done:
                page = parse_observation(obs)
                score = float(raw_reward) if raw_reward is not None else page.score
                reward = score_to_reward(score, True, self.config)
                self._done = True
            self._avail = dict(self.text_env.get_available_actions()) if not done else {"has_search_bar": False, "clickables": []}
        self._t += 1
        truncated = not done and self._t >= self.config.max_steps
        return self._obs, reward, bool(done), truncated, self._info(not valid, reason, cmd, score)

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return render_text(self._obs.replace(SEP, "\n"), width=800, height=600)
