"""A pool of env instances stepped concurrently: the slots a multi-turn rollout steps in lockstep.

A rollout of P tasks x G trajectories resets or steps many slots each turn (verl-agent's
``EnvironmentManager`` over Ray-actor env workers, ``langfengQ/verl-agent``
``agent_system/environments/env_package/alfworld/envs.py``, does the same for the GiGPO paper,
arXiv 2505.10978, section 4). Three kinds share one interface (:class:`EnvPool`):

* ``inline``: the envs live in this process and run one after another (cheap envs, tests);
* ``process``: one :mod:`multiprocessing` worker per slot; a call sends every request first and
  then collects the answers, so the envs run in parallel (like Gymnasium's ``AsyncVectorEnv``,
  ``Farama-Foundation/Gymnasium`` ``gymnasium/vector/async_vector_env.py``, but slots step
  independently and a fault breaks one slot, not the whole vector);
* ``ray``: one Ray actor per slot, on a local cluster or one joined by address (Android emulators
  need several cores each and run on other machines).

Faults are data: an exception in the env's ``reset``/``step``, a dead worker or actor, or a call
past ``step_timeout_s`` comes back as an :class:`EnvResult` with ``error`` set. That slot is torn
down and recreated fresh at its next ``reset``; a ``step`` on it fails at once; other slots carry on.
"""

from __future__ import annotations

import importlib
import math
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from guienv.errors import MissingDependency

__all__ = ["KINDS", "EnvPool", "EnvResult", "EnvSpec", "make_pool"]

KINDS = ("inline", "process", "ray")
_JOIN_S = 2.0  # how long close() and teardown wait for a worker before killing it


@dataclass(frozen=True)
class EnvSpec:
    """How every slot builds its env: ``gymnasium.make(id, **kwargs)``.

    ``id`` may be ``"module:env-id"`` (Gymnasium imports ``module`` first, which registers the
    id), so envs outside guienv reach spawned workers and Ray actors by name."""

    id: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"EnvSpec.id must be a gymnasium id string, got {self.id!r}")
        if not isinstance(self.kwargs, Mapping):
            raise TypeError(f"EnvSpec.kwargs must be a mapping, got {type(self.kwargs).__name__}")
        object.__setattr__(self, "kwargs", dict(self.kwargs))  # a plain dict pickles to workers and actors

    def make(self) -> gym.Env:
        from guienv.registration import register_envs

        register_envs()
        return gym.make(self.id, **dict(self.kwargs))

    def check(self) -> None:
        """Raise now (``gymnasium.error.Error``, ``ImportError``) if the id is not registered."""
        from guienv.registration import register_envs

        register_envs()
        module, _, env_id = self.id.rpartition(":")
        if module:
            importlib.import_module(module)
        gym.spec(env_id)


@dataclass
class EnvResult:
    """One slot's answer to a ``reset`` (``reward`` 0, not done) or a ``step``."""

    observation: Any = None
    reward: float = 0.0
    terminated: bool = False
    truncated: bool = False
    info: dict[str, Any] = field(default_factory=dict)
    error: str | None = None  # why the call failed; None when it worked

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def done(self) -> bool:
        return self.terminated or self.truncated


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class _EnvServer:
    """The env of one slot and the calls on it, each answered as ``("ok", fields)`` or
    ``("err", reason)``; the inline slots, the worker processes and the Ray actors all use it."""

    def __init__(self, spec: EnvSpec):
        self.env: gym.Env | None = None
        self.make_error: str | None = None
        try:
            self.env = spec.make()
        except Exception as exc:  # reported at the slot's first call
            self.make_error = f"making {spec.id} failed: {_describe(exc)}"

    def ready(self) -> tuple[str, Any]:
        return ("err", self.make_error) if self.make_error else ("ok", None)

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> tuple[str, Any]:
        if self.make_error:
            return "err", self.make_error
        try:
            obs, info = self.env.reset(seed=seed, options=options)
            return "ok", (obs, 0.0, False, False, dict(info))
        except Exception as exc:
            return "err", _describe(exc)

    def step(self, action: Any) -> tuple[str, Any]:
        if self.make_error:
            return "err", self.make_error
        try:
            obs, reward, terminated, truncated, info = self.env.step(action)
            return "ok", (obs, float(reward), bool(terminated), bool(truncated), dict(info))
        except Exception as exc:
            return "err", _describe(exc)

    def close(self) -> None:
        if self.env is not None:
            try:
                self.env.close()
            except Exception:  # closing a broken env must not mask the fault that broke it
                pass
            self.env = None


