"""Stable job names: which ``Job`` subclass a stored ``job_class`` string means.

A class is stored under its import path (``billing.jobs.ChargeCard``) unless it
declares another name (``class ChargeCard(Job, name="ChargeCreditCard")``), for
example to share a queue with a Ruby app. Workers look names up here first, then
try to import a dotted path.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from que.errors import UnknownJobClass
from que.log import log_event

if TYPE_CHECKING:
    from que.job import Job

_classes: dict[str, type[Job]] = {}


def register(job_class: type[Job]) -> None:
    """Remember ``job_class`` under its job name; a later class of that name wins."""
    name = job_class.job_name
    previous = _classes.get(name)
    if previous is not None and _path(previous) != _path(job_class):
        log_event(logging.WARNING, "job_class_renamed", job_class=name, previous=repr(previous),
                  current=repr(job_class))
    _classes[name] = job_class


def _path(job_class: type[Job]) -> str:
    return f"{job_class.__module__}.{job_class.__qualname__}"


def find(name: str) -> type[Job] | None:
    """The class registered as ``name``, if this process has defined it."""
    return _classes.get(name)


def resolve(name: str) -> type[Job]:
    """The class stored as ``name``: registered, or importable by its dotted path."""
    found = _classes.get(name)
    if found is None:
        _import_owner(name)
        found = _classes.get(name)
    if found is None:
        raise UnknownJobClass(name)
    return found


def _import_owner(name: str) -> None:
    """Import the longest module prefix of a dotted name, which registers its classes."""
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        try:
            importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        return
