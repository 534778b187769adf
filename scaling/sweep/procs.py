"""Every process a run starts, recorded while it runs and ended together.

A program can leave its process group (``setsid``, ``start_new_session=True``) or double-fork
a daemon; killing the group then misses it and it outlives the sweep. A sweep worker instead

- becomes a *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``): an orphaned
  descendant is re-parented to the worker, not to init, so it stays in the worker's tree;
- where there is no subreaper (not Linux), records its descendants (``psutil``) every
  :data:`SCAN_S` seconds while it runs, so a process that leaves the tree is still known;
- ends them all (SIGTERM, then SIGKILL after a grace period) after every attempt, on timeout,
  when told to stop and when the sweep goes away.

A worker runs one run at a time, so its descendants are exactly the current run's.
``psutil.Process`` handles remember each process's start time: a recycled pid is never
signalled.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
from pathlib import Path

import psutil

SCAN_S = 0.5
_PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    """Make orphaned descendants children of this process (Linux); whether it worked."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


class ProcessTree:
    """The descendants of process ``pid``, remembered once seen (see the module docstring)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self._seen: dict[int, psutil.Process] = {}
        self._lock = threading.RLock()  # re-entered by a SIGTERM handler

    def scan(self) -> None:
        """Record the current descendants of ``pid`` and of every process recorded so far."""
        children: dict[int, list[psutil.Process]] = {}
        for proc in psutil.process_iter(["ppid"]):
            children.setdefault(proc.info["ppid"], []).append(proc)
        with self._lock:
            stack = [self.pid, *(pid for pid, p in self._seen.items() if _running(p))]
            while stack:
                for proc in children.pop(stack.pop(), []):
                    if proc.pid not in self._seen or not _running(self._seen[proc.pid]):
                        self._seen[proc.pid] = proc
                    stack.append(proc.pid)

    def watch(self, interval: float = SCAN_S) -> None:
        """Scan every ``interval`` seconds in a daemon thread."""
        def loop() -> None:
            while True:
                self.scan()
                threading.Event().wait(interval)

        threading.Thread(target=loop, name="scaling-process-tree", daemon=True).start()

    def end(self, grace_s: float = 3.0) -> None:
        """SIGTERM every recorded descendant still running, SIGKILL those left after
        ``grace_s``; reap the ones that are this process's children."""
        if not self._seen and _children(self.pid) == []:
            return  # nothing to end (the common case, without a scan of every process)
        self.scan()
        with self._lock:
            procs, self._seen = list(self._seen.values()), {}
        procs = [p for p in procs if _ours_to_end(p)]
        for proc in procs:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _, alive = psutil.wait_procs(procs, timeout=grace_s)
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(alive, timeout=grace_s)


def _children(pid: int) -> list[int] | None:
    """Direct children of ``pid`` from ``/proc`` (Linux), None where that cannot be read.
    With a subreaper, no children means no descendants at all."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        return [int(c) for t in tasks
                for c in Path(f"/proc/{pid}/task/{t}/children").read_text().split()]
    except (OSError, ValueError):
        return None


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running()
    except psutil.Error:
        return False


def _ours_to_end(proc: psutil.Process) -> bool:
    """Running (same process as recorded), and not a zombie someone else must reap."""
    try:
        if not proc.is_running():
            return False
        return proc.status() != psutil.STATUS_ZOMBIE or proc.ppid() == os.getpid()
    except psutil.Error:
        return False
