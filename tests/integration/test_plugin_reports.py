"""Reports that plugins shape, through the real binary, against plain pytest: a plugin's
own category (pytest-rerunfailures' "rerun": letter R, counted in the closing line, not
the test's outcome, listed by -rR) and pytest-forked's crash report (when="???"), each played by a
conftest that does what the plugin does."""
from __future__ import annotations

import drover_helpers as h

RERUN_CONFTEST = '''
import pytest
from _pytest.runner import runtestprotocol


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # pytest-rerunfailures with --reruns 2: a failed call is reported as "rerun" (its
    # teardown not at all) and the test runs again, up to twice.
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in range(3):
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        rerun = False
        for report in reports:
            if attempt < 2 and report.when == "call" and report.failed:
                report.outcome = "rerun"
                item.ihook.pytest_runtest_logreport(report=report)
                rerun = True
                break
            item.ihook.pytest_runtest_logreport(report=report)
        if not rerun:
            break
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def pytest_report_teststatus(report):
    if report.outcome == "rerun":
        return "rerun", "R", ("RERUN", {"yellow": True})


def pytest_terminal_summary(terminalreporter):
    # pytest-rerunfailures' -rR section
    tr = terminalreporter
    lines = []
    for char in tr.reportchars:
        if char in "rR":
            lines += ["RERUN %s" % rep.nodeid for rep in tr.stats.get("rerun", [])]
    if lines:
        tr._tw.sep("=", "rerun test summary info")
        for line in lines:
            tr._tw.line(line)
'''

FLAKY = '''
import pathlib

COUNTER = pathlib.Path(__file__).parent / "counter"


def test_third_time_lucky():
    runs = int(COUNTER.read_text()) + 1 if COUNTER.exists() else 1
    COUNTER.write_text(str(runs))
    assert runs >= 3


def test_always_fails():
    assert 0, "always broken"


def test_ok():
    pass
'''

FORKED_CONFTEST = '''
import pytest
from _pytest.reports import TestReport


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item):
    if "crash" not in item.name:
        return None
    # pytest-forked: the forked child running the test died.
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    path, lineno = item.location[:2]
    report = TestReport(item.nodeid, item.location, {}, "failed",
                        "%s:%s: running the test CRASHED with signal 9" % (path, lineno), "???")
    item.ihook.pytest_runtest_logreport(report=report)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
'''


def _suite(tmp_path, conftest, tests):
    return h.write_suite(tmp_path / "suite", {"conftest.py": conftest, "test_x.py": tests})


def test_reruns_are_counted_as_pytest_counts_them(drover, tmp_path):
    suite = _suite(tmp_path, RERUN_CONFTEST, FLAKY)
    expected = h.run_pytest(suite)
    (suite / "counter").unlink()
    result = h.run_drover(suite, "-n", "1", "--junitxml", str(tmp_path / "d.xml"))
    assert result.rc == expected.rc == 1, result.describe()
    assert "1 failed, 2 passed, 4 rerun in" in expected.stdout, expected.describe()
    assert "1 failed, 2 passed, 4 rerun in" in result.stdout, result.describe()
    assert "test_x.py RR.RRF." in result.stdout, result.describe()
    outcomes = {(c.name, c.outcome) for c in h.parse_junit(tmp_path / "d.xml").cases}
    assert outcomes == {("test_third_time_lucky", "passed"), ("test_always_fails", "failure"), ("test_ok", "passed")}
    (suite / "counter").unlink()
    verbose = h.run_drover(suite, "-n", "2", "-v")
    assert verbose.stdout.count("test_x.py::test_always_fails RERUN [gw") == 2, verbose.describe()


def test_rerun_summary_section_is_printed_as_the_plugin_prints_it(drover, tmp_path):
    suite = _suite(tmp_path, RERUN_CONFTEST, FLAKY)

    def section(out):  # the section's lines, up to the next "=" rule (the closing line)
        rest = out[out.index("= rerun test summary info =") :].splitlines()[1:]
        return rest[: next(i for i, line in enumerate(rest) if line.startswith("="))]

    expected = h.run_pytest(suite, "-rR")
    (suite / "counter").unlink()
    result = h.run_drover(suite, "-n", "1", "--", "-rR")
    assert result.rc == expected.rc == 1, result.describe()
    assert section(result.stdout) == section(expected.stdout), result.describe() + expected.stdout
    assert len(section(result.stdout)) == 4, result.describe()
    (suite / "counter").unlink()
    plain = h.run_drover(suite, "-n", "1")
    assert "rerun test summary info" not in plain.stdout, plain.describe()  # only with -rR


def test_a_forked_childs_crash_fails_its_test_and_the_worker_goes_on(drover, tmp_path):
    tests = "".join(f"def test_crash_{i}():\n    pass\n\n\ndef test_fine_{i}():\n    pass\n\n\n" for i in range(6))
    suite = _suite(tmp_path, FORKED_CONFTEST, tests)
    expected = h.run_pytest(suite)
    result = h.run_drover(suite, "-n", "1")
    assert result.rc == expected.rc == 1, result.describe()
    counts = h.summary_counts(result.stdout)
    assert counts == h.summary_counts(expected.stdout), result.describe()
    assert (counts["failed"], counts["passed"], counts["errors"]) == (6, 6, 0), result.describe()
    assert "crashed" not in result.stdout.replace("CRASHED", ""), result.describe()


def test_plugins_header_lines_are_shown_as_in_pytest(drover, tmp_path):
    suite = _suite(tmp_path, (
        "pytest_plugins = ['plugin_b']\n\n\n"
        "def pytest_report_header(config):\n"
        "    return ['custom seed: 42', 'custom mode: strict']\n"), "def test_ok():\n    pass\n")
    (suite / "plugin_b.py").write_text("def pytest_report_header(config, start_path):\n    return 'other plugin: on'\n")
    expected = h.run_pytest(suite)
    result = h.run_drover(suite)
    assert result.rc == expected.rc == 0, result.describe()
    header = lambda out: [line for line in out.splitlines() if line.startswith(("custom", "other plugin"))]
    assert header(result.stdout) == header(expected.stdout), result.describe() + expected.stdout
    assert sorted(header(result.stdout)) == ["custom mode: strict", "custom seed: 42", "other plugin: on"]
    lines = result.stdout.splitlines()
    assert lines.index("custom seed: 42") < next(i for i, line in enumerate(lines) if line.startswith("collected"))
    assert "custom" not in h.run_drover(suite, "-q").stdout  # -q: no header, as pytest -q
