"""`drover merge` on pytest's own JUnit reports: a suite run by plain pytest in
two halves merges into what one pytest run of the whole suite reports (totals,
testcases, summary words), the durations file learns every test's node id, and
bad input gets a one-line error with exit code 4. (Shards written by `drover run`
are covered by test_static_shards.py.)"""
from __future__ import annotations

import collections
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import drover_helpers as h

SUITE = {
    "pytest.ini": """
        [pytest]
        addopts = -p no:cacheprovider
    """,
    "pkg/__init__.py": "",
    "pkg/test_first.py": """
        import pytest

        @pytest.fixture
        def broken_teardown():
            yield
            raise RuntimeError("teardown boom")

        def test_pass():
            print("hello")

        def test_fail():
            assert 1 == 2

        def test_skip():
            pytest.skip("not today")

        @pytest.mark.xfail(reason="known bug")
        def test_xfail():
            assert False

        def test_fail_then_teardown_error(broken_teardown):
            assert False

        @pytest.mark.parametrize("value", [1, "a b", "x/y"])
        def test_param(value):
            pass
    """,
    "pkg/test_second.py": """
        import unittest
        import pytest

        @pytest.fixture
        def broken_setup():
            raise RuntimeError("setup boom")

        def test_setup_error(broken_setup):
            pass

        class TestGroup:
            def test_method(self):
                pass

        class Case(unittest.TestCase):
            def test_unit(self):
                self.assertEqual(1, 1)
    """,
    "pkg/test_skipped_module.py": """
        import pytest
        pytest.skip("no database", allow_module_level=True)
    """,
}
FIRST_HALF = ["pkg/test_first.py"]
SECOND_HALF = ["pkg/test_second.py", "pkg/test_skipped_module.py"]


def cases(path: Path) -> collections.Counter:
    """(classname, name, result tag, message) of every testcase."""
    root = ET.parse(path).getroot()
    out = collections.Counter()
    for testcase in root.iter("testcase"):
        results = [c for c in testcase if c.tag in ("failure", "error", "skipped")]
        tag, message = (results[0].tag, results[0].get("message")) if results else ("passed", None)
        out[(testcase.get("classname"), testcase.get("name"), tag, message)] += 1
    return out


def totals(path: Path) -> dict[str, str]:
    suite = next(ET.parse(path).getroot().iter("testsuite"))
    return {key: suite.get(key) for key in ("tests", "errors", "failures", "skipped")}


def summary_words(text: str) -> str:
    """pytest's summary line without the time: '2 failed, 8 passed, ... error'."""
    match = re.search(r"=+ (.*?) in [0-9.]+s", text) or re.search(r"merged \d+ reports?: (.*?) in [0-9.]+s", text)
    assert match, text
    return match.group(1)


@pytest.fixture(scope="module")
def reports(drover, module_dir) -> dict[str, Path]:
    suite = module_dir / "suite"
    for name, text in SUITE.items():
        path = suite / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    out = {"suite": suite}
    for label, paths in (("full", []), ("first", FIRST_HALF), ("second", SECOND_HALF)):
        out[label] = module_dir / f"{label}.xml"
        result = h.run_process([h.PY, "-m", "pytest", "-rN", f"--junitxml={out[label]}", *paths], suite, h.clean_env())
        assert result.rc == 1, result.describe()  # the suite has failures
        out[f"{label}_stdout"] = result.stdout
    return out


def merge(cwd: Path, *args: str) -> h.RunResult:
    return h.run_drover_tool(cwd, "merge", *args)


def test_merge_of_pytest_halves_equals_one_pytest_run(reports, module_dir):
    out = module_dir / "out" / "merged.xml"
    result = merge(reports["suite"], str(reports["first"]), str(reports["second"]), "-o", str(out))
    assert result.rc == 0, result.describe()
    assert cases(out) == cases(reports["full"])
    assert totals(out) == totals(reports["full"])
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    assert next(root.iter("testsuite")).get("name") == "pytest"
    assert f"generated xml file: {out}" in result.stdout