def _result(answer: tuple[str, Any]) -> EnvResult:
    status, payload = answer
    if status != "ok":
        return EnvResult(error=str(payload))
    obs, reward, terminated, truncated, info = payload
    return EnvResult(obs, reward, terminated, truncated, info)


class EnvPool:
    """``size`` slots, each one env instance; reset and step any subset of them concurrently.

    ``stats``: ``errors`` (faults that broke a slot: env exceptions, dead workers, timeouts),
    ``timeouts`` (those that were timeouts), ``restarts`` (broken slots recreated by ``reset``).
    Subclasses implement ``_start``, ``_stop`` and ``_call``."""

    kind = "base"

    def __init__(self, spec: EnvSpec, size: int, *, step_timeout_s: float = 300.0):
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"pool size must be a positive integer, got {size!r}")
        if not step_timeout_s > 0:
            raise ValueError(f"step_timeout_s must be > 0, got {step_timeout_s!r}")
        self.spec, self.size, self.step_timeout_s = spec, size, float(step_timeout_s)
        self.stats: dict[str, int] = {"errors": 0, "restarts": 0, "timeouts": 0}
        self._broken: dict[int, str] = {}  # slot -> the fault that broke it
        self._closed = False

    # -- the interface ------------------------------------------------------------------------
    def reset(self, requests: Sequence[tuple[int, int | None, Mapping[str, Any] | None]]) -> list[EnvResult]:
        """Reset ``(slot, seed, options)`` per request, concurrently; results in request order.
        A broken slot is recreated first."""
        calls = []
        for slot, seed, options in self._checked(requests, 3, "reset"):
            if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
                raise TypeError(f"reset seed for slot {slot} must be an int or None, got {seed!r}")
            if options is not None and not isinstance(options, Mapping):
                raise TypeError(f"reset options for slot {slot} must be a mapping or None, got {type(options).__name__}")
            calls.append((slot, "reset", (seed, dict(options) if options is not None else None)))
        for slot, _, _ in calls:
            if slot in self._broken:
                self._stop(slot)
                self._start(slot)
                del self._broken[slot]
                self.stats["restarts"] += 1
        return self._run(calls)

    def step(self, requests: Sequence[tuple[int, Any]]) -> list[EnvResult]:
        """Step ``(slot, action)`` per request, concurrently; results in request order. A broken
        slot answers with an error at once."""
        calls = [(slot, "step", (action,)) for slot, action in self._checked(requests, 2, "step")]
        out: list[EnvResult | None] = [None] * len(calls)
        live = []
        for i, call in enumerate(calls):
            if call[0] in self._broken:
                out[i] = EnvResult(error=f"slot {call[0]} is broken ({self._broken[call[0]]}): reset it first")
            else:
                live.append((i, call))
        for (i, _), res in zip(live, self._run([c for _, c in live])):
            out[i] = res
        return out

    def close(self) -> None:
        """Close every env and stop the workers; never hangs (a stuck worker is killed)."""
        if self._closed:
            return
        self._closed = True
        self._close_all()

    def __enter__(self) -> EnvPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.id!r}, size={self.size}, broken={sorted(self._broken)})"

    # -- shared mechanics ---------------------------------------------------------------------
    def _checked(self, requests, arity: int, what: str) -> list[tuple]:
        if self._closed:
            raise RuntimeError(f"{what}() on a closed {type(self).__name__}")
        out, seen = [], set()
        for n, req in enumerate(requests):
            if not isinstance(req, (tuple, list)) or len(req) != arity:
                raise ValueError(f"{what} request {n} must be a tuple of {arity}, got {req!r}")
            slot = req[0]
            if not isinstance(slot, int) or isinstance(slot, bool) or not 0 <= slot < self.size:
                raise ValueError(f"{what} request {n}: slot must be an int in [0, {self.size}), got {slot!r}")
            if slot in seen:
                raise ValueError(f"{what} request {n}: slot {slot} is requested twice in one call")
            seen.add(slot)
            out.append(tuple(req))
        return out

    def _run(self, calls: list[tuple[int, str, tuple]]) -> list[EnvResult]:
        results = self._call(calls)
        for (slot, _, _), res in zip(calls, results):
            if not res.ok:
                self._break(slot, res.error)
        return results

    def _break(self, slot: int, reason: str) -> None:
        self.stats["errors"] += 1
        self._broken[slot] = reason
        self._stop(slot)

    def _timed_out(self, op: str, seconds: float) -> str:
        self.stats["timeouts"] += 1
        return f"{op} timed out after {seconds:g} s"

    def _close_all(self) -> None:
        for slot in range(self.size):
            self._stop(slot)

    def _start(self, slot: int) -> None:
        raise NotImplementedError

    def _stop(self, slot: int) -> None:
        raise NotImplementedError

    def _call(self, calls: list[tuple[int, str, tuple]]) -> list[EnvResult]:
        raise NotImplementedError


