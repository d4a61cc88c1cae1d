"""The user docs (every page under docs/, and README.md's links into them), run
against the test database so that they stay true.

The convention every page follows:

- Each fenced block tagged ``python`` runs. A page's blocks run in order, in one
  namespace, so a later block can use what an earlier one defined. The namespace's
  ``__name__`` is ``docs_<page>``, from the page's file name without its folder
  (``docs/how-to/jobs.md`` -> ``docs_jobs``), so job classes defined on a page are
  stored as ``docs_jobs.ChargeCreditCard``. File names are therefore unique across
  the folders of docs/.
- Blocks that must not run (a framework that is not installed here, the ``que``
  command, dropping the schema, something that needs a PgBouncer) are tagged
  ``python-norun``; shell, SQL and output blocks are tagged ``shell``, ``sql``,
  ``text`` and so on. Any other tag that starts with ``py`` is an error, so a typo
  cannot silently skip an example, and so is a block without a tag.
- A page runs with ``Que.connection`` set to a connection pool on the migrated test
  database (the ``que_committed_db`` fixture: writes really commit) and with the
  environment variables ``DATABASE_URL`` and ``PGBOUNCER_URL`` both naming that
  database (there is no PgBouncer here; tests/faults/test_pgbouncer.py runs the
  deployment page's PgBouncer recipe through a real one). Examples may create
  their own ``psycopg_pool.ConnectionPool(os.environ["DATABASE_URL"], open=True)``
  or ``psycopg.connect(...)`` but must close it: a pool left open fails the test
  (its threads keep running), and so does a connection (it warns when collected,
  and warnings are errors).
- Afterwards the test puts back every ``Que`` setting, the middleware lists, the
  in-process pool's settings and the ``que`` loggers, drops the tables the page
  created, and deletes every job. Pages must not migrate the schema down in a
  runnable block.
- An example proves a claim with a plain ``assert``; a failing assert fails the page.
- A page whose blocks define pytest tests (functions named ``test_...``, as the
  testing how-to does) is also run by pytest, in a process of its own with the
  que_testing plugin, and every one of those tests must pass.
- Pages of the tutorial and the how-to guides keep at least one runnable example.

Links are checked too: a relative link must name a file that exists and, with
``#anchor``, a heading of that page; every page is linked from docs/index.md.
docs/reference/api.md is generated from the code's docstrings and must be up to
date (``python docs/reference/build_api.py`` rewrites it).
"""

from __future__ import annotations

import difflib
import gc
import importlib.util
import logging
import re
import subprocess
import sys
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import ModuleType

import pytest

from que import Que
from que.worker import inprocess

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
API_BUILDER = DOCS / "reference" / "build_api.py"
API_COMMAND = "python docs/reference/build_api.py"

# Every page, as a path relative to docs/ ("how-to/jobs.md").
PAGES = sorted(path.relative_to(DOCS).as_posix() for path in DOCS.rglob("*.md"))

# Pages that teach by example and so must keep a runnable one.
TEACHING_FOLDERS = ("tutorial", "how-to")

RUN_TAG = "python"
NORUN_TAG = "python-norun"

SETTINGS = (
    "connection",
    "mode",
    "default_queue",
    "error_notifier",
    "clock",
    "logger",
    "internal_logger",
    "log_formatter",
    "job_module_prefixes",
)
LOGGERS = ("", "que", "que.internal")

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$")

PAGE_TESTS_TIMEOUT = 300  # seconds for pytest to run a page's tests


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    tag: str
    line: int  # the line of the first line of code, counting from 1
    source: str


def blocks(page: str) -> list[Block]:
    """Every fenced block of ``page``, in order."""
    found: list[Block] = []
    lines = (DOCS / page).read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        fence, indent = opening["fence"], len(opening["indent"])
        start = index
        while index < len(lines) and not lines[index].strip().startswith(fence):
            index += 1
        code = [line[indent:] if line[:indent].isspace() else line for line in lines[start:index]]
        found.append(Block(opening["info"].strip().split(" ")[0], start + 1, "\n".join(code)))
        index += 1
    return found


