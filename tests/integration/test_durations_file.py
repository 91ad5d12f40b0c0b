"""After every run the durations history (pytest-split's .test_durations:
JSON node id -> seconds) covers every test that ran."""
from __future__ import annotations

import json

import pytest

import drover_helpers as h


def _check_covers(durations: dict, nodeids: list[str]) -> None:
    missing = [n for n in nodeids if n not in durations]
    assert not missing, f"{len(missing)} tests missing from durations, e.g. {missing[:5]}"
    assert all(isinstance(v, (int, float)) and v >= 0 for v in durations.values())


def test_rootdir_durations_written(drover, copy_suite):
    suite = copy_suite("outcomes")
    nodeids = h.collect_nodeids(suite)
    result = h.run_drover(suite, "-n", "2")
    assert result.rc == 1, result.describe()
    _check_covers(h.read_durations(suite / ".test_durations"), nodeids)


def test_durations_reflect_sleeps(drover, copy_suite):
    suite = copy_suite("failfast")
    tail = [f"test_failfast.py::test_slow_tail[{n}]" for n in range(6)]
    result = h.run_drover(suite, "-n", "2", *tail)
    assert result.rc == 0, result.describe()
    durations = h.read_durations(suite / ".test_durations")
    assert set(durations) == set(tail)
    assert all(0.15 <= durations[n] <= 5 for n in tail), durations


def test_durations_option_writes_given_file_and_keeps_history(drover, copy_suite, tmp_path):
    suite = copy_suite("collect_error")
    target = tmp_path / "history" / "durations.json"
    target.parent.mkdir()
    target.write_text(json.dumps({"test_good_two.py::test_two": 0.5, "gone.py::test_old": 1.25}))
    result = h.run_drover(suite, "-n", "2", "--durations", str(target), "test_good_one.py", "test_good_two.py")
    assert result.rc == 0, result.describe()
    durations = h.read_durations(target)
    _check_covers(durations, h.collect_nodeids(suite, "test_good_one.py", "test_good_two.py"))
    # Updated, not replaced: the entry of a test that did not run is kept.
    assert durations.get("gone.py::test_old") == 1.25
    assert durations["test_good_two.py::test_two"] != 0.5


@pytest.mark.parametrize("content", ["", '{"a.py::t":', "[]", '{"a.py::t": "slow"}', '{"a.py::t": 1e400}'],
                         ids=["empty", "truncated", "list", "string", "infinite"])
def test_unusable_durations_file_is_a_one_line_usage_error(drover, copy_suite, content):
    suite = copy_suite("collect_error")
    (suite / ".test_durations").write_text(content)
    result = h.run_drover(suite, "-n", "1", "test_good_one.py")
    assert result.rc == 4, result.describe()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and ".test_durations" in lines[0] and "fix or delete" in lines[0], result.describe()
    assert (suite / ".test_durations").read_text() == content  # left for the user to fix


def test_long_tests_are_not_hoarded_by_the_first_worker(drover, tmp_path):
    # Known long tests are handed to a worker that needs work, not queued as lookahead
    # behind another's running test: with two workers the three long ones land on both.
    suite = tmp_path / "long"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "test_s.py").write_text("import time\n\n\n" + "".join(
        f"def test_{name}():\n    time.sleep({seconds})\n\n\n"
        for name, seconds in (("f", 2), ("s1", 2), ("s2", 2), ("q1", 0), ("q2", 0))))
    (suite / ".test_durations").write_text(json.dumps(
        {"test_s.py::test_f": 100, "test_s.py::test_s1": 50, "test_s.py::test_s2": 50,
         "test_s.py::test_q1": 0.01, "test_s.py::test_q2": 0.01}))
    result = h.run_drover(suite, "-n", "2", "-v")
    assert result.rc == 0, result.describe()
    ran_on = {line.split("::")[1].split()[0]: line.rsplit("[", 1)[1].rstrip("]")
              for line in result.stdout.splitlines() if " PASSED [gw" in line}
    assert len({ran_on["test_f"], ran_on["test_s1"], ran_on["test_s2"]}) == 2, result.describe()
