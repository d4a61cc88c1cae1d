"""Raw psycopg baselines: the row que writes, into que's own table, with no library.

Both baselines insert into ``que_jobs`` of a database migrated by que, so the
gap between que and ``raw`` is que's own overhead (validation, JSON, building
the job), not the schema's. ``raw`` sends one INSERT per job (W1: psycopg's
``executemany``, pipelined, in one transaction; W3: one INSERT per
transaction); ``raw-batch`` sends one INSERT for all jobs (W1 only). Like
``Que.bulk_enqueue``, the bulk inserts skip the notify triggers.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

from bench.compare.que_jobs import BenchNoop
from bench.compare.systems import Connection, NotApplicable, System
from que import Que

INSERT_ONE = """
INSERT INTO public.que_jobs (job_class, args, job_schema_version) VALUES (%s, %s::jsonb, 2)
"""

INSERT_BATCH = """
INSERT INTO public.que_jobs (job_class, args, job_schema_version)
SELECT %s, a.args, 2 FROM unnest(%s::jsonb[]) AS a (args)
"""

SKIP_NOTIFY = "SET LOCAL que.skip_notify = 'true'"
COUNT = "SELECT count(*) FROM public.que_jobs"


def args_json(number: int, notify: bool) -> str:
    return json.dumps([number, notify])


class _RawSQL(System):
    """What both baselines share: que's schema, the job's row, the count."""

    job_class: ClassVar[str] = BenchNoop.job_name

    def install(self, dsn: str, connection: Connection) -> None:
        with Que.using(connection):
            Que.migrate()

    def queued(self, connection: Connection) -> int:
        row = connection.execute(COUNT).fetchone()
        return int(row[0]) if row else 0


class RawSingle(_RawSQL):
    name: ClassVar[str] = "raw"
    summary: ClassVar[str] = "psycopg, one INSERT per job into que_jobs"

    def enqueue_many(self, connection: Connection, numbers: Sequence[int]) -> None:
        with connection.transaction(), connection.cursor() as cursor:
            cursor.execute(SKIP_NOTIFY)
            cursor.executemany(INSERT_ONE, [(self.job_class, args_json(n, False)) for n in numbers])

    def enqueue_one(self, connection: Connection, number: int, *, notify: bool) -> None:
        connection.execute(INSERT_ONE, (self.job_class, args_json(number, notify)))


class RawBatch(_RawSQL):
    name: ClassVar[str] = "raw-batch"
    summary: ClassVar[str] = "psycopg, one INSERT ... SELECT FROM unnest() for all jobs"

    def enqueue_many(self, connection: Connection, numbers: Sequence[int]) -> None:
        with connection.transaction():
            connection.execute(SKIP_NOTIFY)
            arguments = [args_json(n, False) for n in numbers]
            connection.execute(INSERT_BATCH, (self.job_class, arguments))

    def enqueue_one(self, connection: Connection, number: int, *, notify: bool) -> None:
        raise NotApplicable("raw-batch is the batched baseline; raw is the single one")
