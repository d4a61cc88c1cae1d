-- Version 5 -> 4.

-- Exactly version 4's function.
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

DROP INDEX public.que_poll_idx_with_job_schema_version;

ALTER TABLE public.que_lockers DROP COLUMN job_schema_version;
ALTER TABLE public.que_jobs DROP COLUMN job_schema_version;

COMMENT ON TABLE public.que_jobs IS '4';
