"""Farm mode end to end: one `drover coordinator`, several `drover agent`s with
separate work directories, and `drover run --coordinator`, all on loopback.

Checks per-test outcome parity with plain pytest, that killing an agent with
SIGKILL mid-run loses no test, that a restarted coordinator still serves the
reports of finished runs, that the durations history can be pulled, and that an
agent whose CURVE key is not allow-listed is refused.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

import drover_helpers as h


def free_port() -> int:
    # The CLI cannot bind port 0 and report it back, so pick a free port here.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Farm:
    """A coordinator and its agents, as real processes in their own process groups."""

    def __init__(self, base: Path, drover: str):
        self.base = base
        self.drover = drover
        self.zmq_port = free_port()
        self.http_port = free_port()
        self.endpoint = f"tcp://127.0.0.1:{self.zmq_port}"
        self.http = f"http://127.0.0.1:{self.http_port}"
        self.data = base / "coordinator-data"
        self.coordinator: subprocess.Popen | None = None
        self.agents: dict[str, subprocess.Popen] = {}
        self.logs: list[Path] = []

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log = self.base / f"{name}.log"
        self.logs.append(log)
        with open(log, "ab") as out:
            return subprocess.Popen(args, cwd=self.base, env=h.clean_env(env), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def start_coordinator(self, *extra: str) -> None:
        self.coordinator = self._spawn("coordinator", [
            self.drover, "coordinator", "--bind", self.endpoint, "--http", f"127.0.0.1:{self.http_port}",
            "--data", str(self.data), *extra])
        self.wait_health(lambda health: True, "the coordinator's HTTP API")

    def start_agent(self, name: str, workers: int = 2, *extra: str,
                    env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = self._spawn(name, [
            self.drover, "agent", "--connect", self.endpoint, "--http", self.http, "--name", name,
            "--workers", str(workers), "--python", h.PY, "--workdir", str(self.base / f"{name}-work"), *extra],
            env)
        self.agents[name] = proc
        return proc

    def health(self) -> dict | None:
        try:
            with urllib.request.urlopen(self.http + "/api/v1/health", timeout=2) as response:
                return json.loads(response.read())
        except OSError:
            return None

    def wait_health(self, predicate, what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.coordinator is not None and self.coordinator.poll() is not None:
                raise AssertionError(f"the coordinator exited with {self.coordinator.returncode}\n{self.log_text()}")
            health = self.health()
            if health is not None and predicate(health):
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}\n{self.log_text()}")

    def wait_agents(self, count: int) -> None:
        self.wait_health(lambda health: health.get("agents", 0) >= count, f"{count} agents")

    def run(self, cwd: Path, *args: str, timeout: float = 240) -> h.RunResult:
        return h.run_process(h.drover_command("--coordinator", self.endpoint, *args), cwd,
                             h.clean_env({"DROVER_HTTP": self.http}), timeout)

    def tool(self, subcommand: str, *args: str) -> h.RunResult:
        return h.run_process([self.drover, subcommand, *args], self.base, h.clean_env(), 60)

    def stop_coordinator(self) -> None:
        if self.coordinator is not None:
            _stop(self.coordinator)
            self.coordinator = None

    def stop(self) -> None:
        for proc in self.agents.values():
            _stop(proc)
        self.stop_coordinator()

    def log_text(self) -> str:
        return "\n".join(f"--- {log.name} ---\n{log.read_text(errors='replace')[-4000:]}"
                         for log in self.logs if log.exists())


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


@pytest.fixture
def farm(drover, tmp_path):
    f = Farm(tmp_path, drover)
    yield f
    f.stop()
    h.kill_processes_in(tmp_path)


def write_slow_suite(root: Path, files: int = 6, tests: int = 6, seconds: float = 0.4) -> int:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n")
    for f in range(files):
        body = "import time\n\n"
        for t in range(tests):
            body += f"def test_{t}():\n    time.sleep({seconds})\n\n"
        (root / f"test_slow_{f}.py").write_text(body)
    return files * tests


def test_three_agents_match_plain_pytest(farm, copy_suite, tmp_path):
    farm.start_coordinator()
    farm.start_agent("a1")
    farm.start_agent("a2")
    farm.start_agent("a3", 2, "--worker-start", "fork")  # forked workers on a farm too
    farm.wait_agents(3)
    plain_dir = copy_suite("outcomes")
    farm_dir = copy_suite("outcomes")
    plain = h.run_pytest(plain_dir, "--junitxml", str(tmp_path / "pytest.xml"))
    result = farm.run(farm_dir, "--run-id", "parity", "--junitxml", str(tmp_path / "farm.xml"))
    assert result.rc == plain.rc, result.describe() + farm.log_text()
    assert "drover run parity" in result.stdout, result.describe()
    expected = h.parse_junit(tmp_path / "pytest.xml").outcome_multiset()
    actual = h.parse_junit(tmp_path / "farm.xml").outcome_multiset()
    diff = h.multiset_diff(expected, actual)
    assert not diff, f"per-test outcomes differ from plain pytest:\n{diff}\n{result.describe()}"
    assert h.summary_counts(result.stdout) == h.summary_counts(plain.stdout), result.describe()


def test_killed_agent_loses_no_test(farm, tmp_path):
    suite = tmp_path / "slow"
    total = write_slow_suite(suite, files=8, tests=8, seconds=0.4)  # ~4 s of work per slot
    farm.start_coordinator()
    for name in ("a1", "a2", "a3"):
        farm.start_agent(name)
    farm.wait_agents(3)
    client = subprocess.Popen(
        h.drover_command("--coordinator", farm.endpoint, "-v", "--junitxml", str(tmp_path / "farm.xml")),
        cwd=suite, env=h.clean_env({"DROVER_HTTP": farm.http}), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    # Let every agent get going, then kill one without warning.
    time.sleep(4.5)
    assert client.poll() is None, "the run ended before an agent could be killed"
    os.killpg(farm.agents["a2"].pid, signal.SIGKILL)
    try:
        out, err = client.communicate(timeout=180)
    finally:
        if client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
    text = out.decode() + err.decode()
    assert client.returncode == 0, text + farm.log_text()
    junit = h.parse_junit(tmp_path / "farm.xml")
    cases = junit.outcome_multiset()
    assert sum(cases.values()) == total and set(cases.values()) == {1}, text  # every test exactly once
    assert {outcome for (_cls, _name, outcome) in cases} == {"passed"}, cases
    assert f"{total} passed" in text, text
    # Each test reported once, by a live agent or by a2 before it died.
    ran_by = [line for line in text.splitlines() if " PASSED [a" in line]
    assert len(ran_by) == total, text


def test_restarted_coordinator_keeps_finished_reports(farm, copy_suite, tmp_path):
    farm.start_coordinator()
    farm.start_agent("a1")
    farm.wait_agents(1)
    suite = tmp_path / "slow"
    total = write_slow_suite(suite, files=2, tests=3, seconds=0.0)
    result = farm.run(suite, "--run-id", "kept")
    assert result.rc == 0, result.describe() + farm.log_text()
    farm.stop_coordinator()
    farm.start_coordinator()
    # The agent notices the restart, says Hello again and serves the next run.
    farm.wait_agents(1)
    again = farm.run(suite, "--run-id", "after-restart")
    assert again.rc == 0, again.describe() + farm.log_text()
    out = tmp_path / "kept.xml"
    download = farm.tool("report", "download", "--server", farm.http, "--run-id", "kept", "-o", str(out))
    assert download.rc == 0, download.describe()
    junit = h.parse_junit(out)
    assert sum(collections.Counter(junit.outcome_multiset()).values()) == total
    # A run that does not exist is a one-line error, not a crash.
    missing = farm.tool("report", "download", "--server", farm.http, "--run-id", "nope", "-o", str(tmp_path / "x.xml"))
    assert missing.rc != 0
    assert "404" in missing.stderr and len(missing.stderr.strip().splitlines()) == 1, missing.describe()
    assert not (tmp_path / "x.xml").exists()
    # The durations history learnt the run's tests.
    pulled = tmp_path / ".test_durations"
    pull = farm.tool("durations", "pull", "--server", farm.http, "-o", str(pulled))
    assert pull.rc == 0, pull.describe()
    assert "test_slow_0.py::test_0" in json.loads(pulled.read_text())


def test_agent_with_disallowed_key_is_refused(farm, tmp_path):
    for name in ("coord", "good", "bad", "client"):
        made = farm.tool("keygen", "-o", str(tmp_path / f"{name}.key"))
        assert made.rc == 0, made.describe()
    config = tmp_path / "coordinator.yaml"
    config.write_text(f"key_file: {tmp_path / 'coord.key'}\nagent_keys: [{tmp_path / 'good.key.pub'}]\n"
                      f"client_keys: [{tmp_path / 'client.key.pub'}]\n")
    farm.start_coordinator("--config", str(config))
    bad = farm.start_agent("bad", 1, "--server-key", str(tmp_path / "coord.key.pub"), "--key-file", str(tmp_path / "bad.key"))
    try:
        bad.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("an agent with a key outside the allow-list kept running\n" + farm.log_text())
    assert bad.returncode != 0
    assert "refused" in (tmp_path / "bad.log").read_text()
    farm.start_agent("good", 1, "--server-key", str(tmp_path / "coord.key.pub"), "--key-file", str(tmp_path / "good.key"))
    farm.wait_agents(1)
    assert farm.agents["good"].poll() is None


def test_client_with_the_wrong_server_key_hears_no_answer(farm, tmp_path):
    # A CURVE handshake with the wrong server key never completes: the coordinator is
    # silent from the start, which is "no answer", not a lost coordinator.
    for name in ("coord", "other", "client"):
        assert farm.tool("keygen", "-o", str(tmp_path / f"{name}.key")).rc == 0
    config = tmp_path / "coordinator.yaml"
    config.write_text(f"key_file: {tmp_path / 'coord.key'}\nclient_keys: [{tmp_path / 'client.key.pub'}]\n")
    farm.start_coordinator("--config", str(config))
    suite = tmp_path / "suite"
    write_slow_suite(suite, files=1, tests=1, seconds=0.0)
    result = h.run_process(h.drover_command("--coordinator", farm.endpoint, "--workspace", str(suite)), suite,
                           h.clean_env({"DROVER_HTTP": farm.http, "DROVER_SERVER_KEY": str(tmp_path / "other.key.pub"),
                                        "DROVER_KEY_FILE": str(tmp_path / "client.key")}), 60)
    assert result.rc == 3, result.describe()
    assert f"no answer from the coordinator at {farm.endpoint}" in result.stderr, result.describe()


def test_collection_mismatch_fails_the_run_clearly(farm, tmp_path):
    suite = h.write_suite(tmp_path / "envdep", {"test_env.py": (
        "import os\nimport pytest\n\n"
        "@pytest.mark.parametrize('n', range(3 if os.environ.get('FARM_ODD_AGENT') else 2))\n"
        "def test_n(n):\n    pass\n")})
    farm.start_coordinator()
    farm.start_agent("odd", 1, env={"FARM_ODD_AGENT": "1"})
    farm.wait_agents(1)
    result = farm.run(suite, timeout=120)
    assert result.rc == 3, result.describe() + farm.log_text()
    assert "collection differs on agent odd" in result.stderr, result.describe()
    assert farm.agents["odd"].poll() is None  # the agent itself stays up for other runs


def test_agents_can_use_their_own_checkout(farm, tmp_path):
    suite = tmp_path / "shared-checkout"
    total = write_slow_suite(suite, files=2, tests=2, seconds=0.0)
    farm.start_coordinator()
    farm.start_agent("a1")
    farm.wait_agents(1)
    result = farm.run(suite, "--workspace", str(suite))
    assert result.rc == 0, result.describe() + farm.log_text()
    assert f"{total} passed" in result.stdout, result.describe()
    # Nothing was uploaded or downloaded: the agent ran in the checkout itself.
    assert not list((farm.data / "workspaces").glob("*")) if (farm.data / "workspaces").exists() else True
    assert not (tmp_path / "a1-work" / "workspaces").exists()


def test_exitfirst_cancels_the_farm_run(farm, tmp_path):
    suite = h.write_suite(tmp_path / "failing", {"test_fail_first.py": "def test_boom():\n    assert 0\n"})
    for f in range(4):
        (suite / f"test_later_{f}.py").write_text(
            "import time\n\n" + "".join(f"def test_{t}():\n    time.sleep(0.5)\n\n" for t in range(6)))
    # Known as the slowest test, the failing one is planned first (longest first).
    durations = tmp_path / "durations.json"
    known = {f"test_later_{f}.py::test_{t}": 0.5 for f in range(4) for t in range(6)}
    durations.write_text(json.dumps({**known, "test_fail_first.py::test_boom": 100.0}))
    farm.start_coordinator()
    farm.start_agent("a1", 1)
    farm.wait_agents(1)
    result = farm.run(suite, "-x", "--durations", str(durations))
    assert result.rc == 1, result.describe() + farm.log_text()
    counts = h.summary_counts(result.stdout)
    assert counts.get("failed") == 1, result.describe()
    assert counts.get("passed", 0) < 24, result.describe()  # the rest was cancelled, not run
    assert "stopping after 1 failures" in result.stdout, result.describe()


def test_interrupted_client_stops_its_running_tests_on_the_agent(farm, tmp_path):
    # Ctrl-C on the client cancels the run: the agent stops the run's test still running
    # (its worker is killed) instead of letting it run to its end, so the agent is free for
    # the next run at once; the coordinator reports the stopped test as not run.
    started = tmp_path / "started"
    suite = h.write_suite(tmp_path / "long", {"test_long.py": (
        "import pathlib\nimport time\n\n\n"
        f"def test_long():\n    pathlib.Path({str(started)!r}).write_text('x')\n    time.sleep(300)\n")})
    quick = h.write_suite(tmp_path / "quick", {"test_quick.py": "def test_quick():\n    pass\n"})
    farm.start_coordinator()
    farm.start_agent("a1", 1)
    farm.wait_agents(1)
    client = subprocess.Popen(h.drover_command("--coordinator", farm.endpoint, "--run-id", "stopped"),
                              cwd=suite, env=h.clean_env({"DROVER_HTTP": farm.http}), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started.exists(), farm.log_text()
        client.send_signal(signal.SIGINT)
        out, err = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            os.killpg(client.pid, signal.SIGKILL)
    assert client.returncode == 2, out.decode() + err.decode() + farm.log_text()
    # The one-slot agent serves the next run now, not after test_long's 300 s.
    after = farm.run(quick, "--run-id", "after", timeout=60)
    assert after.rc == 0, after.describe() + farm.log_text()
    assert "1 passed" in after.stdout, after.describe()
    report = tmp_path / "stopped.xml"
    download = farm.tool("report", "download", "--server", farm.http, "--run-id", "stopped", "-o", str(report))
    assert download.rc == 0, download.describe() + farm.log_text()
    cases = h.parse_junit(report).outcome_multiset()
    assert cases == collections.Counter({("test_long", "test_long", "error"): 1}), cases
    assert "not run: interrupted" in report.read_text(), report.read_text()


def test_collection_errors_count_towards_exitfirst_on_a_farm(farm, tmp_path):
    # As pytest and a local run: with -x, a collection error is the first failure and
    # nothing runs (exit 1), even with --continue-on-collection-errors.
    suite = h.write_suite(tmp_path / "broken", {"test_bad.py": "import no_such_module\n",
                                              "test_good.py": "def test_ok():\n    pass\n"})
    farm.start_coordinator()
    farm.start_agent("a1", 1)
    farm.wait_agents(1)
    expected = h.run_pytest(suite, "-x", "--continue-on-collection-errors")
    result = farm.run(suite, "-x", "--continue-on-collection-errors")
    assert result.rc == expected.rc == 1, result.describe() + farm.log_text()
    assert h.summary_counts(result.stdout) == h.summary_counts(expected.stdout), result.describe()
    assert "stopping after 1 failures" in result.stdout, result.describe()


def test_client_timeout_applies_on_the_agents(farm, tmp_path):
    # The client's --timeout travels with the run: the agent (started without one)
    # fails the hanging test as a local run would, and the run goes on.
    suite = h.write_suite(tmp_path / "hang", {"test_hang.py": (
        "import time\n\n\ndef test_hangs():\n    time.sleep(120)\n\n\ndef test_quick():\n    pass\n")})
    farm.start_coordinator()
    farm.start_agent("a1")
    farm.wait_agents(1)
    result = farm.run(suite, "--run-id", "timeout", "--timeout", "2", "--junitxml", str(tmp_path / "farm.xml"))
    assert result.rc == 1, result.describe() + farm.log_text()
    outcomes = h.parse_junit(tmp_path / "farm.xml").outcome_multiset()
    assert outcomes == collections.Counter({("test_hang", "test_hangs", "failure"): 1,
                                            ("test_hang", "test_quick", "passed"): 1}), outcomes
    assert "timeout after 2 s" in result.stdout, result.describe()


def test_client_refused_on_join_still_reports_every_test(farm, tmp_path):
    # A run id already running another selection: the second client is refused, and its
    # JUnit lists each of its tests as not run, not an empty (green-looking) report.
    suite = h.write_suite(tmp_path / "join", {"test_slow.py": (
        "import time\n" + "".join(f"\n\ndef test_{i}():\n    time.sleep(3)\n" for i in range(4)))})
    farm.start_coordinator()
    farm.start_agent("a1", 1)
    farm.wait_agents(1)
    first = subprocess.Popen(h.drover_command("--coordinator", farm.endpoint, "--run-id", "shared", "-k", "test_0"),
                             cwd=suite, env=h.clean_env({"DROVER_HTTP": farm.http}), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        farm.wait_health(lambda health: health.get("active_runs", 0) >= 1, "the first run")
        result = farm.run(suite, "--run-id", "shared", "--junitxml", str(tmp_path / "refused.xml"))
    finally:
        first.wait(timeout=120)
    assert result.rc == 3, result.describe() + farm.log_text()
    assert "is running with collection" in result.stderr, result.describe()
    outcomes = h.parse_junit(tmp_path / "refused.xml").outcome_multiset()
    assert outcomes == collections.Counter({("test_slow", f"test_{i}", "error"): 1 for i in range(4)}), outcomes
    assert "not run: the coordinator refused the run: " in (tmp_path / "refused.xml").read_text()
