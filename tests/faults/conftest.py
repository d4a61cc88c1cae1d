"""The fault suite: real faults injected into real `que` processes (``pytest -m fault``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from private_server import private_db, private_que_processes, private_server

__all__ = ["private_db", "private_que_processes", "private_server"]  # fixtures, found by name

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.fault)
