"""Reports of a real worker for every kind of pytest outcome."""

import hashlib

import pytest

from worker_harness import Worker, final_status, write_suite

OUTCOMES = '''
import pytest, sys

def test_pass():
    pass

def test_fail():
    assert 1 == 2, "numbers differ"

@pytest.mark.skip(reason="not today")
def test_skip():
    pass

@pytest.mark.skipif(sys.platform != "nonexistent", reason="wrong platform")
def test_skipif():
    pass

def test_skip_inside():
    pytest.skip("decided at runtime")

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert False

@pytest.mark.xfail(reason="fixed already")
def test_xpass():
    pass

@pytest.mark.xfail(reason="must fail", strict=True)
def test_xpass_strict():
    pass

def test_imperative_xfail():
    pytest.xfail("not ready")

class TestGroup:
    @pytest.mark.slow
    def test_in_class(self):
        pass
'''

ERRORS = '''
import pytest

@pytest.fixture
def broken_setup():
    raise RuntimeError("setup exploded")

@pytest.fixture
def broken_teardown():
    yield
    raise ValueError("teardown exploded")

def test_setup_error(broken_setup):
    pass

def test_teardown_error(broken_teardown):
    pass

def test_fail_and_teardown_error(broken_teardown):
    assert 0
'''


def by_name(collected, results):
    return {item["nodeid"].split("::")[-1]: results[index] for index, item in enumerate(collected["items"])}


# Without pytest's terminal plugin no plugin answers pytest_report_teststatus for a passed
# call; the worker must still report pytest's categories.
@pytest.mark.parametrize("extra", [[], ["-p", "no:terminal"]], ids=["default", "no-terminal"])
def test_every_outcome_has_pytests_status_and_message(tmp_path, extra):
    write_suite(tmp_path, {"test_outcomes.py": OUTCOMES})
    collected, results, bye = Worker(tmp_path, ["-p", "no:cacheprovider", *extra]).run_all()
    tests = by_name(collected, results)
    assert {name: final_status(result) for name, result in tests.items()} == {
        "test_pass": "passed",
        "test_fail": "failed",
        "test_skip": "skipped",
        "test_skipif": "skipped",
        "test_skip_inside": "skipped",
        "test_xfail": "xfailed",
        "test_xpass": "xpassed",
        "test_xpass_strict": "failed",
        "test_imperative_xfail": "xfailed",
        "test_in_class": "passed",
    }
    assert bye["exitstatus"] == 1  # pytest's TESTS_FAILED
    if extra:
        return  # without the terminal plugin pytest itself renders failures as "no option named 'verbose'"

    fail = tests["test_fail"]["call"]
    assert fail["outcome"] == "failed"
    assert fail["message"] == "AssertionError: numbers differ"
    assert "def test_fail():" in fail["longrepr"] and fail["longrepr"].endswith("test_outcomes.py:8: AssertionError")

    skip = tests["test_skip"]["setup"]
    assert (skip["outcome"], skip["message"], skip["longrepr"]) == ("skipped", "not today", "test_outcomes.py:10: not today")
    assert "call" not in tests["test_skip"]
    assert tests["test_skipif"]["setup"]["message"] == "wrong platform"
    inside = tests["test_skip_inside"]["call"]
    assert (inside["message"], inside["longrepr"]) == ("decided at runtime", "test_outcomes.py:19: decided at runtime")

    assert tests["test_xfail"]["call"]["outcome"] == "skipped"
    assert tests["test_xfail"]["call"]["message"] == "known bug"
    assert tests["test_imperative_xfail"]["call"]["message"] == "reason: not ready"
    xpass = tests["test_xpass"]["call"]
    assert (xpass["outcome"], xpass["status"], xpass["message"]) == ("passed", "xpassed", "fixed already")
    strict = tests["test_xpass_strict"]["call"]
    assert (strict["outcome"], strict["status"]) == ("failed", "failed")
    assert strict["longrepr"] == strict["message"] == "[XPASS(strict)] must fail"

    passed = tests["test_pass"]
    assert [passed[when]["status"] for when in ("setup", "call", "teardown")] == ["", "passed", ""]
    assert all(passed[when]["longrepr"] == passed[when]["message"] == "" for when in ("setup", "call", "teardown"))
    assert all(result["start"] and result["finished"] for result in results.values())


