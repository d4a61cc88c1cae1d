-- Version 2: named queues; the queue leads the primary key.

ALTER TABLE public.que_jobs ADD COLUMN queue text NOT NULL DEFAULT '';

ALTER TABLE public.que_jobs DROP CONSTRAINT que_jobs_pkey;
ALTER TABLE public.que_jobs
  ADD CONSTRAINT que_jobs_pkey PRIMARY KEY (queue, priority, run_at, job_id);

COMMENT ON TABLE public.que_jobs IS '2';