class InlinePool(EnvPool):
    """The envs in this process, called one after another. ``step_timeout_s`` is not enforced
    (a call in this thread can't be interrupted)."""

    kind = "inline"

    def __init__(self, spec: EnvSpec, size: int, *, step_timeout_s: float = 300.0):
        super().__init__(spec, size, step_timeout_s=step_timeout_s)
        self._servers: list[_EnvServer | None] = [None] * size
        for slot in range(size):
            self._start(slot)

    def _start(self, slot: int) -> None:
        self._servers[slot] = _EnvServer(self.spec)

    def _stop(self, slot: int) -> None:
        server, self._servers[slot] = self._servers[slot], None
        if server is not None:
            server.close()

    def _call(self, calls):
        return [_result(getattr(self._servers[slot], op)(*args)) for slot, op, args in calls]


def _worker(conn, spec: EnvSpec) -> None:
    """A ``process`` slot: answer ``(op, args)`` messages until ``close`` or the pipe closes."""
    try:
        os.setpgid(0, 0)  # its own process group, so teardown also kills what the env started (Chromium, ...)
    except (AttributeError, OSError):
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it closes the pool
    server = _EnvServer(spec)
    try:
        conn.send(server.ready())
        while True:
            try:
                op, args = conn.recv()
            except (EOFError, OSError):
                break
            if op == "close":
                break
            answer = getattr(server, op)(*args)
            try:
                conn.send(answer)
            except Exception as exc:  # e.g. an observation that does not pickle
                conn.send(("err", f"sending the {op} result failed: {_describe(exc)}"))
    finally:
        server.close()