def test_summary_uses_pytests_words(reports, module_dir):
    out = module_dir / "summary.xml"
    result = merge(reports["suite"], str(reports["first"]), str(reports["second"]), "-o", str(out))
    assert result.rc == 0, result.describe()
    assert re.search(r"^merged 2 reports: .* in \d+\.\d\ds$", result.stdout, re.M), result.stdout
    assert summary_words(result.stdout) == summary_words(reports["full_stdout"])


def test_merge_updates_durations_with_node_ids(reports, module_dir):
    durations = reports["suite"] / ".test_durations"
    durations.write_text(json.dumps({"pkg/test_gone.py::test_old": 1.5}), encoding="utf-8")
    result = merge(reports["suite"], str(reports["first"]), str(reports["second"]), "-o",
                   str(module_dir / "d.xml"), "--durations", str(durations))
    assert result.rc == 0, result.describe()
    recorded = h.read_durations(durations)
    collected = h.run_process([h.PY, "-m", "pytest", "--collect-only", "-q", *FIRST_HALF, "pkg/test_second.py"],
                              reports["suite"], h.clean_env())
    nodeids = {line for line in collected.stdout.splitlines() if "::" in line}
    assert nodeids and set(recorded) == nodeids | {"pkg/test_gone.py::test_old"}, result.describe()
    assert all(isinstance(v, (int, float)) and v >= 0 for v in recorded.values())


def test_shard_mixed_with_plain_report_is_incomplete(reports, module_dir):
    # A report claiming to be shard 0 of 2, merged with a plain one: exit 1, or a
    # warning with --allow-incomplete.
    tree = ET.parse(reports["first"])
    suite = next(tree.getroot().iter("testsuite"))
    properties = ET.Element("properties")
    for name, value in (("drover.shard_index", "0"), ("drover.total_shards", "2")):
        ET.SubElement(properties, "property", name=name, value=value)
    suite.insert(0, properties)
    shard = module_dir / "shard0.xml"
    tree.write(shard, encoding="utf-8", xml_declaration=True)

    result = merge(reports["suite"], str(shard), str(reports["second"]), "-o", str(module_dir / "inc.xml"))
    assert result.rc == 1, result.describe()
    assert "missing shard 1 (shards 0-1)" in result.stderr, result.describe()
    assert f"{reports['second']}: not a drover shard report" in result.stderr, result.describe()
    assert (module_dir / "inc.xml").is_file()  # written anyway, for inspection

    allowed = merge(reports["suite"], str(shard), str(reports["second"]), "-o", str(module_dir / "inc2.xml"),
                    "--allow-incomplete")
    assert allowed.rc == 0, allowed.describe()
    assert "WARNING: missing shard 1" in allowed.stderr


@pytest.mark.parametrize("content, error", [
    ("<html><body>404</body></html>", "bad.xml: not a JUnit XML file (root element <html>)"),
    ("<testsuites><testsuite name='pytest'>", "bad.xml: malformed XML: "),
    ("", "bad.xml: malformed XML: "),
])
def test_bad_input_is_a_one_line_error(reports, tmp_path, content, error):
    (tmp_path / "bad.xml").write_text(content, encoding="utf-8")
    result = merge(tmp_path, str(reports["first"]), "bad.xml", "-o", "out.xml")
    assert result.rc == 4, result.describe()
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: " + error), result.describe()
    assert not (tmp_path / "out.xml").exists()


def test_missing_input_and_usage_errors(reports, tmp_path):
    missing = merge(tmp_path, "nope.xml", "-o", "out.xml")
    assert missing.rc == 4, missing.describe()
    assert missing.stderr.strip() == "ERROR: nope.xml: cannot read: No such file or directory"
    no_output = merge(tmp_path, str(reports["first"]))
    assert no_output.rc == 4, no_output.describe()
    assert "terminate called" not in no_output.stderr
