"""Fixtures for tests that need a database of their own on the test server."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo


@pytest.fixture
def empty_database(que_database_url: str) -> Iterator[str]:
    """The connection string of a new database without que's tables, dropped afterwards."""
    name = f"{conninfo_to_dict(que_database_url)['dbname']}_empty"
    maintenance = make_conninfo(que_database_url, dbname="postgres")
    with psycopg.connect(maintenance, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
        try:
            yield make_conninfo(que_database_url, dbname=name)
        finally:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
