"""pytest's exit codes and one-line errors: all passed (0), failures (1),
collection errors (2), usage errors (4), nothing collected (5), and a clear
error when the interpreter cannot run pytest."""
from __future__ import annotations

import os
import re
import shlex
import stat

import pytest

import drover_helpers as h


def _assert_one_line_error(result: h.RunResult) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected a one-line error\n{result.describe()}"
    assert "terminate called" not in result.output and "Traceback" not in result.output


def test_all_passed_is_0_with_both_counts(drover, copy_suite):
    suite = copy_suite("outcomes")
    result = h.run_drover(suite, "-n", "2", "pkg_a")
    assert result.rc == 0, result.describe()
    assert h.summary_line(result.stdout).startswith("0 failed, 2 passed in "), result.describe()


def test_no_tests_is_5(drover, copy_suite):
    suite = copy_suite("empty")
    pytest_rc = h.run_pytest(suite).rc
    result = h.run_drover(suite, "-n", "2")
    assert pytest_rc == 5
    assert result.rc == 5, result.describe()
    assert h.wait_no_processes_in(suite) == []


def test_deselecting_everything_is_5(drover, copy_suite):
    suite = copy_suite("collect_error")
    result = h.run_drover(suite, "-n", "2", "test_good_one.py", "-k", "no_such_test")
    assert result.rc == 5, result.describe()


def test_collection_error_is_2_and_runs_nothing(drover, copy_suite, tmp_path):
    suite = copy_suite("collect_error")
    expected = h.run_pytest(copy_suite("collect_error"))
    result = h.run_drover(suite, "-n", "2", "--junitxml", str(tmp_path / "r.xml"))
    assert expected.rc == 2
    assert result.rc == 2, result.describe()
    assert "test_broken.py" in result.output
    assert h.summary_counts(result.stdout) == h.summary_counts(expected.stdout), result.describe()
    errors = [c for c in h.parse_junit(tmp_path / "r.xml").cases if c.outcome == "error"]
    assert [c.name for c in errors] == ["test_broken"]


def test_continue_on_collection_errors_runs_the_rest(drover, copy_suite, tmp_path):
    expected = h.run_pytest(copy_suite("collect_error"), "--continue-on-collection-errors",
                            "--junitxml", str(tmp_path / "p.xml"))
    result = h.run_drover(copy_suite("collect_error"), "-n", "2", "--junitxml", str(tmp_path / "d.xml"),
                          "--continue-on-collection-errors")
    assert result.rc == expected.rc == 1, result.describe()
    assert h.summary_counts(result.stdout) == h.summary_counts(expected.stdout), result.describe()
    diff = h.multiset_diff(h.parse_junit(tmp_path / "p.xml").outcome_multiset(),
                           h.parse_junit(tmp_path / "d.xml").outcome_multiset())
    assert not diff, diff


@pytest.mark.parametrize("args", [
    ["--no-such-flag"],
    ["-n", "zero"],
    ["-n", "-3"],
    ["--maxfail", "many"],
    ["--timeout", "soon"],
    ["--timeout", "inf"],
    ["--timeout", "1e10"],
    ["--timeout", ""],
    ["--shard=3", "--total-shards=3"],
    ["--shard=0"],
    ["--shard=", "--total-shards", "2"],
    ["--shard", "1", "--total-shards="],
], ids=["unknown-flag", "n-word", "n-negative", "maxfail-word", "timeout-word", "timeout-inf", "timeout-huge", "timeout-empty",
        "shard-out-of-range", "shard-without-total", "shard-empty-after-equals", "total-empty-after-equals"])
def test_bad_flags_are_usage_errors(drover, copy_suite, args):
    suite = copy_suite("collect_error")
    result = h.run_drover(suite, *args, timeout=30)
    assert result.rc == 4, result.describe()
    _assert_one_line_error(result)
    assert h.wait_no_processes_in(suite) == []


