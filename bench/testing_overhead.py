"""Per-test overhead of que_testing's isolation, next to pytest-postgresql's own.

Generates a throwaway test project with N empty tests for each way of getting a
clean database, runs each with pytest in a subprocess, and prints the median
time per test (setup + call + teardown), leaving out the first test, which pays
for the session's set-up.

    python bench/testing_overhead.py            # N = 300
    python bench/testing_overhead.py -n 500

Needs PostgreSQL as pytest-postgresql's defaults find it (127.0.0.1:5432, user
postgres) or $QUE_TEST_DATABASE_URL.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

RECORDER = """
import json

durations = {}


def pytest_runtest_logreport(report):
    durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    with open("durations.json", "w") as out:
        json.dump(list(durations.values()), out)
"""

PER_TEST_DATABASE = """
from pytest_postgresql import factories

from que import Que
import psycopg


def load_que_schema(host, port, user, dbname, password, **_):
    with psycopg.connect(host=host, port=port, user=user, dbname=dbname,
                         password=password) as connection, Que.using(connection):
        Que.migrate()


postgresql_noproc = factories.postgresql_noproc(load=[load_que_schema])
postgresql_per_test = factories.postgresql("postgresql_noproc")
"""

MODES = {
    "que_db (rollback)": ("que_db", ""),
    "que_committed_db (delete)": ("que_committed_db", ""),
    "pytest-postgresql (database per test)": ("postgresql_per_test", PER_TEST_DATABASE),
}


def measure(fixture: str, conftest: str, count: int) -> list[float]:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "conftest.py").write_text(RECORDER + conftest)
        tests = "".join(f"def test_{n}({fixture}):\n    pass\n\n\n" for n in range(count))
        (root / "test_overhead.py").write_text(tests)
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
            cwd=root,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return list(json.loads((root / "durations.json").read_text()))[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="tests per mode (default 300)")
    count = parser.parse_args().n
    print(f"per-test overhead, median of {count - 1} tests (first left out), milliseconds")
    results = {}
    for label, (fixture, conftest) in MODES.items():
        durations = [seconds * 1000 for seconds in measure(fixture, conftest, count)]
        results[label] = statistics.median(durations)
        quantiles = statistics.quantiles(durations, n=100)
        print(f"  {label:40} median {results[label]:7.2f}   p90 {quantiles[89]:7.2f}")
    fastest = min(results.values())
    print("ratios to the fastest:")
    for label, median in results.items():
        print(f"  {label:40} {median / fastest:6.1f}x")


if __name__ == "__main__":
    main()
