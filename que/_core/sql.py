"""Every SQL statement que runs, by name, with bound parameters only.

The schema itself lives in ``que/migrations/<version>/{up,down}.sql``. Statements
that depend on time take ``%(now)s`` and use ``coalesce(%(now)s, now())``: the
clock hook passes ``None`` in production (the database's time) and a fixed time
in tests.
"""

from __future__ import annotations

from typing import Final

from que._core.schema import ENQUEUED_COLUMNS, JOB_SCHEMA_VERSION

_VERSION = str(JOB_SCHEMA_VERSION)  # a schema fact, written into the statements below

# -- schema version -------------------------------------------------------------

# Whether que_jobs exists, and its comment as it is (the version, NULL, or
# whatever a person wrote there) for que._core.migrations.db_version to read or refuse.
DB_VERSION: Final = """
SELECT to_regclass('public.que_jobs') IS NOT NULL AS installed,
       obj_description(to_regclass('public.que_jobs'), 'pg_class') AS comment
"""

# -- enqueue --------------------------------------------------------------------

# One job; %(args)s, %(kwargs)s and %(data)s are JSON text. %(run_at)s is the
# time given or that the clock decided; without one, the database's now() plus
# %(delay)s seconds. Only what the database decides comes back; the caller knows
# the rest.
_ENQUEUED_VALUES = {
    "queue": "%(queue)s::text",
    "priority": "%(priority)s::smallint",
    "run_at": "coalesce(%(run_at)s::timestamptz, now() + %(delay)s::float8 * interval '1 second')",
    "job_class": "%(job_class)s::text",
    "args": "%(args)s::jsonb",
    "kwargs": "%(kwargs)s::jsonb",
    "data": "%(data)s::jsonb",
    "job_schema_version": "%(job_schema_version)s::smallint",
}
INSERT_JOB: Final = (
    """
INSERT INTO public.que_jobs ("""
    + ", ".join(ENQUEUED_COLUMNS)
    + """)
VALUES ("""
    + ", ".join(_ENQUEUED_VALUES[column] for column in ENQUEUED_COLUMNS)
    + """)
RETURNING id, run_at
"""
)

# Whether a time is still to come by the database's clock (sync mode's test
# for a job scheduled at an explicit time).
IS_FUTURE: Final = """
SELECT %(at)s::timestamptz > now() AS future
"""

# Many jobs: their ids are taken from the sequence first, in order, with the
# time the jobs are stamped with; then COPY_JOBS streams the rows, which costs
# the server about half of what an INSERT of the same rows does.
# (The sequence is looked up, not named: databases migrated by early releases
# of Ruby Que 1.0 kept its old name.)
RESERVE_JOB_IDS: Final = """
SELECT coalesce(%(now)s::timestamptz, now()) AS now,
       array(
         SELECT nextval((SELECT pg_get_serial_sequence('public.que_jobs', 'id')::regclass))
         FROM generate_series(1, %(count)s::integer)
       ) AS ids
"""

COPY_JOBS: Final = (
    """
COPY public.que_jobs (id, """
    + ", ".join(ENQUEUED_COLUMNS)
    + """)
FROM STDIN
"""
)

# Bulk enqueue skips the notify triggers for the rest of its own transaction
# (or savepoint), then puts the setting back as it was.
SKIP_NOTIFY: Final = """
SELECT current_setting('que.skip_notify', true) AS previous,
       set_config('que.skip_notify', 'true', true) AS current
"""

RESTORE_NOTIFY: Final = """
SELECT set_config('que.skip_notify', coalesce(%(previous)s::text, ''), true)
"""

# -- resolving a job (the row is the one this process holds) ---------------------

DESTROY_JOB: Final = """
DELETE FROM public.que_jobs WHERE id = %(id)s
RETURNING id
"""

FINISH_JOB: Final = """
UPDATE public.que_jobs
SET finished_at = coalesce(%(now)s::timestamptz, now())
WHERE id = %(id)s
RETURNING id
"""

EXPIRE_JOB: Final = """
UPDATE public.que_jobs
SET error_count = least(error_count, 2147483646) + 1,
    expired_at = coalesce(%(now)s::timestamptz, now()),
    last_error_message = coalesce(%(message)s::text, last_error_message),
    last_error_backtrace = coalesce(%(backtrace)s::text, last_error_backtrace)
WHERE id = %(id)s
RETURNING id
"""

