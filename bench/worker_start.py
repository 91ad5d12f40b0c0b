#!/usr/bin/env python3
"""Worker start-up benchmark: `drover run --worker-start exec` (every worker starts Python
and collects) against `--worker-start fork` (the first worker collects, then forks the
others), with as many workers as CPUs and with twice as many.

  trivial  the 500-test suite of bench_local.py: cheap collection.
  heavy    200 trivial tests under a conftest that spends ~0.8 s of CPU at import (as a
           project whose set-up builds large tables): expensive collection.

Runs alternate between the two modes; medians of the wall time are reported.

Usage: /usr/bin/python3 bench/worker_start.py --drover build/drover --python /usr/bin/python3 [--rounds 5]
Standard library only.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import bench_local

HEAVY_CONFTEST = """\
import asyncio, concurrent.futures, csv, decimal, difflib, email.mime.multipart, http.server
import json, logging.handlers, sqlite3, statistics, unittest.mock, urllib.request, xml.dom.minidom

TABLE = {i: str(i) * 2 for i in range(1500000)}  # ~0.8 s of CPU at import
"""


def make_heavy(root: Path) -> int:
    root.mkdir(parents=True)
    bench_local.write_ini(root)
    (root / "conftest.py").write_text(HEAVY_CONFTEST, encoding="utf-8")
    for f in range(10):
        (root / f"test_heavy_{f}.py").write_text(
            "import pytest\n\n@pytest.mark.parametrize('n', range(20))\ndef test_n(n):\n    assert n >= 0\n",
            encoding="utf-8")
    return 200


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drover", required=True, help="path to the drover binary")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter with pytest")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per mode and case (default 5)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    drover = shutil.which(args.drover) or args.drover
    if not (os.path.isfile(drover) and os.access(drover, os.X_OK)):
        print(f"worker_start: drover binary not found: {args.drover}", file=sys.stderr)
        return 2
    drover = os.path.abspath(drover)
    cpus = os.cpu_count() or 1
    print(f"{cpus} CPUs; load average before: {bench_local.load_average()}")
    base = Path(tempfile.mkdtemp(prefix="drover-worker-start-"))
    try:
        suites = {"trivial": base / "trivial", "heavy": base / "heavy"}
        bench_local.make_trivial(suites["trivial"])
        make_heavy(suites["heavy"])
        for name, suite in suites.items():
            for workers in (cpus, 2 * cpus):
                times: dict[str, list[float]] = {"exec": [], "fork": []}
                for _ in range(args.rounds):
                    for mode in times:
                        cmd = [drover, "run", "-n", str(workers), "--python", args.python, "-q",
                               "--worker-start", mode]
                        times[mode].append(bench_local.timed(cmd, suite, 300))
                medians = {mode: statistics.median(values) for mode, values in times.items()}
                print(f"== {name}, -n {workers}: exec {medians['exec']:.2f}s, fork {medians['fork']:.2f}s"
                      f"  (fork / exec {medians['fork'] / medians['exec']:.2f}x, {args.rounds} rounds)", flush=True)
    except bench_local.ToolFailed as e:
        print(f"worker_start: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
