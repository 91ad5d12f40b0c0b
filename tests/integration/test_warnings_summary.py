"""pytest's warnings summary and warning count: drover's equal plain pytest's.

tests/suites/warnings records warnings while pytest configures (conftest import),
while it collects (module import, an unknown mark), in tests, in a fixture's setup
and teardown, repeated in one test, spread over 12 tests of two files (pytest then
counts per file), and has some filtered by the ini file and by a mark. With -n 2
every worker records the configuration and collection warnings: they must still
count once.
"""
from __future__ import annotations

import re

import pytest

import drover_helpers as h
import test_farm

_DOCS = "-- Docs: https://docs.pytest.org/en/stable/how-to/capture-warnings.html"
# Absolute paths in the warning texts: each run has its own copy (a farm agent its own checkout).
_PATH = re.compile(r"/\S*/((?:test_\w+|conftest|spreading)\.py)")


def warnings_section(stdout: str) -> list[str] | None:
    lines = stdout.splitlines()
    heads = [i for i, line in enumerate(lines) if re.fullmatch(r"=+ warnings summary =+", line)]
    if not heads:
        return None
    assert len(heads) == 1, stdout
    end = lines.index(_DOCS, heads[0])
    return [_PATH.sub(r"<root>/\1", line) for line in lines[heads[0] + 1 : end + 1]]


def warning_count(stdout: str) -> int:
    line = h.summary_line(stdout)
    assert line is not None, stdout
    found = re.search(r"(\d+) warnings?\b", line)
    return int(found.group(1)) if found else 0


class Runs:
    def __init__(self, copy_suite, *args: str, drover_args: tuple[str, ...] = ("-n", "2")):
        self.pytest = h.run_pytest(copy_suite("warnings"), "-p", "no:cacheprovider", *args)
        self.drover = h.run_drover(copy_suite("warnings"), *drover_args, "--", "-p", "no:cacheprovider", *args)

    def check_same(self) -> None:
        assert self.drover.rc == self.pytest.rc, self.drover.describe()
        assert warnings_section(self.drover.stdout) == warnings_section(self.pytest.stdout), (
            self.pytest.stdout + "\n" + self.drover.describe())
        assert warning_count(self.drover.stdout) == warning_count(self.pytest.stdout), self.drover.describe()
        assert h.summary_counts(self.drover.stdout) == h.summary_counts(self.pytest.stdout), self.drover.describe()


@pytest.mark.parametrize("start", ["exec", "fork"])
def test_summary_and_count_equal_pytests(drover, copy_suite, start):
    runs = Runs(copy_suite, drover_args=("-n", "2", "--worker-start", start))
    runs.check_same()
    assert warning_count(runs.pytest.stdout) == 21
    assert "test_alpha.py: 6 warnings" in runs.drover.stdout
    lines = runs.drover.stdout.splitlines()
    # pytest's place: after FAILURES, before the short test summary.
    assert lines.index("_____________________________ test_fails_and_warns _____________________________") < \
        next(i for i, line in enumerate(lines) if "warnings summary" in line) < \
        next(i for i, line in enumerate(lines) if "short test summary info" in line)
    assert re.search(r"= 1 failed, 19 passed, 21 warnings in [0-9.]+s =", runs.drover.stdout), runs.drover.stdout


def test_one_worker(drover, copy_suite):
    Runs(copy_suite, drover_args=("-n", "1")).check_same()


def test_disable_warnings_keeps_the_count(drover, copy_suite):
    runs = Runs(copy_suite, "--disable-warnings")
    runs.check_same()
    assert warnings_section(runs.drover.stdout) is None
    assert warning_count(runs.drover.stdout) == 21


def test_no_warnings_plugin_means_no_warnings(drover, copy_suite):
    runs = Runs(copy_suite, "-p", "no:warnings")
    runs.check_same()
    assert warning_count(runs.drover.stdout) == 0


def test_warnings_as_errors_fail_tests_not_the_count(drover, copy_suite):
    runs = Runs(copy_suite, "-W", "error::DeprecationWarning")
    runs.check_same()
    assert h.summary_counts(runs.drover.stdout)["failed"] == 2


def test_farm_run_shows_the_same_summary(drover, copy_suite, tmp_path):
    farm = test_farm.Farm(tmp_path / "farm", drover)
    (tmp_path / "farm").mkdir()
    try:
        farm.start_coordinator()
        farm.start_agent("a1")
        farm.wait_agents(1)
        plain = h.run_pytest(copy_suite("warnings"), "-p", "no:cacheprovider")
        result = farm.run(copy_suite("warnings"), "--", "-p", "no:cacheprovider")
        assert result.rc == plain.rc == 1, result.describe() + farm.log_text()
        assert warnings_section(result.stdout) == warnings_section(plain.stdout), plain.stdout + result.describe()
        assert warning_count(result.stdout) == 21, result.describe()
    finally:
        farm.stop()


def test_collect_only_shows_the_collection_warnings(drover, copy_suite):
    # pytest --co prints the configuration and collection warnings; its closing line counts none.
    runs = Runs(copy_suite, "--co")
    assert runs.drover.rc == runs.pytest.rc == 0, runs.drover.describe()
    assert warnings_section(runs.pytest.stdout), runs.pytest.stdout
    assert warnings_section(runs.drover.stdout) == warnings_section(runs.pytest.stdout), (
        runs.pytest.stdout + "\n" + runs.drover.describe())
    closing = re.compile(r"\b20 tests collected in [0-9.]+s\b")
    assert closing.search(runs.pytest.stdout) and closing.search(runs.drover.stdout), runs.drover.describe()


def test_a_test_that_ends_the_session_keeps_its_warnings(drover, tmp_path):
    # pytest shows what a test recorded before pytest.exit() in its summary and count
    # (the summary with exit code 2, Interrupted: pytest prints none for other codes).
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_e.py").write_text(
        "import warnings, pytest\n"
        "def test_a():\n    warnings.warn(UserWarning('first'))\n"
        "def test_exit():\n    warnings.warn(UserWarning('last words'))\n    pytest.exit('bye')\n"
        "def test_c():\n    pass\n"
    )
    plain = h.run_pytest(suite, "-p", "no:cacheprovider")
    result = h.run_drover(suite, "-n", "1", "--", "-p", "no:cacheprovider")
    assert result.rc == plain.rc == 2, result.describe()
    assert "!! _pytest.outcomes.Exit: bye !!" in result.stdout, result.describe()
    assert warnings_section(result.stdout) == warnings_section(plain.stdout), plain.stdout + "\n" + result.describe()
    assert warning_count(result.stdout) == warning_count(plain.stdout) == 2, result.describe()
