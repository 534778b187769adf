"""The ``python`` (and ``toyvlm``) evaluator: ``module:function(config) -> metrics``.

The timeout is enforced in-process: a timer raises an exception inside the evaluating thread
(``PyThreadState_SetAsyncExc``), which works in the local pool's workers and in Dask's worker
threads alike. It interrupts Python code (training loops, polling), not a single C call that
never returns; the executors also kill a worker process that overstays (see executors.py).
"""

from __future__ import annotations

import ctypes
import functools
import importlib
import threading
from collections.abc import Callable
from typing import Any

from scaling.sweep.evaluators.base import EvaluatorFailure, EvaluatorTimeout, install_hint


class _Deadline(BaseException):
    """Injected at the deadline; a BaseException so ``except Exception`` cannot swallow it."""


@functools.lru_cache(maxsize=32)
def load_function(target: str) -> Callable[[dict[str, Any]], Any]:
    """Import ``module:function``."""
    module_name, _, name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EvaluatorFailure(f"cannot import evaluator {target!r}: {exc}"
                               f"{install_hint(exc.name)}") from None
    fn = getattr(module, name, None)
    if not callable(fn):
        raise EvaluatorFailure(f"evaluator {target!r}: module {module_name!r} has no function "
                               f"{name!r}")
    return fn


def call_function(target: str, config: dict[str, Any], *, timeout_s: float | None) -> Any:
    """``function(config)``, raising :class:`EvaluatorTimeout` past ``timeout_s`` seconds."""
    fn = load_function(target)
    if timeout_s is None:
        return fn(config)
    thread_id = threading.get_ident()
    lock = threading.Lock()
    state = {"done": False, "fired": False}

    def fire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                                           ctypes.py_object(_Deadline))

    timer = threading.Timer(timeout_s, fire)
    timer.daemon = True
    try:
        try:
            timer.start()
            result = fn(config)
        finally:
            with lock:
                state["done"] = True
            timer.cancel()
            if state["fired"]:  # clear an exception injected but not yet delivered
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
    except _Deadline:
        raise EvaluatorTimeout(f"timed out after {timeout_s:g} s") from None
    return result
