-- Version 1 -> 0: remove que entirely (the sequence goes with its owning column).

DROP TABLE public.que_jobs;