def runnable(page: str) -> list[Block]:
    return [block for block in blocks(page) if block.tag == RUN_TAG]


def namespace_name(page: str) -> str:
    return "docs_" + PurePosixPath(page).stem.replace("-", "_")


def public_tables() -> set[str]:
    rows = Que.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


@pytest.fixture
def restored_que():
    """Put back whatever a page changes in que's settings and logging."""
    settings = {name: getattr(Que, name) for name in SETTINGS}
    job_middleware = list(Que.job_middleware)
    sql_middleware = list(Que.sql_middleware)
    pool_settings = inprocess.settings()
    loggers = {
        name: (logger, logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for name in LOGGERS
        for logger in [logging.getLogger(name)]
    }
    try:
        yield
    finally:
        for logger, level, handlers, propagate, disabled in loggers.values():
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate
            logger.disabled = disabled
        Que.job_middleware[:] = job_middleware
        Que.sql_middleware[:] = sql_middleware
        inprocess.configure(pool_settings)
        for name, value in settings.items():
            setattr(Que, name, value)


def threads_left_running(before: set[threading.Thread]) -> list[str]:
    """The threads started since ``before`` that do not end within a second."""
    left = []
    for thread in set(threading.enumerate()) - before:
        thread.join(timeout=1.0)
        if thread.is_alive():
            left.append(thread.name)
    return sorted(left)


def run_page(page: str) -> dict[str, object]:
    """Run the page's blocks in order in one namespace, and return the namespace."""
    namespace: dict[str, object] = {"__name__": namespace_name(page)}
    path = str(DOCS / page)
    for block in runnable(page):
        # Pad with blank lines so that a traceback names the page's own line numbers.
        code = compile("\n" * (block.line - 1) + block.source, path, "exec")
        try:
            exec(code, namespace)
        except Exception as error:
            failure = error
        else:
            continue
        # A short report: the page's line, then a plain traceback (not the whole page).
        frames = traceback.extract_tb(failure.__traceback__)
        line = next((f.lineno for f in reversed(frames) if f.filename == path), block.line)
        details = "".join(traceback.format_exception(failure))
        pytest.fail(f"docs/{page}:{line}: {failure!r}\n\n{details}", pytrace=False)
    return namespace


def page_tests(namespace: dict[str, object]) -> list[str]:
    """The pytest tests a page defines."""
    return [
        name
        for name, value in namespace.items()
        if name.startswith("test_")
        and callable(value)
        and getattr(value, "__module__", None) == namespace["__name__"]
    ]


def run_page_tests(page: str, tests: list[str], directory: Path, database_url: str) -> None:
    """Run the page's blocks as a test module with pytest and the que_testing plugin."""
    lines: list[str] = []
    for block in runnable(page):  # each block at its line of the page, for tracebacks
        lines += [""] * (block.line - 1 - len(lines)) + block.source.splitlines()
    module = directory / f"test_{namespace_name(page)}.py"
    module.write_text("\n".join(lines) + "\n")
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        "--strict-markers",
        "--rootdir",
        str(directory),
        f"--que-dsn={database_url}",
        str(module),
    ]
    result = subprocess.run(
        command, cwd=directory, capture_output=True, text=True, timeout=PAGE_TESTS_TIMEOUT
    )
    summary = f"{len(tests)} passed"
    if result.returncode != 0 or summary not in result.stdout:
        output = (result.stdout + result.stderr).replace(str(module), f"docs/{page}")
        pytest.fail(
            f"docs/{page}: its tests ({', '.join(tests)}) did not all pass under "
            f"pytest (wanted {summary!r}):\n\n{output}",
            pytrace=False,
        )


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(
    page, que_committed_db, que_database_url, restored_que, monkeypatch, tmp_path
):
    monkeypatch.setenv("DATABASE_URL", que_database_url)
    monkeypatch.setenv("PGBOUNCER_URL", que_database_url)
    tables_before = public_tables()
    threads_before = set(threading.enumerate())
    try:
        namespace = run_page(page)
    finally:
        Que.connection = que_committed_db
        Que.mode = "off"
        for table in sorted(public_tables() - tables_before):
            Que.execute(f'DROP TABLE IF EXISTS public."{table}" CASCADE')
    gc.collect()  # a connection the page left open warns now, which fails the test
    left_running = threads_left_running(threads_before)
    assert not left_running, (
        f"docs/{page} left threads running ({', '.join(left_running)}): "
        "close the ConnectionPool it opened"
    )
    tests = page_tests(namespace)
    if tests:
        run_page_tests(page, tests, tmp_path, que_database_url)


