"""VLM policy served behind an OpenAI-compatible chat API (vLLM, SGLang, TGI, a hosted endpoint).

    vllm serve Qwen/Qwen2.5-VL-7B-Instruct --port 8000
    guienv eval --agent api --model Qwen/Qwen2.5-VL-7B-Instruct --api-base http://127.0.0.1:8000/v1

Each observation becomes one ``/chat/completions`` request: the prompt template's messages
(:mod:`guienv.prompts`, the same templates :class:`agents.qwen.QwenAgent` uses) with the image
slot filled by the screenshot as a base64 PNG data URL. The answer is parsed with
:func:`guienv.parsing.parse_action` in the configured coordinate frame and mapped back to the
original screenshot's pixels (the Qwen frames and their sources: :mod:`guienv.vlm`).

Which image is sent, and why. A served model answers in coordinates of the image *it* saw, and
the server's processor may resize what it receives: Qwen2.5-VL's processor smart-resizes every
image (sides to multiples of 28, area within its min/max pixels) and the model answers in pixels of
that resized image. The agent therefore sends, for ``frame="resized"``, the screenshot already
smart-resized with *its own* ``min_pixels``/``max_pixels``: a size the server's smart resize leaves
unchanged (multiples of 28, and inside the server's bounds as long as those contain the agent's; the
vLLM defaults, 4*28*28 .. 16384*28*28, contain the agent's defaults). The resized frame is then known
exactly on this side, and a reply ``(x, y)`` maps back as ``x * W / W_resized``. For ``grid1000``
(Qwen2-VL, UI-TARS, OS-Atlas) and ``normalized`` the answer does not depend on the image size, so
the same smart-resized image is sent (it bounds the request size). For ``pixel`` (a model that answers
in pixels of the image as given, served without resizing) the original screenshot is sent.

Requests of a batch run concurrently on at most ``max_concurrency`` threads (the HTTP client's pool
has as many connections); results keep the input order. Transport errors, timeouts, HTTP 5xx/408/429
are retried with backoff by :class:`guienv.chat.OpenAIChatClient`; a server that keeps
failing raises :class:`~guienv.chat.ChatUnavailable`, or with ``on_error="invalid"`` yields
an ``invalid`` action carrying the error (counted in :attr:`ApiAgent.errors`), never a silent guess.

Text envs (ALFWorld, the MDP env): an observation without a ``screenshot`` (a
:class:`guienv.history.History` text view) is prompted with the text templates
(:data:`guienv.prompts.TEXT_TEMPLATES`, as :class:`agents.policy_agent.TextAgent` is) and sent
without any image part, so a text-only served model answers it; the action is the model's text,
which the text env reads itself (its ``<action>...</action>`` command). Served models that
support it can be constrained with ``extra_body`` (vLLM's ``structured_outputs``: ``{"choice":
[...]}`` or ``{"regex": ...}``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from PIL import Image

from agents.protocol import check_infos
from agents.qwen import Generation
from guienv.actions import Action
from guienv.chat import ChatError, ChatUnavailable, OpenAIChatClient, png_data_url
from guienv.config import load_config
from guienv.frames import QWEN_MIN_PIXELS, Frame, Resize, Screen
from guienv.io import encode_png
from guienv.parsing import read_action
from guienv.prompts import TEXT_TEMPLATES, observation_messages, step_images

ON_ERROR = ("raise", "invalid")


@dataclass
class ApiAgentConfig:
    """Settings of :class:`ApiAgent` (YAML-loadable with :meth:`from_dict`).

    ``frame``: the served model family's coordinate frame: ``resized`` (Qwen2.5-VL, with
    ``min_pixels``/``max_pixels``), ``grid1000`` (Qwen2-VL, UI-TARS-1.0, OS-Atlas), ``normalized``
    or ``pixel``. ``extra_body``: more request fields (e.g. vLLM's ``top_k``,
    ``mm_processor_kwargs`` or ``structured_outputs``), merged into every payload. On a text env
    ``template`` must be a text template (``text``, ``alfworld``; ``guienv eval`` picks it).
    """

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = ""  # the served model name
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str | None = None  # read the key from this environment variable when api_key is unset
    template: str = "gui-g1"
    system: str | None = None  # optional system message before the template's messages
    frame: str = "resized"
    min_pixels: int = QWEN_MIN_PIXELS
    max_pixels: int = 1280 * 28 * 28
    max_concurrency: int = 8
    timeout_s: float = 60.0
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    temperature: float = 0.0
    top_p: float | None = None
    max_tokens: int = 256
    seed: int | None = None
    on_error: str = "raise"  # raise | invalid
    extra_body: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        Frame(self.frame)  # ValueError for an unknown frame name
        if not self.model:
            raise ValueError("ApiAgentConfig.model (the served model name) is required")
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {ON_ERROR}, got {self.on_error!r}")
        if self.max_concurrency < 1 or self.max_tokens < 1:
            raise ValueError("max_concurrency and max_tokens must be at least 1")
        if self.retries < 0 or self.timeout_s <= 0 or self.temperature < 0:
            raise ValueError("retries must be >= 0, timeout_s > 0 and temperature >= 0")
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(f"need 0 < min_pixels <= max_pixels, got {self.min_pixels}, {self.max_pixels}")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "<api agent config>") -> ApiAgentConfig:
        """From a mapping (parsed YAML); unknown keys and bad values are :class:`~guienv.errors.DataError`."""
        return load_config(cls, data, where)

    def public(self) -> dict[str, Any]:
        """The settings without secrets (for metrics.json)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_key"}


