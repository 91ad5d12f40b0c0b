#!/usr/bin/env python3
"""Worker start-up benchmark: `drover run --worker-start exec` (every worker starts Python
and collects) against `--worker-start fork` (the first worker collects, then forks the
others), with as many workers as CPUs and with twice as many.

  trivial  the 500-test suite of bench_local.py: cheap collection.
  heavy    200 trivial tests under a conftest that spends ~0.8 s of CPU at import (as a
           project whose set-up builds large tables): expensive collection.

Runs alternate between the two modes; medians of the wall time are reported. One more run
per mode measures the workers' memory: the largest sum of their proportional set sizes (PSS:
a page shared by N processes counts 1/N in each), sampled every 50 ms while drover runs
(sampling takes CPU, so those runs are not timed).

Usage: /usr/bin/python3 bench/worker_start.py --drover build/drover --python /usr/bin/python3 [--rounds 5]
Standard library only.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import subprocess
import tempfile
import time
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


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as listed:
                found += [int(child) for child in listed.read().split()]
    except OSError:
        pass
    return found


def command(drover: str, python: str, workers: int, mode: str) -> list[str]:
    return [drover, "run", "-n", str(workers), "--python", python, "-q", "--worker-start", mode]


def run_sampled(cmd: list[str], cwd: Path, timeout: float) -> int:
    """The workers' largest PSS sum in KiB during one successful run."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=bench_local.clean_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        if time.monotonic() - start > timeout:
            proc.kill()
            proc.wait()
            raise bench_local.ToolFailed(f"{' '.join(cmd)}: no result after {timeout:.0f}s")
        peak = max(peak, sum(pss_kb(child) for child in children(proc.pid)))
        time.sleep(0.05)
    stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.returncode != 0:
        raise bench_local.ToolFailed(f"{' '.join(cmd)} exited with {proc.returncode} in {cwd}:\n  {stderr[-800:]}")
    return peak


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drover", required=True, help="path to the drover binary")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter with pytest")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per mode and case (default 5)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    drover = bench_local.find_executable(args.drover)
    if drover is None:
        print(f"worker_start: drover binary not found: {args.drover}", file=sys.stderr)
        return 2
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
                        times[mode].append(bench_local.timed(command(drover, args.python, workers, mode), suite, 300))
                wall = {mode: statistics.median(values) for mode, values in times.items()}
                pss = {mode: run_sampled(command(drover, args.python, workers, mode), suite, 300) / 1024
                       for mode in times}
                print(f"== {name}, -n {workers}: exec {wall['exec']:.2f}s {pss['exec']:.0f} MiB,"
                      f" fork {wall['fork']:.2f}s {pss['fork']:.0f} MiB"
                      f"  (fork / exec: time {wall['fork'] / wall['exec']:.2f}x,"
                      f" memory {pss['fork'] / max(pss['exec'], 1):.2f}x; {args.rounds} rounds)", flush=True)
    except bench_local.ToolFailed as e:
        print(f"worker_start: {e}", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
