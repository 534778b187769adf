"""A local sweep worker process: ``python -m scaling.sweep.worker FD``.

It talks to the sweep over the socket ``FD`` (a ``multiprocessing.connection.Connection``):
first ``sys.path`` (so it imports what the sweep can import), then one job at a time, each
answered with its record; ``None`` stops it. It is a fresh interpreter, so nothing of the
caller's ``__main__`` is re-imported and the environment is the caller's at start-up. It
pins itself to one thread, ignores Ctrl-C (the sweep handles it), kills its command's
process group on SIGTERM, and exits when the sweep goes away (even SIGKILLed mid-run).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any


def _kill_command_and_exit(code: int) -> None:
    from scaling.sweep.evaluators import command

    if command.current_group is not None:
        try:
            os.killpg(command.current_group, signal.SIGKILL)
        except OSError:
            pass  # the program has already gone
    os._exit(code)


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:  # the sweep died: stop now, not after this run
            _kill_command_and_exit(1)


def main(fd: int, parent: int) -> None:
    conn = Connection(fd)
    signal.signal(signal.SIGTERM, lambda signum, frame: _kill_command_and_exit(128 + signum))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    try:
        sys.path[:] = conn.recv()
        from scaling.sweep.job import execute_job, pin_threads

        pin_threads()
        while True:
            job: Any = conn.recv()
            if job is None:
                return
            conn.send(execute_job(job))
    except (EOFError, OSError):  # the sweep went away
        return


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
