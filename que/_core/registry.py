"""Stable job names: which ``Job`` subclass a stored ``job_class`` string means.

A class is stored under its import path (``billing.jobs.ChargeCard``) unless it
declares another name (``class ChargeCard(Job, name="ChargeCreditCard")``), for
example to share a queue with a Ruby app. Workers look names up here first.
They import a module to find a class only where ``Que.job_module_prefixes``
allows it: a row names its class, and on a database other apps write to, a row
must not be able to make a worker import whatever is on ``sys.path``.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from que._core.config import config
from que._core.log import log_event
from que.errors import UnknownJobClass

if TYPE_CHECKING:
    from que.job import Job

_classes: dict[str, type[Job]] = {}
_fallback: list[type[Job]] = []  # que.job.Job, which registers itself when defined


def register_fallback(job_class: type[Job]) -> None:
    """Make ``job_class`` the class of jobs whose own class is unknown (que's ``Job``)."""
    _fallback[:] = [job_class]


def fallback() -> type[Job]:
    """The class of a job whose own class is unknown here: que's ``Job``, enough to
    record the error on the row (and, by name, to enqueue a class defined elsewhere)."""
    if not _fallback:  # que.job registers it when imported, which any Job use does
        raise RuntimeError("que.job was never imported: import que.Job before running jobs")
    return _fallback[0]


def register(job_class: type[Job]) -> None:
    """Remember ``job_class`` under its job name; a later class of that name wins."""
    name = job_class.job_name
    previous = _classes.get(name)
    if previous is not None and _path(previous) != _path(job_class):
        log_event(
            logging.WARNING,
            "job_class_renamed",
            job_class=name,
            previous=repr(previous),
            current=repr(job_class),
        )
    _classes[name] = job_class


def _path(job_class: type[Job]) -> str:
    return f"{job_class.__module__}.{job_class.__qualname__}"


def find(name: str) -> type[Job] | None:
    """The class registered as ``name``, if this process has defined it."""
    return _classes.get(name)


def resolve(name: str) -> type[Job]:
    """The class stored as ``name``: registered, or found by importing its module
    where ``Que.job_module_prefixes`` allows it. A module that fails to import is
    reported as the reason the class is unknown."""
    found = _classes.get(name)
    if found is None:
        _import_owner(name)
        found = _classes.get(name)
    if found is None:
        raise UnknownJobClass(name)
    return found


def _allowed(module: str) -> bool:
    return any(
        module == prefix or module.startswith(f"{prefix}.") for prefix in config.job_module_prefixes
    )


def _import_owner(name: str) -> None:
    """Import the longest allowed module prefix of a dotted name, which registers
    its classes."""
    parts = name.split(".")
    for end in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:end])
        if not _allowed(module):
            continue
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as missing:
            if missing.name is not None and (module + ".").startswith(missing.name + "."):
                continue  # this module does not exist: a shorter prefix, perhaps
            raise UnknownJobClass(name, f"importing {module!r} failed: {missing}") from missing
        except (Exception, SystemExit) as error:  # whatever the module does at import
            raise UnknownJobClass(
                name, f"importing {module!r} raised {type(error).__qualname__}: {error}"
            ) from error
        return
