"""nextitem semantics: fixtures are set up and torn down exactly where pytest does it."""

import subprocess

from worker_harness import PYTHON, Worker, write_suite

CONFTEST = '''
import os, pytest

def log(text):
    with open(os.environ.get("FIXTURE_LOG", "fixture.log"), "a") as stream:
        stream.write(text + "\\n")

@pytest.fixture(scope="session", autouse=True)
def session_fixture():
    log("setup session")
    yield
    log("teardown session")
'''

MODULE = '''
import pytest
from conftest import log

@pytest.fixture(scope="module", autouse=True)
def module_fixture():
    log("setup module {name}")
    yield
    log("teardown module {name}")

@pytest.fixture(scope="class")
def class_fixture():
    log("setup class {name}")
    yield
    log("teardown class {name}")

def test_first():
    log("run {name}::test_first")

@pytest.mark.usefixtures("class_fixture")
class TestGroup:
    def test_one(self):
        log("run {name}::TestGroup::test_one")

    def test_two(self):
        log("run {name}::TestGroup::test_two")

def test_last():
    log("run {name}::test_last")
'''


def make_suite(root):
    write_suite(
        root,
        {
            "conftest.py": CONFTEST,
            "test_a.py": MODULE.format(name="a"),
            "test_b.py": MODULE.format(name="b"),
        },
    )


def test_fixtures_follow_pytest_even_when_tests_arrive_one_by_one(tmp_path):
    make_suite(tmp_path)
    plain = subprocess.run(
        [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=tmp_path, capture_output=True, text=True
    )
    assert plain.returncode == 0, plain.stdout
    expected = (tmp_path / "fixture.log").read_text().splitlines()
    (tmp_path / "fixture.log").unlink()
    assert expected.count("setup module a") == 1 and expected[-1] == "teardown session"

    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    collected = worker.start()
    count = len(collected["items"])
    # The agent's worst case: one test per `run`, each sent only once the previous one is
    # running. The worker must hold the head back until it knows the next test.
    worker.run([0])
    assert worker.recv(timeout=0.5) is None, "ran a test before knowing its nextitem"
    for index in range(1, count):
        worker.run([index])
        assert worker.expect("start")["index"] == index - 1
        assert worker.until("finished")[-1]["index"] == index - 1
    worker.shutdown()
    messages = worker.until("bye")
    assert [m["index"] for m in messages if m["type"] == "finished"] == [count - 1]
    assert worker.wait() == 0
    assert (tmp_path / "fixture.log").read_text().splitlines() == expected


def test_split_modules_tear_down_between_leases(tmp_path):
    make_suite(tmp_path)
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    collected = worker.start()
    nodeids = [item["nodeid"] for item in collected["items"]]
    # Tests of module b first, then module a: each module's fixture is set up once.
    order = [i for i, n in enumerate(nodeids) if n.startswith("test_b")] + [
        i for i, n in enumerate(nodeids) if n.startswith("test_a")
    ]
    worker.run(order)
    worker.shutdown()
    worker.until("bye")
    assert worker.wait() == 0
    log = (tmp_path / "fixture.log").read_text().splitlines()
    assert log[0] == "setup session" and log[-1] == "teardown session"
    assert log.count("setup module a") == log.count("setup module b") == 1
    assert log.index("teardown module b") < log.index("setup module a")
    assert log.index("teardown class b") < log.index("run b::test_last")


def test_duplicate_node_ids_are_addressed_by_index(tmp_path):
    write_suite(
        tmp_path,
        {
            "test_dup.py": (
                "import pytest\n"
                "@pytest.mark.parametrize('x', [1, 2, 3], ids=['a', 'a0', 'a'])\n"
                "def test_p(x):\n"
                "    assert x != 2\n"
            )
        },
    )
    collected, results, _ = Worker(tmp_path, ["-p", "no:cacheprovider"]).run_all(order=[1, 0, 2])
    nodeids = [item["nodeid"] for item in collected["items"]]
    assert nodeids == ["test_dup.py::test_p[a0]", "test_dup.py::test_p[a0]", "test_dup.py::test_p[a1]"]
    assert [results[i]["call"]["status"] for i in range(3)] == ["passed", "failed", "passed"]


def test_session_fixture_teardown_happens_before_bye(tmp_path):
    make_suite(tmp_path)
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    worker.start()
    worker.run([0])
    worker.shutdown()
    messages = worker.until("bye")
    assert [m["type"] for m in messages if m["type"] != "report"] == ["start", "finished", "bye"]
    assert worker.wait() == 0
    log = (tmp_path / "fixture.log").read_text().splitlines()
    assert log == ["setup session", "setup module a", "run a::test_first", "teardown module a", "teardown session"]

