-- Version 2 -> 1: priority defaults to 1 again.

ALTER TABLE public.que_jobs ALTER COLUMN priority SET DEFAULT 1;

COMMENT ON TABLE public.que_jobs IS '1';
