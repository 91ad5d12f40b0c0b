"""Commands, the end of a worker's life, and what it does when things go wrong."""

import importlib.util
import json
import os
import subprocess
import time

import pytest

from drover_worker.__main__ import USAGE
from worker_harness import PYTHON, WORKER_PATH, Worker, results_by_index, write_suite

SIMPLE = '''
import os, pytest, time

def test_0():
    pass

def test_1():
    pass

def test_2(tmp_path):
    open("tmp-path.txt", "w").write(str(tmp_path))

def test_3():
    assert False

def test_4():
    pass
'''


def simple_worker(tmp_path, pytest_args=(), **kwargs):
    write_suite(tmp_path, {"test_simple.py": SIMPLE})
    return Worker(tmp_path, ["-p", "no:cacheprovider", *pytest_args], **kwargs)


def test_hello_comes_first(tmp_path):
    worker = simple_worker(tmp_path)
    hello = worker.expect("hello")
    worker.close()
    assert hello["pid"] == worker.process.pid
    assert hello["pytest"] == pytest.__version__
    assert "cancel" in hello["features"]


def test_cancel_drops_queued_tests_but_never_a_committed_head(tmp_path):
    worker = simple_worker(tmp_path)
    worker.start()
    # One write: the worker reads both commands before it runs anything.
    worker.send_raw(b'{"type":"run","indices":[0]}\n{"type":"cancel","indices":[0,4]}\n')
    assert worker.expect("cancelled")["indices"] == [0]  # not committed yet: can go
    worker.send_raw(b'{"type":"run","indices":[1,2,3,4]}\n{"type":"cancel","indices":[3]}\n')
    assert worker.expect("cancelled")["indices"] == [3]
    messages = worker.until("finished") + worker.until("finished")
    assert [m["index"] for m in messages if m["type"] == "start"] == [1, 2]
    # 4 was test 2's nextitem: pytest kept its fixtures for it, so it must run.
    worker.send({"type": "cancel", "indices": [4]})
    assert worker.expect("cancelled")["indices"] == []
    worker.shutdown()
    messages = worker.until("bye")
    assert [m["index"] for m in messages if m["type"] == "start"] == [4]
    assert worker.wait() == 0


@pytest.mark.parametrize("nonblocking", [False, True], ids=["blocking", "nonblocking"])
def test_commands_may_come_over_a_socket(tmp_path, nonblocking):
    worker = simple_worker(tmp_path, command_socket=True, nonblocking=nonblocking)
    collected = worker.start()
    time.sleep(0.3)  # the worker waits on an empty (maybe non-blocking) socket first
    worker.run([0])
    time.sleep(0.3)
    worker.run(range(1, 5))
    worker.shutdown()
    results = results_by_index(worker.until("bye"))
    assert worker.wait() == 0
    assert len(results) == len(collected["items"]) == 5


def test_descriptors_above_1024_work(tmp_path):
    import resource

    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] <= 1501:
        pytest.skip("the descriptor limit is too low for fds above 1500")
    worker = simple_worker(tmp_path, high_fds=True)
    collected = worker.start()
    time.sleep(0.2)  # the worker is now waiting on fd 1500
    worker.run(range(5))
    worker.shutdown()
    assert len(results_by_index(worker.until("bye"))) == len(collected["items"])
    assert worker.wait() == 0


def test_maxfail_and_exitfirst_do_not_stop_the_worker(tmp_path):
    # Without --maxfail (a farm agent's workers) the agent alone decides; pytest's own
    # limit is reported for the agent to follow.
    worker = simple_worker(tmp_path, ["-x", "--maxfail=2"])
    collected, results, bye = worker.run_all(order=[3, 0, 1])
    assert collected["maxfail"] == 2 and collected["collectonly"] is False
    assert [results[i]["call"]["status"] for i in (3, 0, 1)] == ["failed", "passed", "passed"]
    assert bye["exitstatus"] == 1


