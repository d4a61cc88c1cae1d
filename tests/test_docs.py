"""The examples of the user docs (docs/*.md, the pages in PAGES), run against the
test database so that they stay true.

The convention every page follows:

- Each fenced block tagged ``python`` runs. A page's blocks run in order, in one
  namespace, so a later block can use what an earlier one defined. The namespace's
  ``__name__`` is ``docs_<page>`` (``docs/getting-started.md`` -> ``docs_getting_started``),
  so job classes defined on a page are stored as ``docs_getting_started.SendWelcomeEmail``.
- Blocks that must not run (a framework that is not installed here, the ``que`` command,
  dropping the schema) are tagged ``python-norun``; shell, SQL and output blocks are
  tagged ``shell``, ``sql``, ``text`` and so on. Any other tag that starts with ``py``
  is an error, so a typo cannot silently skip an example.
- A page runs with ``Que.connection`` set to a connection pool on the migrated test
  database (the ``que_committed_db`` fixture: writes really commit) and with the
  environment variable ``DATABASE_URL`` naming that database. Examples may create
  their own ``psycopg_pool.ConnectionPool(os.environ["DATABASE_URL"], open=True)`` or
  ``psycopg.connect(...)`` but must close it: a pool left open fails the test (its
  threads keep running), and so does a connection (it warns when collected, and
  warnings are errors).
- Afterwards the test puts back every ``Que`` setting, the middleware lists and the
  ``que`` loggers, drops the tables the page created, and deletes every job. Pages
  must not migrate the schema down in a runnable block.
- An example proves a claim with a plain ``assert``; a failing assert fails the page.

Links between pages are checked too: a relative link must name a page that exists
(or one of the pages other authors are still writing) and, with ``#anchor``, a
heading of that page.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from que import Que

DOCS = Path(__file__).resolve().parent.parent / "docs"

# The pages checked here. Add a page once its blocks follow the convention above.
PAGES = [
    "index.md", "getting-started.md", "jobs.md", "errors.md", "connections.md",
    "migrations.md", "logging.md", "inspecting.md",
]

# Pages that must keep at least one runnable example (the ones that teach the API).
PAGES_WITH_EXAMPLES = set(PAGES) - {"index.md"}

# Pages linked from the index that other authors write; a link to them is fine
# while they do not exist yet.
PLANNED_PAGES = {"workers.md", "cli.md", "deployment.md", "testing.md", "performance.md"}

RUN_TAG = "python"
NORUN_TAG = "python-norun"

SETTINGS = (
    "connection", "mode", "default_queue", "error_notifier", "clock", "logger",
    "internal_logger", "log_formatter",
)
LOGGERS = ("", "que", "que.internal")

FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+|~~~+)(?P<info>.*)$")


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
    return "docs_" + page.removesuffix(".md").replace("-", "_")


def public_tables() -> set[str]:
    rows = Que.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


@pytest.fixture
def restored_que():
    """Put back whatever a page changes in que's settings and logging."""
    settings = {name: getattr(Que, name) for name in SETTINGS}
    job_middleware = list(Que.job_middleware)
    sql_middleware = list(Que.sql_middleware)
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


def run_page(page: str) -> None:
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


@pytest.mark.parametrize("page", PAGES)
def test_examples_run(page, que_committed_db, que_database_url, restored_que, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", que_database_url)
    tables_before = public_tables()
    threads_before = set(threading.enumerate())
    try:
        run_page(page)
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


@pytest.mark.parametrize("page", PAGES)
def test_teaching_pages_keep_runnable_examples(page):
    assert (DOCS / page).exists(), f"docs/{page} is missing"
    if page in PAGES_WITH_EXAMPLES:
        assert runnable(page), f"docs/{page} has no runnable ```python example left"


def anchors(page: str) -> set[str]:
    """The GitHub-style anchors of a page's headings."""
    found = set()
    in_code = False
    for line in (DOCS / page).read_text().splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            title = line.lstrip("#").strip().lower()
            title = re.sub(r"[^\w\- ]", "", title.replace("`", ""))
            found.add(title.replace(" ", "-"))
    return found


LINK = re.compile(r"\]\((?P<target>[^)#\s]*)(?:#(?P<anchor>[^)\s]+))?\)")


@pytest.mark.parametrize("page", PAGES)
def test_links_between_pages_resolve(page):
    text = re.sub(r"```.*?```", "", (DOCS / page).read_text(), flags=re.DOTALL)
    for link in LINK.finditer(text):
        target, anchor = link["target"] or page, link["anchor"]
        if "://" in target or target.startswith("mailto:"):
            continue
        if not (DOCS / target).exists():
            assert target in PLANNED_PAGES, f"docs/{page} links to missing page {target!r}"
            continue
        if anchor is not None and target.endswith(".md"):
            assert anchor in anchors(target), (
                f"docs/{page} links to #{anchor} in {target}, which has no such heading"
            )
