"""Executors run jobs (:func:`scaling.sweep.job.execute_job`) and yield records as they finish.

- :class:`LocalPool` (default): ``workers`` processes (:mod:`scaling.sweep.worker`, started
  so that the working directory is not on their import path; one thread each:
  ``OMP_NUM_THREADS=1`` etc. and ``torch.set_num_threads(1)``), one job at a time each over a
  socket, so the pool knows which run a dead worker was running. A worker that dies
  (segfault, ``os._exit``, out of memory) or overstays its backstop deadline (a run stuck in a
  C call that the in-thread timeout cannot interrupt) is killed with every process its run
  started and replaced; its run is retried while it has retries left, else recorded as failed
  with the reason.
- :class:`DaskPool`: Dask distributed. With ``address`` it connects to a running scheduler
  (e.g. started by ``dask-jobqueue`` on SLURM); otherwise it starts a ``LocalCluster``
  (processes, one thread per worker). Each Dask task runs its run in a one-worker
  :class:`LocalPool` on the Dask worker's machine (:func:`run_in_worker_process`; its worker
  processes are reused by the Dask worker's later tasks), so a run
  gets the same backstop, process-tree cleanup and crash attribution as locally (a crash is
  ``worker process exited with code 3``, not a lost Dask worker). The LocalCluster it starts
  uses ``worker-saturation: 1.0`` (workers hold few queued runs); a cluster reached by
  ``address`` keeps its own configuration (threads are not pinned). If a Dask worker itself
  is lost, the scheduler reschedules its tasks and gives up after
  ``distributed.scheduler.allowed-failures`` deaths with ``KilledWorker``, recorded as the
  run's failure.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection, wait

from scaling.errors import ScalingError
from scaling.sweep.job import Job, failed_record
from scaling.sweep.procs import ProcessTree
from scaling.sweep.store import RunRecord
from scaling.sweep.worker import command_line


@dataclasses.dataclass
class _Worker:
    proc: subprocess.Popen
    conn: Connection
    job: Job | None = None
    deadline: float = float("inf")
    ready: bool = False  # booted (its start-up does not count against a run's backstop)


class LocalPool:
    """A process pool with exact crash attribution (see the module docstring)."""

    def __init__(self, workers: int, *, backstop_s: float | None = None,
                 keep: list[_Worker] | None = None) -> None:
        if sys.platform == "win32":
            raise ScalingError("the local sweep pool needs a POSIX system; use --executor dask")
        self.workers = workers
        self.backstop_s = backstop_s
        self._keep = keep  # idle workers to reuse, and where this pool leaves its idle ones
        self._live: list[_Worker] = []

    def _start(self) -> _Worker:
        while self._keep:
            try:
                worker = self._keep.pop()
            except IndexError:  # another thread took the last one
                break
            if worker.proc.poll() is None:
                self._live.append(worker)
                return worker
        ours, theirs = socket.socketpair()
        with theirs:
            # stdout goes to stderr: an evaluator's prints must not reach `--json` output
            proc = subprocess.Popen(command_line(theirs.fileno()), pass_fds=(theirs.fileno(),),
                                    stdin=subprocess.DEVNULL, stdout=2)
        worker = _Worker(proc, Connection(ours.detach()))
        worker.conn.send(list(sys.path))
        self._live.append(worker)
        return worker

    def run(self, jobs: Sequence[Job]) -> Iterator[RunRecord]:
        pending = collections.deque(jobs)
        try:
            for _ in range(min(self.workers, len(pending))):
                self._start()
            while pending or any(w.job for w in self._live):
                for w in self._live:
                    if w.ready and w.job is None and pending:
                        w.job = pending.popleft()
                        w.deadline = time.monotonic() + (self.backstop_s or float("inf"))
                        w.conn.send(w.job)
                active = [w for w in self._live if w.job is not None or not w.ready]
                deadline = min((w.deadline for w in active), default=float("inf"))
                timeout = min(max(0.0, deadline - time.monotonic()), 3600.0)
                ready = wait([w.conn for w in active], timeout=timeout)
                for w in active:
                    if w.conn in ready:
                        try:
                            message = w.conn.recv()
                        except (EOFError, OSError):  # it died
                            if not w.ready:
                                self._stop(w, force=True)
                                raise ScalingError(
                                    "a sweep worker process failed to start (exit code "
                                    f"{w.proc.returncode}); see the messages above") from None
                            yield from self._lost(w, pending, None)
                        else:
                            if not w.ready:
                                w.ready = True
                                continue
                            w.job = None
                            yield message
                    elif time.monotonic() >= w.deadline:
                        yield from self._lost(w, pending, f"ran past the backstop deadline of "
                                                          f"{self.backstop_s:g} s")
        finally:
            self.close()

    def _lost(self, w: _Worker, pending: collections.deque, reason: str | None
              ) -> Iterator[RunRecord]:
        """A worker died or hung: replace it, retry or fail its run."""
        job = w.job
        assert job is not None
        self._stop(w, force=True)
        if reason is None:
            from scaling.sweep.evaluators.command import describe_exit

            reason = describe_exit(w.proc.returncode)
        if pending or job.retries > 0:
            self._start()
        if job.retries > 0:
            pending.appendleft(dataclasses.replace(job, prior_attempts=job.prior_attempts + 1,
                                                   retries=job.retries - 1))
            return
        yield failed_record(job, f"worker process {reason}", attempts=job.prior_attempts + 1)

    def _stop(self, w: _Worker, *, force: bool) -> None:
        if w in self._live:
            self._live.remove(w)
        tree = ProcessTree(w.proc.pid)
        if force:
            tree.scan()  # the worker ends its run's processes, unless it is stuck too
            # SIGTERM: the worker kills its command's process group and exits; a python
            # evaluator stuck past its in-thread deadline may swallow it, hence the SIGKILL
            w.proc.terminate()
        else:
            try:
                w.conn.send(None)
            except OSError:
                pass  # already gone
        try:
            w.proc.wait(2.0 if force else 5.0)
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait()
        if force:
            tree.end(grace_s=1.0)
        w.conn.close()

    def close(self) -> None:
        """Stop every worker (busy ones are terminated); with ``keep``, idle ones are kept."""
        for w in list(self._live):
            if self._keep is not None and w.ready and w.job is None and w.proc.poll() is None:
                self._live.remove(w)
                self._keep.append(w)
            else:
                self._stop(w, force=w.job is not None)


class DaskPool:
    """Run jobs on Dask distributed (see the module docstring)."""

    def __init__(self, *, address: str | None, workers: int,
                 backstop_s: float | None = None) -> None:
        self.address = address
        self.workers = workers
        self.backstop_s = backstop_s

    def run(self, jobs: Sequence[Job]) -> Iterator[RunRecord]:
        import dask
        from distributed import Client, LocalCluster, as_completed

        cluster = None
        if self.address:
            try:
                client = Client(self.address, timeout="20s")
            except OSError as exc:
                raise ScalingError(f"cannot reach the Dask scheduler at {self.address!r} "
                                   f"({exc}); check --address") from None
        else:
            with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
                cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1,
                                       processes=True, dashboard_address=None,
                                       silence_logs=logging.ERROR)
                client = Client(cluster)
        try:
            token = uuid.uuid4().hex[:8]
            futures = {
                client.submit(run_in_worker_process, job, self.backstop_s, pure=False,
                              key=f"scaling-sweep-{job.run.run_id}-{token}",
                              retries=job.retries): job
                for job in jobs
            }
            for future in as_completed(futures):
                job = futures.pop(future)
                if future.status == "finished":
                    rec = future.result()
                else:
                    exc = future.exception()
                    rec = failed_record(job, f"dask: {type(exc).__name__}: {exc}",
                                        attempts=job.prior_attempts + job.retries + 1)
                future.release()
                yield rec
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


#: Idle worker processes of this process (a Dask worker), reused by its next tasks.
_IDLE: list[_Worker] = []


def run_in_worker_process(job: Job, backstop_s: float | None) -> RunRecord:
    """Run one job in a one-worker :class:`LocalPool` here (what a Dask task does); the worker
    process is kept for the next task (it exits when this process does)."""
    (record,) = LocalPool(1, backstop_s=backstop_s, keep=_IDLE).run([job])
    return record
