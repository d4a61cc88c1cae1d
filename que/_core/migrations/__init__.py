"""The versioned schema, compatible with Que 2.x: version 7, one step at a time.

Each version ``N`` has ``N/up.sql`` (from N-1) and ``N/down.sql`` (back to N-1);
the version is kept as the comment on ``que_jobs``, 0 meaning no table. Every
version is Ruby Que's schema of that number (tests/ruby_que_schema), so either
library migrates a database the other made.
"""

from __future__ import annotations

from importlib import resources

from que._core import db, sql
from que._core.connection import Connection
from que.errors import MigrationError, SchemaError

LATEST_VERSION = 7


def db_version(connection: Connection, where: str = "the database") -> int:
    """The schema version of the database ``connection`` is on (0: no tables).

    Raises :class:`SchemaError` if ``que_jobs`` exists but its comment is not a
    version: a guess would run the wrong steps (Ruby's Que refuses too).
    ``where`` names the database in the message.
    """
    row = db.run(connection, sql.DB_VERSION)[0]
    if not row["installed"]:
        return 0
    comment: str | None = row["comment"]
    if comment is not None and comment.isascii() and comment.isdigit() and int(comment) > 0:
        return int(comment)
    problem = (
        "has no comment"
        if comment is None
        else f"has the comment {comment!r}, which is not a version number"
    )
    raise SchemaError(
        f"cannot tell the que schema version of {where}: public.que_jobs {problem}, and "
        "que, like Ruby's Que, keeps the version there (a dump and restore can lose it: "
        "the schema dumps of Rails 7.0.0 to 7.0.2 do). If you know which version the "
        "schema is at, record it with COMMENT ON TABLE public.que_jobs IS '<version>' "
        "(for example '7', the latest) and try again"
    )


def require_latest(connection: Connection, where: str = "the database") -> None:
    """Raise :class:`SchemaError`, with the remedy, unless the schema is at
    :data:`LATEST_VERSION`. ``where`` names the database in the message."""
    version = db_version(connection, where)
    if version == LATEST_VERSION:
        return
    if version == 0:
        message = (
            f"que's tables are missing from {where}: create them with Que.migrate() "
            "(e.g. in a migration of your app)"
        )
    elif version < LATEST_VERSION:
        message = (
            f"the que schema of {where} is at version {version}, this que needs "
            f"{LATEST_VERSION}: run Que.migrate()"
        )
    else:
        message = (
            f"the que schema of {where} is at version {version}, newer than this "
            f"que knows ({LATEST_VERSION}): upgrade que"
        )
    raise SchemaError(message, version=version)


def migrate(connection: Connection, version: int = LATEST_VERSION) -> None:
    """Step the schema up or down to ``version``, all in one transaction."""
    if (
        isinstance(version, bool)
        or not isinstance(version, int)
        or not (0 <= version <= LATEST_VERSION)
    ):
        raise MigrationError(
            f"cannot migrate to version {version!r}: que knows versions 0 to {LATEST_VERSION}"
        )
    with connection.transaction():
        current = db_version(connection)
        if current > LATEST_VERSION:
            raise MigrationError(
                f"the database is at que schema version {current}, newer than this "
                f"que knows ({LATEST_VERSION}): upgrade que"
            )
        steps = (
            [(step, "up") for step in range(current + 1, version + 1)]
            if version >= current
            else [(step, "down") for step in range(current, version, -1)]
        )
        for step, direction in steps:
            db.run(connection, _script(step, direction))


def _script(version: int, direction: str) -> str:
    return (resources.files(__package__) / str(version) / f"{direction}.sql").read_text()
