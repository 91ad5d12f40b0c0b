"""pytest options that control the session itself, passed through `--` or ini addopts:
--collect-only lists without running, pytest's -x/--maxfail stop the run, pytest.exit()
and KeyboardInterrupt in a test end it, --stepwise is refused, informational options
(--version, --help, --fixtures, --markers) print what pytest prints; each against plain
pytest where it decides."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import drover_helpers as h

SIDE_EFFECT = 'def test_side():\n    open("RAN", "w").write("x")\n\ndef test_other():\n    pass\n'

FAILING_FIRST = (
    "import pytest\n"
    "def test_0():\n    assert 0\n"
    "@pytest.mark.parametrize('i', range(50))\n"
    "def test_p(i):\n    pass\n"
)

# A module fixture whose teardown must happen exactly once, even when -x drops the
# test that was committed as the failing test's nextitem.
FIXTURED = """
import pytest

@pytest.fixture(scope="module")
def resource():
    yield
    with open("teardowns.txt", "a") as log:
        log.write("module\\n")

def test_e1(resource):
    assert 0

def test_e2(resource):
    assert 0

def test_ok(resource):
    pass
"""

EXITING = (
    "import pytest\n"
    "def test_a():\n    pass\n"
    "def test_exit():\n    pytest.exit('bye', returncode=7)\n"
    "def test_interrupt():\n    raise KeyboardInterrupt\n"
    "def test_c():\n    pass\n"
)


def _suite(tmp_path: Path, files: dict[str, str]) -> Path:
    suite = tmp_path / "suite"
    suite.mkdir(parents=True)
    for name, text in files.items():
        (suite / name).write_text(text)
    return suite


@pytest.mark.parametrize("where", ["after-dashes", "co", "addopts"])
def test_collect_only_lists_and_runs_nothing(drover, tmp_path, where):
    files = {"test_c.py": SIDE_EFFECT}
    args = ["-n", "2", "-q"]
    if where == "addopts":
        files["pytest.ini"] = "[pytest]\naddopts = --collect-only\n"
    else:
        args += ["--", "--collect-only" if where == "after-dashes" else "--co"]
    suite = _suite(tmp_path, files)
    expected = h.run_pytest(suite, "--co", "-q")
    result = h.run_drover(suite, *args)
    assert result.rc == 0, result.describe()
    assert not (suite / "RAN").exists(), result.describe()
    listed = [line for line in result.stdout.splitlines() if "::" in line]
    assert listed == [line for line in expected.stdout.splitlines() if "::" in line], result.describe()
    assert "2 tests collected in " in result.stdout.splitlines()[-1], result.describe()
    assert h.wait_no_processes_in(suite) == []


def test_collect_only_with_nothing_collected_is_5(drover, tmp_path):
    suite = _suite(tmp_path, {"test_c.py": SIDE_EFFECT})
    result = h.run_drover(suite, "-k", "no_such_test", "--", "--co")
    assert result.rc == 5, result.describe()
    assert "no tests collected (2 deselected) in " in result.stdout, result.describe()


def test_collect_only_with_a_collection_error_is_2(drover, tmp_path):
    suite = _suite(tmp_path, {"test_c.py": SIDE_EFFECT, "test_bad.py": "import no_such_module\n"})
    expected = h.run_pytest(suite, "--co", "-q")
    result = h.run_drover(suite, "--", "--co")
    assert (expected.rc, result.rc) == (2, 2), result.describe()
    assert "ERROR collecting test_bad.py" in result.stdout
    assert "Interrupted: 1 error during collection" in result.stdout
    assert "2 tests collected, 1 error in " in result.stdout
    assert not (suite / "RAN").exists()


@pytest.mark.parametrize("where", ["addopts", "after-dashes"])
def test_pytests_exitfirst_stops_the_run(drover, tmp_path, where):
    files = {"test_z.py": FAILING_FIRST}
    args = ["-n", "1", "-q", "--junitxml", str(tmp_path / "d.xml")]
    if where == "addopts":
        files["pytest.ini"] = "[pytest]\naddopts = -x\n"
    else:
        args += ["--", "-x"]
    suite = _suite(tmp_path, files)
    expected = h.run_pytest(suite, *(["-x"] if where == "after-dashes" else []))
    result = h.run_drover(suite, *args)
    assert result.rc == expected.rc == 1, result.describe()
    # One worker: exactly pytest's "1 failed" (nothing behind the failure starts).
    assert h.summary_counts(result.stdout) == {**h.summary_counts(expected.stdout)}, result.describe()
    assert len(h.parse_junit(tmp_path / "d.xml").cases) == 1


def test_pytests_maxfail_counts_with_two_workers(drover, tmp_path):
    suite = _suite(tmp_path, {"test_z.py": FAILING_FIRST, "pytest.ini": "[pytest]\naddopts = --maxfail=1\n"})
    result = h.run_drover(suite, "-n", "2", "-q")
    assert result.rc == 1, result.describe()
    counts = h.summary_counts(result.stdout)
    assert counts["failed"] == 1 and counts["passed"] < 50, result.describe()
    assert "stopping after 1 failures" in result.stdout


@pytest.mark.parametrize("flag", [["-x"], ["--maxfail", "1"]], ids=["x", "maxfail"])
def test_x_with_one_worker_runs_nothing_after_the_failure(drover, tmp_path, flag):
    suite = _suite(tmp_path, {"test_y.py": FIXTURED})
    expected = h.run_pytest(_suite(tmp_path / "p", {"test_y.py": FIXTURED}), "-x")
    result = h.run_drover(suite, "-n", "1", "-q", *flag)
    assert result.rc == expected.rc == 1, result.describe()
    assert h.summary_counts(result.stdout) == h.summary_counts(expected.stdout), result.describe()
    # test_e2 was test_e1's nextitem (its module fixture kept for it): dropped, and the
    # fixture torn down once at the session's end.
    assert (suite / "teardowns.txt").read_text() == "module\n", result.describe()


def test_maxfail_0_means_no_limit_as_in_pytest(drover, tmp_path):
    suite = _suite(tmp_path, {"test_y.py": FIXTURED})
    result = h.run_drover(suite, "--maxfail", "0", "-q")
    assert result.rc == 1, result.describe()
    assert h.summary_counts(result.stdout)["failed"] == 2


@pytest.mark.parametrize(
    "test, returncode, banner",
    [("test_exit", 7, "_pytest.outcomes.Exit: bye"), ("test_interrupt", 2, "KeyboardInterrupt")],
    ids=["pytest-exit", "keyboard-interrupt"],
)
def test_a_test_that_ends_the_session_stops_the_run(drover, tmp_path, test, returncode, banner):
    suite = _suite(tmp_path, {"test_e.py": EXITING})
    paths = ["test_e.py::test_a", f"test_e.py::{test}", "test_e.py::test_c"]
    expected = h.run_pytest(suite, *paths, "--junitxml", str(tmp_path / "p.xml"))
    result = h.run_drover(suite, "-n", "1", *paths, "--junitxml", str(tmp_path / "d.xml"))
    assert result.rc == expected.rc == returncode, result.describe()
    assert f"!! {banner} !!" in result.stdout, result.describe()
    assert h.summary_counts(result.stdout) == h.summary_counts(expected.stdout), result.describe()
    if returncode == 2:
        assert "test_e.py:7: KeyboardInterrupt\n(to show a full traceback" in result.stdout
    # pytest's report names only test_a (plus an anonymous <testcase/> drover leaves out).
    named = [c for c in h.parse_junit(tmp_path / "p.xml").cases if c.name]
    assert h.parse_junit(tmp_path / "d.xml").cases == named
    assert h.wait_no_processes_in(suite) == []


@pytest.mark.parametrize("ending", ["pytest.exit('teardown exit', returncode=6)", "raise KeyboardInterrupt"],
                         ids=["pytest-exit", "keyboard-interrupt"])
def test_a_session_ended_in_teardown_keeps_the_tests_result(drover, tmp_path, ending):
    # The test's call ran: pytest reports it (1 passed) and so must drover.
    text = ("import pytest\n@pytest.fixture\ndef f():\n    yield\n    " + ending + "\n"
            "def test_1(f):\n    pass\ndef test_2():\n    pass\n")
    suite = _suite(tmp_path, {"test_t.py": text})
    expected = h.run_pytest(suite, "--junitxml", str(tmp_path / "p.xml"))
    result = h.run_drover(suite, "-n", "1", "--junitxml", str(tmp_path / "d.xml"))
    assert result.rc == expected.rc, result.describe()
    assert h.summary_counts(result.stdout)["passed"] == h.summary_counts(expected.stdout)["passed"] == 1, \
        result.describe()
    assert h.parse_junit(tmp_path / "d.xml").outcome_multiset() == h.parse_junit(tmp_path / "p.xml").outcome_multiset()


def test_a_session_exit_stops_the_other_workers(drover, tmp_path):
    slow = "import time, pytest\n@pytest.mark.parametrize('i', range(40))\ndef test_slow(i):\n    time.sleep(0.1)\n"
    # The durations file makes the exit test go first, while the other worker is busy.
    durations = {f"test_slow.py::test_slow[{i}]": 0.1 for i in range(40)}
    durations = json.dumps({**durations, "test_e.py::test_exit": 100.0})
    suite = _suite(tmp_path, {"test_e.py": EXITING, "test_slow.py": slow, ".test_durations": durations})
    result = h.run_drover(suite, "-n", "2", "test_slow.py", "test_e.py::test_exit")
    assert result.rc == 7, result.describe()
    counts = h.summary_counts(result.stdout)
    assert counts["passed"] < 40 and counts["failed"] == counts["errors"] == 0, result.describe()


@pytest.mark.parametrize("flag", ["--sw", "--stepwise", "--sw-skip"])
def test_stepwise_is_refused(drover, tmp_path, flag):
    suite = _suite(tmp_path, {"test_c.py": SIDE_EFFECT})
    result = h.run_drover(suite, "--", flag)
    assert result.rc == 4, result.describe()
    name = "--stepwise-skip" if flag == "--sw-skip" else "--stepwise"
    assert result.stderr.strip() == f"ERROR: {name} is not supported by drover: run pytest itself for it"
    assert not (suite / "RAN").exists()


@pytest.mark.parametrize("flag", ["--version", "--help", "--fixtures", "--markers"])
def test_informational_options_print_what_pytest_prints(drover, tmp_path, flag):
    suite = _suite(tmp_path, {"test_c.py": SIDE_EFFECT})
    expected = h.run_pytest(suite, flag)
    result = h.run_drover(suite, "--", flag)
    assert result.rc == expected.rc == 0, result.describe()
    mine = result.output.replace(str(suite), "<suite>")
    # drover_helpers runs `python -m pytest`, whose argparse calls itself __main__.py.
    theirs = expected.output.replace(str(suite), "<suite>").replace("__main__.py", "pytest")
    if flag in ("--fixtures", "--help"):  # pytest's own run has -p no:cacheprovider (drover_helpers)
        assert mine.splitlines()[0] == theirs.splitlines()[0], result.describe()
        cached = "--lf" if flag == "--help" else "cache -- "
        assert cached in mine and cached not in theirs, result.describe()
    else:
        assert mine == theirs, result.describe()
    assert not (suite / "RAN").exists()


@pytest.mark.parametrize(
    "args, error",
    [
        (["-k", "foo and ("], "ERROR: Wrong expression passed to '-k': foo and (: at column 10"),
        (["nope.py"], "ERROR: file or directory not found: nope.py"),
        (["--", "--bogus"], "ERROR: usage: pytest [options] [file_or_dir] [file_or_dir] [...]\n"
                            "pytest: error: unrecognized arguments: --bogus"),
    ],
    ids=["bad-k", "missing-path", "unknown-pytest-flag"],
)
def test_pytest_usage_errors_in_pytests_words(drover, tmp_path, args, error):
    suite = _suite(tmp_path, {"test_c.py": SIDE_EFFECT})
    result = h.run_drover(suite, *args)
    assert result.rc == 4, result.describe()
    assert result.stderr.startswith(error), result.describe()
    assert "ERROR: ERROR" not in result.stderr and result.stdout == "", result.describe()
