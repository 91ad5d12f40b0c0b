"""Static-shard edge cases through the real binary: a shard the plan leaves
empty, bad shard values, and a merge that sees the empty shard too."""
from __future__ import annotations

import pytest

import drover_helpers as h


@pytest.fixture()
def tiny_suite(tmp_path):
    suite = tmp_path / "tiny"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "test_tiny.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    return suite


def test_empty_shard_writes_a_valid_report_and_exits_0(tiny_suite):
    reports = []
    for index in range(3):
        report = tiny_suite / f"shard-{index}.xml"
        result = h.run_drover(tiny_suite, f"--shard={index}", "--total-shards=3", "--junitxml", str(report))
        assert result.rc == 0, result.describe()
        reports.append(report)
    junits = [h.parse_junit(report) for report in reports]
    assert sorted(len(junit.cases) for junit in junits) == [0, 1, 1]
    empty = next(junit for junit in junits if not junit.cases)
    assert empty.property_values("drover.assigned_count") == ["0"]
    merged = tiny_suite / "merged.xml"
    result = h.run_drover_tool(tiny_suite, "merge", *map(str, reports), "-o", str(merged))
    assert result.rc == 0, result.describe()
    assert sorted(case.name for case in h.parse_junit(merged).cases) == ["test_one", "test_two"]


@pytest.mark.parametrize("args", [["--shard=3", "--total-shards=3"], ["--shard=0", "--total-shards=0"],
                                  ["--shard=x", "--total-shards=2"], ["--shard=1"]])
def test_bad_shard_values_are_one_line_usage_errors(tiny_suite, args):
    result = h.run_drover(tiny_suite, *args)
    assert result.rc == 4, result.describe()
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("ERROR: "), result.describe()