# error_count stops at the largest integer rather than fail to count one more.
RETRY_JOB: Final = """
UPDATE public.que_jobs
SET error_count = least(error_count, 2147483646) + 1,
    run_at = coalesce(%(now)s::timestamptz, now()) + %(delay)s::float8 * interval '1 second',
    last_error_message = %(message)s::text,
    last_error_backtrace = %(backtrace)s::text
WHERE id = %(id)s
RETURNING id
"""

# -- the inline runner -----------------------------------------------------------

# The next job to run inline: ready (or any unfinished one with
# %(include_scheduled)s), of the given queue (or any with NULL), not among the ids
# this run has already attempted, and among %(only_ids)s when given.
NEXT_INLINE_JOB: Final = (
    """
SELECT *
FROM public.que_jobs
WHERE finished_at IS NULL
  AND expired_at IS NULL
  AND job_schema_version = """
    + _VERSION
    + """
  AND (%(queue)s::text IS NULL OR queue = %(queue)s::text)
  AND (%(include_scheduled)s::boolean OR run_at <= coalesce(%(now)s::timestamptz, now()))
  AND id <> ALL (%(attempted)s::bigint[])
  AND (%(only_ids)s::bigint[] IS NULL OR id = ANY (%(only_ids)s::bigint[]))
ORDER BY priority, run_at, id
LIMIT 1
"""
)

COUNT_UNFINISHED_JOBS: Final = """
SELECT count(*) AS count
FROM public.que_jobs
WHERE finished_at IS NULL AND expired_at IS NULL
"""

UNFINISHED_JOB_IDS: Final = (
    """
SELECT coalesce(array_agg(id), '{}') AS ids
FROM public.que_jobs
WHERE finished_at IS NULL AND expired_at IS NULL AND job_schema_version = """
    + _VERSION
    + """
"""
)

# -- inspecting the queue --------------------------------------------------------

# A job is "working" while some session holds the advisory lock on its id; a
# bigint key shows in pg_locks split into classid (high half) and objid (low).
JOB_STATS: Final = """
SELECT j.job_class,
       count(*) AS count,
       count(l.id) AS count_working,
       count(*) FILTER (WHERE j.error_count > 0) AS count_errored,
       max(j.error_count) AS highest_error_count,
       min(j.run_at) AS oldest_run_at
FROM public.que_jobs AS j
LEFT JOIN (
  SELECT (classid::bigint << 32) + objid::bigint AS id
  FROM pg_locks
  WHERE locktype = 'advisory' AND objsubid = 1 AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS l USING (id)
WHERE j.finished_at IS NULL AND j.expired_at IS NULL
GROUP BY j.job_class
ORDER BY count(*) DESC, j.job_class
"""

JOB_STATES: Final = """
SELECT j.*, ql.ruby_hostname AS hostname, ql.ruby_pid AS pid
FROM public.que_jobs AS j
JOIN (
  SELECT (classid::bigint << 32) + objid::bigint AS id, pid
  FROM pg_locks
  WHERE locktype = 'advisory' AND objsubid = 1 AND granted
    AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
) AS l USING (id)
LEFT JOIN public.que_lockers AS ql ON ql.pid = l.pid
ORDER BY j.priority, j.run_at, j.id
"""

ALL_JOBS: Final = """
SELECT * FROM public.que_jobs ORDER BY id
"""

CLEAR_JOBS: Final = """
DELETE FROM public.que_jobs
"""

# -- the worker pool ----------------------------------------------------------------
#
# A worker process's locker holds every advisory lock of the process on one
# dedicated connection. The lock key is the job id itself (one bigint key),
# which pg_locks shows split into classid (high half) and objid (low half) with
# objsubid 1: Ruby Que's lock, which every Que worker respects.
#
# The worker running a job holds a second lock on it, from its own connection,
# for as long as the job's transaction lasts: the same two halves as two integer
# keys (objsubid 2), a key space Ruby Que never uses. Should the locker's
# connection be lost while the job runs, another process may take the id lock,
# but it also tests the worker's lock and lets the job be; and the job's
# transaction commits only while its worker's lock is held. See docs/explanation/locking.md.

