"""Small helpers shared by the benchmarks: timing, percentiles, printing."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.db import connection
from django.test.utils import setup_test_environment

_environment_ready = False


@contextmanager
def scratch_database() -> Iterator[None]:
    """A database of the benchmark's own (the settings' test name), dropped afterwards."""
    global _environment_ready
    if not _environment_ready:
        setup_test_environment()
        _environment_ready = True
    old_name = connection.creation.create_test_db(verbosity=0, keepdb=False)
    try:
        yield
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


@dataclass(frozen=True)
class Figure:
    name: str
    value: float
    baseline_name: str
    baseline: float
    unit: str
    target: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")


def timings_ms(call: Callable[[], object], repeat: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples)


def print_figures(figures: list[Figure]) -> None:
    width = max(len(f.name) for f in figures)
    for f in figures:
        target = f"   target: {f.target}" if f.target else ""
        print(
            f"{f.name:<{width}}  {f.value:10.2f} {f.unit:<4}  vs {f.baseline_name}: "
            f"{f.baseline:10.2f} {f.unit:<4}  ratio {f.ratio:6.2f}{target}"
        )
