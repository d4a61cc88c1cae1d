-- Version 7 -> 6: the notify triggers fire unconditionally again.

DROP TRIGGER que_job_notify ON public.que_jobs;
CREATE TRIGGER que_job_notify
  AFTER INSERT ON public.que_jobs
  FOR EACH ROW
  EXECUTE FUNCTION public.que_job_notify();

DROP TRIGGER que_state_notify ON public.que_jobs;
CREATE TRIGGER que_state_notify
  AFTER INSERT OR UPDATE OR DELETE ON public.que_jobs
  FOR EACH ROW
  EXECUTE FUNCTION public.que_state_notify();

COMMENT ON TABLE public.que_jobs IS '6';