class ApiAgent:
    """Acts by asking a served VLM (see the module docstring). Use as a context manager or call
    :meth:`close`; ``client`` may be a shared :class:`OpenAIChatClient`."""

    name = "api"

    def __init__(self, cfg: ApiAgentConfig, client: OpenAIChatClient | None = None):
        self.cfg = cfg
        self.frame = Frame(cfg.frame)
        self.resize = Resize(min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
        self.client = client or OpenAIChatClient(
            cfg.base_url, api_key=cfg.api_key, api_key_env=cfg.api_key_env, timeout_s=cfg.timeout_s,
            max_retries=cfg.retries, backoff_s=cfg.backoff_s, backoff_max_s=cfg.backoff_max_s,
            max_concurrency=cfg.max_concurrency, seed=cfg.seed or 0, name="model",
        )
        self._pool = ThreadPoolExecutor(max_workers=cfg.max_concurrency, thread_name_prefix="api-agent")
        self._lock = threading.Lock()
        self.errors = 0

    # -- request -------------------------------------------------------------------------------
    def request_image(self, screenshot: Any) -> tuple[bytes, tuple[int, int]]:
        """The PNG sent for ``screenshot`` and its ``(width, height)`` (see the module docstring)."""
        img = Image.fromarray(np.asarray(screenshot, dtype=np.uint8)).convert("RGB")
        if self.frame is not Frame.PIXEL:
            size = Screen(img.width, img.height, self.resize).resized
            if size != img.size:
                img = img.resize(size, Image.Resampling.BICUBIC)  # the Qwen processor's resampling
        return encode_png(img), img.size

    def messages(self, observation: Mapping[str, Any], image_png: bytes | Sequence[bytes] = ()) -> list[dict[str, Any]]:
        """The step's chat messages (:func:`guienv.prompts.observation_messages`, as in training) in
        OpenAI form, the image slots filled in order with ``image_png`` (one PNG, or one per
        :func:`guienv.prompts.step_images` image: previous screens, then the current one)."""
        urls = iter([png_data_url(image_png)] if isinstance(image_png, bytes) else [png_data_url(p) for p in image_png])
        out: list[dict[str, Any]] = [{"role": "system", "content": self.cfg.system}] if self.cfg.system else []
        for msg in observation_messages(self.cfg.template, observation):
            content = msg["content"]
            if isinstance(content, list):
                content = [
                    {"type": "image_url", "image_url": {"url": next(urls)}} if part.get("type") == "image"
                    else {"type": "text", "text": part["text"]}
                    for part in content
                ]
            out.append({"role": msg["role"], "content": content})
        return out

    def payload(self, observation: Mapping[str, Any]) -> tuple[dict[str, Any], tuple[int, int] | None]:
        """The request body and the size of the image sent as the current screen (``None`` for a
        text view: no image is sent)."""
        images = step_images(observation)
        size: tuple[int, int] | None = None
        pngs: list[bytes] = []
        if images:
            *previous, current = images
            png, size = self.request_image(current)
            pngs = [self.request_image(im)[0] for im in previous] + [png]
        elif self.cfg.template not in TEXT_TEMPLATES:
            raise ValueError(f"ApiAgentConfig.template {self.cfg.template!r} has an image slot but the observation has no "
                             f"'screenshot' (a text env's view): use a text template, one of {sorted(TEXT_TEMPLATES)}")
        cfg = self.cfg
        body: dict[str, Any] = {
            "model": cfg.model,
            "messages": self.messages(observation, pngs),
            "temperature": cfg.temperature,
            "max_tokens": cfg.max_tokens,
        }
        if cfg.top_p is not None:
            body["top_p"] = cfg.top_p
        if cfg.seed is not None:
            body["seed"] = cfg.seed
        body.update(cfg.extra_body)
        return body, size

    # -- acting --------------------------------------------------------------------------------
    def to_pixels(self, action: Action, width: int, height: int) -> Action:
        """Map an action in the model's frame back to the original screenshot's pixels."""
        return read_action(action, Screen(width, height, self.resize))

    def _one(self, observation: Mapping[str, Any]) -> Generation:
        body, sent = self.payload(observation)
        try:
            text = self.client.complete(body)[0]
        except ChatError as exc:
            if self.cfg.on_error == "raise" or not isinstance(exc, ChatUnavailable):
                raise
            with self._lock:
                self.errors += 1
            return Generation(Action.invalid(f"api: {exc}"), "", [], [], self.frame, {"error": str(exc), "sent_size": sent})
        if sent is None:  # a text view: the text env reads its command from the text
            return Generation(text, text, [], [], self.frame, {"sent_size": None})
        h, w = np.asarray(observation["screenshot"]).shape[:2]
        action = read_action(text, Screen(int(w), int(h), self.resize), self.frame)
        return Generation(action, text, [], [], self.frame, {"sent_size": sent})

    def generate(self, observations: Sequence[Mapping[str, Any]]) -> list[Generation]:
        """One request per observation, at most ``max_concurrency`` in flight; input order.
        ``token_ids``/``logprobs`` are empty (the chat API does not return them by default)."""
        return list(self._pool.map(self._one, observations))

    def act(self, observation: Mapping[str, Any], info: Mapping[str, Any]) -> Action | str:
        return self._one(observation).action

    def act_batch(self, observations: Sequence[Mapping[str, Any]], infos: Sequence[Mapping[str, Any]]) -> list[Action | str]:
        check_infos(observations, infos)  # the model reads observations only
        return [g.action for g in self.generate(observations)]

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.client.close()

    def __enter__(self) -> ApiAgent:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

