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
                                  ["--shard=x", "--total-shards=2"], ["--shard=1"],
                                  ["--shard=0", "--total-shards=2147483647"]])
def test_bad_shard_values_are_one_line_usage_errors(tiny_suite, args):
    result = h.run_drover(tiny_suite, *args)
    assert result.rc == 4, result.describe()
    assert result.stderr.strip().count("\n") == 0 and result.stderr.startswith("ERROR: "), result.describe()


def test_shards_in_one_checkout_plan_from_the_same_durations(tmp_path):
    # A shard that rewrote .test_durations would change the plan of the next shard run
    # in the same checkout: tests would run twice or never.
    suite = tmp_path / "checkout"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    for name in ("a", "b"):
        (suite / f"test_{name}.py").write_text(
            "import pytest\n\n\n@pytest.mark.parametrize('i', range(100))\n"
            f"def test_{name}(i):\n    pass\n")
    assert h.run_drover(suite, "--group-by", "none").rc == 0
    durations = (suite / ".test_durations").read_bytes()
    reports = []
    for index in range(3):
        report = suite / f"shard-{index}.xml"
        result = h.run_drover(suite, "--group-by", "none", f"--shard={index}", "--total-shards=3",
                              "--junitxml", str(report))
        assert result.rc == 0, result.describe()
        assert (suite / ".test_durations").read_bytes() == durations, "a shard rewrote the durations file"
        reports.append(report)
    result = h.run_drover_tool(suite, "merge", *map(str, reports), "-o", str(suite / "merged.xml"))
    assert result.rc == 0, result.describe()
    assert len(h.parse_junit(suite / "merged.xml").cases) == 200


def test_empty_suite_is_exit_5_in_every_shard_and_in_the_merge(tiny_suite):
    # A -k typo must not turn a whole matrix green with zero tests.
    reports = []
    for index in range(2):
        report = tiny_suite / f"shard-{index}.xml"
        result = h.run_drover(tiny_suite, f"--shard={index}", "--total-shards=2", "-k", "no_such_test",
                              "--junitxml", str(report))
        assert result.rc == 5, result.describe()
        reports.append(report)
    result = h.run_drover_tool(tiny_suite, "merge", *map(str, reports), "-o", str(tiny_suite / "merged.xml"))
    assert result.rc == 5, result.describe()


def test_merge_reports_missing_shards_even_when_the_durations_file_is_bad(tiny_suite):
    report = tiny_suite / "shard-0.xml"
    assert h.run_drover(tiny_suite, "--shard=0", "--total-shards=2", "--junitxml", str(report)).rc == 0
    (tiny_suite / "bad.json").write_text('{"a":')
    result = h.run_drover_tool(tiny_suite, "merge", str(report), "-o", str(tiny_suite / "merged.xml"),
                               "--durations", str(tiny_suite / "bad.json"))
    assert result.rc == 1, result.describe()
    assert "missing shard 1" in result.stderr and "bad.json: invalid JSON" in result.stderr, result.describe()
