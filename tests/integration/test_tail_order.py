"""Balancing that keeps pytest's semantics: the tail cut (a unit cut in two when too
little work is queued behind it) keeps collection order, so a worker that runs both parts
of a module runs them in pytest's order with its module fixture set up once; and the
successor a long test waits for is a short unit, not the next long one."""
from __future__ import annotations

import json

import drover_helpers as h

CONFTEST = '''
import os
import pathlib

import pytest

LOG = pathlib.Path(__file__).parent / "ran.log"


@pytest.fixture(autouse=True)
def _record(request):
    with LOG.open("a") as log:
        log.write("%d %s\\n" % (os.getpid(), request.node.nodeid))
    yield


@pytest.fixture(scope="module")
def module_state():
    with LOG.open("a") as log:
        log.write("%d setup %s\\n" % (os.getpid(), os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[0]))
    return []
'''

# test_m's long test sits in the middle: cut by estimate it is reached with the first part,
# whose tests must still run before the rest on a worker that takes both.
SLEEPS = [0.02, 0.05, 0.03, 0.4, 0.02, 0.06, 0.03, 0.05]
ORDERED = "import time\n\n\n" + "".join(
    f"def test_{i}(module_state):\n"
    f"    time.sleep({s})\n"
    f"    assert not module_state or module_state[-1] < {i}, module_state  # order on this worker\n"
    f"    module_state.append({i})\n\n\n"
    for i, s in enumerate(SLEEPS))


def test_a_tail_cut_module_runs_in_collection_order_on_each_worker(drover, tmp_path):
    suite = h.write_suite(tmp_path / "suite", {
        "conftest.py": CONFTEST,
        "test_long.py": "import time\n\n\ndef test_long():\n    time.sleep(1.0)\n",
        "test_m.py": ORDERED,
    })
    durations = {"test_long.py::test_long": 1.0}
    durations.update({f"test_m.py::test_{i}": s for i, s in enumerate(SLEEPS)})
    for attempt in range(2):
        (suite / ".test_durations").write_text(json.dumps(durations))
        log = suite / "ran.log"
        log.unlink(missing_ok=True)
        result = h.run_drover(suite, "-n", "2")
        assert result.rc == 0, result.describe()  # each worker's part passes: in order
        per_worker: dict[str, list[int]] = {}
        setups: dict[str, int] = {}
        for line in log.read_text().splitlines():
            pid, what = line.split(" ", 1)
            if what.startswith("setup test_m.py"):
                setups[pid] = setups.get(pid, 0) + 1
            elif what.startswith("test_m.py::test_"):
                per_worker.setdefault(pid, []).append(int(what.rsplit("_", 1)[1]))
        assert sorted(i for seq in per_worker.values() for i in seq) == list(range(len(SLEEPS)))
        for pid, seq in per_worker.items():
            assert seq == sorted(seq), (attempt, per_worker, result.stdout)
            assert setups.get(pid) == 1, (attempt, setups, per_worker)  # never twice on one worker


def test_the_two_longest_tests_run_on_different_workers(drover, tmp_path):
    # A single 2 s test cannot start before its successor is known; with the 1.8 s test
    # as that successor one worker would run both while the other ran out of work.
    files = {"conftest.py": CONFTEST}
    durations = {}
    for name, seconds in (("a", 1.0), ("b", 0.9)):
        files[f"test_{name}.py"] = f"import time\n\n\ndef test_{name}():\n    time.sleep({seconds})\n"
        durations[f"test_{name}.py::test_{name}"] = seconds
    for module in "cdef":
        files[f"test_{module}.py"] = "import time\n\n\n" + "".join(
            f"def test_{i}():\n    time.sleep(0.05)\n\n\n" for i in range(5))
        durations.update({f"test_{module}.py::test_{i}": 0.05 for i in range(5)})
    suite = h.write_suite(tmp_path / "suite", files)
    for attempt in range(2):
        (suite / ".test_durations").write_text(json.dumps(durations))
        log = suite / "ran.log"
        log.unlink(missing_ok=True)
        result = h.run_drover(suite, "-n", "2")
        assert result.rc == 0, result.describe()
        where = {what: pid for pid, what in (line.split(" ", 1) for line in log.read_text().splitlines())}
        assert where["test_a.py::test_a"] != where["test_b.py::test_b"], (attempt, log.read_text())