@pytest.mark.parametrize(
    "pytest_args, worker_args",
    [([], ["--maxfail", "1"]), (["-x"], ["--maxfail", "0"]), (["--maxfail=1"], ["--maxfail", "5"])],
    ids=["drover-limit", "pytest-x", "pytest-stricter"],
)
def test_a_worker_with_maxfail_stops_at_its_own_failure(tmp_path, pytest_args, worker_args):
    worker = simple_worker(tmp_path, pytest_args, worker_args=worker_args)
    worker.start()
    worker.run([3, 4, 0])  # test_3 fails; 4 was its nextitem (committed): dropped all the same
    messages = worker.until("finished")
    assert [m["index"] for m in messages if m["type"] == "start"] == [3]
    worker.run([1])  # sent before the agent saw the failure: not run either
    worker.send({"type": "stop"})
    assert sorted(worker.expect("cancelled")["indices"]) == [0, 1, 4]
    worker.shutdown()
    rest = worker.until("bye")
    assert [m for m in rest if m["type"] == "start"] == []
    assert worker.wait() == 0


FIXTURED = """
import pytest

@pytest.fixture(scope="module")
def resource():
    yield
    with open("teardowns.txt", "a") as log:
        log.write("module\\n")

def test_0(resource):
    pass

def test_1(resource):
    pass
"""


def test_stop_drops_the_committed_head_and_tears_down_once(tmp_path):
    write_suite(tmp_path, {"test_fixtured.py": FIXTURED})
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    worker.start()
    worker.run([0, 1])  # test_0 runs with test_1 as its nextitem: the module fixture stays up
    worker.until("finished")
    worker.send({"type": "stop"})
    assert worker.expect("cancelled")["indices"] == [1]
    worker.shutdown()
    assert [m for m in worker.until("bye") if m["type"] == "start"] == []
    assert worker.wait() == 0
    assert (tmp_path / "teardowns.txt").read_text() == "module\n"


def test_collect_only_is_reported(tmp_path):
    worker = simple_worker(tmp_path, ["--co"])
    collected = worker.start()
    assert collected["collectonly"] is True and len(collected["items"]) == 5
    worker.shutdown()
    worker.until("bye")
    assert worker.wait() == 0


@pytest.mark.parametrize("flag", ["--sw", "--stepwise-skip"])
def test_stepwise_is_a_usage_error(tmp_path, flag):
    write_suite(tmp_path, {"test_simple.py": SIMPLE})
    worker = Worker(tmp_path, [flag])  # stepwise lives in the cache plugin: keep it
    worker.expect("hello")
    assert worker.drain() == []
    assert worker.wait() == 4
    name = "--stepwise" if flag == "--sw" else flag
    assert "ERROR: %s is not supported by drover: run pytest itself for it" % name in worker.stderr()


@pytest.mark.parametrize("flag", ["--version", "--help", "--markers"])
def test_informational_options_end_without_a_session(tmp_path, flag):
    worker = simple_worker(tmp_path, [flag])
    worker.expect("hello")
    assert worker.drain() == [{"type": "nosession", "exitstatus": 0}]
    assert worker.wait() == 0


