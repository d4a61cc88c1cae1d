"""The fault suite: real faults injected into real `que` processes (``pytest -m fault``).

Its private PostgreSQL server's fixtures (``private_server.py``) are loaded by
the root conftest, as pytest wants plugins declared there."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(item.path).parents:
            item.add_marker(pytest.mark.fault)
