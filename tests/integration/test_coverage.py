"""pytest-cov through drover's workers: one combined report, as after plain pytest.

Each worker saves its own data; drover combines them (with what the tests'
subprocesses wrote) and prints pytest-cov's terminal section before the closing line.
"""
import importlib.util
import re
from pathlib import Path

import drover_helpers as h

assert importlib.util.find_spec("pytest_cov"), "pytest-cov missing: run deploy/install-deps.sh"

COV = ["--cov=calc", "--cov-report=term-missing"]


def coverage_table(output: str) -> list[str]:
    """pytest-cov's table rows, from its header line to TOTAL."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Name ") and "Stmts" in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("TOTAL"))
    return [re.sub(r"\s+", " ", line) for line in lines[start:end + 1] if not line.startswith("---")]


def leftovers(suite: Path) -> list[str]:
    return sorted(p.name for p in suite.iterdir() if p.name.startswith(".coverage."))


def test_report_equals_plain_pytest_including_subprocess_data(drover, copy_suite):
    expected = h.run_pytest(copy_suite("coverage"), *COV)
    assert expected.rc == 0, expected.describe()
    suite = copy_suite("coverage")
    junit = suite / "out" / "junit.xml"
    result = h.run_drover(suite, "-n", "2", "--junitxml", "out/junit.xml", "--", *COV)
    assert result.rc == 0, result.describe()
    # pytest's order: its junitxml plugin's line, then pytest-cov's section.
    xml_line = result.stdout.index(f" generated xml file: {junit} -")
    assert xml_line < result.stdout.index("---------- coverage: "), result.describe()
    table = coverage_table(result.stdout)
    assert table == coverage_table(expected.stdout), result.describe()
    # Lines 25-26 run only in a test's subprocess; 14, 30-31 never run.
    assert table[-2].endswith("14, 30-31"), result.describe()
    # Where pytest prints it: before the closing line.
    assert result.stdout.index("---------- coverage: ") < result.stdout.index(h.summary_line(result.stdout))
    assert (suite / ".coverage").is_file()
    assert leftovers(suite) == []


def test_forked_workers_are_measured(drover, copy_suite):
    suite = copy_suite("coverage")
    result = h.run_drover(suite, "-n", "3", "--worker-start", "fork", "--", *COV)
    assert result.rc == 0, result.describe()
    assert coverage_table(result.stdout)[-1] == "TOTAL 18 3 83%", result.describe()
    assert leftovers(suite) == []


def test_fail_under_fails_the_run_as_in_pytest(drover, copy_suite):
    expected = h.run_pytest(copy_suite("coverage"), *COV, "--cov-fail-under=90")
    result = h.run_drover(copy_suite("coverage"), "-n", "2", "--", *COV, "--cov-fail-under=90")
    assert result.rc == expected.rc == 1, result.describe()
    message = "FAIL Required test coverage of 90% not reached. Total coverage: 83.33%"
    assert message in expected.stdout and message in result.stdout, result.describe()
    assert h.summary_line(result.stdout).startswith("0 failed, 6 passed"), result.describe()


def test_xml_report_leaves_drover_out(drover, copy_suite):
    suite = copy_suite("coverage")
    # No source given: everything that runs is measured, drover's worker too, but it is
    # not part of the user's code and stays out of the reports.
    result = h.run_drover(suite, "-n", "2", "--", "--cov", "--cov-report=xml", "--cov-report=term")
    assert result.rc == 0, result.describe()
    xml = (suite / "coverage.xml").read_text()
    assert 'filename="calc/ops.py"' in xml or 'filename="ops.py"' in xml, xml[:2000]
    assert "drover_worker" not in xml
    assert "drover_worker" not in result.stdout, result.describe()


def test_no_cov_measures_nothing(drover, copy_suite):
    suite = copy_suite("coverage")
    result = h.run_drover(suite, "-n", "2", "--", *COV, "--no-cov")
    assert result.rc == 0, result.describe()
    assert "coverage: " not in result.stdout, result.describe()
    assert not (suite / ".coverage").exists() and leftovers(suite) == []


def test_earlier_data_is_replaced_unless_appending(drover, copy_suite):
    suite = copy_suite("coverage")
    only_add = h.run_drover(suite, "-n", "1", "tests/test_add.py", "--", *COV)
    assert only_add.rc == 0, only_add.describe()
    only_sub = h.run_drover(suite, "-n", "1", "tests/test_sub.py", "--", *COV)
    appended = h.run_drover(suite, "-n", "1", "tests/test_add.py", "--", *COV, "--cov-append")
    fresh = coverage_table(only_sub.stdout)[-1]
    assert fresh == coverage_table(only_add.stdout)[-1], only_sub.describe()  # one function each
    assert coverage_table(appended.stdout)[-1] != fresh, appended.describe()  # add's and sub's


def test_a_run_that_selects_nothing_still_reports(drover, copy_suite):
    # pytest-cov reports what collecting ran (module-level lines), exit 5 as in pytest.
    expected = h.run_pytest(copy_suite("coverage"), "-k", "nomatch", *COV)
    result = h.run_drover(copy_suite("coverage"), "-n", "2", "-k", "nomatch", "--", *COV)
    assert result.rc == expected.rc == 5, result.describe()
    assert coverage_table(result.stdout) == coverage_table(expected.stdout), result.describe()
