-- Version 4 (Que 1.0): the job row gains a lifecycle (finished, expired),
-- structured errors, jsonb args and data with validated tags, a partial poll
-- index, the lockers table, the key/value table and the LISTEN/NOTIFY triggers.

ALTER TABLE public.que_jobs SET (fillfactor = 90);

ALTER TABLE public.que_jobs DROP CONSTRAINT que_jobs_pkey;

ALTER TABLE public.que_jobs RENAME COLUMN job_id TO id;
ALTER SEQUENCE public.que_jobs_job_id_seq RENAME TO que_jobs_id_seq;
ALTER TABLE public.que_jobs RENAME COLUMN last_error TO last_error_message;

-- The json args column is replaced by a jsonb one at the end of the row.
ALTER TABLE public.que_jobs RENAME COLUMN args TO v3_args;

ALTER TABLE public.que_jobs
  ALTER COLUMN queue SET DEFAULT 'default',
  ADD COLUMN last_error_backtrace text,
  ADD COLUMN finished_at          timestamptz,
  ADD COLUMN expired_at           timestamptz,
  ADD COLUMN args                 jsonb NOT NULL DEFAULT '[]',
  ADD COLUMN data                 jsonb NOT NULL DEFAULT '{}';

-- Existing rows: the unnamed queue becomes 'default'; the old error text is
-- split into its first line (the message) and the rest (the backtrace); args
-- that are not an array are wrapped in one so the job still gets them.
UPDATE public.que_jobs
SET
  queue = CASE queue WHEN '' THEN 'default' ELSE queue END,
  last_error_backtrace =
    CASE WHEN last_error_message ~ '\n'
      THEN left(substring(last_error_message FROM '\n(.*)$'), 10000)
    END,
  last_error_message = left(substring(last_error_message FROM '^[^\n]*'), 500),
  args =
    CASE json_typeof(v3_args)
      WHEN 'array' THEN v3_args::jsonb
      ELSE jsonb_build_array(v3_args::jsonb)
    END;

ALTER TABLE public.que_jobs DROP COLUMN v3_args;

ALTER TABLE public.que_jobs ADD CONSTRAINT que_jobs_pkey PRIMARY KEY (id);

CREATE INDEX que_poll_idx
  ON public.que_jobs (queue, priority, run_at, id)
  WHERE (finished_at IS NULL AND expired_at IS NULL);

CREATE INDEX que_jobs_data_gin_idx
  ON public.que_jobs USING gin (data jsonb_path_ops);

CREATE INDEX que_jobs_args_gin_idx
  ON public.que_jobs USING gin (args jsonb_path_ops);

-- A tag is a JSON string of at most 100 characters measured as JSON text,
-- quotes included (so at most 98 plain characters).
CREATE FUNCTION public.que_validate_tags(tags_array jsonb) RETURNS boolean
LANGUAGE sql AS $$
  SELECT bool_and(
    jsonb_typeof(value) = 'string'
    AND char_length(value::text) <= 100
  )
  FROM jsonb_array_elements(tags_array)
$$;

ALTER TABLE public.que_jobs
  ADD CONSTRAINT queue_length CHECK (
    char_length(queue) <= 100
  ),
  ADD CONSTRAINT job_class_length CHECK (
    char_length(
      CASE job_class
        WHEN 'ActiveJob::QueueAdapters::QueAdapter::JobWrapper'
          THEN args->0->>'job_class'
        ELSE job_class
      END
    ) <= 200
  ),
  ADD CONSTRAINT valid_args CHECK (
    jsonb_typeof(args) = 'array'
  ),
  ADD CONSTRAINT valid_data CHECK (
    jsonb_typeof(data) = 'object'
    AND (
      NOT data ? 'tags'
      OR (
        jsonb_typeof(data->'tags') = 'array'
        AND jsonb_array_length(data->'tags') <= 5
        AND public.que_validate_tags(data->'tags')
      )
    )
  ),
  ADD CONSTRAINT error_length CHECK (
    char_length(last_error_message) <= 500
    AND char_length(last_error_backtrace) <= 10000
  );

