"""Run the comparison: ``python -m bench.compare [--runs 3] [--scale 1.0] [--only W1,W3]``.

For every selected workload, every run and every system (in a rotated order,
so no system always goes first), a fresh database is created, the system's
schema installed its own way, the workload measured and the database dropped.
Progress goes to stderr; the tables and the targets go to stdout at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from contextlib import ExitStack
from importlib import metadata
from pathlib import Path

from bench.compare import accounting
from bench.compare.database import DEFAULT_SERVER, Server, connect
from bench.compare.report import (
    NAME_WIDTH,
    Results,
    Target,
    format_value,
    print_targets,
    print_workload,
)
from bench.compare.systems import SYSTEM_NAMES, NotApplicable, Pending, System, expand, load
from bench.compare.workloads import (
    WORKLOADS,
    Case,
    Context,
    Invalid,
    Sizes,
    Values,
    Workload,
)

_METRICS = {metric.key: metric for workload in WORKLOADS for metric in workload.metrics}
TARGETS = (
    Target(
        "W2 drain >= 2x pgqueuer's rate",
        _METRICS["W2"],
        at_least=True,
        factor=2.0,
        reference="pgqueuer",
    ),
    Target(
        "W1 bulk enqueue >= pgqueuer's rate",
        _METRICS["W1"],
        at_least=True,
        factor=1.0,
        reference="pgqueuer",
    ),
    Target(
        "W3 round trip <= 1.3x raw single INSERT",
        _METRICS["W3"],
        at_least=False,
        factor=1.3,
        reference="raw",
    ),
    Target("W4 p99 <= 10 ms", _METRICS["W4 p99"], at_least=False, factor=10.0),
    Target("W5 first poll <= 10 ms, 10k head locked", _METRICS["W5"], at_least=False, factor=10.0),
    Target(
        "W5 follow-up <= 10 ms, 10k head locked", _METRICS["W5 next"], at_least=False, factor=10.0
    ),
)
PACKAGES = ("que", "pgqueuer", "procrastinate", "psycopg", "psycopg-pool")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.compare", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per workload (default 3)")
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="fraction of the issue's sizes (default 1.0; 0.05 for a smoke run)",
    )
    parser.add_argument(
        "--only",
        default=",".join(w.key for w in WORKLOADS),
        help="workloads, comma-separated (default W1,W2,W3,W4,W5)",
    )
    parser.add_argument(
        "--systems",
        default="que,pgqueuer,procrastinate,raw",
        help=f"systems, comma-separated, from {', '.join(SYSTEM_NAMES)} "
        "(raw means both raw baselines)",
    )
    parser.add_argument(
        "--server",
        default=os.environ.get("QUE_BENCH_SERVER", DEFAULT_SERVER),
        help="maintenance database of the server to use (default $QUE_BENCH_SERVER or %(default)s)",
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=None,
        help="where worker logs go (default: a new temporary directory)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.scale <= 0:
        parser.error("--runs must be >= 1 and --scale > 0")
    return args


def select_workloads(only: str) -> list[Workload]:
    wanted = [key.strip().upper() for key in only.split(",") if key.strip()]
    by_key = {workload.key: workload for workload in WORKLOADS}
    unknown = [key for key in wanted if key not in by_key]
    if unknown:
        raise SystemExit(
            f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(by_key)}"
        )
    return [workload for workload in WORKLOADS if workload.key in wanted]


def describe_machine(server: Server) -> list[str]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for package in PACKAGES:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (not installed)")
    return [
        f"machine: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), "
        f"Python {platform.python_version()}",
        f"server:  {server.describe()}",
        f"versions: {', '.join(versions)}",
    ]


def prepare(server: Server, system: System, stack: ExitStack) -> str:
    """A fresh database for ``system`` (dropped when ``stack`` closes), its schema installed."""
    dsn = stack.enter_context(server.fresh_database(system.name))
    with connect(dsn) as connection:
        system.install(dsn, connection)
        connection.execute(accounting.CREATE_TABLE)
    return dsn


class Recorder:
    """Files each case's outcome under its metrics and prints a progress line."""

    def __init__(self, results: Results, workload: Workload, run_label: str) -> None:
        self.results = results
        self.workload = workload
        self.run_label = run_label
        self.finished: set[str] = set()
        """Systems with nothing more to measure in this workload (n/a or pending)."""

    def __call__(self, case: Case, outcome: Values | Exception, seconds: float) -> None:
        name = case.system.name
        prefix = f"[{self.workload.key} {self.run_label}] {name:<{NAME_WIDTH}}"
        outcomes = [self.results.outcome(m.key, name) for m in self.workload.metrics]
        if isinstance(outcome, NotApplicable):
            self.finished.add(name)
            for found in outcomes:
                found.not_applicable = True
            return
        if isinstance(outcome, Pending):
            self.finished.add(name)
            for found in outcomes:
                found.pending = str(outcome)
            print(f"{prefix}pending: {outcome}", file=sys.stderr)
            return
        if isinstance(outcome, Exception):  # one failed run must not lose the others
            reason = (
                str(outcome)
                if isinstance(outcome, Invalid)
                else (f"{type(outcome).__name__}: {outcome}")
            )
            for found in outcomes:
                found.invalid.append(reason)
            print(f"{prefix}INVALID: {reason}", file=sys.stderr)
            if not isinstance(outcome, Invalid):
                traceback.print_exception(outcome, file=sys.stderr)
            return
        shown = []
        for metric, found in zip(self.workload.metrics, outcomes, strict=True):
            found.values.append(outcome[metric.key])
            shown.append(f"{metric.key} {format_value(metric, outcome[metric.key])} {metric.unit}")
        print(f"{prefix}{', '.join(shown)}  ({seconds:.1f} s)", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    server = Server(args.server)
    workloads = select_workloads(args.only)
    names = expand([name.strip() for name in args.systems.split(",") if name.strip()])
    sizes = Sizes().scaled(args.scale)
    log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="que-bench-"))
    results = Results()

    systems: list[System] = []
    for name in names:
        try:
            systems.append(load(name))
        except ImportError as error:
            for workload in workloads:
                for metric in workload.metrics:
                    results.outcome(
                        metric.key, name
                    ).pending = f"cannot import ({error}); pip install -e '.[bench]'"
    peers = [system.name for system in systems if system.peer]

    print("\n".join(describe_machine(server)))
    print(
        f"runs: {args.runs}, scale: {args.scale:g}, systems: {', '.join(names)}, "
        f"worker logs: {log_dir}",
        flush=True,
    )

    for workload in workloads:
        finished: set[str] = set()
        for run_index in range(args.runs):
            recorder = Recorder(results, workload, f"{run_index + 1}/{args.runs}")
            shift = run_index % max(1, len(systems))
            order = [s for s in systems[shift:] + systems[:shift] if s.name not in finished]
            with ExitStack() as stack:
                cases = []
                for system in order:
                    context = Context(
                        sizes=sizes,
                        log_dir=log_dir,
                        label=f"{workload.key}-{system.name}-run{run_index + 1}",
                    )
                    try:
                        cases.append(Case(system, prepare(server, system, stack), context))
                    except Exception as error:
                        recorder(Case(system, "", context), error, 0.0)
                workload.measure_all(cases, recorder)
            finished |= recorder.finished

    print(
        "\nratios: speed relative to the reference, above 1 = faster "
        "(rates: a/b, times: b/a); INVALID = accounting failed, not used"
    )
    for workload in workloads:
        print_workload(results, workload, sizes, names, peers)
    settings = {system.name: _worker_settings(system) for system in systems}
    print("\nworkers:")
    for name, text in settings.items():
        if text:
            print(f"  {name:<{NAME_WIDTH}}{text}")
    print_targets(results, TARGETS, {m.key for w in workloads for m in w.metrics})
    print(f"\ntotal time: {time.monotonic() - started:.0f} s")
    return 0


def _worker_settings(system: System) -> str:
    try:
        return system.worker("postgresql:///example").settings
    except (NotApplicable, Pending) as reason:
        return "" if isinstance(reason, NotApplicable) else f"pending: {reason}"


def main(argv: Sequence[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
