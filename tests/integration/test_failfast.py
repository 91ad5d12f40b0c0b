"""-x and --maxfail stop scheduling at the first (N-th) failure and report what ran."""
from __future__ import annotations

import collections

import pytest

import drover_helpers as h


@pytest.mark.parametrize("args,failures", [(["-x"], 1), (["--maxfail", "2"], 2), (["--maxfail=2"], 2)],
                         ids=["x", "maxfail-2", "maxfail-equals"])
def test_stops_early(drover, copy_suite, tmp_path, args, failures):
    suite = copy_suite("failfast")
    collected = h.collect_nodeids(suite)
    result = h.run_drover(suite, "-n", "2", "--junitxml", str(tmp_path / "r.xml"), *args)
    assert result.rc == 1, result.describe()
    counts = h.summary_counts(result.stdout)
    assert counts["failed"] >= failures, result.describe()
    ran = counts["failed"] + counts["passed"]
    # The slow tail (40 tests of 0.2 s) is not scheduled; only what was already
    # in flight on the two workers may still finish.
    assert ran <= 4 + 6, result.describe()
    junit = h.parse_junit(tmp_path / "r.xml")
    ran_cases = [c for c in junit.cases if c.outcome in ("passed", "failure")]
    assert len(ran_cases) == ran
    assert len(junit.cases) <= len(collected)
    assert h.wait_no_processes_in(suite) == []


def test_without_x_runs_everything(drover, copy_suite):
    suite = copy_suite("failfast")
    result = h.run_drover(suite, "-n", "2")
    assert result.rc == 1, result.describe()
    counts = h.summary_counts(result.stdout)
    assert (counts["failed"], counts["passed"]) == (2, 42), result.describe()
    # 8 s of sleeping tests with -n 2: both workers took a share.
    pids = (suite / ".test_pids").read_text().split()
    assert len(pids) == 44 and len(set(pids)) == 2, collections.Counter(pids)


def test_one_worker_runs_in_collection_order_so_x_stops_where_pytest_stops(drover, tmp_path):
    # Longest first would run the bigger module before the failing small one.
    suite = h.write_suite(tmp_path / "order", {})
    (suite / "test_a.py").write_text("def test_fail():\n    assert 0\n")
    (suite / "test_b.py").write_text("".join(f"def test_{i}():\n    pass\n\n\n" for i in range(5)))
    expected = h.run_pytest(suite, "-x", "-v")
    result = h.run_drover(suite, "-n", "1", "-x", "-v")
    assert result.rc == expected.rc == 1, result.describe()
    assert h.summary_counts(result.stdout) == h.summary_counts(expected.stdout), result.describe()
    assert "test_b.py" not in result.stdout, result.describe()


def test_one_worker_keeps_an_order_that_interleaves_modules(drover, tmp_path):
    # A plugin (pytest-order, here a conftest) moved test_a.py::test_last behind test_b.py's
    # tests: with one worker drover runs exactly pytest's order, not test_a.py's tests together.
    suite = h.write_suite(tmp_path / "interleaved", {})
    (suite / "conftest.py").write_text(
        "def pytest_collection_modifyitems(items):\n"
        "    last = [i for i in items if i.name == 'test_last']\n"
        "    items[:] = [i for i in items if i.name != 'test_last'] + last\n")
    log = tmp_path / "ran.log"
    body = f"import pathlib\n\ndef record(name):\n    with open({str(log)!r}, 'a') as f:\n        f.write(name + '\\n')\n\n"
    (suite / "test_a.py").write_text(body + "def test_last():\n    record('a_last')\n\n\ndef test_first():\n    record('a_first')\n")
    (suite / "test_b.py").write_text(body + "def test_b1():\n    record('b1')\n\n\ndef test_b2():\n    record('b2')\n")
    h.run_pytest(suite)
    expected = log.read_text().split()
    log.unlink()
    result = h.run_drover(suite, "-n", "1")
    assert result.rc == 0, result.describe()
    assert log.read_text().split() == expected == ["a_first", "b1", "b2", "a_last"]


@pytest.mark.parametrize("args", [["-x"], ["--maxfail", "1", "--continue-on-collection-errors"],
                                  ["--maxfail", "2", "--continue-on-collection-errors"]],
                         ids=["x", "maxfail1-continue", "maxfail2-continue"])
def test_collection_errors_count_towards_maxfail_as_in_pytest(drover, copy_suite, args):
    expected = h.run_pytest(copy_suite("collect_error"), *args)
    result = h.run_drover(copy_suite("collect_error"), "-n", "2", *args)
    assert result.rc == expected.rc == 1, result.describe()
    assert h.summary_counts(result.stdout) == h.summary_counts(expected.stdout), result.describe()
    assert ("stopping after 1 failures" in result.stdout) == ("stopping after 1 failures" in expected.stdout)
