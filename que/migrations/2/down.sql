-- Version 2 -> 1: a single unnamed queue again.

ALTER TABLE public.que_jobs DROP CONSTRAINT que_jobs_pkey;
ALTER TABLE public.que_jobs DROP COLUMN queue;
ALTER TABLE public.que_jobs
  ADD CONSTRAINT que_jobs_pkey PRIMARY KEY (priority, run_at, job_id);

COMMENT ON TABLE public.que_jobs IS '1';