# Times outside what Python's datetime holds (-infinity, years before 1) read as
# the first moment it does: such a job is ready, and runs, like any other.
_RUN_AT = "greatest({table}.run_at, '0001-01-01 00:00:00+00'::timestamptz) AS run_at"

# What makes a job ready to work now, by its own columns.
_READY = (
    "job_schema_version = "
    + _VERSION
    + """
    AND finished_at IS NULL
    AND expired_at IS NULL
    AND run_at <= coalesce(%(now)s::timestamptz, now())"""
)

# The worker's lock of job %(id)s, taken for the current transaction.
_WORKER_LOCK = "pg_try_advisory_xact_lock(({id} >> 32)::integer, {id}::bit(32)::integer)"

# The lock connection reads the poll index with plain index scans: unlike
# index-only scans, they mark the entries of deleted jobs dead as they pass them,
# so polls do not walk every job deleted since the last vacuum, again and again.
LOCKER_SESSION: Final = """
SET enable_indexonlyscan = off
"""

# The lock connection's backend, asked twice at start: a pooler in transaction
# mode would serve the two transactions, or another client, on one backend.
BACKEND_PID: Final = """
SELECT pg_backend_pid() AS pid
"""

# Forget lockers whose connection is gone, and any row this backend left behind.
CLEAN_LOCKERS: Final = """
DELETE FROM public.que_lockers
WHERE pid = pg_backend_pid()
   OR pid NOT IN (SELECT pid FROM pg_catalog.pg_stat_activity WHERE pid IS NOT NULL)
"""

# worker_priorities holds NULL for an "any" worker; ruby_pid and ruby_hostname
# are the worker process's, whatever its language.
REGISTER_LOCKER: Final = (
    """
INSERT INTO public.que_lockers
  (pid, worker_count, worker_priorities, ruby_pid, ruby_hostname, queues, listening,
   job_schema_version)
VALUES
  (pg_backend_pid(), %(worker_count)s::integer, %(worker_priorities)s::integer[],
   %(process_pid)s::integer, %(hostname)s::text, %(queues)s::text[], %(listening)s::boolean,
   """
    + _VERSION
    + """)
"""
)

UNREGISTER_LOCKER: Final = """
DELETE FROM public.que_lockers WHERE pid = pg_backend_pid()
"""

# The channel que_job_notify sends to: que_listener_<this backend's pid>.
LISTEN_LOCKER: Final = """
DO $listen$ BEGIN EXECUTE 'LISTEN que_listener_' || pg_backend_pid(); END $listen$
"""

UNLISTEN_ALL: Final = """
UNLISTEN *
"""

# Take the id lock of job c.id unless a worker of another process still runs it
# (its worker's lock is taken): then let the id lock go again. CASE evaluates in
# order, which AND and OR do not promise. The worker's lock taken here lasts as
# long as the statement (the lock connection is in autocommit mode).
_LOCK_IF_FREE = (
    """CASE
  WHEN NOT pg_try_advisory_lock(c.id) THEN false
  WHEN """
    + _WORKER_LOCK.format(id="c.id")
    + """ THEN true
  ELSE NOT pg_advisory_unlock(c.id)
END"""
)

