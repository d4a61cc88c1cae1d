"""pgqueuer with its psycopg driver, through its public API.

Install: ``Queries.install()`` (what ``pgq install`` runs). Enqueue:
``SyncQueries.enqueue`` on the caller's connection (a list of jobs for W1, one
job for W3/W4). Work: ``pgqueuer.run`` (``pgq run`` without its CLI) at its
defaults, listening on a connection of its own (``pgqueuer``) or with the
stock single-connection driver (``pgqueuer-stock``; see ``pgqueuer_jobs``).
Hold (W5): jobs dequeued by another queue manager and left "picked", as a busy
worker leaves them. Poll: ``Queries.dequeue(batch_size=1)``, the statement its
worker loop runs.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any, ClassVar

import psycopg
from pgqueuer.adapters.drivers.psycopg import PsycopgDriver, SyncPsycopgDriver
from pgqueuer.adapters.persistence.queries import Queries, SyncQueries
from pgqueuer.domain.settings import db_settings
from pgqueuer.domain.types import QueueEntrypoint
from pgqueuer.ports.repository import EntrypointExecutionParameter
from psycopg import sql

from bench.compare.pgqueuer_jobs import ENTRYPOINT, LISTEN_MODE, payload
from bench.compare.systems import (
    Connection,
    Poll,
    System,
    TakeOne,
    WorkerSpec,
    async_poller,
)

HEARTBEAT_TIMEOUT = timedelta(seconds=30)  # pgq run's default
HOLD_BATCH = 1000  # jobs per dequeue while holding the head (W5 set-up)
ENTRYPOINTS = {QueueEntrypoint(ENTRYPOINT): EntrypointExecutionParameter(concurrency_limit=0)}


@asynccontextmanager
async def _queries(dsn: str) -> AsyncIterator[Queries]:
    connection = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    try:
        yield Queries(PsycopgDriver(connection))
    finally:
        await connection.close()


async def _dequeue(queries: Queries, manager: Any, batch_size: int) -> list[int]:
    jobs = await queries.dequeue(
        batch_size=batch_size,
        entrypoints=ENTRYPOINTS,
        queue_manager_id=manager,
        global_concurrency_limit=None,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
    )
    return [int(job.id) for job in jobs]


class PgQueuerSystem(System):
    name: ClassVar[str] = "pgqueuer"
    peer: ClassVar[bool] = True
    summary: ClassVar[str] = "pgqueuer (psycopg driver): SyncQueries.enqueue, pgqueuer.run"
    listen: ClassVar[str] = "own-connection"

    def __init__(self) -> None:
        self._table = sql.SQL(db_settings().qualified.queue_table)

    def install(self, dsn: str, connection: Connection) -> None:
        async def install() -> None:
            async with _queries(dsn) as queries:
                await queries.install()

        asyncio.run(install())

    def enqueue_many(self, connection: Connection, numbers: Sequence[int]) -> None:
        SyncQueries(SyncPsycopgDriver(connection)).enqueue(
            [ENTRYPOINT] * len(numbers), [payload(n, False) for n in numbers], [0] * len(numbers)
        )

    def enqueue_one(self, connection: Connection, number: int, *, notify: bool) -> None:
        SyncQueries(SyncPsycopgDriver(connection)).enqueue(ENTRYPOINT, payload(number, notify))

    def queued(self, connection: Connection) -> int:
        row = connection.execute(sql.SQL("SELECT count(*) FROM {}").format(self._table)).fetchone()
        return int(row[0]) if row else 0

    def worker(self, dsn: str) -> WorkerSpec:
        return WorkerSpec(
            argv=[sys.executable, "-m", "bench.compare.pgqueuer_jobs"],
            env={"BENCH_DSN": dsn, LISTEN_MODE: self.listen},
            settings="pgq run defaults (batch size 10, no concurrency limit, dequeue "
            f"timeout 30 s); psycopg driver, LISTEN: {self.listen}",
        )

    def hold_head(self, dsn: str, holder: Connection, count: int) -> set[int]:
        async def hold() -> set[int]:
            held: set[int] = set()
            async with _queries(dsn) as queries:
                manager = uuid.uuid4()
                while len(held) < count:
                    taken = await _dequeue(queries, manager, min(HOLD_BATCH, count - len(held)))
                    if not taken:
                        break
                    held.update(taken)
            return held

        return asyncio.run(hold())

    def poller(self, dsn: str) -> AbstractContextManager[Poll]:
        @asynccontextmanager
        async def session() -> AsyncIterator[TakeOne]:
            async with _queries(dsn) as queries:
                manager = uuid.uuid4()
                yield lambda: _dequeue(queries, manager, 1)

        return async_poller(session())


class PgQueuerStockSystem(PgQueuerSystem):
    """The stock psycopg driver, listening on its only connection (not run by default)."""

    name: ClassVar[str] = "pgqueuer-stock"
    summary: ClassVar[str] = "pgqueuer, stock psycopg driver (LISTEN on the query connection)"
    listen: ClassVar[str] = "shared"
