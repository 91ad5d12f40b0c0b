"""CI queue mode end to end: matrix jobs (`drover run --coordinator ... --run-id ID
--shard i --total-shards N`) on separate copies of a suite become agents of one
run on a real coordinator, all on loopback.

Checks that three concurrent jobs report every test exactly once between them
and that the downloadable merged report is the union of their reports; that a
killed job's tests are run by the others; that a run whose jobs are all gone is
closed with "not run: no agent left" errors; that a job with another
collection is refused; and that without a coordinator each job runs exactly its
static shard.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import drover_helpers as h
import test_farm
from test_farm import Farm, free_port, write_slow_suite

RUN_ID = "ci-1234-1"
farm = test_farm.farm  # the fixture


def fast_heartbeats(tmp_path: Path) -> Path:
    """A coordinator config that notices a dead job within a second."""
    config = tmp_path / "coordinator.yaml"
    config.write_text("heartbeat_interval_ms: 200\nheartbeat_lost_after: 5\n")
    return config


def start_job(farm: Farm, checkout: Path, index: int, total: int, *extra: str,
              env: dict[str, str] | None = None) -> subprocess.Popen:
    log = open(farm.base / f"job{index}.out", "wb")
    return subprocess.Popen(
        h.drover_command("--coordinator", farm.endpoint, "--run-id", RUN_ID, f"--shard={index}",
                         f"--total-shards={total}", "-n", "1", "-v",
                         "--junitxml", str(farm.base / f"job{index}.xml"), *extra),
        cwd=checkout, env=h.clean_env({"DROVER_HTTP": farm.http, **(env or {})}), stdin=subprocess.DEVNULL,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def wait_job(farm: Farm, job: subprocess.Popen, index: int, timeout: float = 240) -> tuple[int, str]:
    try:
        job.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    return job.returncode, (farm.base / f"job{index}.out").read_text(errors="replace")


def cases_of(junit_path: Path) -> collections.Counter:
    """(classname, name) -> how often the report holds it."""
    return collections.Counter((cls, name) for (cls, name, _outcome) in h.parse_junit(junit_path).outcome_multiset().elements())


def download(farm: Farm, run_id: str, out: Path) -> h.Junit:
    result = farm.tool("report", "download", "--server", farm.http, "--run-id", run_id, "-o", str(out))
    assert result.rc == 0, result.describe() + farm.log_text()
    return h.parse_junit(out)


def run_state(farm: Farm, run_id: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{farm.http}/api/v1/runs/{run_id}", timeout=2) as response:
            return json.loads(response.read()).get("state")
    except OSError:
        return None


def wait_for_file(path: Path, jobs: list[subprocess.Popen], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if all(job.poll() is not None for job in jobs):
            break
        time.sleep(0.1)
    raise AssertionError(f"{path.name} never appeared")


def add_hanging_test(checkout: Path, marker: Path) -> None:
    """The first run of this test records which checkout runs it and hangs; later runs pass."""
    (checkout / "test_hang_once.py").write_text(
        "import os, time\n\n"
        "def test_hangs_the_first_time():\n"
        f"    marker = {str(marker)!r}\n"
        "    if not os.path.exists(marker):\n"
        "        with open(marker + '.tmp', 'w') as f:\n"
        "            f.write(os.getcwd())\n"
        "        os.rename(marker + '.tmp', marker)\n"
        "        time.sleep(120)\n")


def jobs_with_a_hanging_test(farm: Farm, tmp_path: Path, jobs: int, files: int,
                             *coordinator_args: str) -> tuple[list[subprocess.Popen], list[Path], int, int]:
    """`jobs` jobs on a suite with one test that hangs the first time it runs; returns the
    jobs, their checkouts, the index of the job it hangs in (once it does) and the test count."""
    suite = tmp_path / "suite"
    total = write_slow_suite(suite, files=files, tests=4, seconds=0.2) + 1
    marker = tmp_path / "hung-in"
    add_hanging_test(suite, marker)
    checkouts = [h.copy_tree(suite, tmp_path / f"checkout{i}") for i in range(jobs)]
    farm.start_coordinator(*coordinator_args)
    started = [start_job(farm, checkouts[i], i, jobs) for i in range(jobs)]
    return started, checkouts, checkouts.index(Path(wait_for_file(marker, started))), total


def test_three_jobs_share_one_run(farm, tmp_path):
    suite = tmp_path / "suite"
    total = write_slow_suite(suite, files=8, tests=6, seconds=0.25)
    checkouts = [h.copy_tree(suite, tmp_path / f"checkout{i}") for i in range(3)]
    farm.start_coordinator()
    jobs = [start_job(farm, checkouts[i], i, 3) for i in range(3)]
    outputs = [wait_job(farm, job, i) for i, job in enumerate(jobs)]
    for rc, text in outputs:
        assert rc == 0, text + farm.log_text()
        assert f"drover run {RUN_ID}" in text, text
        assert f"run {RUN_ID} finished: 0 failed, {total} passed in " in text, text

    per_job = [cases_of(tmp_path / f"job{i}.xml") for i in range(3)]
    union = sum(per_job, collections.Counter())
    assert sum(union.values()) == total and set(union.values()) == {1}, per_job  # each test once
    assert all(per_job), "every job should have run part of the suite"
    for i, (_rc, text) in enumerate(outputs):
        assert h.summary_counts(text).get("passed") == sum(per_job[i].values()), text
    merged = download(farm, RUN_ID, tmp_path / "merged.xml")
    assert collections.Counter((c, n) for (c, n, _o) in merged.outcome_multiset().elements()) == union
    # The jobs' own reports merge into a complete report too (no job died).
    local = h.run_drover_tool(tmp_path, "merge", *(str(tmp_path / f"job{i}.xml") for i in range(3)),
                              "-o", str(tmp_path / "local-merge.xml"))
    assert local.rc == 0, local.describe()
    assert {outcome for (_c, _n, outcome) in merged.outcome_multiset()} == {"passed"}
    # In CI the server usually comes from the environment, as for the jobs themselves.
    by_env = h.run_process([farm.drover, "report", "download", "--run-id", RUN_ID, "-o", str(tmp_path / "env.xml")],
                           tmp_path, h.clean_env({"DROVER_HTTP": farm.http}), 60)
    assert by_env.rc == 0, by_env.describe()
    assert (tmp_path / "env.xml").read_bytes() == (tmp_path / "merged.xml").read_bytes()
    pulled = tmp_path / "pulled.json"
    pull = farm.tool("durations", "pull", "--server", farm.http, "-o", str(pulled))
    assert pull.rc == 0, pull.describe()
    assert set(h.collect_nodeids(suite)) <= set(json.loads(pulled.read_text()))


def test_killed_job_is_replaced_by_the_others(farm, tmp_path):
    jobs, checkouts, victim, total = jobs_with_a_hanging_test(
        farm, tmp_path, 3, 6, "--config", str(fast_heartbeats(tmp_path)))
    os.killpg(jobs[victim].pid, signal.SIGKILL)  # the CI runner vanished: no goodbye
    for i, job in enumerate(jobs):
        if i != victim:
            rc, text = wait_job(farm, job, i)
            assert rc == 0, text + farm.log_text()
    jobs[victim].wait()
    merged = download(farm, RUN_ID, tmp_path / "merged.xml")
    outcomes = merged.outcome_multiset()
    assert sum(outcomes.values()) == total and set(outcomes.values()) == {1}, outcomes
    assert {outcome for (_c, _n, outcome) in outcomes} == {"passed"}, outcomes
    survivors = sum((cases_of(tmp_path / f"job{i}.xml") for i in range(3) if i != victim), collections.Counter())
    assert set(survivors.values()) == {1}, survivors  # no test doubled
    assert ("test_hang_once", "test_hangs_the_first_time") in survivors  # re-run by another job
    assert h.wait_no_processes_in(checkouts[victim]) == []


def test_run_without_jobs_is_closed_with_not_run_errors(farm, tmp_path):
    suite = tmp_path / "suite"
    total = write_slow_suite(suite, files=3, tests=4, seconds=0.1) + 1
    marker = tmp_path / "hung-in"
    add_hanging_test(suite, marker)
    # Known as the longest, the hanging test is leased first.
    durations = suite / ".test_durations"
    durations.write_text(json.dumps({"test_hang_once.py::test_hangs_the_first_time": 50.0}))
    farm.start_coordinator("--config", str(fast_heartbeats(tmp_path)), "--no-agent-timeout", "2")
    job = start_job(farm, suite, 0, 2)
    wait_for_file(marker, [job])
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    deadline = time.monotonic() + 60
    while run_state(farm, RUN_ID) != "failed" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert run_state(farm, RUN_ID) == "failed", farm.log_text()
    merged = download(farm, RUN_ID, tmp_path / "merged.xml")
    outcomes = merged.outcome_multiset()
    assert sum(outcomes.values()) == total and set(outcomes.values()) == {1}, outcomes  # nothing dropped
    text = (tmp_path / "merged.xml").read_text()
    assert "not run: no agent left" in text
    assert ("test_hang_once", "test_hangs_the_first_time", "error") in outcomes


def test_job_with_another_collection_is_refused(farm, tmp_path):
    suite = tmp_path / "suite"
    write_slow_suite(suite, files=2, tests=3, seconds=1.0)
    other = h.copy_tree(suite, tmp_path / "other")
    (other / "test_extra.py").write_text("def test_extra():\n    pass\n")
    farm.start_coordinator()
    first = start_job(farm, suite, 0, 2)
    deadline = time.monotonic() + 60
    while run_state(farm, RUN_ID) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    second = start_job(farm, other, 1, 2)
    rc, text = wait_job(farm, second, 1)
    assert rc not in (0, 1), text
    assert f"run {RUN_ID} is running with collection" in text, text
    rc, text = wait_job(farm, first, 0)
    assert rc == 0, text + farm.log_text()


def test_unreachable_coordinator_falls_back_to_static_shards(drover, tmp_path):
    suite = tmp_path / "suite"
    write_slow_suite(suite, files=7, tests=3, seconds=0.0)
    durations = {f"test_slow_{f}.py::test_{t}": 0.1 * (f + 1) for f in range(7) for t in range(3)}
    (suite / ".test_durations").write_text(json.dumps(durations))
    plan = h.run_drover_tool(suite, "plan", "--total-shards", "3", "--json", "-", "--python", h.PY)
    assert plan.rc == 0, plan.describe()
    planned = [set(shard["nodeids"]) for shard in json.loads(plan.stdout)["shards"]]
    dead = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    seen: collections.Counter = collections.Counter()
    for i in range(3):
        checkout = h.copy_tree(suite, tmp_path / f"checkout{i}")
        (checkout / ".test_durations").write_text(json.dumps(durations))  # every job reads the same file
        junit = tmp_path / f"job{i}.xml"
        result = h.run_drover(checkout, "--coordinator", dead, "--connect-timeout", "0.5", "--run-id", RUN_ID,
                              f"--shard={i}", "--total-shards=3", "--junitxml", str(junit))
        assert result.rc == 0, result.describe()
        assert f"running static shard {i} of 3 instead" in result.stderr, result.describe()
        ran = {f"{cls.replace('.', '/')}.py::{name}" for (cls, name) in cases_of(junit)}
        assert ran == planned[i], (ran, planned[i])
        seen.update(ran)
    assert sum(seen.values()) == 21 and set(seen.values()) == {1}


def test_job_arriving_after_the_run_reports_its_verdict(farm, tmp_path):
    suite = tmp_path / "suite"
    write_slow_suite(suite, files=2, tests=2, seconds=0.0)
    (suite / "test_broken.py").write_text("def test_broken():\n    assert 1 == 2\n")
    farm.start_coordinator()
    first = start_job(farm, suite, 0, 2)
    rc, text = wait_job(farm, first, 0)
    assert rc == 1, text + farm.log_text()
    assert f"run {RUN_ID} finished: 1 failed, 4 passed in " in text, text
    # A retried or late job joins the finished run: it runs nothing and cannot turn it green.
    retry = start_job(farm, h.copy_tree(suite, tmp_path / "retry"), 1, 2)
    rc, text = wait_job(farm, retry, 1)
    assert rc == 1, text + farm.log_text()
    assert f"drover run {RUN_ID} (joined)" in text, text
    assert not cases_of(tmp_path / "job1.xml"), "the late job ran nothing"


@pytest.mark.parametrize("args, message", [
    (["--coordinator", "tcp://127.0.0.1:1", "--shard=0", "--total-shards=2"], "needs --run-id"),
    (["--wait-all"], "--wait-all needs --coordinator"),
    (["--coordinator", "tcp://127.0.0.1:1", "--connect-timeout", "soon"], "--connect-timeout: invalid value"),
])
def test_queue_mode_flags_are_checked(drover, tmp_path, args, message):
    result = h.run_process([drover, "--check-args", "run", *args], tmp_path, h.clean_env(), 30)
    assert result.rc == 4, result.describe()
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.describe()


def test_wait_all_exits_with_the_whole_runs_code(farm, tmp_path):
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    go = tmp_path / "go"
    (suite / "test_fails_late.py").write_text(
        "import os, time\n\n"
        "def test_fails_late():\n"
        f"    while not os.path.exists({str(go)!r}):\n"
        "        time.sleep(0.05)\n"
        "    assert False, 'late failure'\n")
    (suite / "test_passes.py").write_text("def test_passes():\n    pass\n")
    # The failing test is planned first, so job 0 runs it; job 1 takes over the lease
    # still waiting behind it on job 0.
    (suite / ".test_durations").write_text(json.dumps({"test_fails_late.py::test_fails_late": 10.0,
                                                       "test_passes.py::test_passes": 1.0}))
    other = h.copy_tree(suite, tmp_path / "other")
    farm.start_coordinator()
    first = start_job(farm, suite, 0, 2)
    deadline = time.monotonic() + 60
    while run_state(farm, RUN_ID) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    second = start_job(farm, other, 1, 2, "--wait-all")
    out1 = farm.base / "job1.out"
    while "test_passes.py::test_passes PASSED" not in out1.read_text(errors="replace"):
        assert second.poll() is None and time.monotonic() < deadline + 60, out1.read_text() + farm.log_text()
        time.sleep(0.1)
    go.write_text("now")
    rc0, text0 = wait_job(farm, first, 0)
    rc1, text1 = wait_job(farm, second, 1)
    assert rc0 == 1, text0 + farm.log_text()
    # Job 1's own test passed, but --wait-all answers for the whole run.
    counts = h.summary_counts(text1)
    assert (counts.get("failed"), counts.get("passed")) == (0, 1), text1
    assert rc1 == 1, text1


def test_interrupted_job_leaves_its_tests_to_the_others(farm, tmp_path):
    jobs, checkouts, victim, total = jobs_with_a_hanging_test(farm, tmp_path, 2, 4)
    jobs[victim].send_signal(signal.SIGINT)  # Ctrl-C, or CI cancelling the job
    rc, text = wait_job(farm, jobs[victim], victim, timeout=60)
    assert rc == 2, text + farm.log_text()
    assert f"Interrupted: KeyboardInterrupt, left run {RUN_ID}" in text, text
    assert h.wait_no_processes_in(checkouts[victim]) == []
    rc, text = wait_job(farm, jobs[1 - victim], 1 - victim)
    assert rc == 0, text + farm.log_text()
    outcomes = download(farm, RUN_ID, tmp_path / "merged.xml").outcome_multiset()
    assert sum(outcomes.values()) == total and set(outcomes.values()) == {1}, outcomes
    assert {outcome for (_c, _n, outcome) in outcomes} == {"passed"}, outcomes


def test_interrupted_farm_client_cancels_its_run(farm, tmp_path):
    # Not queue mode: a farm client's run is its own, so Ctrl-C cancels it.
    suite = tmp_path / "suite"
    write_slow_suite(suite, files=4, tests=4, seconds=0.5)
    farm.start_coordinator()
    farm.start_agent("a1", 1)
    farm.wait_agents(1)
    out = open(tmp_path / "client.out", "wb")
    client = subprocess.Popen(h.drover_command("--coordinator", farm.endpoint, "--run-id", "mine", "-v"),
                              cwd=suite, env=h.clean_env({"DROVER_HTTP": farm.http}), stdin=subprocess.DEVNULL,
                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while " PASSED " not in (tmp_path / "client.out").read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    client.send_signal(signal.SIGINT)
    client.wait(timeout=60)
    text = (tmp_path / "client.out").read_text()
    assert client.returncode == 2, text + farm.log_text()
    assert "KeyboardInterrupt" in text, text
    while run_state(farm, "mine") == "running" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run_state(farm, "mine") == "cancelled", farm.log_text()


def test_interrupted_farm_client_does_not_wait_for_a_running_test(farm, tmp_path):
    suite = tmp_path / "suite"
    write_slow_suite(suite, files=2, tests=2, seconds=0.1)
    marker = tmp_path / "hung-in"
    add_hanging_test(suite, marker)
    farm.start_coordinator()
    farm.start_agent("a1", 1)
    farm.wait_agents(1)
    out = open(tmp_path / "client.out", "wb")
    client = subprocess.Popen(h.drover_command("--coordinator", farm.endpoint, "--run-id", "hung"),
                              cwd=suite, env=h.clean_env({"DROVER_HTTP": farm.http}), stdin=subprocess.DEVNULL,
                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    wait_for_file(marker, [client])
    client.send_signal(signal.SIGINT)
    try:
        client.wait(timeout=15)  # the hanging test sleeps 120 s on the agent
    except subprocess.TimeoutExpired:
        os.killpg(client.pid, signal.SIGKILL)
        raise AssertionError("Ctrl-C did not end the farm client while a test ran") from None
    text = (tmp_path / "client.out").read_text()
    assert client.returncode == 2 and "KeyboardInterrupt" in text, text + farm.log_text()


def test_job_keys_may_serve_and_client_keys_may_not(farm, tmp_path):
    for name in ("coord", "job", "client"):
        made = farm.tool("keygen", "-o", str(tmp_path / f"{name}.key"))
        assert made.rc == 0, made.describe()
    config = tmp_path / "coordinator.yaml"
    config.write_text(f"key_file: {tmp_path / 'coord.key'}\njob_keys: [{tmp_path / 'job.key.pub'}]\n"
                      f"client_keys: [{tmp_path / 'client.key.pub'}]\n")
    suite = tmp_path / "suite"
    total = write_slow_suite(suite, files=2, tests=2, seconds=0.0)
    farm.start_coordinator("--config", str(config))
    keys = {"DROVER_SERVER_KEY": str(tmp_path / "coord.key.pub")}
    # A client key may submit the run, but its pool may not serve it: a clear error, not a wait.
    client_only = start_job(farm, suite, 0, 2, env={**keys, "DROVER_KEY_FILE": str(tmp_path / "client.key")})
    rc, text = wait_job(farm, client_only, 0, timeout=120)
    assert rc == 3, text + farm.log_text()
    assert f"this job cannot serve run {RUN_ID}" in text, text
    # A job key does both.
    job = start_job(farm, h.copy_tree(suite, tmp_path / "checkout1"), 1, 2,
                    env={**keys, "DROVER_KEY_FILE": str(tmp_path / "job.key")})
    rc, text = wait_job(farm, job, 1)
    assert rc == 0, text + farm.log_text()
    assert f"0 failed, {total} passed" in text, text
