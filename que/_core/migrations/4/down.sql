-- Version 4 -> 3. Finished and expired jobs have no place in version 3 and
-- are deleted. Columns are rebuilt so that the row has version 3's exact
-- column order (..., job_class, args, error_count, last_error, queue).

DROP TABLE public.que_values;

DROP TRIGGER que_state_notify ON public.que_jobs;
DROP TRIGGER que_job_notify ON public.que_jobs;
DROP FUNCTION public.que_state_notify();
DROP FUNCTION public.que_determine_job_state(public.que_jobs);
DROP FUNCTION public.que_job_notify();
DROP TABLE public.que_lockers;

DELETE FROM public.que_jobs
WHERE finished_at IS NOT NULL OR expired_at IS NOT NULL;

DROP INDEX public.que_poll_idx;
DROP INDEX public.que_jobs_data_gin_idx;
DROP INDEX public.que_jobs_args_gin_idx;

ALTER TABLE public.que_jobs
  DROP CONSTRAINT que_jobs_pkey,
  DROP CONSTRAINT queue_length,
  DROP CONSTRAINT job_class_length,
  DROP CONSTRAINT valid_args,
  DROP CONSTRAINT valid_data,
  DROP CONSTRAINT error_length;

DROP FUNCTION public.que_validate_tags(jsonb);

ALTER TABLE public.que_jobs RESET (fillfactor);

ALTER TABLE public.que_jobs RENAME COLUMN id TO job_id;
ALTER SEQUENCE public.que_jobs_id_seq RENAME TO que_jobs_job_id_seq;

ALTER TABLE public.que_jobs RENAME COLUMN args TO v4_args;
ALTER TABLE public.que_jobs RENAME COLUMN error_count TO v4_error_count;
ALTER TABLE public.que_jobs RENAME COLUMN queue TO v4_queue;

ALTER TABLE public.que_jobs
  ADD COLUMN args        json    NOT NULL DEFAULT '[]'::json,
  ADD COLUMN error_count integer NOT NULL DEFAULT 0,
  ADD COLUMN last_error  text,
  ADD COLUMN queue       text    NOT NULL DEFAULT '';

UPDATE public.que_jobs
SET
  args = v4_args::json,
  error_count = v4_error_count,
  last_error =
    CASE WHEN last_error_backtrace IS NULL
      THEN last_error_message
      ELSE coalesce(last_error_message, '') || E'\n' || last_error_backtrace
    END,
  queue = CASE v4_queue WHEN 'default' THEN '' ELSE v4_queue END;

ALTER TABLE public.que_jobs
  DROP COLUMN v4_args,
  DROP COLUMN v4_error_count,
  DROP COLUMN last_error_message,
  DROP COLUMN v4_queue,
  DROP COLUMN last_error_backtrace,
  DROP COLUMN finished_at,
  DROP COLUMN expired_at,
  DROP COLUMN data;

ALTER TABLE public.que_jobs
  ADD CONSTRAINT que_jobs_pkey PRIMARY KEY (queue, priority, run_at, job_id);

COMMENT ON TABLE public.que_jobs IS '3';
