-- Version 3 -> 2: priority back to an integer defaulting to 1.

ALTER TABLE public.que_jobs ALTER COLUMN priority TYPE integer;
ALTER TABLE public.que_jobs ALTER COLUMN priority SET DEFAULT 1;

COMMENT ON TABLE public.que_jobs IS '2';
