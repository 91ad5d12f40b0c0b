"""drover's --junitxml is pytest's --junitxml, byte for byte per testcase: record_property()
properties, whole failure messages, lone surrogates, and the junit_* ini options
(junit_suite_name, junit_family, junit_logging, junit_log_passing_tests,
junit_duration_report), in local runs, merged static shards and farm runs (the client's
report and the coordinator's). Bad ini values fail as pytest fails."""
from __future__ import annotations

import re
import textwrap
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import drover_helpers as h
import test_farm

farm = test_farm.farm  # the fixture

SUITE = '''
import logging
import sys

import pytest


def test_prop(record_property):
    record_property("example_key", "1")
    record_property("number", 2)


def test_msg():
    print("captured-out")
    sys.stderr.write("captured-err\\n")
    logging.getLogger().warning("captured-log")
    assert 0, "plain msg"


def test_surrogate(record_property):
    record_property("odd", "x\\udcffy")
    print("out \\udcff")
    assert 0, "bad \\udcff here"


def test_pass_output():
    print("passing-out")


@pytest.fixture
def broken():
    raise RuntimeError("no database\\nsecond line")


def test_setup_error(broken):
    pass


@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("td")


def test_fail_and_teardown(bad_teardown, record_property):
    record_property("k", "v")
    print("before-failing")
    assert 0


@pytest.mark.skip(reason="no network")
def test_skip():
    pass


def test_skip_astral():
    pytest.skip("no \U0001F40D here")  # pytest writes the message attribute unescaped


@pytest.mark.xfail(reason="bug 12")
def test_xfail():
    raise KeyError("k")


@pytest.mark.xfail(strict=True, reason="strict")
def test_xpass_strict():
    pass


def test_missing_fixture(nope):
    pass


class TestC:
    def test_in_class(self):
        print("in-class")
'''

# pytest.ini bodies: every junit_* option, each value at least once.
INIS = {
    "defaults": "",
    "qa-repro": "junit_suite_name = mysuite\njunit_logging = system-out\n",
    "xunit1-all": "junit_family = xunit1\njunit_logging = all\n",
    "legacy-out-err-failing-only": "junit_family = legacy\njunit_logging = out-err\njunit_log_passing_tests = false\n",
    "system-err-no-durations": "junit_logging = system-err\njunit_duration_report = foo\n",
    "log-call-durations": "junit_logging = log\njunit_duration_report = call\njunit_suite_name = s p&ce\n",
    "unknown-logging": "junit_logging = foo\n",
}


