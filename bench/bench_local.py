#!/usr/bin/env python3
"""Local benchmark: `drover run -n 2` against pytest-xdist (`pytest -n 2`) and
plain pytest on two synthetic suites.

  trivial  500 trivial tests in 50 files: measures fixed costs (start-up,
           collection, dispatch, reporting).
  skewed   200 tests with skewed sleeps (3 of 1.75-3.5 s, 197 of 18-88 ms,
           ~19 s in total): measures balancing. After a first drover run has
           written .test_durations, drover is compared with the lower bound
           max(total / 2, longest) for two workers. The sleeps are scaled
           (--skew-scale, default 1.75) so that pytest-xdist lands at the ratio
           the issue measured for it (1.09x the bound). At scale 1 (~10.6 s of
           sleeps) the start-up every tool pays before its first test (a lone
           `pytest --collect-only`) is by itself 1.05x the bound.

Every tool runs with PYTHONDONTWRITEBYTECODE unset (Python's default: pytest
keeps its rewritten test modules in __pycache__ between runs), whatever the
calling shell sets, unless --no-bytecode-cache sets it for all of them.

Runs alternate between the tools so drift (thermal, other load) hits all of
them alike; medians are reported. Goals are printed next to the results, not
asserted: the exit code is 0 unless a tool fails to run.

Usage: /usr/bin/python3 bench/bench_local.py --drover build/drover --python /usr/bin/python3 [--rounds 5]
       [--baseline OTHER_DROVER]   (times another build in the same rounds)
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKERS = 2
TRIVIAL_FILES, TRIVIAL_PER_FILE = 50, 10
SKEWED_LONG = [2.0, 1.5, 1.0]                # seconds, times --skew-scale
SKEWED_SHORT_COUNT = 197                     # 10-50 ms each, times --skew-scale
SKEWED_FILES = 20
SKEW_SCALE = 1.75
XDIST_REFERENCE = 1.09  # the measurement of pytest-xdist against the bound
COLLECT_ONLY = "collect only"


class ToolFailed(Exception):
    pass


def find_executable(name: str) -> str | None:
    """`name` as a path or looked up in PATH, made absolute; None unless it is an executable file."""
    path = shutil.which(name) or name
    return os.path.abspath(path) if os.path.isfile(path) and os.access(path, os.X_OK) else None


# ------------------------------------------------------------ suite generation

def write_ini(root: Path) -> None:
    (root / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")


def make_trivial(root: Path) -> int:
    root.mkdir(parents=True)
    write_ini(root)
    for f in range(TRIVIAL_FILES):
        body = [f"def test_{t}():\n    assert {t} + {f} >= 0\n" for t in range(TRIVIAL_PER_FILE)]
        (root / f"test_trivial_{f:02d}.py").write_text("\n\n".join(body), encoding="utf-8")
    return TRIVIAL_FILES * TRIVIAL_PER_FILE


def skewed_durations(scale: float) -> list[float]:
    rng = random.Random(20261124)
    durations = [round(rng.uniform(0.010, 0.050) * scale, 3) for _ in range(SKEWED_SHORT_COUNT)]
    # Long tests land in different files, not at the end, as in real suites.
    for i, seconds in enumerate(SKEWED_LONG):
        durations.insert(17 + i * 61, round(seconds * scale, 3))
    return durations


def make_skewed(root: Path, scale: float) -> list[float]:
    root.mkdir(parents=True)
    write_ini(root)
    durations = skewed_durations(scale)
    per_file = len(durations) // SKEWED_FILES
    for f in range(SKEWED_FILES):
        chunk = durations[f * per_file:(f + 1) * per_file]
        body = ["import time\n"]
        body += [f"def test_{t}():\n    time.sleep({d})\n" for t, d in enumerate(chunk)]
        (root / f"test_skewed_{f:02d}.py").write_text("\n\n".join(body), encoding="utf-8")
    return durations


# -------------------------------------------------------------------- running

BYTECODE_CACHE = True  # --no-bytecode-cache sets PYTHONDONTWRITEBYTECODE=1 for every tool


def clean_env() -> dict[str, str]:
    drop = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "CI_NODE_INDEX", "CI_NODE_TOTAL", "CIRCLE_NODE_INDEX",
            "CIRCLE_NODE_TOTAL", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT",
            "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("DROVER_")}
    if not BYTECODE_CACHE:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def timed(cmd: list[str], cwd: Path, timeout: float) -> float:
    """Wall seconds of one successful run (exit code 0)."""
    start = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=clean_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except FileNotFoundError as e:
        raise ToolFailed(f"{cmd[0]}: {e.strerror}") from None
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{' '.join(cmd)}: no result after {timeout:.0f}s") from None
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).decode("utf-8", "replace").strip().splitlines()[-8:]
        raise ToolFailed(f"{' '.join(cmd)} exited with {proc.returncode} in {cwd}:\n  " + "\n  ".join(tail))
    return seconds


class Tools:
    def __init__(self, drover: str, python: str, xdist: bool, baseline: str | None = None):
        self.commands = {"drover -n 2": [drover, "run", "-n", str(WORKERS), "--python", python, "-q"],
                         "pytest": [python, "-m", "pytest", "-p", "no:cacheprovider", "-q"]}
        if baseline:  # another drover build, timed in the same rounds (before/after a change)
            self.commands["baseline -n 2"] = [baseline, "run", "-n", str(WORKERS), "--python", python, "-q"]
        if xdist:
            self.commands["pytest -n 2"] = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                                            "-n", str(WORKERS)]
        # Not a competitor: the start-up every pytest-based tool pays before its first
        # test (interpreter, pytest import, plugins, collection), timed alone.
        self.commands[COLLECT_ONLY] = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--collect-only"]

    def measure(self, suite: Path, rounds: dict[str, int], timeout: float,
                deadline: float) -> dict[str, list[float]]:
        """Alternate the tools round by round; a tool stops once it has its rounds.

        No new round starts after `deadline` (time.monotonic()), so a loaded
        machine still finishes in a few minutes, with fewer rounds."""
        times: dict[str, list[float]] = {name: [] for name in rounds}
        for r in range(max(rounds.values())):
            if r > 0 and time.monotonic() > deadline:
                print(f"    time budget used up: stopping after {r} round(s)", flush=True)
                break
            for name, wanted in rounds.items():
                if r < wanted:
                    times[name].append(timed(self.commands[name], suite, timeout))
                    print(f"    round {r + 1}: {name:<12} {times[name][-1]:6.2f}s", flush=True)
        return times


# ------------------------------------------------------------------ reporting

def load_average() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def verdict(value: float, goal: float) -> str:
    return "met" if value <= goal else "NOT met"


def report_ratio(label: str, value: float, goal: float | None) -> None:
    goal_text = f"goal <= {goal:.2f}x  {verdict(value, goal)}" if goal is not None else ""
    print(f"  {label:<22} {value:6.2f}x   {goal_text}")


def report_medians(times: dict[str, list[float]]) -> dict[str, float]:
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        spread = f"(min {min(times[name]):.2f}, max {max(times[name]):.2f}, n={len(times[name])})"
        print(f"  {name:<22} {value:6.2f}s  {spread}")
    return medians


def bench_trivial(tools: Tools, base: Path, rounds: int, deadline: float) -> None:
    suite = base / "trivial"
    count = make_trivial(suite)
    print(f"\n== trivial: {count} tests in {TRIVIAL_FILES} files, {rounds} rounds (median wall time)", flush=True)
    times = tools.measure(suite, dict.fromkeys(tools.commands, rounds), timeout=120, deadline=deadline)
    medians = report_medians(times)
    drover = medians["drover -n 2"]
    if "pytest -n 2" in medians:
        report_ratio("drover / xdist", drover / medians["pytest -n 2"], 0.5)
    report_ratio("drover / pytest", drover / medians["pytest"], 1.0)
    if "baseline -n 2" in medians:
        report_ratio("drover / baseline", drover / medians["baseline -n 2"], None)
    print(f"  start-up floor: one lone `pytest --collect-only` takes {medians[COLLECT_ONLY]:.2f}s, "
          f"{medians[COLLECT_ONLY] / drover:.0%} of drover's time")


def bench_skewed(tools: Tools, base: Path, rounds: int, deadline: float, scale: float) -> None:
    suite = base / "skewed"
    nominal = make_skewed(suite, scale)
    longest = sorted(nominal)[-len(SKEWED_LONG):]
    print(f"\n== skewed: {len(nominal)} tests, {len(SKEWED_LONG)} of {longest[0]:g}-{longest[-1]:g} s "
          f"(scale {scale:g}), nominal total {sum(nominal):.1f}s, {rounds} rounds (median wall time)",
          flush=True)
    learn = timed(tools.commands["drover -n 2"], suite, timeout=180)
    print(f"    learning run: drover -n 2 {learn:6.2f}s", flush=True)
    durations_file = suite / ".test_durations"
    if durations_file.is_file():
        recorded = list(json.loads(durations_file.read_text(encoding="utf-8")).values())
        source = "recorded in .test_durations"
    else:
        recorded, source = nominal, "nominal sleeps (drover wrote no .test_durations)"
    total, longest = sum(recorded), max(recorded)
    bound = max(total / WORKERS, longest)
    # Plain pytest takes the whole ~10 s every time and has no goal here: one
    # round is its reference, which keeps the benchmark within a few minutes.
    wanted = {name: rounds for name in tools.commands}
    wanted["pytest"] = 1
    times = tools.measure(suite, wanted, timeout=180, deadline=deadline)
    medians = report_medians(times)
    print(f"  lower bound max(total/{WORKERS}, longest) = {bound:.2f}s "
          f"(total {total:.2f}s, longest {longest:.2f}s, {source})")
    drover = medians["drover -n 2"]
    report_ratio("drover / lower bound", drover / bound, 1.05)
    floor = medians[COLLECT_ONLY]
    print(f"  start-up floor: one lone `pytest --collect-only` takes {floor:.2f}s; no tool that collects "
          f"before its first test can beat (bound + floor) / bound = {(bound + floor) / bound:.2f}x")
    if "pytest -n 2" in medians:
        report_ratio("drover / xdist", drover / medians["pytest -n 2"], None)
        report_ratio("xdist / lower bound", medians["pytest -n 2"] / bound, None)
        print(f"  {'':<22} (the issue measured xdist at {XDIST_REFERENCE:.2f}x on its skewed suite)")
    report_ratio("drover / pytest", drover / medians["pytest"], None)
    if "baseline -n 2" in medians:
        report_ratio("baseline / lower bound", medians["baseline -n 2"] / bound, None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drover", required=True, help="path to the drover binary")
    parser.add_argument("--python", default="/usr/bin/python3", help="interpreter with pytest (and pytest-xdist)")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs per tool and suite (default 5)")
    parser.add_argument("--suite", choices=("trivial", "skewed", "all"), default="all")
    parser.add_argument("--budget", type=float, default=200.0,
                        help="seconds after which no new round starts (default 200; each tool gets >= 1 round)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run every tool with PYTHONDONTWRITEBYTECODE=1 (default: unset for every tool, "
                             "whatever this shell sets)")
    parser.add_argument("--skew-scale", type=float, default=SKEW_SCALE,
                        help=f"multiplies the skewed suite's sleeps (default {SKEW_SCALE:g}; 1 is ~10.6 s in all)")
    parser.add_argument("--keep", action="store_true", help="keep the generated suites and print where")
    parser.add_argument("--baseline", help="another drover binary to time alongside (e.g. a build before a change)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 0.1 <= args.skew_scale <= 100:
        parser.error("--skew-scale must be between 0.1 and 100")
    drover = find_executable(args.drover)
    if drover is None:
        print(f"bench_local: drover binary not found: {args.drover}", file=sys.stderr)
        return 2
    probe = subprocess.run([args.python, "-c", "import pytest"], capture_output=True)
    if probe.returncode != 0:
        print(f"bench_local: {args.python} cannot import pytest", file=sys.stderr)
        return 2
    xdist = subprocess.run([args.python, "-c", "import xdist"], capture_output=True).returncode == 0
    if not xdist:
        print(f"note: {args.python} has no pytest-xdist; xdist columns are left out")
    baseline = None
    if args.baseline:
        baseline = find_executable(args.baseline)
        if baseline is None:
            print(f"bench_local: baseline drover binary not found: {args.baseline}", file=sys.stderr)
            return 2
    tools = Tools(drover, args.python, xdist, baseline)
    global BYTECODE_CACHE
    BYTECODE_CACHE = not args.no_bytecode_cache
    # Both change every tool's time: a busy machine, and pytest unable to cache its
    # assertion rewrites (every process then rewrites every test module).
    print(f"load average before: {load_average()}; bytecode cache "
          f"{'on (PYTHONDONTWRITEBYTECODE unset)' if BYTECODE_CACHE else 'off (PYTHONDONTWRITEBYTECODE=1)'}")
    base = Path(tempfile.mkdtemp(prefix="drover-bench-"))
    started = time.monotonic()
    try:
        # The trivial suite is cheap: it gets a third of the budget when both run.
        share = 1 / 3 if args.suite == "all" else 1.0
        if args.suite in ("trivial", "all"):
            bench_trivial(tools, base, args.rounds, started + args.budget * share)
        if args.suite in ("skewed", "all"):
            # A skewed round takes ~2.2 times the sleeps' total / 2: stop early enough
            # to end near the budget.
            round_seconds = 1.1 * sum(skewed_durations(args.skew_scale))
            bench_skewed(tools, base, args.rounds, started + args.budget - round_seconds, args.skew_scale)
    except ToolFailed as e:
        print(f"bench_local: {e}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"\nsuites kept in {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print(f"\nbenchmark took {time.monotonic() - started:.0f}s; load average after: {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
