"""procrastinate, through its public API.

Install: its ``SchemaManager.apply_schema()``. Enqueue: ``Task.batch_defer``
(W1) and ``Task.defer`` (W3/W4) with ``configure(connection=...)``, its way of
deferring inside the caller's transaction. Work: ``procrastinate worker`` at
its defaults. Hold (W5): jobs fetched by another registered worker and left
"doing". Poll: ``JobManager.fetch_job``, what its worker loop calls.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractContextManager, asynccontextmanager
from typing import ClassVar

from procrastinate import PsycopgConnector, SyncPsycopgConnector
from procrastinate.manager import JobManager
from procrastinate.schema import SchemaManager
from procrastinate.types import JSONDict

from bench.compare.procrastinate_jobs import bench_noop
from bench.compare.systems import (
    Connection,
    Poll,
    System,
    TakeOne,
    WorkerSpec,
    async_poller,
)

HOLDERS = 4  # concurrent fetch loops while holding the head: the default pool's size
QUEUED = "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"


@asynccontextmanager
async def _worker_session(dsn: str) -> AsyncIterator[tuple[JobManager, int]]:
    """A job manager on procrastinate's default connector, registered as a worker."""
    connector = PsycopgConnector(conninfo=dsn)
    await connector.open_async()
    try:
        manager = JobManager(connector)
        worker_id = await manager.register_worker()
        yield manager, worker_id
    finally:
        await connector.close_async()


async def _fetch(manager: JobManager, worker_id: int) -> list[int]:
    job = await manager.fetch_job(queues=None, worker_id=worker_id)
    return [] if job is None or job.id is None else [job.id]


class ProcrastinateSystem(System):
    name: ClassVar[str] = "procrastinate"
    peer: ClassVar[bool] = True
    summary: ClassVar[str] = "procrastinate: Task.batch_defer / defer(connection=...), its worker"

    def install(self, dsn: str, connection: Connection) -> None:
        connector = SyncPsycopgConnector(conninfo=dsn)
        connector.open()
        try:
            SchemaManager(connector).apply_schema()
        finally:
            connector.close()

    def enqueue_many(self, connection: Connection, numbers: Sequence[int]) -> None:
        jobs: list[JSONDict] = [{"n": n, "notify": False} for n in numbers]
        bench_noop.configure(connection=connection).batch_defer(*jobs)

    def enqueue_one(self, connection: Connection, number: int, *, notify: bool) -> None:
        bench_noop.configure(connection=connection).defer(n=number, notify=notify)

    def queued(self, connection: Connection) -> int:
        row = connection.execute(QUEUED).fetchone()
        return int(row[0]) if row else 0

    def worker(self, dsn: str) -> WorkerSpec:
        return WorkerSpec(
            argv=[
                sys.executable,
                "-m",
                "procrastinate",
                "--app",
                "bench.compare.procrastinate_jobs.app",
                "worker",
            ],
            env={"BENCH_DSN": dsn},
            settings="procrastinate worker defaults (concurrency 1, LISTEN on, polling "
            "5 s, finished jobs kept)",
        )

    def hold_head(self, dsn: str, holder: Connection, count: int) -> set[int]:
        async def hold() -> set[int]:
            held: set[int] = set()
            async with _worker_session(dsn) as (manager, worker_id):

                async def fetch_share(share: int) -> None:
                    for _ in range(share):
                        held.update(await _fetch(manager, worker_id))

                shares = [count // HOLDERS + (i < count % HOLDERS) for i in range(HOLDERS)]
                await asyncio.gather(*(fetch_share(share) for share in shares))
            return held

        return asyncio.run(hold())

    def poller(self, dsn: str) -> AbstractContextManager[Poll]:
        @asynccontextmanager
        async def session() -> AsyncIterator[TakeOne]:
            async with _worker_session(dsn) as (manager, worker_id):
                yield lambda: _fetch(manager, worker_id)

        return async_poller(session())
