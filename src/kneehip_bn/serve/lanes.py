"""Where the server computes: quick answers on the event loop, slow ones in a worker process.

The quick answers (``/api/diagnose``, ``/api/case``, ``/api/query``: a fraction of a
millisecond of work each) are computed on the event loop. The slow ones (explanation, next
best test, conflict, what-if, the network picture: tens of milliseconds of mostly-Python
work each) go to :class:`SlowLane`, one worker *process* with its own copy of the model and
its own compiled engines. A thread would not do: measured with ``benchmarks/bench_serve.py``
(``benchmarks/results/serve.md``), a worker thread holding the GIL for the slow answers made
a room's quick answers wait behind them, while a separate process lets the two run on the
machine's two cores at once. The worker also runs at a lower CPU priority
(:data:`WORKER_NICE`): with 50 students clicking the slow work can exceed what two cores do,
and then it is the explanations that wait, not the ranked diagnoses.

The worker gets the model once, at start (pickled); requests carry only their JSON body, and
answers come back as JSON-ready data or SVG bytes. Errors come back as ``(status, message)``
(the library's one-line message), crashes as a bare class name (logged, never sent as a
trace).
"""

from __future__ import annotations

import asyncio
import copy
import multiprocessing
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from kneehip_bn._util.jsonclean import json_clean
from kneehip_bn.errors import ImpossibleEvidenceError, KneeHipError
from kneehip_bn.serve import api
from kneehip_bn.serve.svg import network_svg

__all__ = ["RemoteError", "SlowLane"]

_MODELS: Any = None  # the worker process's OverrideCache

#: the worker runs at this lower CPU priority (``os.nice``): when the machine is busy, the
#: quick answers of the event loop are scheduled before the slow ones
WORKER_NICE = 10


class RemoteError(Exception):
    """A request the worker answered with an error: ``status`` and ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _init(payload: bytes) -> None:
    global _MODELS
    import os

    if hasattr(os, "nice"):
        os.nice(WORKER_NICE)  # the event loop (quick answers) goes first when CPUs are short

    _MODELS = api.OverrideCache(pickle.loads(payload))


def _run(name: str, body: Any) -> tuple:
    try:
        if name == "graph":
            return ("ok", picture(_MODELS, body))
        return ("ok", json_clean(api.HANDLERS[name](_MODELS, body)))
    except KneeHipError as exc:
        return ("error", 422 if isinstance(exc, ImpossibleEvidenceError) else 400, str(exc))
    except Exception as exc:  # reported as a 500 without details
        return ("crash", f"{type(exc).__name__}: {exc}")


def picture(models: Any, body: Any) -> bytes:
    """The network SVG of a body's case (memoised per case)."""
    body = api.check_body(body, "graph")
    spec = api.edited_spec(models, body)
    ex = api.explanation(models, body, "graph")
    return models.memo(("svg", api.case_key(body)),
                       lambda: network_svg(spec, explanation=ex).encode("utf-8"))


class SlowLane:
    """One worker process (``processes``) answering the slow endpoints for a model.

    Started on first use (or by :meth:`start`); :meth:`close` stops it.
    """

    def __init__(self, spec: Any, processes: int = 1) -> None:
        self._payload = pickle.dumps(copy.deepcopy(spec))  # deepcopy drops compiled engines
        self.processes = processes
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _get(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                ctx = multiprocessing.get_context("spawn")  # no fork of a threaded server
                self._pool = ProcessPoolExecutor(self.processes, mp_context=ctx,
                                                 initializer=_init, initargs=(self._payload,))
            return self._pool

    def start(self) -> None:
        """Start the worker and compile its model now (not on the first request)."""
        self._get().submit(_run, "diagnose", {}).result()

    async def call(self, name: str, body: Any) -> Any:
        """The answer of endpoint ``name`` for ``body`` (raises :class:`RemoteError`)."""
        try:
            result = await asyncio.wrap_future(self._get().submit(_run, name, body))
        except BrokenProcessPool:
            with self._lock:
                self._pool = None  # the next request starts a new worker
            raise RuntimeError("the worker process stopped") from None
        if result[0] == "ok":
            return result[1]
        if result[0] == "error":
            raise RemoteError(result[1], result[2])
        raise RuntimeError(result[1])

    def close(self) -> None:
        """Stop the worker process."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
