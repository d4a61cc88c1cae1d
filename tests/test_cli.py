"""The `que` command: every option parsed and validated, errors, banner, logs, pidfile."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import worker_fixtures
from worker_fixtures import REPO, wait_for

from que import ConfigurationError, __version__
from que.cli import main
from que.cli._options import parse_args
from que.worker import PoolSettings, WorkerPool

DEFAULT_PRIORITIES = (10, 30, 50, None, None, None)


# -- parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            [],
            {
                "worker_priorities": DEFAULT_PRIORITIES,
                "queues": {},
                "poll_interval": 5.0,
                "maximum_buffer_size": 8,
                "minimum_buffer_size": 2,
                "wait_period": 0.05,
                "listen": True,
            },
        ),
        (["-i", "2.5"], {"poll_interval": 2.5}),
        (["--poll-interval=1"], {"poll_interval": 1.0}),
        (["-p", "10,any,20"], {"worker_priorities": (10, None, 20)}),
        (["--worker-priorities", "-5, ANY"], {"worker_priorities": (-5, None)}),
        (["-w", "3"], {"worker_priorities": (None, None, None)}),
        (["-p", "20,30,40", "-w", "6"], {"worker_priorities": (20, 30, 40, None, None, None)}),
        (["-p", "20,30,40", "--worker-count", "2"], {"worker_priorities": (20, 30)}),
        (["-q", "a", "--queue-name", "b=0.5"], {"queues": {"a": None, "b": 0.5}}),
        (
            ["--maximum-buffer-size", "0", "--minimum-buffer-size", "0"],
            {"maximum_buffer_size": 0, "minimum_buffer_size": 0},
        ),
        (["--wait-period", "10"], {"wait_period": 0.01}),
        (["--listen", "false"], {"listen": False}),
        (["--listen", "NO"], {"listen": False}),
        (["--listen"], {"listen": True}),
        (["--listen", "true"], {"listen": True}),
    ],
)
def test_pool_options(argv, expected):
    settings = parse_args(argv).settings
    for name, value in expected.items():
        assert getattr(settings, name) == value, name


@pytest.mark.parametrize(
    ("argv", "name", "expected"),
    [
        ([], "log_level", "info"),
        (["-l", "debug"], "log_level", "debug"),
        (["--log-level", "WARN"], "log_level", "warn"),
        (["-l", "fatal"], "log_level", "fatal"),
        ([], "log_internals", False),
        (["--log-internals"], "log_internals", True),
        ([], "connection_url", None),
        (["--connection-url", "postgresql://db/app"], "connection_url", "postgresql://db/app"),
        (["--pidfile", "/run/que.pid"], "pidfile", "/run/que.pid"),
        ([], "shutdown_timeout", None),
        (["--shutdown-timeout", "25"], "shutdown_timeout", 25.0),
        (["jobs", "-w", "2", "more.jobs", "x/y.py"], "modules", ["jobs", "more.jobs", "x/y.py"]),
    ],
)
def test_process_options(argv, name, expected):
    assert getattr(parse_args(argv), name) == expected


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-i", "0"], "-i/--poll-interval: must be a positive number of seconds, not '0'"),
        (["-i", "abc"], "positive number of seconds"),
        (["-i", "inf"], "positive number of seconds"),
        (["-i"], "expected one argument"),
        (["-l", "verbose"], "must be one of debug, info, warn, error, fatal"),
        (["-p", "10,,any"], "'' in '10,,any' is not a priority"),
        (["-p", "high"], "'high' in 'high' is not a priority"),
        (["-p", "40000"], "from -32768 to 32767"),
        (["-w", "0"], "-w/--worker-count: must be a whole number of workers >= 1"),
        (["-w", "two"], "whole number of workers"),
        (["-q", ""], "is not a queue"),
        (["-q", "=5"], "is not a queue"),
        (["-q", "x" * 101], "1 to 100 characters"),
        (["-q", "a=0"], "the poll interval in 'a=0' must be a positive number"),
        (["-q", "a=soon"], "the poll interval in 'a=soon'"),
        (["-q", "a", "-q", "a=1"], "queue 'a' is given twice"),
        (["--maximum-buffer-size", "-1"], "whole number of jobs >= 0"),
        (["--minimum-buffer-size", "x"], "whole number of jobs >= 0"),
        (["--maximum-buffer-size", "1"], "minimum_buffer_size (2) cannot be larger than"),
        (["--wait-period", "0"], "positive number of milliseconds"),
        (["--listen", "maybe"], "must be true or false, not 'maybe'"),
        (["--shutdown-timeout", "-3"], "positive number of seconds"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--poll"], "unrecognized arguments"),  # no abbreviations
    ],
)
def test_bad_options_give_one_line_and_exit_code_1(argv, message, capsys):
    assert main(argv) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("que: "), err
    assert message in err
    assert "see que --help" in err


def test_help_lists_every_option(capsys):
    assert main(["-h"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: que [options] [module ...]")
    for option in (
        "-h",
        "--help",
        "-i",
        "--poll-interval",
        "-l",
        "--log-level",
        "-p",
        "--worker-priorities",
        "-q",
        "--queue-name",
        "-w",
        "--worker-count",
        "-v",
        "--version",
        "--connection-url",
        "--log-internals",
        "--maximum-buffer-size",
        "--minimum-buffer-size",
        "--wait-period",
        "--listen",
        "--pidfile",
        "--shutdown-timeout",
    ):
        assert f" {option}" in out, option


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"que {__version__}\n"


# -- start-up errors: one line, exit code 1, never a traceback --------------------------------


def run_que(
    *args: str,
    env: dict[str, str] | None = None,
    command: tuple[str, ...] = (sys.executable, "-m", "que.cli"),
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*command, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        check=False,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("que: "), result.stderr
    assert message in result.stderr


def test_the_console_script_is_installed():
    que = shutil.which("que")
    assert que is not None, "the que console script is not on PATH (pip install -e .)"
    result = run_que("-v", command=(que,))
    assert result.returncode == 0 and result.stdout == f"que {__version__}\n"


def test_a_bad_option_from_the_command_line():
    assert_one_line_error(run_que("--worker-count", "-2"), "--worker-count")


def test_an_unimportable_module(que_database_url):
    result = run_que("no_such_module_anywhere", env={"DATABASE_URL": que_database_url})
    assert_one_line_error(
        result,
        "cannot import 'no_such_module_anywhere': "
        "ModuleNotFoundError: No module named 'no_such_module_anywhere'",
    )


def test_a_module_that_fails_on_import(tmp_path, que_database_url):
    broken = tmp_path / "broken_jobs.py"
    broken.write_text("raise RuntimeError('missing setting\\nsecond line')\n")
    result = run_que(str(broken), env={"DATABASE_URL": que_database_url})
    assert_one_line_error(result, "RuntimeError: missing setting second line")


def test_a_missing_file(que_database_url):
    result = run_que("jobs/nowhere.py", env={"DATABASE_URL": que_database_url})
    assert_one_line_error(result, "no such file: 'jobs/nowhere.py'")


def test_an_unreachable_database():
    result = run_que("--connection-url", "postgresql://postgres@127.0.0.1:1/que")
    assert_one_line_error(
        result, "cannot connect to the database (que on 127.0.0.1:1 as postgres): OperationalError:"
    )


def test_the_database_url_comes_from_the_environment():
    result = run_que(env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/from_env"})
    assert_one_line_error(result, "from_env on 127.0.0.1:1")


@pytest.mark.parametrize(
    ("url", "quoted"),
    [
        ("postgresql://app:s3%cret@127.0.0.1:1/app", 'invalid percent-encoded token: "***"'),
        ("postgresql://app:s3cret@[::1/app", 'in IPv6 host address in URI: "postgresql://app:***@'),
        ("postgresql://app@127.0.0.1/app?password=s3cret&port=x", "OperationalError"),
        ("host=127.0.0.1 password='s3cret' port=x dbname=app", "OperationalError"),
    ],
    ids=["bad percent escape", "unclosed IPv6 bracket", "query parameter", "keywords"],
)
@pytest.mark.parametrize("where", ["--connection-url", "--connection-url=", "DATABASE_URL"])
def test_no_password_from_a_connection_string_reaches_an_error_message(url, quoted, where):
    if where == "DATABASE_URL":
        result = run_que(env={"DATABASE_URL": url})
    elif where.endswith("="):
        result = run_que(where + url)
    else:
        result = run_que(where, url)
    assert_one_line_error(result, quoted)
    assert "s3" not in result.stderr, result.stderr


def test_a_pool_given_a_malformed_connection_string_names_it_without_the_password():
    pool = WorkerPool(PoolSettings(connection_url="postgresql://app:s3%cret@127.0.0.1/app"))
    with pytest.raises(ConfigurationError, match="cannot be read") as raised:
        pool.start()
    assert "s3" not in str(raised.value) and not pool.running


def test_a_database_without_que_tables(empty_database):
    result = run_que("--connection-url", empty_database)
    assert_one_line_error(result, "que's tables are missing from")
    assert "Que.migrate()" in result.stderr


# -- running -----------------------------------------------------------------------------


def test_banner_json_logs_pidfile_and_process_title(que_processes, worker_db, tmp_path):
    pidfile = tmp_path / "que.pid"
    process = que_processes(
        "-p",
        "10,any",
        "-q",
        "default",
        "-q",
        "mail=2.5",
        "--maximum-buffer-size",
        "4",
        "--minimum-buffer-size",
        "1",
        "--wait-period",
        "20",
        "--pidfile",
        str(pidfile),
        "--log-internals",
    )
    banner = wait_for(
        lambda: "Stop with" in process.stderr() and process.stderr(), what="the banner"
    )
    assert f"que {__version__}: worker process {process.pid}" in banner
    assert "workers:   2 (priorities: 10, any)" in banner
    assert "buffer:    up to 4 jobs, refilled below 1" in banner
    assert "queues:    default (poll every 5s), mail (poll every 2.5s)" in banner
    assert "listening: yes, checking every 20 ms" in banner
    assert pidfile.read_text() == f"{process.pid}\n"
    started = wait_for(lambda: process.events("worker_pool_started"))[0]
    assert {"lib", "hostname", "pid", "thread", "event"} <= set(started)
    assert started["pid"] == process.pid
    assert started["worker_priorities"] == [10, "any"]
    assert started["queues"] == {"default": 5.0, "mail": 2.5}
    wait_for(lambda: process.events("poll"), what="an internal event (--log-internals)")
    for line in process.stdout().splitlines():
        json.loads(line)  # stdout holds nothing but JSON lines
    if _has_setproctitle():
        cmdline = Path(f"/proc/{process.pid}/cmdline")
        wait_for(
            lambda: cmdline.read_bytes().startswith(b"que: working default,mail (0/2 busy"),
            what="the process title",
        )
    process.signal(signal.SIGINT)
    assert process.wait() == 0
    assert not pidfile.exists()
    assert process.events("signal_received")[0]["signal"] == "SIGINT"


def _has_setproctitle() -> bool:
    try:
        import setproctitle  # noqa: F401
    except ImportError:
        return False
    return Path("/proc/self/cmdline").exists()


def test_log_level_hides_events_below_it(que_processes, worker_db):
    from worker_jobs import Record

    quiet = que_processes("-l", "error")
    Record.enqueue("quiet")
    wait_for(lambda: worker_fixtures.ledger(worker_db) == ["quiet"])
    quiet.signal(signal.SIGTERM)
    assert quiet.wait() == 0
    assert quiet.events() == []
    loud = que_processes("-l", "debug")
    Record.enqueue("loud")
    wait_for(lambda: loud.events("job_worked"))
    assert loud.events("poll") == []  # internal events need --log-internals
    loud.signal(signal.SIGTERM)
    assert loud.wait() == 0


def test_jobs_run_on_the_connection_a_module_sets(
    que_processes, worker_db, tmp_path, que_database_url
):
    from worker_jobs import Record

    setup = tmp_path / "app_connection.py"
    setup.write_text(
        "import os\n"
        "from psycopg_pool import ConnectionPool\n"
        "from que import Que\n"
        "Que.connection = ConnectionPool(os.environ['APP_DSN'], min_size=1, max_size=3,\n"
        "                                open=True, kwargs={'application_name': 'que-test-app'})\n"
    )
    process = que_processes(
        modules=(str(setup), worker_fixtures.JOBS_FILE),
        extra_env={
            "APP_DSN": que_database_url,
            "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/unused",
        },
    )
    Record.enqueue("on-app-pool")
    wait_for(lambda: worker_fixtures.ledger(worker_db) == ["on-app-pool"])
    names = {
        row[0]
        for row in worker_db.execute(
            "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
        )
    }
    assert {"que-test-app", "que-locker"} <= names
    assert "que-worker" not in names
    process.signal(signal.SIGTERM)
    assert process.wait() == 0
