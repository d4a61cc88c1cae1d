-- Version 6 (Que 2.0): keyword arguments get their own column; the poll index
-- that leads with the job schema version replaces version 4's; and every writer
-- must say which job schema it writes (que 2.x writes 2).

ALTER TABLE public.que_jobs ADD COLUMN kwargs jsonb NOT NULL DEFAULT '{}';
CREATE INDEX que_jobs_kwargs_gin_idx
  ON public.que_jobs USING gin (kwargs jsonb_path_ops);

DROP INDEX public.que_poll_idx;
ALTER INDEX public.que_poll_idx_with_job_schema_version RENAME TO que_poll_idx;

-- Version 5 allowed an explicit NULL; such a job was written in the old format.
UPDATE public.que_jobs SET job_schema_version = 1 WHERE job_schema_version IS NULL;

ALTER TABLE public.que_jobs
  ALTER COLUMN job_schema_version DROP DEFAULT,
  ALTER COLUMN job_schema_version SET NOT NULL;

COMMENT ON TABLE public.que_jobs IS '6';
