"""Long work a person waits for - reading a big list, queueing it - run off the request, with its progress.

The page must stay responsive and never pin a thread per browser: a request
starts a job and waits a moment for it (most lists are read in well under a
second, and the answer comes at once, as before); a longer one answers with
a page that asks for the job's progress every second or so - rows read,
rows refused so far, time left - until it is done. At most
:data:`WORKERS` jobs run at once (reading is CPU work: more would only
slow the daemon's sending); more wait their turn, and say so.

A job that raises keeps its error (a person reads its message); one that
crashes on a bug is logged with its traceback. Finished jobs are forgotten
after :data:`KEEP_SECONDS`, as unconfirmed uploads are deleted.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import struct
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import shared_memory
from typing import Any, Callable

from appliance.errors import AlreadyQueued, SmsGenieError

log = logging.getLogger(__name__)

#: Jobs that run at once; the rest wait.
WORKERS = 2
#: Seconds a finished job's answer is kept for the page to fetch.
KEEP_SECONDS = 3600.0


@dataclass
class Progress:
    """What a job has done so far, as the page shows it. In a job run in another process, the rows and
    refused rows live in a few bytes of memory both processes see (:attr:`shared`)."""

    total: int | None = None
    """Rows the list has, when it could be counted first (CSV); None for XLSX."""
    started: float = field(default_factory=time.monotonic)
    shared: Any = field(default=None, repr=False)
    _rows: int = 0
    _refused: int = 0

    def update(self, rows: int, refused: int = 0) -> None:
        if self.shared is not None:
            struct.pack_into("qq", self.shared.buf, 0, rows, refused)
        else:
            self._rows, self._refused = rows, refused

    @property
    def rows(self) -> int:
        return struct.unpack_from("qq", self.shared.buf)[0] if self.shared is not None else self._rows

    @property
    def refused(self) -> int:
        return struct.unpack_from("qq", self.shared.buf)[1] if self.shared is not None else self._refused

    def seconds_left(self, now: float | None = None) -> float | None:
        """From the pace so far; None until there is a pace and a total to aim at."""
        elapsed = (time.monotonic() if now is None else now) - self.started
        rows = self.rows
        if not self.total or not rows or elapsed <= 0:
            return None
        return max(0.0, (self.total - rows) * elapsed / rows)


@dataclass
class Job:
    key: str
    progress: Progress
    state: str = "waiting"
    """waiting, running, done, failed."""
    result: Any = None
    error: str | None = None
    exception: BaseException | None = field(default=None, repr=False)
    info: dict = field(default_factory=dict)
    """What the page needs to show the answer (the list's name, the text, the form's choices)."""
    finished: float | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait(self, timeout: float) -> bool:
        """True once the job is done or failed (within ``timeout`` seconds)."""
        return self._done.wait(timeout)

    def as_dict(self) -> dict:
        p = self.progress
        return {"state": self.state, "rows": p.rows, "refused": p.refused, "total": p.total,
                "seconds_left": p.seconds_left(), "error": self.error}


class Jobs:
    """A small pool of workers for long jobs, and their progress by key.

    ``processes``: run each job in a worker process (the running box: reading a million rows is CPU
    work, and in the daemon's own process it would hold Python's lock against the modems' workers, which
    then sent at half their rate - benchmarks/busy_preview.py). Otherwise on threads (tests, where a
    job's work may be patched). A job's work is ``work(progress, *args)``, a module-level function when
    it runs in a process."""

    def __init__(self, workers: int = WORKERS, *, processes: bool = False,
                 clock: Callable[[], float] = time.monotonic):
        self._threads = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="job")
        self._workers = workers
        self._want_processes = processes
        self._processes: ProcessPoolExecutor | None = None  # made at the first job: a box may never need one
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def start(self, key: str, work: Callable[..., Any], *args, total: int | None = None, **info) -> Job | None:
        """Run ``work(progress, *args)`` as job ``key``; None, and nothing run, when there is one under that
        key already (a double click)."""
        with self._lock:
            self._forget_old()
            if key in self._jobs:
                return None
            job = self._jobs[key] = Job(key, Progress(total=total), info=info)
            if self._process_pool() is not None:
                job.progress.shared = shared_memory.SharedMemory(create=True, size=16)
        self._threads.submit(self._run, job, work, args)
        return job

    def _process_pool(self) -> ProcessPoolExecutor | None:
        """The worker processes, made the first time; None for threads, or where the system gives a process
        no shared memory (/dev/shm: a bare chroot), which is said once and then done on threads."""
        if self._want_processes and self._processes is None:
            try:
                self._processes = ProcessPoolExecutor(max_workers=self._workers, initializer=_behind_the_sender,
                                                      mp_context=multiprocessing.get_context("spawn"))
                probe = shared_memory.SharedMemory(create=True, size=16)
                probe.close()
                probe.unlink()
            except OSError as exc:
                log.warning("long jobs run on threads of this process (no worker processes here: %s); sending "
                            "slows while a big list is read", exc)
                self._want_processes, self._processes = False, None
        return self._processes

    def get(self, key: str) -> Job | None:
        with self._lock:
            return self._jobs.get(key)

    def forget_failed(self, key: str) -> None:
        """Drop job ``key`` if it failed, so the same work may be asked for again (after a full disk, say)."""
        with self._lock:
            job = self._jobs.get(key)
            if job is not None and job.state == "failed":
                del self._jobs[key]

    def shutdown(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        if self._processes is not None:
            self._processes.shutdown(wait=False, cancel_futures=True)

    def _run(self, job: Job, work: Callable[..., Any], args: tuple) -> None:
        job.state = "running"
        job.progress.started = time.monotonic()
        try:
            if self._processes is not None:
                outcome = self._processes.submit(_in_child, work, job.progress.shared.name, args).result()
            else:
                outcome = _outcome(work, job.progress, args)
            if outcome[0] == "ok":
                job.result, job.state = outcome[1], "done"
            else:
                job.exception = _rebuilt(outcome)
                job.error, job.state = str(job.exception), "failed"
        except BaseException as exc:  # noqa: BLE001 - a bug (or a worker process that died): logged whole
            log.exception("job %s failed", job.key)
            job.exception, job.state = exc, "failed"
            job.error = f"the box failed on this list ({exc.__class__.__name__}); the technician finds why in the log"
        finally:
            job.finished = self._clock()
            job._done.set()

    def _forget_old(self) -> None:
        now = self._clock()
        for key in [k for k, j in self._jobs.items() if j.finished is not None and now - j.finished > KEEP_SECONDS]:
            job = self._jobs.pop(key)
            if job.progress.shared is not None:
                job.progress.shared.close()
                job.progress.shared.unlink()


def _outcome(work: Callable[..., Any], progress: Progress, args: tuple) -> tuple:
    """("ok", the answer) or ("error", the class, its message, the list it names): what a person can act
    on (the list, the template, the key), in a form that crosses from a worker process."""
    try:
        return "ok", work(progress, *args)
    except SmsGenieError as exc:
        return "error", type(exc), str(exc), getattr(exc, "list_id", None)


def _rebuilt(outcome: tuple) -> SmsGenieError:
    _, cls, message, list_id = outcome
    try:
        return cls(message, list_id) if issubclass(cls, AlreadyQueued) else cls(message)
    except TypeError:  # an error made otherwise: its message is what the page shows
        return SmsGenieError(message)


def _behind_the_sender() -> None:
    """A worker process yields the CPU to the daemon's process when both want it: sending comes first."""
    os.nice(10)


def _in_child(work: Callable[..., Any], shared_name: str, args: tuple) -> tuple:
    """A job in a worker process: its progress written where the box's process reads it."""
    shared = shared_memory.SharedMemory(name=shared_name)
    try:
        return _outcome(work, Progress(shared=shared), args)
    finally:
        shared.close()
