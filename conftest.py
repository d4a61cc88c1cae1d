"""The project's own suite uses que_testing (loaded through its pytest11 entry
point), pytester to test the plugin as a user project would, and the worker
fixtures of ``tests/worker_fixtures.py`` and ``tests/database_fixtures.py``
(``tests`` is on ``pythonpath``)."""

pytest_plugins = ["pytester", "worker_fixtures", "database_fixtures"]