def test_every_page_has_a_namespace_of_its_own():
    names: dict[str, list[str]] = {}
    for page in PAGES:
        names.setdefault(namespace_name(page), []).append(page)
    shared = {name: pages for name, pages in names.items() if len(pages) > 1}
    assert not shared, (
        f"pages whose examples would share a module name (job classes are stored under "
        f"it): {shared}; give the files different names"
    )


@pytest.mark.parametrize("page", PAGES)
def test_code_blocks_are_tagged_on_purpose(page):
    for block in blocks(page):
        if block.tag.lower().startswith("py") and block.tag not in (RUN_TAG, NORUN_TAG):
            pytest.fail(
                f"docs/{page}:{block.line - 1}: a block tagged {block.tag!r} is neither run nor "
                f"marked as not runnable: tag it {RUN_TAG!r} or {NORUN_TAG!r}"
            )
        if block.tag == "":
            pytest.fail(f"docs/{page}:{block.line - 1}: give the block a language tag")


@pytest.mark.parametrize("page", [p for p in PAGES if p.startswith(TEACHING_FOLDERS)])
def test_teaching_pages_keep_runnable_examples(page):
    assert runnable(page), f"docs/{page} has no runnable ```python example left"


def anchors(path: Path) -> set[str]:
    """The GitHub-style anchors of a page's headings."""
    found = set()
    in_code = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            title = re.sub(r"[^\w\- ]", "", title.replace("`", ""))
            found.add(title.replace(" ", "-"))
    return found


LINK = re.compile(r"\]\((?P<target>[^)#\s]*)(?:#(?P<anchor>[^)\s]+))?\)")


def links(path: Path) -> list[tuple[Path, str | None, str]]:
    """The relative links of a Markdown file: (the file linked to, anchor, as written)."""
    text = re.sub(r"```.*?```", "", path.read_text(), flags=re.DOTALL)
    found = []
    for link in LINK.finditer(text):
        target = link["target"]
        if "://" in target or target.startswith("mailto:"):
            continue
        linked = (path.parent / target).resolve() if target else path
        found.append((linked, link["anchor"], link[0]))
    return found


def check_links(path: Path, name: str) -> None:
    for linked, anchor, written in links(path):
        assert linked.exists(), f"{name} links to a missing file: {written}"
        if anchor is not None and linked.suffix == ".md":
            assert anchor in anchors(linked), (
                f"{name} links to #{anchor} of {linked.relative_to(ROOT)}, which has no such "
                f"heading: {written}"
            )


@pytest.mark.parametrize("page", PAGES)
def test_links_between_pages_resolve(page):
    check_links(DOCS / page, f"docs/{page}")


def test_readme_links_into_the_docs_resolve():
    check_links(README, "README.md")


def test_the_index_links_every_page():
    linked = {path for path, _, _ in links(DOCS / "index.md")}
    missing = [
        page for page in PAGES if page != "index.md" and (DOCS / page).resolve() not in linked
    ]
    assert not missing, f"docs/index.md does not link to {missing}"


def load_api_builder() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_build_api", API_BUILDER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_api_reference_is_up_to_date():
    expected, _ = load_api_builder().render()
    committed = (DOCS / "reference" / "api.md").read_text()
    if committed != expected:
        diff = "".join(
            list(
                difflib.unified_diff(
                    committed.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    "docs/reference/api.md (committed)",
                    "docs/reference/api.md (from the code)",
                )
            )[:60]
        )
        pytest.fail(
            f"docs/reference/api.md is out of date with the code's docstrings and "
            f"signatures: regenerate it with `{API_COMMAND}`\n\n{diff}",
            pytrace=False,
        )
