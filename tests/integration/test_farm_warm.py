"""An agent keeps its workers warm between runs of the same workspace: the next
run's tests run in worker processes that were already up (Python started, pytest
imported, the suite collected) before that run was submitted."""
from __future__ import annotations

import os
import time
from pathlib import Path

import test_farm

farm = test_farm.farm  # the fixture


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def workers_of(agent_pid: int) -> set[int]:
    workers = set()
    for pid in descendants(agent_pid):
        try:
            if "drover_worker" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
                workers.add(pid)
        except OSError:
            pass
    return workers


def test_next_run_of_the_same_workspace_finds_warm_workers(farm, tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    for f in range(2):
        (suite / f"test_pid_{f}.py").write_text(
            "import os\n\n" + "".join(
                f"def test_{t}():\n    open(os.path.join({str(pids)!r}, os.environ.get('RUN_TAG', 'x') + '-' + str(os.getpid())), 'w').close()\n\n"
                for t in range(3)))
    farm.start_coordinator()
    agent = farm.start_agent("a1", 2)
    farm.wait_agents(1)
    first = farm.run(suite, "--run-id", "first")
    assert first.rc == 0, first.describe() + farm.log_text()
    # Let the agent bring its slots back up after the first run's last tests: two
    # workers, the same for a while.
    deadline = time.monotonic() + 60
    warm: set[int] = set()
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        now = workers_of(agent.pid)
        if now != warm:
            warm, stable_since = now, time.monotonic()
        elif len(warm) == 2 and time.monotonic() - stable_since > 2.0:
            break
        time.sleep(0.2)
    assert len(warm) == 2, f"the agent has no warm workers after the first run: {warm}\n{farm.log_text()}"
    for leftover in pids.iterdir():
        leftover.unlink()
    second = farm.run(suite, "--run-id", "second")
    assert second.rc == 0, second.describe() + farm.log_text()
    used = {int(name.name.rsplit("-", 1)[1]) for name in pids.iterdir()}
    assert used and used <= warm, f"second run used {used}, warm before it: {warm}\n{farm.log_text()}"
