"""Report worker processes: metric cards, DORA, health and digest previews computed outside
the process that acknowledges the chat platforms' requests, one process per core, shared by
every surface (Slack and Teams in the same ``kpibot run``).

Report building is CPU-bound Python; in the serving process it would compete with the
acknowledgements for the interpreter. Each worker keeps its own engine and sessions (nothing
is shared across processes); the serving process passes the moment to compute as of, so the
clock is still read only by the surface. What a worker computes is a function of the surface
(``fn(*args)``, importable by name, e.g. ``bot.slack.workers.slack_answer``) that asks the
worker's :func:`service` for the platform's :class:`~bot.chat.service.ChatService` and
renders its answer; the pool itself knows no platform.

Under load the acknowledgements come first:

- workers run at a lower CPU priority (``os.nice(WORKER_NICE)``), so the serving process gets
  the cores it needs to acknowledge within Slack's 3 seconds while reports are being built;
- the work waiting for a worker is bounded by time: a report is admitted while it would be
  ready within ``ANSWER_BUDGET`` seconds, the reports ahead of it and its own time (from the
  recent mean time of a report), and never with ``max_waiting`` reports already waiting
  (``WAITING_PER_WORKER`` per worker process); otherwise :meth:`ReportWorkers.submit` raises
  :class:`WorkersBusy` at once instead of queueing without limit;
- :meth:`ReportWorkers.submit` returns a future whose callbacks run on the workers' own
  delivery threads, so no serving or listener thread waits for a report.

A worker that dies (the OOM killer, ``kill -9``) breaks a ``ProcessPoolExecutor`` for good:
every later submission fails with ``BrokenProcessPool``. The pool is then replaced once (one
log line) and every report that failed with it is computed again on the new pool, once.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from bot.renderers.mrkdwn import GITHUB_COM, Links
from bot.runtime import tune_gc
from bot.settings import Config, Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.chat.service import ChatService
    from bot.chat.voice import Voice

log = logging.getLogger("kpibot.workers")

# added to the workers' niceness: the acknowledgements win the CPU (10 made the workers starve
# beside other busy processes on the same machine; 0 doubled the acks' p99 in a burst)
WORKER_NICE = 5
# seconds from a report's admission until it is ready, waiting included, by the estimate:
# Slack expects the answer within about 3 s of the command; the acknowledgement (up to 0.5 s
# in a burst) and the post take some, and in a burst of 200 the reports took about 40 % longer
# than the mean measured just before it (they share the cores with the acks): 2.5 s / 1.4
ANSWER_BUDGET = 1.8
WAITING_PER_WORKER = 16  # at most this many reports wait per worker process, however fast
FIRST_ESTIMATE = 0.25  # seconds per report until some were measured (a card: 0.1 to 0.2 s)
DELIVERY_THREADS = 8  # threads handing finished reports to their callbacks (replies are I/O)
TIMEOUT = 120.0  # seconds a synchronous caller waits for a report

_setup: tuple[str, Config, Links] | None = None
_services: dict[str, ChatService] = {}
_factory: sessionmaker[Session] | None = None
_now: datetime | None = None


def _clock() -> datetime:
    assert _now is not None
    return _now


def _init(database_url: str, config: Config, links: Links) -> None:
    global _setup
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_exit_with, args=(parent,), name="kpibot-parent-watch", daemon=True
        ).start()
    if hasattr(os, "nice"):
        with contextlib.suppress(OSError):  # not permitted here: the normal priority
            os.nice(WORKER_NICE)
    _setup = (database_url, config, links)
    tune_gc()


def sessions() -> sessionmaker[Session]:
    """In a worker: the sessions of the worker's one engine (made on first use)."""
    global _factory
    from bot.store.session import make_engine, session_factory

    assert _setup is not None, "worker not initialised"
    if _factory is None:
        _factory = session_factory(make_engine(_setup[0]))
    return _factory


def now() -> datetime:
    """In a worker: the moment the serving process passed with the work being computed."""
    return _clock()


def service(voice: type[Voice]) -> ChatService:
    """In a worker: the core answering in ``voice`` (one per platform, made on first use,
    all on the worker's one engine), as of the moment the serving process passed."""
    from bot.chat.service import ChatService

    assert _setup is not None, "worker not initialised"
    _database_url, config, links = _setup
    factory = sessions()
    if voice.platform not in _services:
        _services[voice.platform] = ChatService(
            factory, config, _clock, voice(), teams_stored=True, links=links
        )
        tune_gc(refreeze=True)  # freeze what answering imported and built
    return _services[voice.platform]


def _exit_with(parent: multiprocessing.process.BaseProcess) -> None:
    """End this worker when the serving process is gone (killed with ``kill -9``, say): a
    worker waits for work forever otherwise, holding its memory and database connections."""
    parent.join()
    os._exit(0)


