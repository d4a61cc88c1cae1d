"""The project's own suite uses que_testing (loaded through its pytest11 entry
point), pytester to test the plugin as a user project would, and the
fixtures of ``tests/worker_fixtures.py``, ``tests/database_fixtures.py`` and
``tests/faults/private_server.py`` (both folders are on ``pythonpath``)."""

pytest_plugins = ["pytester", "worker_fixtures", "database_fixtures", "private_server"]