def test_collected_items_describe_each_test(tmp_path):
    write_suite(tmp_path, {"pkg/test_outcomes.py": OUTCOMES})
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    collected = worker.start()
    worker.close()
    assert collected["rootdir"] == str(tmp_path)
    items = {item["nodeid"]: item for item in collected["items"]}
    assert list(items)[0] == "pkg/test_outcomes.py::test_pass"
    in_class = items["pkg/test_outcomes.py::TestGroup::test_in_class"]
    assert (in_class["file"], in_class["cls"], in_class["line"], in_class["markers"]) == (
        "pkg/test_outcomes.py",
        "TestGroup",
        37,  # pytest reports the first decorator line
        ["slow"],
    )
    assert items["pkg/test_outcomes.py::test_xfail"]["markers"] == ["xfail"]
    assert items["pkg/test_outcomes.py::test_pass"]["cls"] == ""
    nodeids = "\n".join(item["nodeid"] for item in collected["items"])
    assert collected["hash"] == hashlib.sha256(nodeids.encode()).hexdigest()


def test_setup_and_teardown_errors_are_errors(tmp_path):
    write_suite(tmp_path, {"test_errors.py": ERRORS})
    collected, results, _ = Worker(tmp_path, ["-p", "no:cacheprovider"]).run_all()
    tests = by_name(collected, results)

    setup = tests["test_setup_error"]["setup"]
    assert (setup["outcome"], setup["status"]) == ("failed", "error")
    assert setup["message"] == "RuntimeError: setup exploded"
    assert "call" not in tests["test_setup_error"]

    teardown = tests["test_teardown_error"]
    assert teardown["call"]["status"] == "passed"
    assert (teardown["teardown"]["outcome"], teardown["teardown"]["status"]) == ("failed", "error")
    assert teardown["teardown"]["message"] == "ValueError: teardown exploded"

    both = tests["test_fail_and_teardown_error"]
    assert both["call"]["status"] == "failed" and both["teardown"]["status"] == "error"


def test_durations_are_measured(tmp_path):
    write_suite(tmp_path, {"test_slow.py": "import time\ndef test_nap():\n    time.sleep(0.2)\n"})
    _, results, _ = Worker(tmp_path, ["-p", "no:cacheprovider"]).run_all()
    assert 0.2 <= results[0]["call"]["duration"] < 5


def test_user_arguments_select_tests(tmp_path):
    write_suite(tmp_path, {"test_outcomes.py": OUTCOMES})
    worker = Worker(tmp_path, ["-p", "no:cacheprovider", "-k", "xpass and not strict", "-m", "not slow"])
    collected = worker.start()
    worker.close()
    assert [item["nodeid"] for item in collected["items"]] == ["test_outcomes.py::test_xpass"]


def test_two_workers_report_the_same_hash(tmp_path):
    write_suite(tmp_path, {"test_outcomes.py": OUTCOMES, "test_errors.py": ERRORS})
    first = Worker(tmp_path, ["-p", "no:cacheprovider"])
    second = Worker(tmp_path, ["-p", "no:cacheprovider"])
    try:
        one, two = first.start(), second.start()
    finally:
        first.close()
        second.close()
    assert one["hash"] == two["hash"]
    assert one["items"] == two["items"] and len(one["items"]) == 13


def test_a_report_the_worker_cannot_encode_does_not_end_the_session(tmp_path):
    write_suite(
        tmp_path,
        {
            "conftest.py": (
                "import pytest\n"
                "@pytest.hookimpl(hookwrapper=True)\n"
                "def pytest_runtest_makereport(item, call):\n"
                "    outcome = yield\n"
                "    if item.name == 'test_odd' and call.when == 'call':\n"
                "        outcome.get_result().sections.append(('odd section', None))\n"
            ),
            "test_odd.py": "def test_odd():\n    pass\ndef test_next():\n    pass\n",
        },
    )
    _, results, _ = Worker(tmp_path, ["-p", "no:cacheprovider"]).run_all()
    odd = results[0]["call"]
    assert (odd["outcome"], odd["status"]) == ("failed", "failed")
    assert odd["message"].startswith("drover worker could not report this phase: TypeError(")
    assert results[1]["call"]["status"] == "passed"


JUNIT = '''
import pytest

def test_props(record_property):
    record_property("key", "v")
    record_property("n", 2)

def test_multiline():
    assert 0, "first\\nsecond"

def test_surrogate():
    assert 0, "bad \\udcff here"

def test_plain():
    pass
'''


