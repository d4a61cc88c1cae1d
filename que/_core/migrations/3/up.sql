-- Version 3: named queues (the unnamed one is ''), leading the primary key;
-- priority becomes a smallint.

ALTER TABLE public.que_jobs
  DROP CONSTRAINT que_jobs_pkey,
  ALTER COLUMN priority TYPE smallint,
  ADD COLUMN queue text NOT NULL DEFAULT '',
  ADD CONSTRAINT que_jobs_pkey PRIMARY KEY (queue, priority, run_at, job_id);

COMMENT ON TABLE public.que_jobs IS '3';
