"""The versioned schema, compatible with Que 2.x: version 7, one step at a time.

Each version ``N`` has ``N/up.sql`` (from N-1) and ``N/down.sql`` (back to N-1);
the version is kept as the comment on ``que_jobs``, 0 meaning no table.
"""

from __future__ import annotations

from importlib import resources

from que import db, sql
from que.connection import Connection
from que.errors import MigrationError, SchemaError

LATEST_VERSION = 7


def db_version(connection: Connection) -> int:
    """The schema version of the database ``connection`` is on."""
    return int(db.run(connection, sql.DB_VERSION)[0]["version"])


def require_latest(connection: Connection, where: str = "the database") -> None:
    """Raise :class:`SchemaError`, with the remedy, unless the schema is at
    :data:`LATEST_VERSION`. ``where`` names the database in the message."""
    version = db_version(connection)
    if version == LATEST_VERSION:
        return
    if version == 0:
        message = (f"que's tables are missing from {where}: create them with Que.migrate() "
                   "(e.g. in a migration of your app)")
    elif version < LATEST_VERSION:
        message = (f"the que schema of {where} is at version {version}, this que needs "
                   f"{LATEST_VERSION}: run Que.migrate()")
    else:
        message = (f"the que schema of {where} is at version {version}, newer than this "
                   f"que knows ({LATEST_VERSION}): upgrade que")
    raise SchemaError(message, version=version)


def migrate(connection: Connection, version: int = LATEST_VERSION) -> None:
    """Step the schema up or down to ``version``, all in one transaction."""
    if isinstance(version, bool) or not isinstance(version, int) or not (
        0 <= version <= LATEST_VERSION
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
