"""`drover run -n 2` on the outcomes suite reports what plain pytest reports:
the same test cases with the same outcomes, the same counts, the same exit code."""
from __future__ import annotations

import collections
from pathlib import Path

import pytest

import drover_helpers as h


class Runs:
    """One plain pytest run and one drover run of the same suite, in separate copies."""

    def __init__(self, base: Path, *args: str, drover_args: tuple[str, ...] = ("-n", "2")):
        self.pytest_dir = h.copy_tree(h.SUITES_DIR / "outcomes", base / "pytest")
        self.drover_dir = h.copy_tree(h.SUITES_DIR / "outcomes", base / "drover")
        # After "--" drover passes the rest to pytest; plain pytest takes it directly.
        pytest_args = [a for a in args if a != "--"]
        self.pytest = h.run_pytest(self.pytest_dir, "--junitxml", str(base / "pytest.xml"), *pytest_args)
        self.drover = h.run_drover(self.drover_dir, *drover_args, "--junitxml", str(base / "drover.xml"), *args)
        self.pytest_xml = base / "pytest.xml"
        self.drover_xml = base / "drover.xml"

    def junits(self) -> tuple[h.Junit, h.Junit]:
        assert self.drover_xml.is_file(), f"drover wrote no JUnit report\n{self.drover.describe()}"
        return h.parse_junit(self.pytest_xml), h.parse_junit(self.drover_xml)


@pytest.fixture(scope="module")
def full(drover, module_dir) -> Runs:
    return Runs(module_dir / "full")


def test_same_tests_same_outcomes(full):
    expected, actual = full.junits()
    diff = h.multiset_diff(expected.outcome_multiset(), actual.outcome_multiset())
    assert not diff, f"per-test outcomes differ from plain pytest:\n{diff}\n{full.drover.describe()}"


def test_same_outcomes_with_forked_workers(drover, module_dir):
    # `full` starts every worker anew (the default); here the second is forked from the first.
    runs = Runs(module_dir / "fork", drover_args=("-n", "2", "--worker-start", "fork"))
    expected, actual = runs.junits()
    diff = h.multiset_diff(expected.outcome_multiset(), actual.outcome_multiset())
    assert not diff, f"per-test outcomes differ from plain pytest:\n{diff}\n{runs.drover.describe()}"
    assert runs.drover.rc == runs.pytest.rc == 1


def test_exit_code_matches_pytest(full):
    assert full.pytest.rc == 1
    assert full.drover.rc == full.pytest.rc, full.drover.describe()


def test_summary_counts_match_pytest(full):
    expected = h.summary_counts(full.pytest.stdout)
    assert expected["failed"] and expected["errors"] and expected["xpassed"]  # the suite covers them
    assert h.summary_counts(full.drover.stdout) == expected, full.drover.describe()


def test_summary_line_in_pytest_words(full):
    expected = h.expected_drover_summary(h.summary_counts(full.pytest.stdout))
    line = h.summary_line(full.drover.stdout)
    assert line is not None, full.drover.describe()
    assert line.rsplit(" in ", 1)[0] == expected


def test_junit_has_one_testcase_per_pytest_testcase(full):
    expected, actual = full.junits()
    assert len(actual.cases) == len(expected.cases)
    collected = h.collect_nodeids(full.pytest_dir)
    # pytest adds a case for the module-level skip and a second one for the
    # teardown error that follows a failed call.
    assert len(actual.cases) == len(collected) + 2


def test_skip_and_xfail_reasons_match_pytest(full):
    expected, actual = full.junits()
    want = sorted((c.key, c.outcome, c.message) for c in expected.cases if c.outcome.startswith("skipped"))
    got = sorted((c.key, c.outcome, c.message) for c in actual.cases if c.outcome.startswith("skipped"))
    assert got == want


def test_failure_messages_match_pytest(full):
    expected, actual = full.junits()

    def first_lines(junit: h.Junit, root: Path):
        # pytest's message attribute can span lines ('failed on setup with "file
        # x.py, line 27\n  def test...'); compare the first line, without the quote
        # that closes it on one line.
        return sorted((c.key, c.outcome, c.message.replace(str(root), "ROOT").split("\n")[0].rstrip('"'))
                      for c in junit.cases if c.outcome.startswith(("failure", "error")))

    assert first_lines(actual, full.drover_dir) == first_lines(expected, full.pytest_dir)


def _short_summary(text: str) -> list[str]:
    """FAILED/ERROR lines of the short test summary, node id only (pytest cuts
    the message to the terminal width)."""
    lines = text.split("short test summary info", 1)[-1].splitlines()
    return [line.split(" - ", 1)[0].rstrip() for line in lines if line.startswith(("FAILED ", "ERROR "))]


def test_short_summary_in_pytest_order(full):
    """Results are reported in collection order, whatever worker ran them."""
    expected = _short_summary(full.pytest.stdout)
    assert expected, full.pytest.stdout[-2000:]
    assert _short_summary(full.drover.stdout) == expected, full.drover.describe()


def test_duplicate_parametrize_ids_both_run(full):
    _, actual = full.junits()
    names = collections.Counter(c.name for c in actual.cases if c.name.startswith("test_duplicate_ids"))
    assert names == {"test_duplicate_ids[a0]": 1, "test_duplicate_ids[a1]": 1}


def test_same_basename_in_two_packages(full):
    _, actual = full.junits()
    shared = sorted((c.classname, c.outcome) for c in actual.by_name("test_shared_name"))
    assert shared == [("pkg_a.test_util", "passed"), ("pkg_b.test_util", "failure"),
                      ("plain_dir.test_util", "passed")]


def test_fixtures_set_up_once_per_worker(full):
    """Module, class and session fixtures were set up once per worker (the
    suite's own assertions check it too), on at most the two workers of -n 2."""
    counts = (full.drover_dir / ".setup_counts").read_text().splitlines()
    by_pid = collections.Counter(counts)
    assert all(n == 1 for n in by_pid.values()), f"a fixture was set up twice in one worker: {by_pid}"
    ran_in = (full.drover_dir / ".test_pids").read_text().split()
    assert 1 <= len(set(ran_in)) <= 2
    # Every test that reached setup under pytest did so exactly once under drover.
    assert len(ran_in) == len((full.pytest_dir / ".test_pids").read_text().split())


def test_no_worker_left_behind(full):
    assert h.wait_no_processes_in(full.drover_dir) == []


@pytest.mark.parametrize("selection", [
    ("-k", "odd_ids or pairs"),
    ("-k", "not TestPlainClass and not unittest"),
    ("-m", "tagged"),
    ("test_basic.py::TestPlainClass", "test_params.py::test_odd_ids[with space]", "pkg_b"),
    ("test_basic.py", "--", "-o", "xfail_strict=true"),
], ids=["k-or", "k-not", "m-marker", "node-ids", "pytest-args"])
def test_selection_parity(drover, tmp_path, selection):
    runs = Runs(tmp_path, *selection, drover_args=("-n", "2"))
    expected, actual = runs.junits()
    diff = h.multiset_diff(expected.outcome_multiset(), actual.outcome_multiset())
    assert not diff, f"outcomes differ from plain pytest:\n{diff}\n{runs.drover.describe()}"
    assert runs.drover.rc == runs.pytest.rc, runs.drover.describe()
    assert h.summary_counts(runs.drover.stdout) == h.summary_counts(runs.pytest.stdout), runs.drover.describe()
    h.kill_processes_in(tmp_path)