def write_suite(root: Path, ini: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\n" + ini)
    (root / "test_fidelity.py").write_text(textwrap.dedent(SUITE), encoding="utf-8")
    return root


# h.run_pytest disables the cache plugin: so do drover's workers, or pytest's list of
# available fixtures in a fixture-not-found error would differ by "cache".
SAME_PLUGINS = ("--", "-p", "no:cacheprovider")


def pytest_report(suite: Path, out: Path, *args: str) -> Path:
    result = h.run_pytest(suite, f"--junitxml={out}", *args)
    assert result.rc == 1, result.describe()
    return out


def _comparable(cases: list[str], elsewhere: bool) -> list[str]:
    # Tracebacks show fixture values such as record_property's "<function ... at 0x7f...>".
    cases = [re.sub(r" at 0x[0-9a-f]+", " at 0x...", case) for case in cases]
    if elsewhere:  # run in another directory (a farm agent's workspace): absolute paths differ
        cases = [re.sub(r"/[^\s\"&;]*/test_fidelity\.py", "ROOT/test_fidelity.py", case) for case in cases]
    return cases


def assert_same_report(expected: Path, actual: Path, description: str, elsewhere: bool = False) -> None:
    want_totals, want_cases = h.junit_view(expected)
    got_totals, got_cases = h.junit_view(actual)
    want_cases, got_cases = _comparable(want_cases, elsewhere), _comparable(got_cases, elsewhere)
    assert got_totals == want_totals, description
    for want, got in zip(want_cases, got_cases):
        assert got == want, description
    assert len(got_cases) == len(want_cases), description


@pytest.mark.parametrize("ini", list(INIS.values()), ids=list(INIS))
def test_local_run_writes_pytests_report(drover, tmp_path, ini):
    suite = write_suite(tmp_path / "suite", ini)
    expected = pytest_report(suite, tmp_path / "pytest.xml")
    result = h.run_drover(suite, "-n", "2", "--junitxml", str(tmp_path / "drover.xml"), *SAME_PLUGINS)
    assert result.rc == 1, result.describe()
    assert_same_report(expected, tmp_path / "drover.xml", result.describe())


@pytest.mark.parametrize("where", ["after --", "addopts"])
def test_pytests_own_junitxml_is_the_whole_report(drover, tmp_path, where):
    # Given to pytest rather than to drover: still one report of every test (each worker
    # writing it kept only the last worker's part), with pytest's line about it.
    suite = write_suite(tmp_path / "suite", INIS["defaults"])
    expected = pytest_report(suite, tmp_path / "pytest.xml")
    out = tmp_path / "out" / "drover.xml"
    if where == "addopts":
        (suite / "pytest.ini").write_text(f"[pytest]\naddopts = --junitxml={out}\n")
        result = h.run_drover(suite, "-n", "2", *SAME_PLUGINS)
    else:
        result = h.run_drover(suite, "-n", "2", *SAME_PLUGINS, f"--junitxml={out}")
    assert result.rc == 1, result.describe()
    assert f"- generated xml file: {out} -" in result.stdout, result.describe()
    assert_same_report(expected, out, result.describe())


def test_the_reports_hold_what_qa_found_missing(drover, tmp_path):
    # The cases above compare whole testcases; these are the gaps QA reported, spelled out.
    suite = write_suite(tmp_path / "suite", INIS["qa-repro"])
    out = tmp_path / "drover.xml"
    result = h.run_drover(suite, "-n", "2", "--junitxml", str(out))
    assert result.rc == 1, result.describe()
    text = out.read_text(encoding="utf-8")
    assert '<testsuite name="mysuite"' in text
    prop = next(case for case in ET.parse(out).iter("testcase") if case.get("name") == "test_prop")
    assert [(p.get("name"), p.get("value")) for p in prop.iter("property")] == [("example_key", "1"), ("number", "2")]
    assert 'message="AssertionError: plain msg&#10;assert 0"' in text
    assert 'message="AssertionError: bad #xDCFF here&#10;assert 0"' in text
    assert "\ncaptured-out\n" in text and "<system-err>" not in text


def test_merged_shards_keep_the_report(drover, tmp_path):
    suite = write_suite(tmp_path / "suite", "junit_family = xunit1\njunit_logging = system-out\njunit_suite_name = sharded\n")
    expected = pytest_report(suite, tmp_path / "pytest.xml")
    shards = []
    for index in range(2):
        shards.append(tmp_path / f"shard{index}.xml")
        # A durations file each: a shard's run must not change the next shard's plan.
        result = h.run_drover(suite, "-n", "1", f"--shard={index}", "--total-shards=2", "--junitxml", str(shards[-1]),
                              "--durations", str(tmp_path / f"durations{index}"), *SAME_PLUGINS)
        assert result.rc in (0, 1), result.describe()
    merged = tmp_path / "merged.xml"
    result = h.run_drover_tool(suite, "merge", *map(str, shards), "-o", str(merged))
    assert result.rc == 0, result.describe()
    assert_same_report(expected, merged, result.describe())


@pytest.mark.parametrize("ini, error", [
    ("junit_family = foo\n", "junit_family"),
    ("junit_log_passing_tests = foo\n", "junit_log_passing_tests: invalid truth value 'foo'"),
])
def test_bad_ini_values_fail_as_pytest_fails(drover, tmp_path, ini, error):
    suite = write_suite(tmp_path / "suite", ini)
    plain = h.run_pytest(suite, f"--junitxml={tmp_path / 'pytest.xml'}")
    assert plain.rc == 3, plain.describe()  # INTERNALERROR
    result = h.run_drover(suite, "-n", "2", "--junitxml", str(tmp_path / "drover.xml"))
    assert result.rc == 3, result.describe()
    assert error in result.stderr, result.describe()
    assert len(result.stderr.strip().splitlines()) == 1, result.describe()
    # pytest reads these options only for --junitxml: without it, the run is a normal run.
    assert h.run_pytest(suite).rc == 1
    without = h.run_drover(suite, "-n", "2")
    assert without.rc == 1, without.describe()


def test_farm_reports_are_pytests_report(farm, tmp_path):
    farm.start_coordinator()
    farm.start_agent("a1")
    farm.wait_agents(1)
    suite = write_suite(tmp_path / "suite", INIS["xunit1-all"] + "junit_suite_name = farmed\n")
    expected = pytest_report(suite, tmp_path / "pytest.xml")
    client = tmp_path / "client.xml"
    result = farm.run(suite, "--run-id", "fidelity", "--junitxml", str(client), *SAME_PLUGINS)
    assert result.rc == 1, result.describe() + farm.log_text()
    assert_same_report(expected, client, result.describe(), elsewhere=True)
    coordinator = tmp_path / "coordinator.xml"
    with urllib.request.urlopen(f"{farm.http}/api/v1/runs/fidelity/junit.xml", timeout=30) as response:
        coordinator.write_bytes(response.read())
    assert_same_report(expected, coordinator, farm.log_text(), elsewhere=True)
