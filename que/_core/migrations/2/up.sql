-- Version 2: priority defaults to 100 instead of 1, so a job can be made more
-- important than the default without a negative priority.

ALTER TABLE public.que_jobs ALTER COLUMN priority SET DEFAULT 100;

COMMENT ON TABLE public.que_jobs IS '2';
