"""Wall-clock deadlines of the shared OpenAI-compatible client (judge and API agent): a server that
trickles its answer one byte at a time, each byte inside the per-phase timeout, must not hold a
call longer than its deadline. A real HTTP server on 127.0.0.1, bounded in bytes and time."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from guienv.chat import ChatUnavailable, OpenAIChatClient

BODY = b'{"id": "x", "choices": [{"index": 0, "message": {"role": "assistant", "content": "yes"}}]}'


class Trickle:
    """Answers 200 with a correct JSON body, one byte every ``gap_s`` seconds (at most ``limit_s``)."""

    def __init__(self, gap_s: float, limit_s: float = 30.0):
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(BODY)))
                self.end_headers()
                start = time.monotonic()
                try:
                    for i in range(len(BODY)):
                        if time.monotonic() - start > limit_s:
                            return
                        self.wfile.write(BODY[i:i + 1])
                        self.wfile.flush()
                        time.sleep(gap_s)
                except (BrokenPipeError, ConnectionResetError):
                    return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_a_trickling_server_is_cut_at_the_attempt_deadline():
    # each byte arrives 0.1 s after the last: well inside the 1 s read timeout, ~9 s for the body
    with Trickle(gap_s=0.1) as srv:
        client = OpenAIChatClient(srv.url, timeout_s=1.0, max_retries=2, backoff_s=0.05, backoff_max_s=0.1)
        t0 = time.monotonic()
        with pytest.raises(ChatUnavailable, match=r"failed after 3 attempt\(s\): timed out"):
            client.complete({"messages": []})
        elapsed = time.monotonic() - t0
        client.close()
    assert elapsed < 3 * 1.0 + 2 * 0.1 + 1.0, elapsed  # 3 attempts of <= 1 s, two short backoffs, slack
    assert srv.requests == 3


def test_the_call_deadline_bounds_all_attempts_together():
    with Trickle(gap_s=0.1) as srv:
        client = OpenAIChatClient(srv.url, timeout_s=1.0, max_retries=5, backoff_s=0.05, backoff_max_s=0.1,
                                  deadline_s=1.5)
        t0 = time.monotonic()
        with pytest.raises(ChatUnavailable, match="call deadline of 1.5 s reached"):
            client.complete({"messages": []})
        elapsed = time.monotonic() - t0
        client.close()
    assert elapsed < 1.5 + 0.6, elapsed
    assert srv.requests == 2  # the second attempt got only what was left of the 1.5 s


def test_a_slow_but_complete_answer_within_the_deadline_is_read():
    with Trickle(gap_s=0.002) as srv:  # ~0.2 s for the body
        client = OpenAIChatClient(srv.url, timeout_s=5.0, max_retries=0)
        assert client.complete({"messages": []}) == ["yes"]
        client.close()


def test_judge_returns_its_fallback_within_the_bound():
    import numpy as np

    from guienv.actions import Action
    from rewards.judge import Judge, JudgeConfig, JudgeRequest

    with Trickle(gap_s=0.1) as srv:
        cfg = JudgeConfig(backend="openai", base_url=srv.url, model="m", timeout_s=1.0, max_retries=2,
                          backoff_s=0.05, backoff_max_s=0.1, on_error="fallback", fallback_score=0.0)
        judge = Judge(cfg)
        request = JudgeRequest("s", np.zeros((64, 48, 3), np.uint8), Action.click(10, 10), goal="open settings")
        t0 = time.monotonic()
        result = judge.judge(request)
        elapsed = time.monotonic() - t0
    assert result.outcome == "fallback" and result.score == 0.0
    assert srv.requests == 3
    assert elapsed < 3 * 1.0 + 2 * 0.1 + 1.5, elapsed
