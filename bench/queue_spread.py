#!/usr/bin/env python3
"""CI queue mode versus static shards when the recorded durations are stale.

Three CI jobs (`drover run -n 1` each, started together, separate checkouts)
run a suite whose .test_durations was recorded before some tests became 10x
slower. Static shards (`--shard=i --total-shards=3`) plan from those stale
numbers; queue mode (`--coordinator ... --run-id ... --shard=i`) plans from the
same numbers but hands work out as jobs ask for it.

For each mode it reports, per round:
  finish spread   last job's exit minus first job's exit (the issue's measure)
  busy spread     same for the moment each job's own last test finished
                  (a queue job stays until the whole run is done, so its exit
                  time alone would flatter it)
  wall            start to the last job's exit
Goal: queue mode's finish spread <= the longest single test + 0.5 s.

Usage: /usr/bin/python3 bench/queue_spread.py --drover build/drover --python /usr/bin/python3 [--rounds 3]
Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

JOBS = 3
FILES, PER_FILE = 12, 5
RECORDED = 0.1              # seconds every test took when .test_durations was written
SLOW_FILES = (3, 8)         # these files' tests are now 10x slower
SLOWDOWN = 10


def now_seconds(test_file: int) -> float:
    return RECORDED * (SLOWDOWN if test_file in SLOW_FILES else 1)


def make_suite(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    recorded = {}
    for f in range(FILES):
        body = "import time\n\n" + "".join(
            f"def test_{t}():\n    time.sleep({now_seconds(f)})\n\n" for t in range(PER_FILE))
        (root / f"test_part_{f:02d}.py").write_text(body)
        recorded.update({f"test_part_{f:02d}.py::test_{t}": RECORDED for t in range(PER_FILE)})
    (root / ".test_durations").write_text(json.dumps(recorded, indent=1))


def clean_env() -> dict[str, str]:
    drop = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS", "CI_NODE_INDEX", "CI_NODE_TOTAL", "CIRCLE_NODE_INDEX",
            "CIRCLE_NODE_TOTAL", "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("DROVER_")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Job:
    """One CI job: its process, when it exited, when its last own test finished."""

    def __init__(self, cmd: list[str], cwd: Path, start: float):
        self.start = start
        self.last_test = 0.0
        self.output: list[str] = []
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=clean_env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.exited = 0.0
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            if " PASSED " in line or " FAILED " in line:
                self.last_test = time.monotonic() - self.start
        self.exited = time.monotonic() - self.start  # stdout closes when the job exits

    def wait(self, timeout: float) -> None:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise SystemExit("a job hung:\n" + "".join(self.output[-20:]))
        self.reader.join()
        if self.proc.returncode != 0:
            raise SystemExit(f"a job exited with {self.proc.returncode}:\n" + "".join(self.output[-20:]))


def run_jobs(args, work: Path, mode: str, round_no: int, endpoint: str = "") -> list[Job]:
    checkouts = []
    for i in range(JOBS):
        checkout = work / f"{mode}-{round_no}-job{i}"
        shutil.copytree(work / "suite", checkout)
        checkouts.append(checkout)
    base = [args.drover, "run", "-n", "1", "-v", "--python", args.python, f"--total-shards={JOBS}"]
    if mode == "queue":
        base += ["--coordinator", endpoint, "--run-id", f"bench-{round_no}"]
    start = time.monotonic()
    jobs = [Job(base + [f"--shard={i}"], checkouts[i], start) for i in range(JOBS)]
    for job in jobs:
        job.wait(300)
    return jobs


def spread(values: list[float]) -> float:
    return max(values) - min(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drover", required=True)
    parser.add_argument("--python", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    args.drover = str(Path(args.drover).resolve())

    work = Path(tempfile.mkdtemp(prefix="drover-queue-bench-"))
    coordinator = None
    try:
        make_suite(work / "suite")
        port, http = free_port(), free_port()
        endpoint = f"tcp://127.0.0.1:{port}"
        coordinator = subprocess.Popen(
            [args.drover, "coordinator", "--bind", endpoint, "--http", f"127.0.0.1:{http}",
             "--data", str(work / "coordinator")], env=clean_env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        time.sleep(0.5)
        longest = max(now_seconds(f) for f in range(FILES))
        total = sum(now_seconds(f) * PER_FILE for f in range(FILES))
        print(f"{FILES * PER_FILE} tests, {total:.1f} s of work now, recorded as {RECORDED * FILES * PER_FILE:.1f} s;"
              f" {JOBS} jobs x 1 worker; longest test {longest:.1f} s")
        results: dict[str, dict[str, list[float]]] = {m: {"finish": [], "busy": [], "wall": []}
                                                      for m in ("static", "queue")}
        for r in range(args.rounds):
            for mode in ("static", "queue"):  # alternate, so drift hits both alike
                jobs = run_jobs(args, work, mode, r, endpoint)
                results[mode]["finish"].append(spread([j.exited for j in jobs]))
                results[mode]["busy"].append(spread([j.last_test for j in jobs]))
                results[mode]["wall"].append(max(j.exited for j in jobs))
        print(f"\nmedian of {args.rounds} rounds | finish spread | busy spread | wall")
        for mode, values in results.items():
            print(f"{mode:>6}          | {statistics.median(values['finish']):9.2f} s   |"
                  f" {statistics.median(values['busy']):8.2f} s  | {statistics.median(values['wall']):5.2f} s")
        goal = longest + 0.5
        queue_spread = statistics.median(results["queue"]["finish"])
        print(f"\ngoal: queue finish spread <= longest test + 0.5 s = {goal:.2f} s: "
              f"{'met' if queue_spread <= goal else 'NOT met'} ({queue_spread:.2f} s)")
        return 0
    finally:
        if coordinator is not None:
            coordinator.send_signal(signal.SIGTERM)
            try:
                coordinator.wait(timeout=10)
            except subprocess.TimeoutExpired:
                coordinator.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
