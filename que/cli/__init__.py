"""The ``que`` command: import the modules that define your jobs, then work them.

    que [options] [module ...]

Each argument is a module name (``myapp.jobs``) or a Python file
(``jobs/billing.py``), imported with the current directory on ``sys.path``, as
``python -m`` does. The database comes from ``--connection-url``, else
``$DATABASE_URL``, else the libpq environment (``PGHOST``, ``PGDATABASE``, ...).
If an imported module sets ``Que.connection`` itself, jobs run on that and
the URL (if given) is used only for the lock connection; otherwise the command
makes a connection pool for the workers from the same URL.

Logs are JSON lines on stdout; the start-up banner and fatal errors go to
stderr. SIGINT or SIGTERM stops the process safely at any moment (see
``docs/reference/cli.md``).

This module imports only the standard library: :func:`main` installs the
signal handlers before the command (``que.cli._process``) loads.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from que.cli._signals import StopSignals


def main(argv: Sequence[str] | None = None) -> int:
    """The console script: ``que [options] [module ...]``. Returns the exit code."""
    signals = StopSignals().install()
    try:
        from que.cli._process import command  # after the handlers: it loads psycopg and more

        return command(sys.argv[1:] if argv is None else argv, signals)
    finally:
        signals.restore()
