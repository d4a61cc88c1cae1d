-- Version 5 (Que 1.x): jobs and lockers carry a job schema version, so that
-- a worker is only told about jobs in a format it understands. Existing jobs
-- (and jobs from writers that do not say) are version 1. A second partial poll
-- index leads with the job schema version; version 4's poll index stays until
-- version 6.

ALTER TABLE public.que_jobs ADD COLUMN job_schema_version integer DEFAULT 1;
ALTER TABLE public.que_lockers ADD COLUMN job_schema_version integer DEFAULT 1;

CREATE INDEX que_poll_idx_with_job_schema_version
  ON public.que_jobs (job_schema_version, queue, priority, run_at, id)
  WHERE (finished_at IS NULL AND expired_at IS NULL);

-- As in version 4, but only lockers of the job's schema version are candidates.
CREATE OR REPLACE FUNCTION public.que_job_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
  DECLARE
    locker_pid integer;
    message json;
  BEGIN
    -- Jobs scheduled for later are found by polling.
    IF NEW.run_at > now() THEN
      RETURN NULL;
    END IF;

    SELECT candidates.pid
      INTO locker_pid
      FROM (
        SELECT
          ql.pid,
          row_number() OVER (
            ORDER BY md5(ql.pid::text || slot.n::text), ql.pid, slot.n
          ) - 1 AS slot_number,
          count(*) OVER () AS slot_count
        FROM public.que_lockers AS ql
        CROSS JOIN LATERAL generate_series(1, ql.worker_count) AS slot(n)
        WHERE ql.listening
          AND ql.queues @> ARRAY[NEW.queue]
          AND ql.job_schema_version = NEW.job_schema_version
      ) AS candidates
     WHERE candidates.slot_number = mod(NEW.id, candidates.slot_count);

    IF locker_pid IS NOT NULL THEN
      -- NOTIFY payloads are small: send what the locker needs to decide
      -- whether to take the job; it reads the row after locking it.
      SELECT row_to_json(payload)
        INTO message
        FROM (
          SELECT
            'job_available' AS message_type,
            NEW.queue       AS queue,
            NEW.priority    AS priority,
            NEW.id          AS id,
            to_char(NEW.run_at AT TIME ZONE 'UTC',
                    'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS run_at
        ) AS payload;

      PERFORM pg_notify('que_listener_' || locker_pid::text, message::text);
    END IF;

    RETURN NULL;
  END
$$;

COMMENT ON TABLE public.que_jobs IS '5';
