"""The locker: the thread that owns the process's lock connection and runs the pool.

One dedicated autocommit connection holds every advisory lock the process
takes. The locker registers the process in ``que_lockers``, listens on
``que_listener_<backend pid>``, polls its queues, takes announced jobs, feeds
the buffer, and releases the locks of finished jobs in one statement per
batch. It wakes every wait period, and at once when a notification arrives or
the buffer runs low.

If the connection is lost, the locks went with it: buffered jobs are dropped
(any process may take them now), and the locker reconnects with back-off,
locks the jobs still running here again, and carries on. Their workers' own
locks keep them from running elsewhere meanwhile (see ``que.worker._locks``).
Only a lost connection is handled so: any other error is a bug, logged as
``locker_crashed``, and it stops the pool with :attr:`Locker.failure` set.

Times compared with job times come from ``config.now()`` (the job clock, which
tests may freeze); the locker's own waits use the real monotonic clock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import psycopg

from que._core import db, migrations, sql
from que._core.config import config
from que._core.connection import Connection
from que._core.log import log_event
from que._core.redact import redact_passwords
from que._core.schema import error_backtrace, error_message
from que.errors import ConfigurationError
from que.worker import _listener as listener
from que.worker import _locks as locks
from que.worker import _poller as poller
from que.worker._buffer import BufferedJob, JobBuffer
from que.worker._clock import monotonic, next_backoff
from que.worker.settings import PoolSettings

APPLICATION_NAME = "que-locker"


def _check_stable_session(connection: Connection, conninfo: str) -> None:
    """Refuse a lock connection that is not a session of its own.

    The locks the locker takes live as long as its session. Behind a pooler in
    transaction mode (PgBouncer's usual set-up) each transaction may run on
    another server connection, and one server connection serves other clients:
    locks would be stranded there and jobs run twice. Through such a pooler,
    two transactions land on different backends, or a second connection is
    served by the same one (an idle pool hands back the last server connection).
    """
    first = db.run(connection, sql.BACKEND_PID)[0]["pid"]
    with psycopg.connect(conninfo, autocommit=True) as other:
        neighbour = db.run(other, sql.BACKEND_PID)[0]["pid"]
    second = db.run(connection, sql.BACKEND_PID)[0]["pid"]
    if first != second or neighbour == first:
        raise ConfigurationError(
            "the lock connection is not a session of its own (its transactions ran on "
            f"backends {first} and {second}, another connection's on {neighbour}): a "
            "pooler such as PgBouncer in transaction mode is in between, and advisory "
            "locks need a real session; give the locker a direct connection to "
            "PostgreSQL with --connection-url (PoolSettings.connection_url)"
        )


class Locker:
    """Holds the locks and drives polling, notifications, the buffer and unlocking."""

    def __init__(
        self,
        *,
        conninfo: str,
        settings: PoolSettings,
        queues: Mapping[str, float],
        buffer: JobBuffer,
        workers_done: Callable[[], bool],
    ) -> None:
        self._conninfo = conninfo
        self._settings = settings
        self._queues = dict(queues)
        self._schedule = poller.PollSchedule(queues)
        self._buffer = buffer
        self._workers_done = workers_done
        self._connection: Connection | None = None
        self._held: set[int] = set()
        self._finished: queue.SimpleQueue[tuple[int, bool]] = queue.SimpleQueue()
        self._settled_at = 0.0  # monotonic seconds
        self._stopping = threading.Event()
        self._wake_receiver, self._wake_sender = socket.socketpair()
        self._wake_receiver.setblocking(False)
        self._wake_sender.setblocking(False)
        self._thread = threading.Thread(target=self._run, name="que-locker", daemon=True)
        self.backend_pid: int | None = None
        """The lock connection's backend pid (the ``que_lockers`` row's pid)."""
        self.polls = 0
        self.reconnects = 0
        self.failure: BaseException | None = None
        """What stopped the pool, if a bug did rather than a request."""

    # -- used from other threads -------------------------------------------------------

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    def start(self) -> None:
        """Connect and register (errors propagate to the caller), then run in a thread."""
        try:
            self._connect()
        except BaseException:
            self._wake_receiver.close()
            self._wake_sender.close()
            raise
        self._thread.start()

    def job_finished(self, job_id: int, settled: bool) -> None:
        """A worker is done with ``job_id`` (committed or rolled back): release its
        lock, with others, the next time the locker wakes. ``settled``: the job
        will not be ready again (destroyed, finished or expired)."""
        self._finished.put((job_id, settled))

    def wake(self) -> None:
        """Make the locker look at its state now rather than at the end of its wait."""
        # OSError: the socket is full (the locker is awake anyway) or closed (it stopped).
        with contextlib.suppress(OSError):
            self._wake_sender.send(b"\0")

    def request_stop(self) -> None:
        """Begin shutting down; safe to call from a signal handler."""
        self._stopping.set()
        self.wake()

    def fail(self, error: BaseException) -> None:
        """Stop the pool because of a bug (logged by the caller)."""
        if self.failure is None:
            self.failure = error
        self.request_stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the locker (and so every worker) to be done; ``False`` on timeout."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the connection --------------------------------------------------------------

    def _connect(self) -> None:
        try:
            conninfo = db.with_connection_defaults(
                self._conninfo, application_name=APPLICATION_NAME
            )
        except psycopg.ProgrammingError as error:  # malformed: libpq's text quotes it
            raise ConfigurationError(
                "the lock connection's connection string cannot be read: "
                f"{redact_passwords(str(error), [self._conninfo])}"
            ) from None
        connection = psycopg.connect(conninfo, autocommit=True)
        try:
            _check_stable_session(connection, conninfo)
            migrations.require_latest(connection)
            db.run(connection, sql.LOCKER_SESSION)
            db.run(connection, sql.CLEAN_LOCKERS)
            self._relock(connection)
            if self._settings.listen:
                listener.listen(connection)
            db.run(
                connection,
                sql.REGISTER_LOCKER,
                {
                    "worker_count": self._settings.worker_count,
                    "worker_priorities": list(self._settings.worker_priorities),
                    "process_pid": os.getpid(),
                    "hostname": socket.gethostname(),
                    "queues": list(self._queues),
                    "listening": self._settings.listen,
                },
            )
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        self.backend_pid = connection.info.backend_pid
        self._schedule.reset()

    def _relock(self, connection: Connection) -> None:
        """After a reconnect: lock the jobs still running here again."""
        # The locks of the jobs finished meanwhile died with the old connection.
        self._held.difference_update(job_id for job_id, _ in self._drain_finished())
        if not self._held:
            return
        relocked = set(locks.try_lock(connection, self._held))
        lost = sorted(self._held - relocked)
        if lost:
            log_event(
                logging.WARNING,
                "job_lock_lost",
                job_ids=lost,
                detail="another session took these jobs' locks while the lock "
                "connection was down; their workers' own locks keep other que "
                "processes from running them, and they commit only while "
                "those are held",
            )
        self._held = relocked

    def _lost(self, error: BaseException) -> None:
        """The connection failed: its locks are gone, so forget the buffered jobs."""
        dropped = self._buffer.clear()
        self._held.difference_update(job.id for job in dropped)
        log_event(
            logging.WARNING,
            "locker_connection_lost",
            error=error_message(error),
            backend_pid=self.backend_pid,
            dropped_job_ids=[job.id for job in dropped],
            running_job_ids=sorted(self._held),
        )
        self._close()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):  # already broken
                connection.close()

    # -- the loop ----------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.0
        try:
            while not self._stopping.is_set():
                if self._connection is None:
                    if backoff and self._stopping.wait(backoff):
                        break
                    try:
                        self._connect()
                    except Exception as error:
                        if not db.connection_lost(error):
                            raise
                        backoff = next_backoff(backoff)
                        log_event(
                            logging.ERROR,
                            "locker_connect_failed",
                            error=error_message(error),
                            retry_in=backoff,
                        )
                        continue
                    self.reconnects += 1
                    log_event(
                        logging.INFO,
                        "locker_reconnected",
                        backend_pid=self.backend_pid,
                        running_job_ids=sorted(self._held),
                    )
                try:
                    self._cycle(self._require_connection())
                    backoff = 0.0
                except Exception as error:
                    if not db.connection_lost(error):
                        raise
                    self._lost(error)
                    backoff = next_backoff(backoff)
        except BaseException as error:
            log_event(
                logging.CRITICAL,
                "locker_crashed",
                error=error_message(error),
                backtrace=error_backtrace(error),
                detail="a bug stopped the worker pool; running jobs finish first",
            )
            self.failure = error
        finally:
            self._shutdown()

    def _require_connection(self) -> Connection:
        connection = self._connection
        if connection is None or connection.broken or connection.closed:
            raise psycopg.OperationalError("the lock connection is closed")
        return connection

    def _cycle(self, connection: Connection) -> None:
        now = monotonic()
        polled = False
        for name in self._schedule.queues:
            slots = self._buffer.slots()
            if not self._schedule.due(name, slots, now, hungry=self._buffer.hungry):
                continue
            polled = True
            start = self._schedule.start(name, now)
            result = poller.poll(
                connection, name, slots, held=self._held, now=config.now(), start=start
            )
            self.polls += 1
            self._push(connection, result.rows)
            self._schedule.polled(name, result, self._buffer.slots(), now, full=start is None)
            log_event(
                logging.DEBUG,
                "poll",
                internal=True,
                queue=name,
                job_ids=[row["id"] for row in result.rows],
                more=result.more,
                resumed_at=None if start is None else start.id,
            )
        # Finished jobs are settled along with a poll, or once a wait period: in
        # batches, so their deletes and unlocks cost few statements.
        if polled or now - self._settled_at >= self._settings.wait_period:
            self._unlock_finished(connection)
            self._settled_at = now
        # Notifications that arrive while a statement runs wait in psycopg's
        # backlog, where select() cannot see them: read them after the last
        # statement, and after taking some, look again before sleeping.
        announcements = listener.receive(connection, self._queues)
        if announcements:
            self._take_announced(connection, announcements)
        timeout = min(self._settings.wait_period, self._schedule.seconds_until_due())
        self._wait(0 if announcements else timeout, connection)

    def _take_announced(
        self, connection: Connection, announcements: list[listener.Announcement]
    ) -> None:
        fresh = sorted((a for a in announcements if a.id not in self._held), key=lambda a: a.key)
        slots = self._buffer.slots()
        taken = fresh[: slots.accept([a.priority for a in fresh])]
        rows = locks.lock_rows(connection, [a.id for a in taken], config.now())
        self._push(connection, rows)
        left = {a.queue for a in fresh[len(taken) :]}
        for name in left:
            self._schedule.left_jobs(name, self._buffer.slots())
        log_event(
            logging.DEBUG,
            "jobs_announced",
            internal=True,
            job_ids=[a.id for a in announcements],
            taken=[row["id"] for row in rows],
            left_for_polling=sorted(left),
        )

    def _push(self, connection: Connection, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        self._held.update(row["id"] for row in rows)
        overflow = self._buffer.push(BufferedJob.from_row(row) for row in rows)
        if overflow:
            ids = [job.id for job in overflow]
            self._schedule.forget_resume_points()  # ready jobs, perhaps before one
            self._release(connection, ids)
            log_event(logging.DEBUG, "jobs_displaced", internal=True, job_ids=ids)

    def _release(self, connection: Connection, ids: Iterable[int]) -> None:
        ids = [job_id for job_id in ids if job_id in self._held]
        self._held.difference_update(ids)
        locks.unlock(connection, ids)

    def _drain_finished(self) -> list[tuple[int, bool]]:
        finished: list[tuple[int, bool]] = []
        while True:
            try:
                finished.append(self._finished.get_nowait())
            except queue.Empty:
                return finished

    def _unlock_finished(self, connection: Connection) -> None:
        finished = self._drain_finished()
        if not finished:
            return
        ids = [job_id for job_id, _ in finished]
        if not all(settled for _, settled in finished):  # ready again, perhaps
            self._schedule.forget_resume_points()
        try:
            self._release(connection, ids)
        except BaseException:
            for item in finished:  # still to release, or forget on the next connection
                self._finished.put(item)
            raise
        log_event(logging.DEBUG, "jobs_unlocked", internal=True, job_ids=ids)

    def _wait(self, timeout: float, connection: Connection | None = None) -> None:
        """Sleep until woken, a notification arrives, or ``timeout`` seconds pass."""
        sockets: list[Any] = [self._wake_receiver]
        if connection is not None:
            sockets.append(connection.fileno())
        readable, _, _ = select.select(sockets, [], [], timeout)
        if self._wake_receiver in readable:
            try:
                while self._wake_receiver.recv(4096):
                    pass
            except BlockingIOError:
                pass

    # -- stopping --------------------------------------------------------------------

    def _shutdown(self) -> None:
        """Release the buffer at once, let running jobs finish, then deregister."""
        released = [job.id for job in self._buffer.close()]
        connection = self._connection
        if connection is not None:
            try:
                db.run(connection, sql.UNREGISTER_LOCKER)
                if self._settings.listen:
                    listener.unlisten(connection)
                self._release(connection, released)
            except Exception as error:
                self._lost_in_shutdown(error)
                connection = None
        log_event(logging.INFO, "jobs_released", job_ids=released)
        while not self._workers_done():
            self._wait(self._settings.wait_period)
            if connection is not None:
                try:
                    self._unlock_finished(connection)
                except Exception as error:
                    self._lost_in_shutdown(error)
                    connection = None
        if connection is not None:
            with contextlib.suppress(Exception):  # closing releases the locks anyway
                self._unlock_finished(connection)
        self._close()
        self._wake_receiver.close()
        self._wake_sender.close()

    def _lost_in_shutdown(self, error: BaseException) -> None:
        """The connection failed while stopping: say so, and stop using it."""
        log_event(
            logging.WARNING,
            "locker_connection_lost",
            error=error_message(error),
            backend_pid=self.backend_pid,
            during="shutdown",
        )
        self._close()
