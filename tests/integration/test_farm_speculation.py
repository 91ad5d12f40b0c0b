"""Tail speculation in farm mode: with the queue empty, an idle agent runs a copy
of a straggler still running elsewhere; the first result counts, the other copy
is cancelled, and every test is reported exactly once.

Deterministic by construction, not by timing: the straggler blocks on the slow
agent until the test releases it (after the run has finished), and the fast
agent connects only once the straggler has started on the slow one, so the only
way the run can finish is through the speculative copy.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path


import drover_helpers as h
import test_farm



farm = test_farm.farm  # the fixture


QUICK = 4


def write_tail_suite(root: Path) -> list[str]:
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "test_quick.py").write_text("".join(f"def test_quick_{n}():\n    pass\n\n" for n in range(QUICK)))
    # Only the slow agent's environment names the files: there the test says it has
    # started and waits (up to 5 minutes) for the release; anywhere else it passes at once.
    (root / "test_tail.py").write_text(
        "import os\nimport time\nfrom pathlib import Path\n\n\n"
        "def test_straggler():\n"
        "    started = os.environ.get('FARM_STRAGGLER_STARTED')\n"
        "    if not started:\n"
        "        return\n"
        "    Path(started).touch()\n"
        "    release = Path(os.environ['FARM_STRAGGLER_RELEASE'])\n"
        "    deadline = time.monotonic() + 300\n"
        "    while not release.exists() and time.monotonic() < deadline:\n"
        "        time.sleep(0.05)\n"
        "    Path(os.environ['FARM_STRAGGLER_DONE']).touch()\n")
    return [f"test_quick.py::test_quick_{n}" for n in range(QUICK)] + ["test_tail.py::test_straggler"]


def wait_for(predicate, what: str, farm, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{farm.log_text()}")
        time.sleep(0.1)


def run_status(farm, run_id: str) -> dict:
    with urllib.request.urlopen(f"{farm.http}/api/v1/runs/{run_id}", timeout=10) as response:
        return json.loads(response.read())


def test_straggler_copy_on_idle_agent_wins_and_is_reported_once(farm, tmp_path):
    suite = tmp_path / "tail"
    nodeids = write_tail_suite(suite)
    started, release, done = (tmp_path / name for name in ("started", "release", "done"))
    farm.start_coordinator("--log-level", "debug")
    farm.start_agent("slow", 1, env={"FARM_STRAGGLER_STARTED": str(started),
                                     "FARM_STRAGGLER_RELEASE": str(release),
                                     "FARM_STRAGGLER_DONE": str(done)})
    farm.wait_agents(1)
    junit_path = tmp_path / "farm.xml"
    client = subprocess.Popen(
        h.drover_command("--coordinator", farm.endpoint, "--run-id", "tail", "-v", "--junitxml", str(junit_path)),
        cwd=suite, env=h.clean_env({"DROVER_HTTP": farm.http}), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_for(lambda: started.exists() or client.poll() is not None, "the straggler to start on agent slow", farm)
        assert client.poll() is None, "the run ended while its straggler was blocked\n" + farm.log_text()
        # Nothing is queued any more: the fast agent can only get a speculative copy.
        farm.start_agent("fast", 1)
        out, err = client.communicate(timeout=180)
    finally:
        if client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
            client.communicate()
    text = out.decode() + err.decode()
    assert client.returncode == 0, text + farm.log_text()
    assert not done.exists(), "the slow copy finished first: nothing was speculated"
    assert f"{len(nodeids)} passed" in text, text

    # Reported once each; the straggler by the speculative copy on the fast agent.
    for nodeid in nodeids:
        lines = [line for line in text.splitlines() if line.startswith(nodeid + " ")]
        assert len(lines) == 1, f"{nodeid} reported {len(lines)} times\n{text}"
    straggler = [line for line in text.splitlines() if line.startswith("test_tail.py::test_straggler ")]
    assert re.search(r" PASSED \[fast/[^\]]+\]$", straggler[0]), text
    cases = h.parse_junit(junit_path).outcome_multiset()
    assert sorted(cases.elements()) == sorted(
        ("test_quick", f"test_quick_{n}", "passed") for n in range(QUICK)) + [("test_tail", "test_straggler", "passed")], cases
    coordinator_log = (tmp_path / "coordinator.log").read_text()
    assert re.search(r"run tail: lease \d+ \(\d+ tests?, speculative\) to fast", coordinator_log), coordinator_log

    # Let the losing copy finish: its late result is dropped, the stored run and its
    # report are unaffected, and both agents serve the next run (where the straggler,
    # released, passes at once everywhere).
    release.touch()
    wait_for(done.exists, "the slow copy of the straggler to end", farm)
    again = farm.run(suite, "--run-id", "again")
    assert again.rc == 0, again.describe() + farm.log_text()
    assert f"{len(nodeids)} passed" in again.stdout, again.describe()
    status = run_status(farm, "tail")
    assert status["state"] == "finished" and status["counts"] == {"passed": len(nodeids)}, status
    report = tmp_path / "stored.xml"
    download = farm.tool("report", "download", "--server", farm.http, "--run-id", "tail", "-o", str(report))
    assert download.rc == 0, download.describe()
    assert h.parse_junit(report).outcome_multiset() == cases
    assert farm.agents["slow"].poll() is None and farm.agents["fast"].poll() is None, farm.log_text()
