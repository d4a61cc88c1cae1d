-- Version 3 -> 2: a single unnamed queue again (every job's queue is
-- forgotten); priority is an integer again (still defaulting to 100).

ALTER TABLE public.que_jobs
  DROP CONSTRAINT que_jobs_pkey,
  DROP COLUMN queue,
  ALTER COLUMN priority TYPE integer,
  ADD CONSTRAINT que_jobs_pkey PRIMARY KEY (priority, run_at, job_id);

COMMENT ON TABLE public.que_jobs IS '2';