class ProcessPool(EnvPool):
    """One worker process per slot (``multiprocessing``, ``start_method`` ``spawn`` by default)."""

    kind = "process"

    def __init__(self, spec: EnvSpec, size: int, *, step_timeout_s: float = 300.0, start_method: str = "spawn",
                 start_timeout_s: float = 600.0):
        import multiprocessing as mp

        super().__init__(spec, size, step_timeout_s=step_timeout_s)
        self._ctx = mp.get_context(start_method)
        self.start_timeout_s = float(start_timeout_s)
        self._procs: list[Any] = [None] * size
        self._conns: list[Any] = [None] * size
        self._ready = [False] * size
        self._stuck: set[int] = set()  # slots whose worker timed out: killed without waiting for it
        for slot in range(size):
            self._start(slot)

    def _start(self, slot: int) -> None:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker, args=(child, self.spec), name=f"guienv-env-{slot}", daemon=True)
        proc.start()
        child.close()  # so the parent's recv sees EOF when the worker dies
        self._procs[slot], self._conns[slot], self._ready[slot] = proc, parent, False

    def _stop(self, slot: int) -> None:
        proc, conn = self._procs[slot], self._conns[slot]
        self._procs[slot] = self._conns[slot] = None
        if conn is not None:
            try:
                conn.send(("close", ()))
            except Exception:
                pass
        if proc is not None:
            _reap(proc, 0.0 if slot in self._stuck else _JOIN_S)
        self._stuck.discard(slot)
        if conn is not None:
            conn.close()

    def _close_all(self) -> None:
        # Ask every worker to close first, then wait for all of them together.
        procs = [p for p in self._procs if p is not None]
        for conn in self._conns:
            if conn is not None:
                try:
                    conn.send(("close", ()))
                except Exception:
                    pass
        deadline = time.monotonic() + _JOIN_S
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        for proc in procs:
            _reap(proc, 0.0)
        for conn in self._conns:
            if conn is not None:
                conn.close()
        self._procs = [None] * self.size
        self._conns = [None] * self.size

    def _receive(self, slot: int, deadline: float) -> tuple[str, Any] | None:
        """The worker's next answer; None past the deadline; ``("died", exit code)`` if it died."""
        from multiprocessing.connection import wait

        conn, proc = self._conns[slot], self._procs[slot]
        ready = wait([conn, proc.sentinel], max(0.0, deadline - time.monotonic()))
        if conn in ready or conn.poll(0):  # an answer sent just before dying still counts
            try:
                return conn.recv()
            except (EOFError, OSError):
                pass
        elif not ready:
            return None
        proc.join(_JOIN_S)
        return "died", proc.exitcode

    def _answer(self, slot: int, deadline: float, op: str, limit_s: float) -> tuple[str, Any]:
        answer = self._receive(slot, deadline)
        if answer is None:
            self._stuck.add(slot)
            return "err", self._timed_out(op, limit_s)
        if answer[0] == "died":
            return "err", f"worker died (exit code {answer[1]})"
        return answer

    def _call(self, calls):
        answers: dict[int, tuple[str, Any]] = {}
        # Workers still starting (spawn imports torch, gymnasium, the env) get the start timeout.
        deadline = time.monotonic() + self.start_timeout_s
        for slot, _, _ in calls:
            if not self._ready[slot]:
                got = self._answer(slot, deadline, "starting the worker", self.start_timeout_s)
                if got[0] == "ok":
                    self._ready[slot] = True
                else:
                    answers[slot] = got
        for slot, op, args in calls:
            if slot not in answers:
                try:
                    self._conns[slot].send((op, args))
                except Exception as exc:
                    proc = self._procs[slot]
                    proc.join(0.1)
                    answers[slot] = ("err", f"worker died (exit code {proc.exitcode})" if not proc.is_alive()
                                     else f"sending the {op} request failed: {_describe(exc)}")
        deadline = time.monotonic() + self.step_timeout_s
        for slot, op, _ in calls:
            if slot not in answers:
                answers[slot] = self._answer(slot, deadline, op, self.step_timeout_s)
        return [_result(answers[slot]) for slot, _, _ in calls]


def _reap(proc, join_s: float) -> None:
    """Join, then terminate, then kill ``proc`` and its process group."""
    proc.join(join_s)
    if proc.is_alive():
        proc.terminate()
        proc.join(1.0)
    pid = proc.pid
    if pid is not None and hasattr(os, "killpg"):
        try:
            if os.getpgid(pid) == pid:  # only a group the worker leads, never ours
                os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError, OSError):
            pass
    if proc.is_alive():
        proc.kill()
    proc.join(1.0)


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("the `ray` env pool needs ray: pip install 'guienv[ray]' (or pip install 'ray>=2.9')") from exc
    return ray