def test_plain_runs_pytest_in_the_foreground(tmp_path):
    env = dict(os.environ, PYTHONPATH=WORKER_PATH)
    done = subprocess.run(
        [PYTHON, "-m", "drover_worker", "--plain", "--", "--version"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0
    assert "pytest %s" % pytest.__version__ in done.stdout + done.stderr


def test_basetemp_is_per_worker_unless_the_user_sets_one(tmp_path):
    mine = tmp_path / "worker-tmp"
    simple_worker(tmp_path, worker_args=["--basetemp", str(mine)]).run_all(order=[2])
    assert (tmp_path / "tmp-path.txt").read_text().startswith(str(mine) + os.sep)
    user = tmp_path / "user-tmp"
    simple_worker(tmp_path, ["--basetemp", str(user)], worker_args=["--basetemp", str(mine)]).run_all(order=[2])
    # The user's wins, with a subdirectory per worker (as pytest-xdist does it).
    assert (tmp_path / "tmp-path.txt").read_text().startswith(str(user / "worker-tmp") + os.sep)


@pytest.mark.parametrize("command_socket", [False, True], ids=["pipe", "socket"])
def test_eof_on_the_command_pipe_stops_without_running_more(tmp_path, command_socket):
    worker = simple_worker(tmp_path, command_socket=command_socket)
    worker.start()
    worker.run([0, 1, 2])
    worker.until("finished")
    worker.until("finished")
    started = time.monotonic()
    worker.close_input()  # the agent died with test 2 still queued
    rest = worker.drain()
    assert worker.wait() == 2
    assert time.monotonic() - started < 10
    assert [m for m in rest if m["type"] == "start"] == []


@pytest.mark.parametrize(
    "line, error",
    [
        (b"this is not json\n", "malformed command 'this is not json'"),
        (b"[1, 2]\n", "malformed command '[1, 2]': not an object"),
        (b'{"type": "explode"}\n', "unknown command type 'explode'"),
        (b'{"type": "run", "indices": [0, 99]}\n', "bad run command: index 99 out of range (5 tests collected)"),
        (b'{"type": "run", "indices": [true]}\n', "bad run command: index True is not an integer"),
        (b'{"type": "run"}\n', 'bad run command: "indices" is not a list'),
    ],
)
def test_a_malformed_command_is_fatal(tmp_path, line, error):
    worker = simple_worker(tmp_path)
    worker.start()
    worker.send_raw(line)
    fatal = worker.expect("fatal")
    assert fatal["message"].startswith(error), fatal["message"]
    assert worker.drain() == []
    assert worker.wait() == 3


@pytest.mark.parametrize("ini", ["", "[pytest]\nfaulthandler_timeout = 100\n"], ids=["plain", "faulthandler_timeout"])
def test_timeout_dumps_the_stack_and_exits(tmp_path, ini):
    write_suite(tmp_path, {"test_hang.py": "import time\ndef test_fast():\n    pass\ndef test_hang():\n    time.sleep(60)\n"})
    if ini:  # pytest's own faulthandler timer must not replace drover's
        write_suite(tmp_path, {"pytest.ini": ini})
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"], worker_args=["--timeout", "1"])
    worker.start()
    worker.run([0, 1])
    worker.shutdown()
    started = time.monotonic()
    messages = worker.drain()
    status = worker.wait()
    assert time.monotonic() - started < 30
    assert status != 0
    assert [m["index"] for m in messages if m["type"] == "start"] == [0, 1]
    assert [m["index"] for m in messages if m["type"] == "finished"] == [0]
    stderr = worker.stderr()
    assert "Timeout (0:00:01)!" in stderr
    assert 'test_hang.py", line 5 in test_hang' in stderr


EXITING = (
    "import pytest\n"
    "def test_a():\n    pass\n"
    "def test_exit():\n    pytest.exit('bye', returncode=7)\n"
    "def test_interrupt():\n    raise KeyboardInterrupt\n"
    "def test_c():\n    pass\n"
)


@pytest.mark.parametrize(
    "index, returncode, message",
    [(1, 7, "_pytest.outcomes.Exit: bye"), (2, 2, "KeyboardInterrupt")],
    ids=["pytest-exit", "keyboard-interrupt"],
)
def test_a_test_that_ends_the_session_is_reported_as_exit(tmp_path, index, returncode, message):
    write_suite(tmp_path, {"test_exit.py": EXITING})
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    worker.start()
    worker.run([0, index, 3])
    messages = worker.drain()
    exit = messages[-1]
    assert (exit["type"], exit["index"], exit["returncode"], exit["message"]) == ("exit", index, returncode, message)
    if index == 2:  # pytest's lines below "KeyboardInterrupt"
        assert exit["detail"].endswith("test_exit.py:7: KeyboardInterrupt\n(to show a full traceback on KeyboardInterrupt use --full-trace)")
    else:
        assert exit["detail"] == ""
    # Like pytest: no result for the test that ended the session, nothing after it.
    assert [m["index"] for m in messages if m["type"] == "finished"] == [0]
    assert [m["index"] for m in messages if m["type"] == "start"] == [0, index]
    assert worker.wait() == returncode


def test_collection_errors_and_module_skips_are_reported_not_fatal(tmp_path):
    write_suite(
        tmp_path,
        {
            "test_broken.py": "import no_such_module_here\n",
            "test_syntax.py": "def test_x(:\n",
            "sub/test_skipped.py": "import pytest\n\npytest.skip('no database', allow_module_level=True)\n",
            "test_fine.py": "def test_fine():\n    pass\n",
        },
    )
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    collected, results, bye = worker.run_all()
    assert [item["nodeid"] for item in collected["items"]] == ["test_fine.py::test_fine"]
    assert results[0]["call"]["status"] == "passed"
    errors = {error["nodeid"]: error["longrepr"] for error in collected["errors"]}
    assert sorted(errors) == ["test_broken.py", "test_syntax.py"]
    assert "ModuleNotFoundError: No module named 'no_such_module_here'" in errors["test_broken.py"]
    assert "SyntaxError" in errors["test_syntax.py"]
    assert collected["skips"] == [
        {"nodeid": "sub/test_skipped.py", "file": "sub/test_skipped.py", "line": 3, "reason": "Skipped: no database"}
    ]
    assert bye["exitstatus"] == 1  # pytest counts collection errors as failures
    # pytest itself still prints the errors and the skip summary on the worker's stdout.
    assert "ERROR collecting test_broken.py" in worker.stdout()


@pytest.mark.skipif(importlib.util.find_spec("xdist") is None, reason="pytest-xdist is not installed")
def test_xdist_numprocesses_in_addopts_is_ignored(tmp_path):
    write_suite(
        tmp_path,
        {
            "pytest.ini": "[pytest]\naddopts = -n 2 --dist loadfile\n",
            "test_where.py": "import os\ndef test_where(worker_id):\n    open('where.txt', 'w').write('%d %s' % (os.getpid(), worker_id))\n",
        },
    )
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    _, results, _ = worker.run_all()
    assert results[0]["call"]["status"] == "passed"
    assert (tmp_path / "where.txt").read_text() == "%d master" % worker.process.pid


def test_unknown_pytest_option_exits_with_pytests_usage_error(tmp_path):
    worker = simple_worker(tmp_path, ["--no-such-option"])
    worker.expect("hello")
    assert worker.drain() == []
    assert worker.wait() == 4
    assert "pytest: error: unrecognized arguments: --no-such-option" in worker.stderr()


def test_missing_path_exits_with_pytests_usage_error(tmp_path):
    worker = simple_worker(tmp_path, ["does_not_exist.py"])
    worker.expect("hello")
    assert worker.drain() == []
    assert worker.wait() == 4
    assert "ERROR: file or directory not found: does_not_exist.py" in worker.stderr()


def test_missing_pytest_is_fatal(tmp_path):
    # -S leaves out site-packages, and with them pytest; PYTHONPATH still finds the worker.
    worker = simple_worker(tmp_path, python_args=["-S"])
    fatal = worker.expect("fatal")
    assert worker.wait() == 3
    expected = "pytest is not installed for %s (No module named 'pytest')" % worker.process.args[0]
    assert fatal["message"] == expected
    assert worker.stderr() == "drover_worker: %s\n" % expected


@pytest.mark.parametrize(
    "worker_args, error",
    [
        (["--timeout", "soon"], "bad value for --timeout: 'soon'"),
        (["--timeout=-1"], "bad value for --timeout: '-1'"),
        (["--timeout=inf"], "bad value for --timeout: 'inf'"),
        (["--frobnicate"], "unknown option '--frobnicate'"),
        (["--seat", "5,6"], "bad value for --seat: '5,6'"),
        (["--seat", "5,5,6,"], "bad value for --seat: '5,5,6,'"),
        (["--seat", "1,6,7,/tmp/x"], "bad value for --seat: '1,6,7,/tmp/x'"),
    ],
)
def test_bad_worker_command_line_is_fatal(tmp_path, worker_args, error):
    worker = Worker(tmp_path, worker_args=worker_args)
    fatal = worker.expect("fatal")
    assert worker.wait() == 3
    assert fatal["message"] == error + "\n" + USAGE
    assert worker.stderr() == "drover_worker: %s\n" % fatal["message"]


def test_worker_without_pipes_explains_itself():
    done = subprocess.run(
        [PYTHON, "-m", "drover_worker", "--in-fd", "7", "--"],
        env={**os.environ, "PYTHONPATH": WORKER_PATH},
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3
    assert done.stderr == "drover_worker: --in-fd and --out-fd are required\n%s\n" % USAGE


def test_working_directory_is_not_put_on_sys_path(tmp_path):
    # As with the `pytest` command: helper.py beside (not under) the tests is not importable.
    write_suite(
        tmp_path,
        {
            "helper.py": "VALUE = 1\n",
            "tests/test_path.py": (
                "import os, sys\n"
                "def test_path():\n"
                "    assert os.getcwd() not in sys.path and '' not in sys.path\n"
            ),
        },
    )
    _, results, _ = Worker(tmp_path, ["-p", "no:cacheprovider", "tests"]).run_all()
    assert results[0]["call"]["status"] == "passed", results[0]["call"]["longrepr"]


def test_workers_merge_lastfailed_in_the_shared_cache(tmp_path):
    write_suite(
        tmp_path,
        {
            "test_lf.py": "def test_a():\n    assert 0\ndef test_b():\n    pass\ndef test_c():\n    assert 0\n",
            ".pytest_cache/v/cache/lastfailed": '{"test_lf.py::test_b": true, "test_gone.py::test_x": true}',
        },
    )
    first, second = Worker(tmp_path), Worker(tmp_path)
    first.start()
    second.start()
    first.run([0, 1])
    second.run([2])
    first.shutdown()
    second.shutdown()
    first.until("bye")
    second.until("bye")
    assert first.wait() == second.wait() == 0
    lastfailed = json.loads((tmp_path / ".pytest_cache/v/cache/lastfailed").read_text())
    # a and c failed on different workers; b passed; an entry no worker ran stays, as in pytest.
    assert lastfailed == {"test_lf.py::test_a": True, "test_lf.py::test_c": True, "test_gone.py::test_x": True}


def test_tests_see_the_interpreters_own_gc_thresholds(tmp_path):
    # The worker relaxes the garbage collector while pytest starts (gc_tuning); tests
    # must run with the interpreter's defaults, or with what a conftest chose.
    default = subprocess.run(
        [PYTHON, "-c", "import gc; print(list(gc.get_threshold()))"], capture_output=True, text=True, check=True
    ).stdout.strip()
    write_suite(
        tmp_path,
        {
            "plain/test_gc.py": "import gc\ndef test_gc():\n    open('gc.txt', 'w').write(str(list(gc.get_threshold())))\n",
            "tuned/conftest.py": "import gc\ngc.set_threshold(1234, 5, 6)\n",
            "tuned/test_gc.py": "import gc\ndef test_gc():\n    open('gc.txt', 'w').write(str(list(gc.get_threshold())))\n",
        },
    )
    for folder, expected in (("plain", default), ("tuned", "[1234, 5, 6]")):
        worker = Worker(tmp_path / folder, ["-p", "no:cacheprovider"])
        _, results, _ = worker.run_all()
        assert results[0]["call"]["status"] == "passed"
        assert (tmp_path / folder / "gc.txt").read_text() == expected


def test_no_per_test_progress_on_the_workers_stdout(tmp_path):
    # Nobody reads it: the terminal reporter's per-test output is muted in the worker.
    # What a crash message may need (collection errors, a test's own prints with -s) stays.
    write_suite(
        tmp_path,
        {
            "test_quiet.py": "def test_a():\n    pass\n\ndef test_b():\n    print('own output')\n",
            "test_broken.py": "import no_such_module_here\n",
        },
    )
    worker = Worker(tmp_path, ["-p", "no:cacheprovider", "-v", "-s"])
    _, results, _ = worker.run_all()
    assert [results[i]["call"]["status"] for i in (0, 1)] == ["passed", "passed"]
    stdout = worker.stdout()
    assert "own output" in stdout
    assert "ERROR collecting test_broken.py" in stdout
    assert "PASSED" not in stdout and "[100%]" not in stdout and "test_quiet.py::test_a" not in stdout
