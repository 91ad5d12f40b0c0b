"""Workers forked from the first one after it collected (--worker-start fork, or auto with
more workers than CPUs) behave like workers started anew: each is drover's own child in its own process group,
with its own captured output and its own basetemp; a Python thread running at collection
time makes drover start every worker anew instead."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import drover_helpers as h

# Four modules of three tests, each test slow enough that both workers get work. Every
# test records where it ran; test_m2.py::test_where[2] fails.
MODULE = '''
import json, os, time
import pytest

COLLECTED_IN = os.getpid()  # a forked worker inherits the first worker's value


@pytest.mark.parametrize("n", range(3))
def test_where(n, tmp_path):
    time.sleep(0.15)
    print("stdout of %s" % __name__, n)
    os.write(2, ("fd2 of %s %d\\n" % (__name__, n)).encode())
    record = {"pid": os.getpid(), "ppid": os.getppid(), "pgid": os.getpgid(0),
              "collected_in": COLLECTED_IN, "tmp": str(tmp_path)}
    with open(os.path.join(os.path.dirname(__file__), "where.jsonl"), "a") as out:
        out.write(json.dumps(record) + "\\n")
    assert not (__name__ == "test_m2" and n == 2), "planned failure"
'''


def make_suite(base: Path, conftest: str = "") -> Path:
    base.mkdir(parents=True)
    for m in range(4):
        (base / f"test_m{m}.py").write_text(MODULE)
    (base / "conftest.py").write_text(conftest)
    return base


def records(suite: Path) -> list[dict]:
    return [json.loads(line) for line in (suite / "where.jsonl").read_text().splitlines()]


def by_worker(suite: Path) -> dict[int, list[dict]]:
    workers: dict[int, list[dict]] = {}
    for record in records(suite):
        workers.setdefault(record["pid"], []).append(record)
    return workers


def test_forked_workers_are_drovers_children_with_their_own_output_and_basetemp(drover, tmp_path):
    suite = make_suite(tmp_path / "suite")
    result = h.run_drover(suite, "-n", "2", "--worker-start", "fork", timeout=120)
    assert result.rc == 1, result.describe()
    assert h.summary_line(result.stdout).startswith("1 failed, 11 passed"), result.describe()
    # The failure shows its own test's output, captured at both levels, and no other's.
    assert "stdout of test_m2 2" in result.stdout and "fd2 of test_m2 2" in result.stdout, result.describe()
    for other in ("stdout of test_m2 1", "stdout of test_m1 2", "fd2 of test_m0 0"):
        assert other not in result.stdout, result.describe()

    workers = by_worker(suite)
    assert len(workers) == 2, workers
    first, forked = sorted(workers, key=lambda pid: workers[pid][0]["collected_in"] != pid)
    # The first worker collected itself; the other is a copy of it made after collection...
    assert {r["collected_in"] for r in workers[first]} == {first}
    assert {r["collected_in"] for r in workers[forked]} == {first}
    # ...yet it is drover's child (not the first worker's), in its own process group.
    parents = {r["ppid"] for rs in workers.values() for r in rs}
    assert len(parents) == 1 and first not in parents and forked not in parents
    assert all(r["pgid"] == r["pid"] for rs in workers.values() for r in rs)
    # Separate basetemps (…/gw0/test_where0, …/gw1/test_where0).
    basetemps = {pid: {str(Path(r["tmp"]).parent) for r in rs} for pid, rs in workers.items()}
    assert all(len(dirs) == 1 for dirs in basetemps.values()), basetemps
    assert basetemps[first] != basetemps[forked]
    assert h.wait_no_processes_in(suite) == []


def test_user_basetemp_gets_a_directory_per_forked_worker(drover, tmp_path):
    suite = make_suite(tmp_path / "suite")
    (suite / "drover.yaml").write_text("worker_start: fork\n")
    basetemp = tmp_path / "bt"
    result = h.run_drover(suite, "-n", "2", "--", f"--basetemp={basetemp}", timeout=120)
    assert result.rc == 1, result.describe()
    assert forked_workers(suite)
    dirs = {str(Path(r["tmp"]).parent) for r in records(suite)}
    assert dirs == {str(basetemp / "gw0"), str(basetemp / "gw1")}, dirs


def forked_workers(suite: Path) -> bool:
    """True when every worker that ran tests is a fork of one collecting worker."""
    workers = by_worker(suite)
    assert len(workers) >= 2, workers
    return len({r["collected_in"] for r in records(suite)}) == 1


@pytest.mark.parametrize("mode", ["exec", "auto"])
def test_workers_start_anew_with_exec_or_with_one_per_cpu(drover, tmp_path, mode):
    cpus = os.cpu_count() or 1
    if mode == "auto" and cpus < 2:
        pytest.skip("auto forks with 2 workers on 1 CPU")
    suite = make_suite(tmp_path / "suite")
    result = h.run_drover(suite, "-n", "2", "--worker-start", mode, timeout=120)
    assert result.rc == 1, result.describe()
    assert all(r["collected_in"] == r["pid"] for r in records(suite))
    assert len(by_worker(suite)) == 2


def test_auto_forks_when_there_are_more_workers_than_cpus(drover, tmp_path):
    suite = make_suite(tmp_path / "suite")
    result = h.run_drover(suite, "-n", str((os.cpu_count() or 1) + 1), timeout=120)
    assert result.rc == 1, result.describe()
    assert forked_workers(suite)


def test_thread_running_at_collection_means_workers_start_anew(drover, tmp_path):
    # Forking would drop the thread's work in the copies: drover starts them anew.
    conftest = "import threading, time\nthreading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    suite = make_suite(tmp_path / "suite", conftest)
    result = h.run_drover(suite, "-n", "2", "--worker-start", "fork", timeout=120)
    assert result.rc == 1, result.describe()
    assert h.summary_line(result.stdout).startswith("1 failed, 11 passed"), result.describe()
    workers = by_worker(suite)
    assert len(workers) == 2, workers
    assert all(r["collected_in"] == r["pid"] for rs in workers.values() for r in rs)
    assert h.wait_no_processes_in(suite) == []


@pytest.mark.parametrize(
    "args, config, message",
    [
        (["--worker-start", "spawn"], None, "--worker-start must be auto, fork or exec, not 'spawn'"),
        ([], "worker_start: vfork\n", "'worker_start' must be auto, fork or exec"),
        (["--worker-start", "exec"], "worker_start: vfork\n", "'worker_start' must be auto, fork or exec"),
    ],
)
def test_bad_worker_start_is_a_usage_error(drover, tmp_path, args, config, message):
    suite = make_suite(tmp_path / "suite")
    if config is not None:
        (suite / "drover.yaml").write_text(config)
    result = h.run_drover(suite, *args, timeout=60)
    assert result.rc == 4, result.describe()
    assert message in result.stderr, result.describe()
    assert len(result.stderr.strip().splitlines()) == 1, result.describe()


def test_bad_worker_start_of_a_farm_agent_is_a_usage_error(drover, tmp_path):
    result = h.run_process(
        h.drover_command("--connect", "tcp://127.0.0.1:9", "--worker-start", "spawn", subcommand="agent"),
        tmp_path, h.clean_env(), 30)
    assert result.rc == 4, result.describe()
    assert result.stderr.strip() == "ERROR: --worker-start must be auto, fork or exec, not 'spawn'", result.describe()
