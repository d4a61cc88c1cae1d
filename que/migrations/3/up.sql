-- Version 3: priority is a smallint and defaults to 100.

ALTER TABLE public.que_jobs ALTER COLUMN priority TYPE smallint;
ALTER TABLE public.que_jobs ALTER COLUMN priority SET DEFAULT 100;

COMMENT ON TABLE public.que_jobs IS '3';
