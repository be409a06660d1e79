"""Judge-model reward: a vision-language model rates a proposed GUI action (CRAFT-GUI's model part).

CRAFT-GUI ("CRAFT-GUI: Curriculum-Reinforced Agent For GUI Tasks", arXiv 2508.11360, the reward
section) trains with GRPO on a hybrid reward: rule
signals where they can decide, a judge model's evaluation elsewhere (see :mod:`rewards.hybrid`).
The paper has no public code; this module follows the judge patterns of public GUI RL code
(ZeroGUI arXiv 2505.23762, DigiRL arXiv 2406.11896, OS-Genesis arXiv 2412.19723,
GUI-Critic-R1 arXiv 2506.04614): the judge sees the goal, the step instruction, the
action history and the screenshot **with the proposed action drawn on it** (:mod:`guienv.draw`),
answers in a fixed format parsed by regex, runs at temperature 0 (optional voting over n samples),
retries, and its verdicts are cached so repeated rollouts don't pay twice (:mod:`rewards.judge_cache`).

Answer format (``PROMPT_VERSION``)::

    <verdict>yes</verdict><score>0.9</score>

``verdict`` is ``yes`` or ``no`` (case and spaces ignored); ``score`` is optional, a number in
[0, 1] = the judge's confidence that the action is correct. The judged score is ``score`` when
present and valid, else 1.0 for yes and 0.0 for no. Text before a closing ``</think>`` is ignored.
Conflicting verdict tags, or none, make the answer *unparsable*: it is asked again
(``unparsable_retries``), then handled by ``on_unparsable`` (``raise`` or a flagged fallback score).
With ``n_votes > 1`` the score is the mean over parsable samples and the verdict the majority.

Backends: :class:`OpenAIChatBackend` (any OpenAI-compatible ``/chat/completions`` server such as
vLLM, via ``httpx``) and :class:`TransformersBackend` (a local Qwen2.5-VL style model,
``generate``, greedy at temperature 0). A backend that stays unreachable after its retries raises
:class:`JudgeUnavailable`; the judge then raises or returns ``fallback_score`` flagged as a
fallback (``on_error``), never a silent 0. :attr:`Judge.stats` counts judged / cached / fallback.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from guienv.actions import Action, ActionType
from guienv.chat import CallCounter, ChatError, ChatUnavailable, OpenAIChatClient, png_data_url
from guienv.config import load_config, read_yaml
from guienv.draw import DrawStyle, draw_action
from guienv.frames import Frame, Screen
from guienv.io import decode_image, encode_png
from rewards.judge_cache import CachedVerdict, CacheKey, JudgeCache
from rewards.judge_prompt import (
    PROMPT_ID,
    PROMPT_ID_TEXT,
    SYSTEM_PROMPT,
    SYSTEM_PROMPT_TEXT,
    ImageLike,
    JudgePrompt,
    JudgeRequest,
    JudgeResult,
    ParsedVerdict,
    _history_line,
    aggregate_votes,
    build_user_text,
    describe_action,
    parse_verdict,
)

log = logging.getLogger(__name__)

ERROR_POLICIES = ("raise", "fallback")
BACKENDS = ("openai", "transformers")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class JudgeError(RuntimeError):
    """Base class of judge failures."""


class JudgeUnavailable(JudgeError):
    """The judge could not be reached, timed out or kept failing after all retries."""


class JudgeUnparsable(JudgeError):
    """The judge kept answering text that is not in the required format."""


# -- configuration -------------------------------------------------------------------------------
@dataclass(frozen=True)
class JudgeConfig:
    """Judge settings (YAML-loadable with :meth:`from_yaml`).

    Timing bound of one judge call on a dead or hanging server: ``(max_retries + 1)`` attempts of at
    most ``timeout_s`` each (httpx applies it per connect/read/write phase) plus the backoff sleeps
    ``min(backoff_max_s, backoff_s * 2**k)`` between them; times ``1 + unparsable_retries`` only for
    unparsable answers.
    """

    backend: str = "openai"  # openai | transformers
    model: str = ""  # served model name (openai) or local path / hub id (transformers)
    model_id: str | None = None  # cache identity of the judge; default "<backend>:<model>"
    base_url: str = "http://127.0.0.1:8000/v1"
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None  # read the key from this environment variable when api_key is unset
    timeout_s: float = 60.0
    max_retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    max_concurrency: int = 8
    temperature: float = 0.0
    n_votes: int = 1
    vote_temperature: float = 0.7  # sampling temperature used when n_votes > 1
    max_tokens: int = 64
    history_window: int = 8  # most recent history entries shown
    max_image_pixels: int | None = None  # downscale the drawn screenshot to at most this many pixels
    # False: the prompt is text only (goal, instruction, history and the action in words, no
    # screenshot), for a judge served as a text model; openai backend only.
    send_image: bool = True
    # more request fields merged into every payload (openai backend), e.g. vLLM's
    # structured_outputs {"regex": ...} to constrain the answer to the verdict format
    extra_body: dict[str, Any] = field(default_factory=dict)
    unparsable_retries: int = 1
    on_error: str = "raise"  # raise | fallback  (backend unreachable / timed out after retries)
    on_unparsable: str = "raise"  # raise | fallback
    fallback_score: float | None = None
    unparsable_score: float | None = None  # default: fallback_score
    cache_path: str | None = None  # SQLite file; None = no persistent cache
    # transformers backend
    device: str = "cpu"
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    min_pixels: int | None = None  # processor resize bounds (None = the processor's defaults)
    max_pixels: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        for name in ("on_error", "on_unparsable"):
            if getattr(self, name) not in ERROR_POLICIES:
                raise ValueError(f"{name} must be one of {ERROR_POLICIES}, got {getattr(self, name)!r}")
        for name in ("fallback_score", "unparsable_score"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and 0.0 <= v <= 1.0):
                raise ValueError(f"{name} must be a number in [0, 1], got {v!r}")
        if self.on_error == "fallback" and self.fallback_score is None:
            raise ValueError("on_error='fallback' needs an explicit fallback_score")
        if self.on_unparsable == "fallback" and self.unparsable_score is None and self.fallback_score is None:
            raise ValueError("on_unparsable='fallback' needs an explicit unparsable_score or fallback_score")
        if self.timeout_s <= 0 or self.backoff_s < 0 or self.backoff_max_s < 0:
            raise ValueError("timeout_s must be positive and backoff times non-negative")
        if self.max_retries < 0 or self.unparsable_retries < 0:
            raise ValueError("retry counts must be non-negative")
        if self.max_concurrency < 1 or self.n_votes < 1 or self.max_tokens < 1:
            raise ValueError("max_concurrency, n_votes and max_tokens must be at least 1")
        if self.temperature < 0 or self.vote_temperature < 0:
            raise ValueError("temperatures must be non-negative")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.max_image_pixels is not None and self.max_image_pixels < 28 * 28:
            raise ValueError("max_image_pixels must be at least 784")
        if not isinstance(self.send_image, bool):
            raise ValueError(f"send_image must be true or false, got {self.send_image!r}")
        if not self.send_image and self.backend != "openai":
            raise ValueError(f"send_image=False (a text-only judge) needs backend 'openai', got {self.backend!r}")
        if not isinstance(self.extra_body, Mapping):
            raise ValueError(f"extra_body must be a mapping of request fields, got {type(self.extra_body).__name__}")
        if self.extra_body and self.backend != "openai":
            raise ValueError(f"extra_body (request fields) applies to backend 'openai', got {self.backend!r}")

    @property
    def identity(self) -> str:
        return self.model_id or f"{self.backend}:{self.model}"

    @property
    def unparsable_value(self) -> float | None:
        return self.unparsable_score if self.unparsable_score is not None else self.fallback_score

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "<judge config>", prefix: str = "") -> JudgeConfig:
        """Checked through :func:`guienv.config.load_config` (errors name ``where`` and the key)."""
        return load_config(cls, data, where, prefix)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> JudgeConfig:
        """A YAML file holding the judge settings, at the top level or in a lone ``judge:`` block."""
        data = read_yaml(path)
        if "judge" in data and len(data) == 1:
            return load_config(cls, data["judge"], str(path), "judge")
        return load_config(cls, data, str(path))



# -- backends ------------------------------------------------------------------------------------
class JudgeBackend(Protocol):
    """Generates ``n`` answers to a prompt; raises :class:`JudgeUnavailable` after its retries."""

    model_id: str

    def generate(self, prompt: JudgePrompt, n: int, temperature: float) -> list[str]: ...

    def close(self) -> None: ...


_Counter = CallCounter  # attempts and retries; TransformersBackend counts its generate calls


class OpenAIChatBackend:
    """POST ``{base_url}/chat/completions`` (OpenAI / vLLM chat API) through
    :class:`guienv.chat.OpenAIChatClient` (``httpx``).

    Retries with exponential backoff on connection errors, timeouts, HTTP 5xx and 429 (honouring a
    numeric ``Retry-After`` up to ``backoff_max_s``); other 4xx answers fail at once. The ``httpx``
    client is shared by the judge's worker threads; its pool allows ``max_concurrency`` connections.
    """

    def __init__(self, config: JudgeConfig):
        self.config = config
        self.model_id = config.identity
        self._client = OpenAIChatClient(
            config.base_url, api_key=config.api_key, api_key_env=config.api_key_env, timeout_s=config.timeout_s,
            max_retries=config.max_retries, backoff_s=config.backoff_s, backoff_max_s=config.backoff_max_s,
            max_concurrency=config.max_concurrency, seed=config.seed, name="judge",
        )
        self.url = self._client.url
        self.counter = self._client.counter

    def payload(self, prompt: JudgePrompt, n: int, temperature: float) -> dict[str, Any]:
        """The request body; a text-only prompt has no image part (a text model rejects one)."""
        image = [{"type": "image_url", "image_url": {"url": png_data_url(prompt.image_png)}}] if prompt.has_image else []
        return {
            "model": self.config.model,
            "messages": [
                {"role": "system", "content": prompt.system},
                {"role": "user", "content": [*image, {"type": "text", "text": prompt.text}]},
            ],
            "temperature": temperature,
            "max_tokens": self.config.max_tokens,
            "n": n,
            **({"seed": self.config.seed} if temperature > 0 else {}),
            **self.config.extra_body,
        }

    def generate(self, prompt: JudgePrompt, n: int, temperature: float) -> list[str]:
        try:
            return self._client.complete(self.payload(prompt, n, temperature))
        except ChatUnavailable as exc:
            raise JudgeUnavailable(str(exc)) from exc
        except ChatError as exc:
            raise JudgeError(str(exc)) from exc

    def close(self) -> None:
        self._client.close()


def _manual_chat(system: str, text: str) -> str:
    # Qwen2-VL / Qwen2.5-VL chat format, used when the tokenizer has no usable chat template.
    return (
        f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n"
        f"<|vision_start|><|image_pad|><|vision_end|>{text}<|im_end|>\n<|im_start|>assistant\n"
    )


class TransformersBackend:
    """A local vision-language judge loaded with ``transformers`` (Qwen2.5-VL and relatives).

    The model, tokenizer and image processor come from :func:`guienv.vlm.load_vlm` (the loader the
    Qwen agent uses), loaded on first use; inputs from the tokenizer's chat template and
    :func:`guienv.vlm.build_inputs`, which expands ``<|image_pad|>`` to
    ``prod(image_grid_thw) // merge_size**2`` tokens as the Qwen processor does; generation through
    :func:`guienv.vlm.generate`. Decoding is greedy at temperature 0.
    Generation is serialised (one model, one lock); the judge's threads only overlap the drawing.
    """

    IMAGE_TOKEN = "<|image_pad|>"

    def __init__(self, config: JudgeConfig):
        if not config.model:
            raise ValueError("the transformers judge backend needs config.model (a local path or hub id)")
        self.config = config
        self.model_id = config.identity
        self._lock = threading.Lock()
        self._vlm = None
        self._model = None
        self._tokenizer = None
        self.counter = _Counter()

    # loading ---------------------------------------------------------------------------------
    def load(self) -> None:
        """Load model and processor now (otherwise on the first ``generate``)."""
        with self._lock:
            self._load()

    def _load(self) -> None:
        if self._vlm is not None:
            return
        from guienv.vlm import load_vlm

        path = self.config.model
        try:
            vlm = load_vlm(path, dtype=self.config.dtype, device=self.config.device, min_pixels=self.config.min_pixels,
                           max_pixels=self.config.max_pixels, require_family=False)
        except (OSError, ValueError, ImportError) as exc:
            raise JudgeError(f"cannot load judge model {path!r}: {exc}") from exc
        self._tokenizer, self._model = vlm.tokenizer, vlm.model
        self._vlm = vlm  # set last: a failed load is retried whole

    # inputs ----------------------------------------------------------------------------------
    def _messages(self, prompt: JudgePrompt) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": [{"type": "text", "text": prompt.system}]},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt.text}]},
        ]

    def _chat_text(self, owner: Any, prompt: JudgePrompt) -> str:
        """The chat-formatted prompt with one image placeholder: ``owner``'s (processor or
        tokenizer) chat template, else the Qwen format written out."""
        image_token = getattr(owner, "image_token", None) or self.IMAGE_TOKEN
        text = None
        if getattr(owner, "chat_template", None):
            try:
                text = owner.apply_chat_template(self._messages(prompt), tokenize=False, add_generation_prompt=True)
            except Exception as exc:  # noqa: BLE001  jinja errors of foreign templates
                log.info("judge: chat template failed (%s); using the Qwen format", exc)
        if text is None or text.count(image_token) != 1:
            text = _manual_chat(prompt.system, prompt.text)
        return text

    def build_inputs(self, prompt: JudgePrompt) -> dict[str, Any]:
        """Model inputs (``input_ids``, ``attention_mask``, ``pixel_values``, ``image_grid_thw``)."""
        with self._lock:
            return self._build_inputs(prompt)

    def _build_inputs(self, prompt: JudgePrompt) -> dict[str, Any]:
        self._load()
        return self._vlm.inputs([self._chat_text(self._tokenizer, prompt)], [[np.asarray(prompt.image())]])

    # generation ------------------------------------------------------------------------------
    def generate(self, prompt: JudgePrompt, n: int, temperature: float) -> list[str]:
        from guienv.vlm import generate

        with self._lock:
            inputs = self._build_inputs(prompt)
            self.counter.add(calls=1)
            try:
                # seeded sampling inside fork_rng: the trainer's global RNG state is left untouched
                out = generate(self._vlm, inputs, max_new_tokens=self.config.max_tokens, temperature=temperature, n=n,
                               seed=self.config.seed)
            except (RuntimeError, ValueError) as exc:
                raise JudgeUnavailable(f"local judge {self.config.model!r} failed to generate: {exc}") from exc
        return out.texts if temperature > 0 else out.texts[:1] * n

    def close(self) -> None:
        self._model = self._vlm = None


def make_backend(config: JudgeConfig) -> JudgeBackend:
    if config.backend == "openai":
        return OpenAIChatBackend(config)
    return TransformersBackend(config)


# -- the judge -----------------------------------------------------------------------------------
@dataclass
class JudgeStats:
    """Counts over returned results: ``judged + cached + deduped + fallback + unparsable`` equals
    the number of results. ``deduped`` results shared the answer of an identical request in flight
    (their own ``outcome`` says what that answer was); ``errors`` counts raised failures."""

    requests: int = 0
    judged: int = 0
    cached: int = 0
    deduped: int = 0
    fallback: int = 0
    unparsable: int = 0
    unparsable_retries: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class _Prepared:
    request: JudgeRequest
    screen: Screen
    action: Action  # pixel frame, coordinates rounded to whole pixels
    key: CacheKey


def normalise_action(action: Action, screen: Screen) -> Action:
    """Pixel frame with whole-pixel coordinates (what is drawn and what the cache keys on)."""
    if not action.is_valid:
        return Action(ActionType.INVALID)
    a = action.to_frame(Frame.PIXEL, screen)
    rnd = lambda p: None if p is None else tuple(float(round(v)) for v in p)  # noqa: E731
    return replace(a, point=rnd(a.point), end=rnd(a.end), box=rnd(a.box), reason=None)


def action_json(action: Action) -> str:
    d = action.to_dict()
    d.pop("reason", None)
    return json.dumps(d, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _image_size(image: ImageLike) -> tuple[int, int]:
    from guienv.io import image_size
    from guienv.types import ImageRef

    if isinstance(image, ImageRef):
        return image.size()
    if isinstance(image, Image.Image):
        return image.size
    if isinstance(image, np.ndarray):
        return int(image.shape[1]), int(image.shape[0])
    if isinstance(image, (bytes, bytearray, str, Path)):
        return image_size(image if isinstance(image, (str, Path)) else bytes(image))
    raise TypeError(f"cannot read a screenshot from {type(image).__name__}")


def _load_image(image: ImageLike) -> np.ndarray | Image.Image:
    from guienv.types import ImageRef

    if isinstance(image, ImageRef):
        return image.load()
    if isinstance(image, (Image.Image, np.ndarray)):
        return image
    return decode_image(image if isinstance(image, (str, Path)) else bytes(image))


class Judge:
    """Asks a judge model about proposed actions; caches, dedupes and bounds concurrency.

    ``judge_batch`` looks every request up in the cache, merges identical requests (also with
    requests in flight from other threads), and sends the rest through a pool of
    ``max_concurrency`` threads. Use as a context manager or call :meth:`close`.
    """

    def __init__(
        self,
        config: JudgeConfig,
        backend: JudgeBackend | None = None,
        cache: JudgeCache | None = None,
        style: DrawStyle | None = None,
    ):
        self.config = config
        self.backend = backend if backend is not None else make_backend(config)
        self._own_cache = cache is None and config.cache_path is not None
        self.cache = cache if cache is not None else (JudgeCache(config.cache_path) if config.cache_path else None)
        self.model_id = config.model_id or getattr(self.backend, "model_id", config.identity)
        self.style = style or DrawStyle()
        self.stats = JudgeStats()
        self._lock = threading.RLock()
        self._inflight: dict[str, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=config.max_concurrency, thread_name_prefix="judge")

    # preparation -----------------------------------------------------------------------------
    def _context_digest(self, req: JudgeRequest, screen: Screen) -> str:
        cfg = self.config
        shown = list(req.history)[-cfg.history_window:] if cfg.history_window > 0 else []
        hist = [_history_line(h, screen) for h in shown]
        ref = req.reference
        ref = describe_action(ref, screen) if isinstance(ref, Action) else ref
        blob = json.dumps(
            {
                "goal": req.goal, "instruction": req.instruction, "history": hist, "n_history": len(req.history),
                "reference": ref, "screen": [screen.width, screen.height], "image_px": cfg.max_image_pixels,
                "votes": [cfg.n_votes, cfg.vote_temperature if cfg.n_votes > 1 else cfg.temperature],
                "style": repr(self.style),
                # only when set: the digests (and cached verdicts) of judges without it stay as they were
                **({"extra_body": cfg.extra_body} if cfg.extra_body else {}),
            },
            ensure_ascii=False, sort_keys=True, default=str,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]

    def prepare(self, req: JudgeRequest) -> _Prepared:
        if not isinstance(req, JudgeRequest):
            raise TypeError(f"expected a JudgeRequest, got {type(req).__name__}")
        if not isinstance(req.action, Action) or not req.action.is_valid:
            raise ValueError(f"sample {req.sample_id!r}: the judge needs a valid Action, got {req.action!r}")
        if req.screen is not None:
            screen = req.screen
        elif req.width is not None and req.height is not None:
            screen = Screen(int(req.width), int(req.height))
        else:
            screen = Screen(*_image_size(req.image))
        action = normalise_action(req.action, screen)
        key = CacheKey(str(req.sample_id), action_json(action), self.model_id,
                       PROMPT_ID if self.config.send_image else PROMPT_ID_TEXT, self._context_digest(req, screen))
        return _Prepared(req, screen, action, key)

    def prompt(self, p: _Prepared) -> JudgePrompt:
        """Draw the action on the screenshot and write the request text (the text alone with
        ``send_image=False``: the screenshot is not even loaded)."""
        text = build_user_text(p.request, p.screen, p.action, self.config.history_window)
        if not self.config.send_image:
            return JudgePrompt(SYSTEM_PROMPT_TEXT, text)
        drawn = draw_action(_load_image(p.request.image), p.action, p.screen, self.style)
        limit = self.config.max_image_pixels
        if limit is not None and drawn.width * drawn.height > limit:
            s = math.sqrt(limit / (drawn.width * drawn.height))
            size = (max(1, int(drawn.width * s)), max(1, int(drawn.height * s)))
            drawn = drawn.resize(size, Image.Resampling.LANCZOS)
        return JudgePrompt(SYSTEM_PROMPT, text, encode_png(drawn))

    # asking ----------------------------------------------------------------------------------
    def _sample(self, prompt: JudgePrompt) -> list[str]:
        n = self.config.n_votes
        temp = self.config.temperature if n == 1 else self.config.vote_temperature
        texts = list(self.backend.generate(prompt, n, temp))
        calls = 1
        while len(texts) < n and calls < n:  # servers that ignore "n" answer once per call
            texts += self.backend.generate(prompt, n - len(texts), temp)
            calls += 1
        return texts[:n]

    def _ask(self, p: _Prepared) -> JudgeResult:
        cfg = self.config
        prompt = self.prompt(p)
        raws: tuple[str, ...] = ()
        agg = ParsedVerdict(False, error="not asked")
        for attempt in range(1 + cfg.unparsable_retries):
            if attempt:
                with self._lock:
                    self.stats.unparsable_retries += 1
            try:
                texts = self._sample(prompt)
            except JudgeUnavailable as exc:
                if cfg.on_error == "raise":
                    raise
                log.warning("judge unavailable for sample %s, using fallback %s: %s",
                            p.key.sample_id, cfg.fallback_score, exc)
                return JudgeResult(float(cfg.fallback_score), None, "fallback", error=str(exc))
            raws = tuple(t if isinstance(t, str) else repr(t) for t in texts)
            parsed = [parse_verdict(t) for t in texts]
            agg = aggregate_votes(parsed)
            if agg.ok:
                if self.cache is not None:
                    raw_json = json.dumps(list(raws), ensure_ascii=False)
                    self.cache.put(p.key, CachedVerdict(agg.verdict, agg.value, raw_json))
                votes = tuple(q.value for q in parsed if q.ok)
                return JudgeResult(agg.value, agg.verdict, "judged", raws, votes)
        msg = f"judge answer unparsable for sample {p.key.sample_id!r} ({agg.error}): {raws[:1]!r:.300}"
        if cfg.on_unparsable == "raise":
            raise JudgeUnparsable(msg)
        log.warning("%s; using fallback %s", msg, cfg.unparsable_value)
        return JudgeResult(float(cfg.unparsable_value), None, "unparsable", raws, error=agg.error)

    def _forget(self, digest: str) -> None:
        with self._lock:
            self._inflight.pop(digest, None)

    def judge(self, request: JudgeRequest) -> JudgeResult:
        return self.judge_batch([request])[0]

    def judge_batch(self, requests: Sequence[JudgeRequest]) -> list[JudgeResult]:
        """Judge many requests (a GRPO group); results in input order.

        With ``on_error='raise'`` (or ``on_unparsable='raise'``) the first failure is raised after
        the other requests of the batch finished (their verdicts are cached)."""
        prepared = [self.prepare(r) for r in requests]
        results: list[JudgeResult | None] = [None] * len(prepared)
        waits: list[tuple[int, Future, bool]] = []
        for i, p in enumerate(prepared):
            hit = self.cache.get(p.key) if self.cache is not None else None
            if hit is not None:
                try:
                    raw = tuple(str(t) for t in json.loads(hit.raw))
                except (ValueError, TypeError):
                    raw = (hit.raw,)
                results[i] = JudgeResult(hit.score, hit.verdict, "cached", raw)
                continue
            digest = p.key.digest
            with self._lock:
                fut = self._inflight.get(digest)
                owner = fut is None
                if owner:
                    fut = self._pool.submit(self._ask, p)
                    self._inflight[digest] = fut
                    fut.add_done_callback(lambda _f, d=digest: self._forget(d))
            waits.append((i, fut, owner))
        error: BaseException | None = None
        n_errors = 0
        for i, fut, owner in waits:
            try:
                res = fut.result()
            except JudgeError as exc:
                n_errors += 1
                error = error or exc
                continue
            results[i] = res if owner else replace(res, deduped=True)
        with self._lock:
            s = self.stats
            s.requests += len(prepared)
            s.errors += n_errors
            for r in results:
                if r is None:
                    continue
                if r.deduped:
                    s.deduped += 1
                elif r.outcome == "judged":
                    s.judged += 1
                elif r.outcome == "cached":
                    s.cached += 1
                elif r.outcome == "fallback":
                    s.fallback += 1
                else:
                    s.unparsable += 1
        log.debug("judge batch of %d: %s", len(prepared), self.stats.as_dict())
        if error is not None:
            raise error
        return results  # type: ignore[return-value]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.backend.close()
        if self._own_cache and self.cache is not None:
            self.cache.close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
