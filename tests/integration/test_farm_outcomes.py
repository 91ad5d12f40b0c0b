"""Every test keeps exactly one outcome when farm-mode processes die around it.

A coordinator killed with SIGKILL mid-run and restarted on the same data, or
stopped with SIGTERM: the run's downloaded report and the client's own JUnit
still hold every collected test once (errors `not run: coordinator restarted`,
`not run: coordinator stopping`, `not run: lost the coordinator`). The same
holds for a CI queue run. An agent that sends a result without phases has it
dropped: the test runs again elsewhere instead of vanishing.
"""
from __future__ import annotations

import collections
import os
import signal
import subprocess
import time
from pathlib import Path

import drover_helpers as h
import test_farm
import test_queue
from test_farm import write_slow_suite

farm = test_farm.farm  # the fixture

FILES, TESTS, SECONDS = 6, 6, 0.5


def start_client(farm, suite: Path, run_id: str, junit: Path) -> subprocess.Popen:
    return subprocess.Popen(
        h.drover_command("--coordinator", farm.endpoint, "--run-id", run_id, "-v", "--junitxml", str(junit)),
        cwd=suite, env=h.clean_env({"DROVER_HTTP": farm.http}), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> str:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return out.decode(errors="replace") + err.decode(errors="replace")


def kill_coordinator(farm) -> None:
    assert farm.coordinator is not None and farm.coordinator.poll() is None
    os.killpg(farm.coordinator.pid, signal.SIGKILL)
    farm.coordinator.wait()
    farm.coordinator = None


def every_test_once(junit: h.Junit, total: int) -> collections.Counter:
    names = collections.Counter((case.classname, case.name) for case in junit.cases)
    assert len(names) == total and set(names.values()) == {1}, names
    return collections.Counter(case.message for case in junit.cases if case.outcome.startswith("error"))


def run_midway(farm, tmp_path: Path, run_id: str) -> tuple[subprocess.Popen, int]:
    """A client whose run on two agents is about 4 s in (of ~9 s); returns it and the test count."""
    suite = tmp_path / "suite"
    total = write_slow_suite(suite, files=FILES, tests=TESTS, seconds=SECONDS)
    farm.start_coordinator()
    farm.start_agent("a1", 1)
    farm.start_agent("a2", 1)
    farm.wait_agents(2)
    client = start_client(farm, suite, run_id, tmp_path / "client.xml")
    time.sleep(4)
    assert client.poll() is None, "the run ended before the coordinator could be cut off"
    return client, total


def test_killed_and_restarted_coordinator_leaves_every_test_one_outcome(farm, tmp_path):
    client, total = run_midway(farm, tmp_path, "cut")
    kill_coordinator(farm)
    farm.start_coordinator()
    text = finish(client)
    assert client.returncode == 3, text + farm.log_text()
    errors = every_test_once(h.parse_junit(tmp_path / "client.xml"), total)
    assert errors and set(errors) == {"not run: lost the coordinator"}, errors
    assert "not run: lost the coordinator" in text, text

    out = tmp_path / "downloaded.xml"
    download = farm.tool("report", "download", "--server", farm.http, "--run-id", "cut", "-o", str(out))
    assert download.rc == 0, download.describe() + farm.log_text()
    stored = every_test_once(h.parse_junit(out), total)
    assert stored and set(stored) == {"not run: coordinator restarted"}, stored
    assert test_queue.run_state(farm, "cut") == "failed"


def test_stopped_coordinator_closes_leased_tests_too(farm, tmp_path):
    client, total = run_midway(farm, tmp_path, "stopped")
    farm.stop_coordinator()  # SIGTERM: a graceful stop
    text = finish(client)
    assert client.returncode == 3, text + farm.log_text()
    errors = every_test_once(h.parse_junit(tmp_path / "client.xml"), total)
    assert errors and set(errors) == {"not run: coordinator stopping"}, errors

    farm.start_coordinator()
    out = tmp_path / "downloaded.xml"
    download = farm.tool("report", "download", "--server", farm.http, "--run-id", "stopped", "-o", str(out))
    assert download.rc == 0, download.describe() + farm.log_text()
    stored = every_test_once(h.parse_junit(out), total)
    assert stored == errors, (stored, errors)


def test_queue_run_cut_by_a_coordinator_restart_reports_every_test(farm, tmp_path):
    suite = tmp_path / "suite"
    total = write_slow_suite(suite, files=FILES, tests=TESTS, seconds=SECONDS)
    checkouts = [h.copy_tree(suite, tmp_path / f"checkout{i}") for i in range(2)]
    farm.start_coordinator()
    jobs = [test_queue.start_job(farm, checkouts[i], i, 2) for i in range(2)]
    time.sleep(6)
    assert all(job.poll() is None for job in jobs), "the run ended before the coordinator could be killed"
    kill_coordinator(farm)
    farm.start_coordinator()
    for i, job in enumerate(jobs):
        rc, text = test_queue.wait_job(farm, job, i, timeout=120)
        assert rc == 3, text + farm.log_text()
    junit = test_queue.download(farm, test_queue.RUN_ID, tmp_path / "downloaded.xml")
    stored = every_test_once(junit, total)
    assert stored and set(stored) == {"not run: coordinator restarted"}, stored


def frame(kind: int, body: dict) -> bytes:
    import msgpack
    return msgpack.packb({"p": "drover", "v": 1, "t": kind, "b": body}, use_bin_type=True)


def test_result_without_phases_is_dropped_and_the_test_runs_again(farm, tmp_path):
    """A misbehaving agent (a raw ZeroMQ peer here) reports its leased test with an empty
    `phases` list, then leaves: the result is refused, so the test is requeued and a real
    agent runs it; the report has every test once."""
    import msgpack
    import zmq
    suite = tmp_path / "suite"
    total = write_slow_suite(suite, files=1, tests=4, seconds=0.0)
    farm.start_coordinator()
    context = zmq.Context()
    liar = context.socket(zmq.DEALER)
    liar.setsockopt(zmq.LINGER, 0)
    liar.connect(farm.endpoint)
    try:
        liar.send(frame(1, {"role": "agent", "name": "liar", "protocol_min": 1, "protocol_max": 1, "slots": 1}))
        assert liar.poll(10000), "no Welcome"
        assert msgpack.unpackb(liar.recv(), raw=False)["t"] == 2
        liar.send(frame(4, {"credits": 1}))
        client = start_client(farm, suite, "phaseless", tmp_path / "client.xml")
        lease = None
        deadline = time.monotonic() + 60
        while lease is None and time.monotonic() < deadline:
            if liar.poll(200):
                message = msgpack.unpackb(liar.recv(), raw=False)
                if message["t"] == 5:
                    lease = message["b"]
            else:
                liar.send(frame(3, {"seq": 1}))
        assert lease is not None, "the fake agent got no lease\n" + farm.log_text()
        liar.send(frame(6, {"run_id": lease["run_id"], "lease_id": lease["lease_id"],
                            "result": {"index": lease["tests"][0], "worker": "liar/gw0", "phases": []}}))
        time.sleep(0.5)
        liar.send(frame(10, {"reason": "done lying"}))
    finally:
        liar.close()
        context.term()
    farm.start_agent("a1", 1)
    text = finish(client)
    assert client.returncode == 0, text + farm.log_text()
    junit = h.parse_junit(tmp_path / "client.xml")
    assert not every_test_once(junit, total)
    assert {case.outcome for case in junit.cases} == {"passed"}
    assert "no phases" in farm.log_text()
