"""The bundled example project runs under drover as under pytest."""
from __future__ import annotations

import pytest

import drover_helpers as h


@pytest.fixture(scope="module")
def bookshop_runs(drover, module_dir):
    pytest_dir = h.copy_tree(h.EXAMPLES_DIR / "bookshop", module_dir / "pytest")
    drover_dir = h.copy_tree(h.EXAMPLES_DIR / "bookshop", module_dir / "drover")
    expected = h.run_pytest(pytest_dir, "--junitxml", str(module_dir / "pytest.xml"))
    actual = h.run_drover(drover_dir, "-n", "auto", "--junitxml", str(module_dir / "drover.xml"))
    return pytest_dir, drover_dir, expected, actual, module_dir


def test_example_passes_like_pytest(bookshop_runs):
    _, _, expected, actual, _ = bookshop_runs
    assert expected.rc == 0, expected.describe()
    assert actual.rc == 0, actual.describe()
    assert h.summary_counts(actual.stdout) == h.summary_counts(expected.stdout)


def test_example_junit_matches_pytest(bookshop_runs):
    pytest_dir, drover_dir, _, actual, base = bookshop_runs
    expected = h.parse_junit(base / "pytest.xml")
    got = h.parse_junit(base / "drover.xml")
    assert not h.multiset_diff(expected.outcome_multiset(), got.outcome_multiset())
    assert len(got.cases) == len(h.collect_nodeids(pytest_dir))


def test_example_durations_written(bookshop_runs):
    pytest_dir, drover_dir, _, _, _ = bookshop_runs
    durations = h.read_durations(drover_dir / ".test_durations")
    assert set(h.collect_nodeids(pytest_dir)) <= set(durations)


def test_verbose_lists_every_test(drover, copy_suite):
    suite = copy_suite("bookshop", base=h.EXAMPLES_DIR)
    result = h.run_drover(suite, "-n", "2", "-v", "-m", "not slow")
    assert result.rc == 0, result.describe()
    for nodeid in h.collect_nodeids(suite, "-m", "not slow"):
        assert nodeid in result.stdout, f"{nodeid} not listed by -v\n{result.describe()}"


def test_quiet_run_still_summarises(drover, copy_suite):
    suite = copy_suite("bookshop", base=h.EXAMPLES_DIR)
    result = h.run_drover(suite, "-n", "2", "-q", "-m", "not slow")
    assert result.rc == 0, result.describe()
    counts = h.summary_counts(result.stdout)
    assert counts["failed"] == 0 and counts["passed"] > 0 and counts["deselected"] > 0