def test_reports_carry_what_pytests_junit_writes(tmp_path):
    write_suite(tmp_path, {"test_junit.py": JUNIT})
    collected, results, _ = Worker(tmp_path, ["-p", "no:cacheprovider"]).run_all()
    tests = by_name(collected, results)
    # pytest puts item.user_properties on every phase report: empty at setup here.
    props = tests["test_props"]
    assert "properties" not in props["setup"]
    assert props["call"]["properties"] == props["teardown"]["properties"] == [["key", "v"], ["n", "2"]]
    multiline = tests["test_multiline"]["call"]
    assert multiline["message"] == "AssertionError: first"  # one line, for the terminal
    assert multiline["crash"] == "AssertionError: first\n  second\nassert 0"  # reprcrash.message, as is
    # A lone surrogate has no UTF-8 form: sent as pytest's JUnit shows it.
    assert tests["test_surrogate"]["call"]["crash"] == "AssertionError: bad #xDCFF here\nassert 0"
    plain = tests["test_plain"]
    assert not any("crash" in plain[when] or "properties" in plain[when] for when in ("setup", "call", "teardown"))
    assert collected["junit"] == {
        "suite_name": "pytest",
        "family": "xunit2",
        "logging": "no",
        "duration_report": "total",
        "log_passing_tests": True,
    }


@pytest.mark.parametrize(
    "ini, expected",
    [
        (
            "junit_suite_name = s\njunit_family = legacy\njunit_logging = all\n"
            "junit_duration_report = call\njunit_log_passing_tests = false\n",
            {"suite_name": "s", "family": "legacy", "logging": "all", "duration_report": "call", "log_passing_tests": False},
        ),
        (
            "junit_log_passing_tests = foo\n",
            {
                "suite_name": "pytest",
                "family": "xunit2",
                "logging": "no",
                "duration_report": "total",
                "error": "junit_log_passing_tests: invalid truth value 'foo'",
            },
        ),
    ],
    ids=["all-set", "bad-bool"],
)
def test_collected_carries_the_junit_ini_options(tmp_path, ini, expected):
    write_suite(tmp_path, {"pytest.ini": "[pytest]\n" + ini, "test_junit.py": JUNIT})
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    collected = worker.start()
    worker.close()
    assert collected["junit"] == expected
    assert Worker(tmp_path, ["-p", "no:cacheprovider", "-p", "no:junitxml"]).start()["junit"] == {}


FORKED_CRASH_CONFTEST = '''
import pytest
from _pytest.reports import TestReport


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item):
    # What pytest-forked reports when the forked child running the test dies.
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    path, lineno = item.location[:2]
    report = TestReport(item.nodeid, item.location, {}, "failed",
                        "%s:%s: running the test CRASHED with signal 9" % (path, lineno), "???")
    item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
'''


def test_a_plugins_crash_report_outside_the_three_phases_is_the_tests_failure(tmp_path):
    # pytest-forked's when="???" report: pytest's terminal counts the test as failed.
    write_suite(tmp_path, {"conftest.py": FORKED_CRASH_CONFTEST, "test_one.py": "def test_a():\n    pass\n"})
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    _collected, results, _bye = worker.run_all()
    assert set(results[0]) == {"start", "call", "finished"}
    report = results[0]["call"]
    assert (report["outcome"], report["status"]) == ("failed", "failed")
    assert report["longrepr"] == "test_one.py:0: running the test CRASHED with signal 9"
    assert final_status(results[0]) == "failed"


RERUN_CONFTEST = '''
import pytest
from _pytest.runner import runtestprotocol


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # What pytest-rerunfailures does with --reruns 1: a failed call is reported as a
    # "rerun" (and its teardown not at all), then the test runs again.
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in range(2):
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        for report in reports:
            if attempt == 0 and report.when == "call" and report.failed:
                report.outcome = "rerun"
                item.ihook.pytest_runtest_logreport(report=report)
                break
            item.ihook.pytest_runtest_logreport(report=report)
        else:
            break
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_report_teststatus(report):
    if report.outcome == "rerun":
        return "rerun", "R", ("RERUN", {"yellow": True})
'''


def test_a_plugins_own_category_travels_with_its_letter_and_word(tmp_path):
    write_suite(tmp_path, {"conftest.py": RERUN_CONFTEST, "test_flaky.py": (
        "import pathlib\n\n\ndef test_second_time():\n"
        "    mark = pathlib.Path(__file__).parent / 'ran-once'\n"
        "    first = not mark.exists()\n    mark.touch()\n    assert not first\n")})
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"])
    worker.start()
    worker.run([0])
    worker.shutdown()
    messages = worker.until("bye")
    reports = [m for m in messages if m["type"] == "report"]
    assert [(r["when"], r["status"]) for r in reports] == [
        ("setup", ""), ("call", "other"), ("setup", ""), ("call", "passed"), ("teardown", "")]
    rerun = reports[1]
    assert (rerun["outcome"], rerun["category"], rerun["letter"], rerun["word"]) == ("rerun", "rerun", "R", "RERUN")
    assert "assert not True" in rerun["longrepr"]
    assert "category" not in reports[3] and "letter" not in reports[3]
