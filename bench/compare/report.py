"""Collecting each run's values, and printing the tables and the targets.

A metric's row shows the median of its runs with the min and max, and two
speed ratios: against the best peer (pgqueuer or procrastinate, whichever did
better in this invocation) and, where the workload has one, against a raw
psycopg baseline. A ratio above 1 always means faster than the reference
(rates: a / b; times: b / a), so the columns read the same for every unit.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from bench.compare.workloads import Metric, Sizes, Workload

NAME_WIDTH = 16  # the system column


@dataclass
class Outcome:
    """Everything one system did for one metric, over the runs."""

    values: list[float] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)
    pending: str | None = None
    not_applicable: bool = False

    @property
    def median(self) -> float | None:
        """The median, only when every run counted."""
        if self.invalid or self.pending or not self.values:
            return None
        return statistics.median(self.values)

    def status(self) -> str:
        if self.not_applicable:
            return "n/a"
        if self.pending:
            return f"pending: {self.pending}"
        if self.invalid:
            return f"INVALID ({len(self.invalid)} run(s)): {self.invalid[0]}"
        return "ok" if self.values else "not measured"


class Results:
    """Outcomes by (metric key, system name)."""

    def __init__(self) -> None:
        self._outcomes: dict[tuple[str, str], Outcome] = {}

    def outcome(self, metric: str, system: str) -> Outcome:
        return self._outcomes.setdefault((metric, system), Outcome())

    def median(self, metric: str, system: str) -> float | None:
        found = self._outcomes.get((metric, system))
        return found.median if found else None


def speed_ratio(metric: Metric, value: float, reference: float) -> float:
    """How many times faster than ``reference`` (above 1: faster)."""
    return value / reference if metric.higher_is_better else reference / value


def best_peer(results: Results, metric: Metric, peers: Iterable[str]) -> tuple[str, float] | None:
    found = [(name, m) for name in peers if (m := results.median(metric.key, name)) is not None]
    if not found:
        return None
    pick = max if metric.higher_is_better else min
    return pick(found, key=lambda item: item[1])


def format_value(metric: Metric, value: float) -> str:
    if metric.unit == "jobs/s":
        return f"{value:,.0f}"
    return f"{value:.3f}" if value < 10 else f"{value:,.1f}"


def print_workload(
    results: Results,
    workload: Workload,
    sizes: Sizes,
    systems: Sequence[str],
    peers: Sequence[str],
) -> None:
    print(f"\n{workload.describe(sizes)}")
    for metric in workload.metrics:
        best = best_peer(results, metric, peers)
        raw = results.median(metric.key, workload.raw_reference) if workload.raw_reference else None
        header = f"  {'system':<{NAME_WIDTH}}{'median':>12}{'min':>12}{'max':>12}  {'unit':<7}"
        header += f"{'vs best peer':>14}"
        if workload.raw_reference:
            header += f"{'vs ' + workload.raw_reference:>14}"
        if len(workload.metrics) > 1:
            print(f"  [{metric.title}]")
        print(header)
        for name in systems:
            outcome = results.outcome(metric.key, name)
            if outcome.not_applicable:
                continue
            median = outcome.median
            if median is None:
                print(f"  {name:<{NAME_WIDTH}}{outcome.status()}")
                continue
            line = (
                f"  {name:<{NAME_WIDTH}}{format_value(metric, median):>12}"
                f"{format_value(metric, min(outcome.values)):>12}"
                f"{format_value(metric, max(outcome.values)):>12}  {metric.unit:<7}"
            )
            line += f"{_ratio_text(metric, median, best):>14}"
            if workload.raw_reference:
                reference = (workload.raw_reference, raw) if raw is not None else None
                line += f"{_ratio_text(metric, median, reference):>14}"
            print(line)
        if best:
            print(f"  (best peer: {best[0]})")


def _ratio_text(metric: Metric, value: float, reference: tuple[str, float] | None) -> str:
    if reference is None:
        return "-"
    return f"{speed_ratio(metric, value, reference[1]):.2f}x"


@dataclass(frozen=True)
class Target:
    """A goal from the issue for que, checked against this invocation's medians."""

    text: str
    metric: Metric
    at_least: bool
    factor: float
    reference: str | None = None
    """A system to compare with; None: ``factor`` is an absolute value in the unit."""

    def check(self, results: Results) -> str:
        mine = results.outcome(self.metric.key, "que")
        if mine.median is None:
            return "not measured" if mine.status() == "ok" else mine.status()
        value = mine.median
        if self.reference is None:
            bound = self.factor
            against = f"{format_value(self.metric, bound)} {self.metric.unit}"
        else:
            other = results.median(self.metric.key, self.reference)
            if other is None:
                status = results.outcome(self.metric.key, self.reference).status()
                return f"no {self.reference} figure ({status})"
            bound = self.factor * other
            against = (
                f"{self.factor:g} x {self.reference} {format_value(self.metric, other)}"
                f" = {format_value(self.metric, bound)} {self.metric.unit}"
            )
        passed = value >= bound if self.at_least else value <= bound
        relation = ">=" if self.at_least else "<="
        verdict = "PASS" if passed else "FAIL"
        return (
            f"{verdict}  que {format_value(self.metric, value)} {self.metric.unit} "
            f"(needs {relation} {against})"
        )


def print_targets(results: Results, targets: Sequence[Target], measured: set[str]) -> None:
    print("\nTargets (issue: optimise until these hold), from this run's medians:")
    for target in targets:
        if target.metric.key not in measured:
            continue
        print(f"  {target.text:<44}{target.check(results)}")