class RayPool(EnvPool):
    """One Ray actor per slot. ``ray_address=None`` starts (or reuses) a local cluster; ``"auto"``
    or an address joins one. The cluster is left running at ``close()`` (other pools may share it)."""

    kind = "ray"

    def __init__(self, spec: EnvSpec, size: int, *, step_timeout_s: float = 300.0, ray_address: str | None = None,
                 ray_num_cpus: float = 1.0, start_timeout_s: float = 600.0):
        ray = _import_ray()
        super().__init__(spec, size, step_timeout_s=step_timeout_s)
        if not ray_num_cpus >= 0:
            raise ValueError(f"ray_num_cpus must be >= 0, got {ray_num_cpus!r}")
        if not ray.is_initialized():
            if ray_address is None:
                ray.init(num_cpus=max(1, math.ceil(size * ray_num_cpus)), include_dashboard=False)
            else:
                ray.init(address=ray_address)
        self._ray = ray
        self._actor_cls = ray.remote(_EnvServer).options(num_cpus=ray_num_cpus, max_restarts=0, max_task_retries=0)
        self.start_timeout_s = float(start_timeout_s)
        self._actors: list[Any] = [None] * size
        self._ready = [False] * size
        for slot in range(size):
            self._start(slot)

    def _start(self, slot: int) -> None:
        self._actors[slot], self._ready[slot] = self._actor_cls.remote(self.spec), False

    def _stop(self, slot: int) -> None:
        actor, self._actors[slot] = self._actors[slot], None
        if actor is not None:
            try:
                self._ray.kill(actor, no_restart=True)
            except Exception:
                pass

    def _close_all(self) -> None:
        # Give the envs a short chance to close cleanly (browser sessions, emulators), then kill.
        refs = [a.close.remote() for a in self._actors if a is not None]
        if refs:
            try:
                self._ray.wait(refs, num_returns=len(refs), timeout=_JOIN_S)
            except Exception:
                pass
        super()._close_all()

    def _gather(self, refs: dict[int, Any], timeout_s: float, op: str) -> dict[int, tuple[str, Any]]:
        from ray.exceptions import GetTimeoutError, RayActorError

        deadline = time.monotonic() + timeout_s
        out = {}
        for slot, ref in refs.items():
            try:
                out[slot] = self._ray.get(ref, timeout=max(0.0, deadline - time.monotonic()))
            except GetTimeoutError:
                out[slot] = ("err", self._timed_out(op, timeout_s))
            except RayActorError as exc:
                out[slot] = ("err", f"actor died ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            except Exception as exc:  # a task error or a lost object: still one slot's fault
                out[slot] = ("err", _describe(exc))
        return out

    def _call(self, calls):
        starting = {slot: self._actors[slot].ready.remote() for slot, _, _ in calls if not self._ready[slot]}
        answers = {}
        for slot, got in self._gather(starting, self.start_timeout_s, "starting the actor").items():
            if got[0] == "ok":
                self._ready[slot] = True
            else:
                answers[slot] = got
        refs = {slot: getattr(self._actors[slot], op).remote(*args) for slot, op, args in calls if slot not in answers}
        answers.update(self._gather(refs, self.step_timeout_s, calls[0][1] if calls else "call"))
        return [_result(answers[slot]) for slot, _, _ in calls]


def make_pool(spec: EnvSpec, size: int, kind: str = "process", *, step_timeout_s: float = 300.0,
              start_method: str = "spawn", ray_address: str | None = None, ray_num_cpus: float = 1.0,
              start_timeout_s: float = 600.0) -> EnvPool:
    """A pool of ``size`` slots of ``spec``'s env: ``kind`` ``inline``, ``process`` or ``ray``.

    The id is checked here (an unknown id raises now, not in every worker). ``step_timeout_s``
    bounds each reset/step call (``process`` and ``ray``); ``start_timeout_s`` bounds a worker's or
    actor's start (importing and making the env), waited for at its first call."""
    if not isinstance(spec, EnvSpec):
        raise TypeError(f"make_pool needs an EnvSpec, got {type(spec).__name__}")
    if kind not in KINDS:
        raise ValueError(f"pool kind must be one of {KINDS}, got {kind!r}")
    spec.check()
    if kind == "inline":
        return InlinePool(spec, size, step_timeout_s=step_timeout_s)
    if kind == "process":
        return ProcessPool(spec, size, step_timeout_s=step_timeout_s, start_method=start_method,
                           start_timeout_s=start_timeout_s)
    return RayPool(spec, size, step_timeout_s=step_timeout_s, ray_address=ray_address, ray_num_cpus=ray_num_cpus,
                   start_timeout_s=start_timeout_s)
