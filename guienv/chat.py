"""HTTP client for OpenAI-compatible ``/chat/completions`` servers (vLLM, SGLang, TGI, OpenAI).

Shared by the judge reward (:class:`rewards.judge.OpenAIChatBackend`) and the API policy
(:class:`agents.api.ApiAgent`): one ``httpx.Client`` whose connection pool allows
``max_concurrency`` connections (callers bound their own thread pools to the same number),
per-phase timeouts, and retries with exponential backoff and jitter on connection errors,
timeouts, HTTP 5xx, 408 and 429 (a numeric ``Retry-After`` is honoured up to ``backoff_max_s``).
Other 4xx answers fail at once: the request itself is wrong, asking again cannot help.

Wall-clock deadlines, not only per-phase timeouts: httpx's ``timeout_s`` bounds each connect,
write and read wait, so a server that sends one byte just inside it could hold a request forever.
Each attempt therefore has a deadline of ``timeout_s`` for the whole exchange (the body is read in
chunks and the attempt is abandoned when its time is up), and each :meth:`OpenAIChatClient.complete`
call a deadline of ``deadline_s`` (default ``(max_retries + 1) * timeout_s + max_retries *
backoff_max_s``): no attempt starts and no backoff sleep runs past it.
"""

from __future__ import annotations

import base64
import os
import random
import threading
import time
from typing import Any


class ChatError(RuntimeError):
    """The request cannot be made at all (e.g. a base URL with an unsupported scheme)."""


class ChatUnavailable(ChatError):
    """The server could not be reached, timed out, refused the request or kept failing."""


class _AttemptDeadline(Exception):
    """An attempt ran out of wall-clock time while the server was still trickling its answer."""


class CallCounter:
    """Thread-safe counts of attempts (``calls``) and of those that were retries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.retries = 0

    def add(self, calls: int = 0, retries: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.retries += retries


def png_data_url(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URL, the image form the OpenAI chat API accepts inline."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def chat_texts(body: Any) -> list[str]:
    """The text of every choice of a chat completion (a choice without text gives ``""``).
    Content given as a list of parts is joined. ``ValueError`` when there are no choices."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices:
        raise ValueError("response has no choices")
    out = []
    for ch in choices:
        content = (ch.get("message") or {}).get("content") if isinstance(ch, dict) else None
        if isinstance(content, list):  # content parts
            content = "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
        out.append(content if isinstance(content, str) else "")
    return out


class OpenAIChatClient:
    """POST JSON payloads to ``{base_url}/chat/completions``; :meth:`complete` returns the texts.

    ``name`` labels the server in error messages (``"judge"``, ``"model"``). The API key is
    ``api_key``, else the environment variable ``api_key_env``; none sends no Authorization
    header (a local vLLM started without ``--api-key``). Safe to share between threads.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        backoff_max_s: float = 8.0,
        max_concurrency: int = 8,
        seed: int = 0,
        name: str = "chat server",
        deadline_s: float | None = None,
    ):
        import httpx

        if timeout_s <= 0 or backoff_s < 0 or backoff_max_s < 0:
            raise ValueError("timeout_s must be positive and backoff times non-negative")
        if deadline_s is not None and deadline_s <= 0:
            raise ValueError("deadline_s must be positive")
        if max_retries < 0 or max_concurrency < 1:
            raise ValueError("max_retries must be non-negative and max_concurrency at least 1")
        self._httpx = httpx
        self.base_url = base_url
        self.name = name
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.backoff_max_s = float(backoff_max_s)
        self.deadline_s = float(deadline_s) if deadline_s is not None else \
            (self.max_retries + 1) * self.timeout_s + self.max_retries * self.backoff_max_s
        self.url = base_url.rstrip("/") + "/chat/completions"
        key = api_key or (os.environ.get(api_key_env) if api_key_env else None)
        self._headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
        )
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self.counter = CallCounter()

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry ``attempt + 1``: ``Retry-After`` when numeric, else
        exponential backoff with 25% jitter (spreads the retries of concurrent callers)."""
        if retry_after:
            try:
                return min(self.backoff_max_s, max(0.0, float(retry_after)))
            except ValueError:
                pass
        base = min(self.backoff_max_s, self.backoff_s * 2**attempt)
        with self._rng_lock:
            jitter = self._rng.random()
        return base * (0.75 + 0.25 * jitter)

    def _post(self, payload: dict[str, Any], attempt_end: float) -> tuple[int, Any, bytes]:
        """One attempt: status, headers and body, read in chunks so ``attempt_end`` (monotonic
        time) bounds the whole exchange, not only each wait."""
        httpx = self._httpx
        left = attempt_end - time.monotonic()
        timeout = httpx.Timeout(max(0.001, min(self.timeout_s, left)))
        with self._client.stream("POST", self.url, json=payload, headers=self._headers, timeout=timeout) as resp:
            chunks = []
            for chunk in resp.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > attempt_end:
                    raise _AttemptDeadline()
            return resp.status_code, resp.headers, b"".join(chunks)

    def complete(self, payload: dict[str, Any]) -> list[str]:
        """POST ``payload``; the choices' texts. Raises :class:`ChatUnavailable` after the
        retries or at the call's deadline, at once for a 4xx other than 408/429,
        :class:`ChatError` for a bad URL."""
        import json

        httpx = self._httpx
        attempts = self.max_retries + 1
        call_end = time.monotonic() + self.deadline_s
        last = ""
        made = 0
        for attempt in range(attempts):
            now = time.monotonic()
            if now >= call_end:
                last += f" (call deadline of {self.deadline_s:g} s reached)"
                break
            retry_after = None
            made += 1
            self.counter.add(calls=1, retries=1 if attempt else 0)
            try:
                code, headers, body = self._post(payload, min(now + self.timeout_s, call_end))
            except httpx.UnsupportedProtocol as exc:
                raise ChatError(f"bad {self.name} base_url {self.base_url!r}: {exc}") from exc
            except (httpx.TimeoutException, _AttemptDeadline) as exc:
                last = f"timed out: no complete answer within {self.timeout_s:g} s ({type(exc).__name__})"
            except httpx.TransportError as exc:
                last = f"cannot reach {self.url}: {type(exc).__name__}: {exc}"
            else:
                text = body[:300].decode("utf-8", "replace")
                if code == 429 or code >= 500 or code == 408:
                    last = f"HTTP {code} from {self.url}: {text[:200]!r}"
                    retry_after = headers.get("retry-after")
                elif code >= 400:
                    raise ChatUnavailable(f"{self.name} at {self.url} refused the request: HTTP {code}: {text!r}")
                else:
                    try:
                        return chat_texts(json.loads(body))
                    except (ValueError, RecursionError) as exc:  # includes JSON decode errors
                        last = f"malformed response from {self.url}: {type(exc).__name__}: {str(exc)[:200]}"
            if attempt + 1 < attempts:
                pause = min(self.delay(attempt, retry_after), max(0.0, call_end - time.monotonic()))
                time.sleep(pause)
        raise ChatUnavailable(f"{self.name} at {self.url} failed after {made} attempt(s): {last}")

    def close(self) -> None:
        self._client.close()