-- One row per locker (a worker process's lock-holding connection, keyed by
-- its backend pid). Unlogged: after a crash the lockers are gone anyway.
CREATE UNLOGGED TABLE public.que_lockers (
  pid               integer NOT NULL CONSTRAINT que_lockers_pkey PRIMARY KEY,
  worker_count      integer NOT NULL,
  worker_priorities integer[] NOT NULL,
  ruby_pid          integer NOT NULL,
  ruby_hostname     text    NOT NULL,
  queues            text[]  NOT NULL,
  listening         boolean NOT NULL,

  CONSTRAINT valid_worker_priorities CHECK (
    array_ndims(worker_priorities) = 1
    AND array_length(worker_priorities, 1) IS NOT NULL
  ),
  CONSTRAINT valid_queues CHECK (
    array_ndims(queues) = 1
    AND array_length(queues, 1) IS NOT NULL
  )
);

-- Tell one listening locker about a job that is ready now. Lockers are
-- weighted by their worker count: each appears once per worker, the rows are
-- shuffled by md5 and numbered from 0, and the job id modulo the number of
-- rows picks one, so successive jobs spread over the lockers evenly.
CREATE FUNCTION public.que_job_notify() RETURNS trigger
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

CREATE TRIGGER que_job_notify
  AFTER INSERT ON public.que_jobs
  FOR EACH ROW
  EXECUTE FUNCTION public.que_job_notify();

CREATE FUNCTION public.que_determine_job_state(job public.que_jobs) RETURNS text
LANGUAGE sql AS $$
  SELECT
    CASE
      WHEN job.expired_at IS NOT NULL THEN 'expired'
      WHEN job.finished_at IS NOT NULL THEN 'finished'
      WHEN job.error_count > 0 THEN 'errored'
      WHEN job.run_at > CURRENT_TIMESTAMP THEN 'scheduled'
      ELSE 'ready'
    END
$$;

-- Announce every change of a job's state on the 'que_state' channel.
CREATE FUNCTION public.que_state_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
  DECLARE
    job record;
    previous_state text;
    current_state text;
    message json;
  BEGIN
    IF TG_OP = 'INSERT' THEN
      job := NEW;
      previous_state := 'nonexistent';
      current_state := public.que_determine_job_state(NEW);
    ELSIF TG_OP = 'DELETE' THEN
      job := OLD;
      previous_state := public.que_determine_job_state(OLD);
      current_state := 'nonexistent';
    ELSE
      job := NEW;
      previous_state := public.que_determine_job_state(OLD);
      current_state := public.que_determine_job_state(NEW);

      IF previous_state = current_state THEN
        RETURN NULL;
      END IF;
    END IF;

    SELECT row_to_json(payload)
      INTO message
      FROM (
        SELECT
          'job_change' AS message_type,
          job.id       AS id,
          job.queue    AS queue,
          coalesce(job.data->'tags', '[]'::jsonb) AS tags,
          to_char(job.run_at AT TIME ZONE 'UTC',
                  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS run_at,
          to_char(now() AT TIME ZONE 'UTC',
                  'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS time,
          CASE job.job_class
            WHEN 'ActiveJob::QueueAdapters::QueAdapter::JobWrapper'
              THEN coalesce(job.args->0->>'job_class', job.job_class)
            ELSE job.job_class
          END AS job_class,
          previous_state AS previous_state,
          current_state  AS current_state
      ) AS payload;

    PERFORM pg_notify('que_state', message::text);

    RETURN NULL;
  END
$$;

CREATE TRIGGER que_state_notify
  AFTER INSERT OR UPDATE OR DELETE ON public.que_jobs
  FOR EACH ROW
  EXECUTE FUNCTION public.que_state_notify();

-- A small key/value table for que's own bookkeeping; each value is an object.
CREATE TABLE public.que_values (
  key   text  PRIMARY KEY,
  value jsonb NOT NULL DEFAULT '{}'
    CONSTRAINT valid_value CHECK (jsonb_typeof(value) = 'object')
) WITH (fillfactor = 90);

COMMENT ON TABLE public.que_jobs IS '4';