def test_empty_value_after_equals_names_the_flag(drover, copy_suite):
    # "--shard=" must not take the next word ("--total-shards") as its value.
    suite = copy_suite("collect_error")
    result = h.run_drover(suite, "--shard=", "--total-shards", "2", timeout=30)
    assert result.rc == 4, result.describe()
    assert result.stderr.strip() == "ERROR: argument --shard: expected one argument", result.describe()


def test_a_pytest_option_before_the_dashes_says_where_it_goes(drover, copy_suite):
    suite = copy_suite("collect_error")
    result = h.run_drover(suite, "-p", "no:cacheprovider", timeout=30)
    assert result.rc == 4, result.describe()
    assert result.stderr.strip() == ("ERROR: The following argument was not expected: -p (pytest's own options go "
                                     "after --, e.g. drover run -n 2 -- -p no:cacheprovider)"), result.describe()


def test_mistyped_command_is_named(drover, tmp_path):
    result = h.run_drover_tool(tmp_path, "rn")
    assert result.rc == 4, result.describe()
    assert result.stderr.startswith("ERROR: unknown command 'rn' (choose from run, "), result.describe()


def test_interpreter_that_does_not_exist(drover, copy_suite):
    suite = copy_suite("collect_error")
    missing = str(suite / "no" / "python3")
    result = h.run_drover(suite, "-n", "2", python=missing, timeout=60)
    assert result.rc == 4, result.describe()  # a bad --python is the user's usage error
    assert missing in result.stderr, result.describe()
    assert "terminate called" not in result.output


def test_interpreter_that_fails_immediately(drover, copy_suite):
    suite = copy_suite("collect_error")
    result = h.run_drover(suite, "-n", "2", python="/bin/false", timeout=60)
    assert result.rc not in (0, 1, 5) and 0 < result.rc < 128, result.describe()
    assert result.stderr.strip(), result.describe()
    assert "terminate called" not in result.output
    assert h.wait_no_processes_in(suite) == []


