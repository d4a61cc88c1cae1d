-- Version 7 (Que 2.x): both notify triggers can be skipped for a transaction
-- with SET LOCAL que.skip_notify = 'true' (bulk enqueue).

DROP TRIGGER que_job_notify ON public.que_jobs;
CREATE TRIGGER que_job_notify
  AFTER INSERT ON public.que_jobs
  FOR EACH ROW
  WHEN (NOT coalesce(current_setting('que.skip_notify', true), '') = 'true')
  EXECUTE FUNCTION public.que_job_notify();

DROP TRIGGER que_state_notify ON public.que_jobs;
CREATE TRIGGER que_state_notify
  AFTER INSERT OR UPDATE OR DELETE ON public.que_jobs
  FOR EACH ROW
  WHEN (NOT coalesce(current_setting('que.skip_notify', true), '') = 'true')
  EXECUTE FUNCTION public.que_state_notify();

COMMENT ON TABLE public.que_jobs IS '7';
