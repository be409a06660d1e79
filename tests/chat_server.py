"""A real OpenAI-compatible chat server for tests (``ThreadingHTTPServer`` on 127.0.0.1), shared
by the API-agent and judge tests."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def reply(*contents: str) -> tuple[int, dict, bytes]:
    """A 200 ``chat.completion`` response with one choice per content string."""
    choices = [{"index": i, "message": {"role": "assistant", "content": c}, "finish_reason": "stop"}
               for i, c in enumerate(contents)]
    return 200, {}, json.dumps({"id": "x", "object": "chat.completion", "choices": choices}).encode()


class ChatServer:
    """ThreadingHTTPServer on 127.0.0.1; ``behaviour(body, n, headers)`` returns (status, headers,
    payload) for the n-th request (1-based); counts requests and the most requests in flight."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.bodies: list[dict] = []
        self.headers: list[dict] = []
        self.count = 0
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                if self.path != "/v1/chat/completions":
                    self.send_error(404)
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.count += 1
                    n = server.count
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                    server.bodies.append(body)
                    server.headers.append(dict(self.headers))
                try:
                    status, headers, payload = server.behaviour(body, n, dict(self.headers))
                finally:
                    with server.lock:
                        server.inflight -= 1
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:  # the client gave up (timeout test)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
