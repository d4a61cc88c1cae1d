"""Modules a job row may name (Que.job_module_prefixes allows them): each fails to import
its own way."""
