"""Run every benchmark in this package: ``make bench`` (or ``make bench BENCH_ARGS=api``).

Each module named ``bench_*.py`` has a ``run() -> list[Figure]``; every figure is printed
beside a baseline measured in the same run, because machines here are shared and noisy
and only the ratio means something.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from pathlib import Path

import django


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.bench")
    django.setup()
    from benchmarks.harness import print_figures

    wanted = set(argv)
    names = [
        info.name
        for info in pkgutil.iter_modules([str(Path(__file__).parent)])
        if info.name.startswith("bench_")
        and (not wanted or info.name.removeprefix("bench_") in wanted)
    ]
    if not names:
        print(f"no benchmark matches {sorted(wanted)}", file=sys.stderr)
        return 2
    for name in sorted(names):
        module = importlib.import_module(f"benchmarks.{name}")
        summary = (module.__doc__ or name).strip().splitlines()[0]
        print(f"\n## {name.removeprefix('bench_')}: {summary}")
        print_figures(module.run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