def _run(fn: Callable[..., Any], args: tuple[Any, ...], now: datetime) -> tuple[int, float, Any]:
    global _now
    assert _setup is not None, "worker not initialised"
    _now = now
    t0 = time.perf_counter()
    result = fn(*args)
    return os.getpid(), time.perf_counter() - t0, result


T = TypeVar("T")


def default_count(settings: Settings | None = None) -> int:
    """The number of report worker processes: ``KPIBOT_REPORT_WORKERS`` when set, else one
    per core this process may run on (a container's CPU set, not the host's cores)."""
    if settings is not None and settings.report_workers:
        return settings.report_workers
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class WorkersBusy(Exception):
    """The reports waiting for the worker processes would keep a new one waiting too long."""


class ReportWorkers:
    """A pool of ``count`` spawned processes answering report commands.

    A report is admitted at once when a worker is free, and otherwise while
    ``(waiting / count + 1) * seconds_per_report`` (the time the reports ahead of it keep the
    workers busy and its own time, from the mean of recent reports) stays within
    ``answer_budget`` and fewer than ``max_waiting`` are waiting (default
    ``WAITING_PER_WORKER`` per process). So the last one admitted is answered within about
    3 s on a busy or an idle machine alike (idle, reports take 0.1 to 0.5 s and a burst of 20
    is all admitted), while a burst beyond that is told at once to try again.
    ``computed_in`` counts the reports computed by each worker process id, ``refused`` the
    reports refused as busy, ``rebuilds`` the pools replaced after a worker died.
    """

    def __init__(
        self,
        database_url: str,
        config: Config,
        count: int | None = None,
        links: Links = GITHUB_COM,
        *,
        max_waiting: int | None = None,
        answer_budget: float = ANSWER_BUDGET,
    ) -> None:
        self.count = count or default_count()
        self.max_waiting = WAITING_PER_WORKER * self.count if max_waiting is None else max_waiting
        self._initargs = (database_url, config, links)
        self._lock = threading.Lock()
        self._in_flight = 0
        self._closed = False
        self.rebuilds = 0
        self.refused = 0
        self._refusing = False
        self.answer_budget = answer_budget
        self.seconds_per_report = FIRST_ESTIMATE  # moving mean of the reports' compute times
        self.computed_in: Counter[int] = Counter()
        # the futures of ``map``'s computations: they occupy the workers like any report, but
        # a digest takes several cards' time, so they stay out of ``seconds_per_report``
        self._batch: set[Future[Any]] = set()
        self._delivery = ThreadPoolExecutor(
            max_workers=DELIVERY_THREADS, thread_name_prefix="kpibot-report"
        )
        self.pool = self._new_pool()

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.count,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init,
            initargs=self._initargs,
        )

    # ------------------------------------------------------------------ submitting

    def submit(self, fn: Callable[..., T], now: datetime, *args: Any) -> Future[T]:
        """Start computing ``fn(*args)`` in a worker as of ``now``; raises :class:`WorkersBusy`
        when the reports already waiting and its own would take past ``answer_budget`` (or
        ``max_waiting``
        are waiting). ``fn`` must be importable by name (a module-level function). The
        future's callbacks run on a delivery thread of this pool, never on the caller's."""
        return self._submit(_run, (fn, args, now), bounded=True)

    def run(self, fn: Callable[..., T], now: datetime, *args: Any) -> T:
        """``fn(*args)`` in a worker as of ``now``, waiting for it (counted in the waiting
        work, never refused)."""
        result: T = self._submit(_run, (fn, args, now), bounded=False).result(timeout=TIMEOUT)
        return result

    def map(
        self,
        fn: Callable[..., T],
        now: datetime,
        items: Sequence[tuple[Any, ...]],
        *,
        keep_going: Callable[[], bool] | None = None,
    ) -> list[T | BaseException]:
        """``fn(*args)`` for every ``args`` of ``items`` in the workers as of ``now``, side by
        side, waiting for all: each result in the order of ``items``, or the exception its
        computation raised (a computation not started because ``keep_going`` said no, or
        that took longer than ``TIMEOUT``, gives a :class:`TimeoutError`).

        At most one computation per worker process is in flight at a time, so a command
        arriving meanwhile waits for at most one of them before a worker takes it (the
        workers take work in order of submission). Never refused as busy. ``keep_going`` is
        asked after each result (a scheduler renews its lease there); False stops submitting.
        """
        results: list[T | BaseException] = [
            TimeoutError("not computed: the batch stopped first") for _ in items
        ]
        queue = iter(enumerate(items))
        pending: dict[Future[Any], int] = {}
        stopped = False

        def fill() -> None:
            while not stopped and len(pending) < self.count:
                nxt = next(queue, None)
                if nxt is None:
                    return
                i, args = nxt
                pending[self._submit(_run, (fn, args, now), bounded=False, batch=True)] = i

        fill()
        while pending:
            done, _ = wait(pending, timeout=TIMEOUT, return_when=FIRST_COMPLETED)
            if not done:
                for fut in pending:
                    fut.cancel()
                log.warning(
                    "%d computations in the report workers took over %.0f s; left",
                    len(pending),
                    TIMEOUT,
                )
                break
            for fut in done:
                i = pending.pop(fut)
                exc = fut.exception() if not fut.cancelled() else TimeoutError("cancelled")
                results[i] = exc if exc is not None else fut.result()
            if not stopped and keep_going is not None and not keep_going():
                stopped = True
            fill()
        return results

    @property
    def waiting(self) -> int:
        """Reports submitted and not finished, beyond one per worker process."""
        with self._lock:
            return max(0, self._in_flight - self.count)

    def _submit(
        self,
        fn: Callable[..., tuple[int, float, Any]],
        args: tuple[Any, ...],
        *,
        bounded: bool,
        batch: bool = False,
    ) -> Future[Any]:
        with self._lock:
            waiting = max(0, self._in_flight - self.count)
            expected_wait = waiting / self.count * self.seconds_per_report
            ready_in = expected_wait + self.seconds_per_report
            if (
                bounded
                and self._in_flight >= self.count  # no worker free: it would wait
                and (waiting >= self.max_waiting or ready_in > self.answer_budget)
            ):
                self.refused += 1
                if not self._refusing:  # one line per busy spell, not one per command
                    self._refusing = True
                    log.warning(
                        "%d reports are waiting for the report workers (%.1f s of work): "
                        "answering busy until fewer are",
                        waiting,
                        expected_wait,
                    )
                raise WorkersBusy(f"{waiting} reports are waiting ({expected_wait:.1f} s)")
            if self._refusing:
                self._refusing = False
                log.warning(
                    "the report workers take reports again (%d refused so far)", self.refused
                )
            self._in_flight += 1
        outer: Future[Any] = Future()
        if batch:
            with self._lock:
                self._batch.add(outer)
        outer.add_done_callback(self._release)
        self._attempt(outer, fn, args, retry=True)
        return outer

    def _release(self, done: Future[Any]) -> None:
        with self._lock:
            self._batch.discard(done)
            self._in_flight -= 1

    def _attempt(
        self,
        outer: Future[Any],
        fn: Callable[..., tuple[int, float, Any]],
        args: tuple[Any, ...],
        *,
        retry: bool,
    ) -> None:
        pool = self.pool
        try:
            inner = pool.submit(fn, *args)
        except BrokenProcessPool as exc:  # a worker died before this submission
            if retry and self._rebuild(pool):
                self._attempt(outer, fn, args, retry=False)
            else:
                outer.set_exception(exc)
            return
        except RuntimeError as exc:  # shut down: the app is closing
            outer.set_exception(exc)
            return

        def hand_over(done: Future[Any]) -> None:
            # runs on the pool's management thread: settle on a delivery thread instead, so
            # that replies (the callers' callbacks) never hold up the pool
            try:
                self._delivery.submit(self._settle, done, outer, pool, fn, args, retry)
            except RuntimeError:  # closing
                outer.cancel()

        inner.add_done_callback(hand_over)

    def _settle(
        self,
        inner: Future[tuple[int, float, Any]],
        outer: Future[Any],
        pool: ProcessPoolExecutor,
        fn: Callable[..., tuple[int, float, Any]],
        args: tuple[Any, ...],
        retry: bool,
    ) -> None:
        if inner.cancelled():
            outer.cancel()
            return
        exc = inner.exception()
        if isinstance(exc, BrokenProcessPool) and retry and self._rebuild(pool):
            self._attempt(outer, fn, args, retry=False)  # once more, on the new pool
        elif exc is not None:
            outer.set_exception(exc)
        else:
            pid, seconds, result = inner.result()
            with self._lock:
                self.computed_in[pid] += 1
                if outer not in self._batch:  # a digest or a check is no command's estimate
                    self.seconds_per_report += 0.2 * (seconds - self.seconds_per_report)
            outer.set_result(result)

    def _rebuild(self, broken: ProcessPoolExecutor) -> bool:
        """Replace ``broken`` with a new pool unless that happened already; False when closed."""
        with self._lock:
            if self._closed:
                return False
            if self.pool is not broken:
                return True  # another report already replaced it
            self.pool = self._new_pool()
            self.rebuilds += 1
        log.warning(
            "a report worker process died; started a new pool of %d worker process(es) and "
            "computing the reports that were waiting again",
            self.count,
        )
        broken.shutdown(wait=False, cancel_futures=True)
        return True

    # ------------------------------------------------------------------ lifecycle

    def pids(self) -> list[int]:
        """The process ids of the current pool's workers (started so far)."""
        return list(getattr(self.pool, "_processes", None) or {})

    def warm_up(self) -> None:
        """Start every process now (imports, connections) rather than on the first command."""
        list(self.pool.map(_ping, range(self.count)))

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.pool.shutdown(wait=False, cancel_futures=True)
        self._delivery.shutdown(wait=False, cancel_futures=True)


def _ping(_i: int) -> int:
    return os.getpid()
