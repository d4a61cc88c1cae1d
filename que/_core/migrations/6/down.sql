-- Version 6 -> 5.

ALTER TABLE public.que_jobs
  ALTER COLUMN job_schema_version DROP NOT NULL,
  ALTER COLUMN job_schema_version SET DEFAULT 1;

ALTER INDEX public.que_poll_idx RENAME TO que_poll_idx_with_job_schema_version;
CREATE INDEX que_poll_idx
  ON public.que_jobs (queue, priority, run_at, id)
  WHERE (finished_at IS NULL AND expired_at IS NULL);

DROP INDEX public.que_jobs_kwargs_gin_idx;
ALTER TABLE public.que_jobs DROP COLUMN kwargs;

COMMENT ON TABLE public.que_jobs IS '5';