def test_interpreter_without_pytest(drover, copy_suite, tmp_path):
    # A real Python that cannot import pytest: -S drops site-packages.
    fake = tmp_path / "python-without-pytest"
    fake.write_text(f"#!/bin/sh\nexec {h.PY} -S \"$@\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    assert os.system(f"{fake} -c 'import pytest' 2>/dev/null") != 0
    suite = copy_suite("collect_error")
    result = h.run_drover(suite, "-n", "2", python=str(fake), timeout=60)
    assert result.rc == 4, result.describe()
    assert "pytest is not installed for" in result.stderr, result.describe()
    assert "terminate called" not in result.output
    assert h.wait_no_processes_in(suite) == []


def test_more_workers_than_tests(drover, copy_suite):
    suite = copy_suite("outcomes")
    result = h.run_drover(suite, "-n", "4", "pkg_a")
    assert result.rc == 0, result.describe()
    assert h.summary_counts(result.stdout)["passed"] == 2
    assert h.wait_no_processes_in(suite) == []


def test_an_option_given_twice_takes_the_last_value(drover, copy_suite):
    # As pytest's options (argparse): a later -n overrides an earlier one (e.g. from a CI
    # template), instead of a usage error.
    suite = copy_suite("outcomes")
    result = h.run_drover(suite, "-n", "2", "-v", "-n", "1", "--timeout", "0.001", "--timeout", "60", "pkg_a")
    assert result.rc == 0, result.describe()
    assert h.summary_counts(result.stdout)["passed"] == 2
    assert "[gw0]" in result.stdout and "gw1" not in result.stdout, result.describe()


@pytest.mark.parametrize("tmpdir", ["", "/nonexistent/tmp", "FILE"], ids=["empty", "missing", "a-file"])
def test_an_unusable_tmpdir_is_passed_over_as_python_does(drover, copy_suite, tmp_path, tmpdir):
    # Python's tempfile falls back to /tmp; so does drover (it aborted before).
    if tmpdir == "FILE":
        tmpdir = str(tmp_path / "a-file")
        (tmp_path / "a-file").write_text("")
    suite = copy_suite("outcomes")
    result = h.run_drover(suite, "-n", "2", "pkg_a", env={"TMPDIR": tmpdir})
    assert result.rc == 0, result.describe()
    assert h.summary_counts(result.stdout)["passed"] == 2, result.describe()


@pytest.mark.parametrize("where", ["drover", "pytest"])
def test_a_junit_report_that_cannot_be_written_fails_the_run(drover, copy_suite, tmp_path, where):
    # As pytest: a directory is a usage error before anything runs; an unwritable path
    # (here under a regular file) fails the run (1) instead of a green run without a report.
    suite = copy_suite("outcomes")
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("")
    for target, code in ((tmp_path / "adir", 4), (tmp_path / "afile" / "r.xml", 1)):
        args = ["--junitxml", str(target)] if where == "drover" else ["--", f"--junitxml={target}"]
        result = h.run_drover(suite, "-n", "2", "pkg_a", *args)
        assert result.rc == code, result.describe()
        assert "generated xml file" not in result.stdout, result.describe()
        if code == 4:
            assert result.stderr.strip() == f"ERROR: --junitxml must be a filename, given: {target}", result.describe()
            assert "passed" not in result.stdout, result.describe()
        else:
            assert result.stderr.strip().startswith(f"ERROR: {target}: cannot"), result.describe()
            assert "0 failed, 2 passed" in result.stdout, result.describe()


def test_a_low_open_file_limit_still_runs(drover, copy_suite):
    # ulimit -n 64 (some CI containers): drover placed a descriptor at 64 and failed.
    suite = copy_suite("outcomes")
    command = shlex.join(h.drover_command("-n", "2", "pkg_a"))
    result = h.run_process(["bash", "-c", f"ulimit -n 48 && exec {command}"], suite, h.clean_env(), 60)
    assert result.rc == 0, result.describe()
    assert h.summary_counts(result.stdout)["passed"] == 2, result.describe()


def test_run_from_a_subdirectory_uses_the_rootdir(drover, copy_suite):
    # As with pytest, the rootdir is where pytest.ini is; node ids and the
    # durations file are relative to it, not to the current directory.
    suite = copy_suite("outcomes")
    result = h.run_drover(suite / "pkg_a", "-n", "2")
    assert result.rc == 0, result.describe()
    assert h.summary_counts(result.stdout)["passed"] == 2
    durations = h.read_durations(suite / ".test_durations")
    assert set(durations) == {"pkg_a/test_util.py::test_util_in_pkg_a", "pkg_a/test_util.py::test_shared_name"}
    assert not (suite / "pkg_a" / ".test_durations").exists()
    # The terminal shows them relative to the current directory, as pytest's does, so an
    # id copied from it works there (and in pytest).
    for args in (["-v"], ["--", "-rA"]):
        shown = h.run_drover(suite / "pkg_a", "-n", "2", *args)
        expected = h.run_pytest(suite / "pkg_a", *[a for a in args if a != "--"])
        lines = lambda out: sorted(re.sub(r" +\[[^]]*\]$", "", l) for l in out.splitlines() if "test_util_in_pkg_a" in l)
        assert lines(shown.stdout) == lines(expected.stdout), shown.describe() + expected.stdout
        assert any(l.startswith(("test_util.py::", "PASSED test_util.py::")) for l in lines(shown.stdout))
    again = h.run_drover(suite / "pkg_a", "test_util.py::test_shared_name")
    assert again.rc == 0 and h.summary_counts(again.stdout)["passed"] == 1, again.describe()


def test_workers_collecting_differently_is_a_clear_error(drover, copy_suite):
    suite = copy_suite("unstable_collection")
    assert h.run_pytest(suite).rc == 0  # fine for plain pytest, in one process
    # Workers forked from one collection cannot differ; workers started anew can.
    forked = h.run_drover(suite, "-n", "2", "--worker-start", "fork", timeout=60)
    assert forked.rc == 0, forked.describe()
    result = h.run_drover(suite, "-n", "2", "--worker-start", "exec", timeout=60)
    assert result.rc not in (0, 1, 5) and 0 < result.rc < 128, result.describe()
    assert "collect" in result.stderr.lower(), result.describe()
    assert "terminate called" not in result.output
    assert h.wait_no_processes_in(suite) == []
