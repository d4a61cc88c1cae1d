"""The benchmark job for pgqueuer's worker, and the worker's entry point.

    BENCH_DSN=... python -m bench.compare.pgqueuer_jobs

runs ``pgqueuer.run(create_pgqueuer)``: pgqueuer's documented "run a worker as
``pgq run`` does, without the CLI", with ``pgq run``'s defaults. (The ``pgq run``
command itself fails at start-up in pgqueuer 1.6.0 here: its ``--log-level``
parser hands a ``str`` to code expecting the enum.)

The queue's connection uses pgqueuer's psycopg driver, as the comparison asks,
with one change by default: LISTEN runs on a second connection. psycopg holds a
connection's lock for the whole of ``notifies()``, and the stock driver listens
on its only connection with a 1 s timeout, so every dequeue and acknowledgement
waits up to a second for the listener to let go: about 26 jobs/s and 1 s
latency here, which measures that interaction, not pgqueuer's design (its
asyncpg driver listens and queries on one connection without it).
``BENCH_PGQ_LISTEN=shared`` runs the stock driver (system ``pgqueuer-stock``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pgqueuer
import psycopg
from pgqueuer import PgQueuer
from pgqueuer.adapters.drivers.psycopg import PsycopgDriver
from pgqueuer.core import logconfig
from pgqueuer.models import Job
from pgqueuer.ports.driver import NotifyCallback
from psycopg import sql

from bench.compare.accounting import AsyncRecorder

ENTRYPOINT = "bench_noop"
LISTEN_MODE = "BENCH_PGQ_LISTEN"  # "own-connection" (default) or "shared" (stock driver)
NOTIFIES_TIMEOUT = 1.0  # seconds, as the stock driver's watcher


def payload(n: int, notify: bool) -> bytes:
    """pgqueuer payloads are bytes: the job number and the notify flag."""
    return f"{n} {int(notify)}".encode()


def parse(data: bytes | None) -> tuple[int, bool]:
    n, notify = (data or b"").split()
    return int(n), notify == b"1"


class OwnListenConnectionDriver(PsycopgDriver):
    """pgqueuer's psycopg driver with LISTEN on a connection of its own.

    Queries go through the stock driver on ``connection``; only listening and
    the notification watcher move to ``listen_connection``, so a query never
    waits for ``notifies()`` to release the lock.
    """

    def __init__(
        self, connection: psycopg.AsyncConnection, listen_connection: psycopg.AsyncConnection
    ) -> None:
        super().__init__(connection)
        self._listen_connection = listen_connection

    async def add_listener(self, channel: str, callback: NotifyCallback) -> None:
        if channel not in self._listeners:
            await self._listen_connection.execute(
                sql.SQL("LISTEN {}").format(sql.Identifier(channel))
            )
            self._listeners[channel] = []
        self._listeners[channel].append(callback)
        if self._watcher is None:
            self._watcher = asyncio.create_task(self.watch_notifies(), name="bench_listener")
            self._tm.add(self._watcher)

    async def watch_notifies(self) -> None:
        while not self.shutdown.is_set():
            async for note in self._listen_connection.notifies(
                timeout=NOTIFIES_TIMEOUT, stop_after=1
            ):
                for callback in list(self._listeners.get(note.channel, [])):
                    try:
                        callback(note.payload)
                    except Exception:
                        logconfig.logger.exception("NOTIFY callback failed on %s", note.channel)


@asynccontextmanager
async def create_pgqueuer() -> AsyncIterator[PgQueuer]:
    """The factory ``pgqueuer.run`` calls (the same as ``pgq run`` would)."""
    dsn = os.environ["BENCH_DSN"]
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    listen_connection = None
    if os.environ.get(LISTEN_MODE, "own-connection") == "shared":
        driver = PsycopgDriver(connection)
    else:
        listen_connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        driver = OwnListenConnectionDriver(connection, listen_connection)
    recorder = AsyncRecorder(dsn)
    pgq = PgQueuer(driver)

    @pgq.entrypoint(ENTRYPOINT)
    async def bench_noop(job: Job) -> None:
        started = time.time()
        n, notify = parse(job.payload)
        await recorder.record(n, notify, started)

    try:
        yield pgq
    finally:
        await recorder.close()
        for open_connection in (connection, listen_connection):
            if open_connection is not None:
                await open_connection.close()


if __name__ == "__main__":
    asyncio.run(pgqueuer.run(create_pgqueuer))