# Lock the most important ready jobs of one queue that the free slots can take
# (%(slots)s: the highest priority each slot takes), skipping the ones this
# process holds and starting at the key (%(from_priority)s, %(from_run_at)s,
# %(from_id)s): the start of the queue, or where a follow-up poll resumes (see
# que.worker._poller). The walk reads the poll index in order (its LIMIT bounds
# the walk and keeps it a separate step); the outer query tries each lock as it
# pulls rows and stops after "room" successes. So only the rows returned are
# locked, whatever plan the walk gets, and a job another session holds costs one
# failed pg_try_advisory_lock, not a scan of every lock on the server.
# head, one index probe, is the first job the walk meets: the room is the number
# of slots that take its priority (slots for more important jobs only stay
# empty), and when it is not the first job returned, the walk passed jobs that
# other sessions hold. Only what orders and routes jobs is read: the rest of a
# row is its worker's to read (and to fail on, should it be unreadable).
POLL_JOBS: Final = (
    """
WITH ready AS NOT MATERIALIZED (
  SELECT id, priority, run_at
  FROM public.que_jobs
  WHERE queue = %(queue)s::text
    AND """
    + _READY
    + """
    AND priority <= (SELECT max(l) FROM unnest(%(slots)s::integer[]) AS s (l))
    AND (priority, run_at, id)
        >= (%(from_priority)s::integer, %(from_run_at)s::timestamptz, %(from_id)s::bigint)
    AND id <> ALL (%(held)s::bigint[])
),
head AS (
  SELECT id, priority FROM ready ORDER BY priority, run_at, id LIMIT 1
),
room AS (
  SELECT count(*) AS room FROM unnest(%(slots)s::integer[]) AS s (l)
  WHERE l >= (SELECT priority FROM head)
)
SELECT c.id, c.priority, """
    + _RUN_AT.format(table="c")
    + """,
       (SELECT id FROM head) AS head_id, (SELECT room FROM room) AS room
FROM (SELECT * FROM ready ORDER BY priority, run_at, id LIMIT %(walk)s::integer) AS c
WHERE """
    + _LOCK_IF_FREE
    + """
LIMIT (SELECT room FROM room)
"""
)

# Lock each announced id that no other worker runs; says which locks were taken.
LOCK_JOBS: Final = (
    """
SELECT c.id, """
    + _LOCK_IF_FREE
    + """ AS locked
FROM unnest(%(ids)s::bigint[]) AS c (id)
"""
)

# After a reconnect: lock again the jobs this process's workers are running
# (their workers' locks are held, by this process).
RELOCK_JOBS: Final = """
SELECT t.id, pg_try_advisory_lock(t.id) AS locked
FROM unnest(%(ids)s::bigint[]) AS t (id)
"""

# Advisory locks are not MVCC: a job can be locked just after another process
# worked and deleted it. Run after LOCK_JOBS, in a later snapshot, this returns
# the keys of the locked jobs that are still there to be worked.
# (OFFSET 0 keeps the planner from matching the other conditions to the poll
# index, which on a churning table with stale statistics means scanning it all:
# the rows are fetched by primary key, then checked.)
_READY_BY_ID = (
    """
FROM (SELECT * FROM public.que_jobs WHERE id = ANY (%(ids)s::bigint[]) OFFSET 0) AS j
WHERE """
    + _READY
    + """
"""
)

CHECK_LOCKED_JOBS: Final = (
    """
SELECT j.id, j.priority, """
    + _RUN_AT.format(table="j")
    + """
"""
    + _READY_BY_ID
)

UNLOCK_JOBS: Final = """
SELECT t.id, pg_advisory_unlock(t.id) AS unlocked
FROM unnest(%(ids)s::bigint[]) AS t (id)
"""

# A worker begins its job's transaction by taking its own lock on the job.
CLAIM_JOB: Final = (
    """
SELECT """
    + _WORKER_LOCK.format(id="%(id)s::bigint")
    + """ AS claimed
"""
)

# The same, with the job's row if it is still there to be worked: false if a
# worker of another process holds the lock (it runs the job). The row is read
# only once the lock is taken, and FOR UPDATE reads its latest committed version,
# not the statement's snapshot (which is older than the lock): a job another
# worker finished and let go of a moment ago is not read. SKIP LOCKED: a row
# some other transaction is changing is left for later, never waited for. Its
# JSON columns come as text, for the runner to decode: a row that cannot be
# decoded is that job's error.
CLAIM_AND_READ_JOB: Final = (
    """
SELECT c.claimed, j.*
FROM ("""
    + CLAIM_JOB.strip()
    + """) AS c
LEFT JOIN LATERAL (
  SELECT id, priority, """
    + _RUN_AT.format(table="que_jobs")
    + """, job_class, error_count,
         last_error_message, queue, last_error_backtrace, finished_at, expired_at,
         args::text AS args, data::text AS data, job_schema_version, kwargs::text AS kwargs
  FROM public.que_jobs
  WHERE c.claimed
    AND id = %(id)s::bigint
    AND """
    + _READY
    + """
  FOR UPDATE SKIP LOCKED
) AS j ON true
"""
)
