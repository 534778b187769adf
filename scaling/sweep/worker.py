"""A local sweep worker process, started by :class:`scaling.sweep.executors.LocalPool`.

It starts as ``python -c BOOT FD PARENT`` (:func:`command_line`), not ``python -m``: ``-m``
(and ``-c``) put the working directory first on ``sys.path``, so a ``multiprocessing.py`` or
``scaling.py`` there would be imported by every worker. BOOT drops that entry before any
import, puts the folder of the sweep's own ``scaling`` package first, and imports this module.
The worker then talks to the sweep over the socket ``FD`` (a
``multiprocessing.connection.Connection``): first the sweep's ``sys.path`` (so it imports
exactly what the sweep process can import, nothing more); it answers ``"ready"`` once booted,
then gets one job at a time, each answered with its record; ``None`` stops it. It is a fresh
interpreter, so nothing of the caller's ``__main__`` is re-imported and the environment is the
caller's at start-up.

Every process a run starts is ended after each attempt (:mod:`scaling.sweep.procs`: the worker
is a child subreaper, detached grandchildren included), and when the worker is told to stop
(SIGTERM) or the sweep goes away (even SIGKILLed mid-run). It ignores Ctrl-C (the sweep
handles it).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from scaling.sweep.procs import ProcessTree, become_subreaper

BOOT = ("import sys\n"
        "if not getattr(sys.flags, 'safe_path', False): del sys.path[0]  # the cwd\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from scaling.sweep.worker import main\n"
        "main(int(sys.argv[2]), int(sys.argv[3]))\n")


def command_line(fd: int) -> list[str]:
    """The argv that starts a worker talking over ``fd`` to this process."""
    import scaling

    root = str(Path(scaling.__file__).resolve().parent.parent)
    return [sys.executable, "-c", BOOT, root, str(fd), str(os.getpid())]


def _end_and_exit(tree: ProcessTree, code: int) -> None:
    tree.end(grace_s=1.0)
    os._exit(code)


def _watch_parent(parent: int, tree: ProcessTree) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:  # the sweep died: stop now, not after this run
            _end_and_exit(tree, 1)


def main(fd: int, parent: int) -> None:
    conn = Connection(fd)
    tree = ProcessTree(os.getpid())
    if not become_subreaper():
        tree.watch()
    signal.signal(signal.SIGTERM, lambda signum, frame: _end_and_exit(tree, 128 + signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent, tree), daemon=True).start()
    try:
        sys.path[:] = conn.recv()
        from scaling.sweep.job import execute_job

        conn.send("ready")
        while True:
            job: Any = conn.recv()
            if job is None:
                return
            conn.send(execute_job(job, after_attempt=tree.end))
    except (EOFError, OSError):  # the sweep went away
        return
    finally:
        tree.end(grace_s=1.0)
