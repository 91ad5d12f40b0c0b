"""pytest's "short test summary info" section and its -r characters, line for line."""
import pytest

import drover_helpers as h


def summary_section(output: str) -> list[str]:
    """The lines of pytest's short test summary, without the closing line."""
    lines = output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if "short test summary info" in line)
    except StopIteration:
        return []
    section = []
    for line in lines[start + 1:]:
        if line.startswith("=") or line.startswith("!"):
            break
        section.append(line)
    return section


def ruled_section(output: str, title: str) -> list[str]:
    """The lines of pytest's section `title` (PASSES, FAILURES), up to the next '=' rule."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("=") and f" {title} " in line), None)
    if start is None:
        return []
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("=")), len(lines))
    return lines[start:end]


def passes_section(output: str) -> list[str]:
    """pytest's PASSES section (-rP, -rA)."""
    return ruled_section(output, "PASSES")


@pytest.mark.parametrize("chars", ["", "-ra", "-rA", "-rs", "-rxX", "-rN", "-rfEp"],
                         ids=["default", "ra", "rA", "rs", "rxX", "rN", "rfEp"])
def test_short_summary_equals_pytests(drover, copy_suite, chars):
    args = [chars] if chars else []
    expected = h.run_pytest(copy_suite("outcomes"), *args)
    result = h.run_drover(copy_suite("outcomes"), "-n", "2", "--", *args)
    assert result.rc == expected.rc, result.describe()
    assert summary_section(result.stdout) == summary_section(expected.stdout), (
        f"pytest:\n{expected.stdout}\n\ndrover:\n{result.stdout}")
    # -rA (and -rP): pytest's PASSES section, each passed test's captured output.
    assert passes_section(result.stdout) == passes_section(expected.stdout), (
        f"pytest:\n{expected.stdout}\n\ndrover:\n{result.stdout}")
    if chars == "-rA":
        assert any(line.startswith("---") and "Captured" in line for line in passes_section(result.stdout))
    if chars in ("-ra", "-rs"):
        assert any(line.startswith("SKIPPED [") for line in summary_section(result.stdout)), result.describe()


def test_long_messages_are_cut_as_pytest_cuts_them(drover, copy_suite):
    suite = copy_suite("outcomes")
    (suite / "test_zz_long.py").write_text(
        "def test_long_message():\n"
        "    raise AssertionError('x' * 200)\n")
    expected = h.run_pytest(suite, "test_zz_long.py")
    result = h.run_drover(suite, "test_zz_long.py")
    ours = summary_section(result.stdout)
    assert ours == summary_section(expected.stdout), f"pytest:\n{expected.stdout}\n\ndrover:\n{result.stdout}"
    assert ours[0].endswith("...") and len(ours[0]) == 80, ours
    # $COLUMNS sets the width, as for pytest; on CI the message stays whole.
    for env, check in (({"COLUMNS": "100"}, lambda line: line.endswith("...") and len(line) == 100),
                       ({"CI": "true"}, lambda line: line.endswith("x" * 200))):
        wide = h.run_drover(suite, "test_zz_long.py", env=env)
        assert check(summary_section(wide.stdout)[0]), (env, wide.describe())


@pytest.mark.parametrize("where", ["after --", "addopts"])
def test_pytests_own_continue_on_collection_errors(drover, copy_suite, tmp_path, where):
    suite = copy_suite("collect_error")
    args = []
    if where == "addopts":
        ini = suite / "pytest.ini"
        ini.write_text(ini.read_text() + "addopts = --continue-on-collection-errors\n")
    else:
        args = ["--continue-on-collection-errors"]
    expected = h.run_pytest(suite, *args, "--junitxml", str(tmp_path / "p.xml"))
    result = h.run_drover(suite, "-n", "2", "--junitxml", str(tmp_path / "d.xml"), "--", *args)
    assert result.rc == expected.rc == 1, result.describe()
    assert h.summary_counts(result.stdout) == h.summary_counts(expected.stdout), result.describe()
    assert summary_section(result.stdout) == summary_section(expected.stdout), result.describe()
    diff = h.multiset_diff(h.parse_junit(tmp_path / "p.xml").outcome_multiset(),
                           h.parse_junit(tmp_path / "d.xml").outcome_multiset())
    assert not diff, diff


def failures_section(output: str) -> list[str]:
    return ruled_section(output, "FAILURES")


@pytest.mark.parametrize("tb", ["no", "line"])
def test_tb_no_and_line_shape_the_failures_as_in_pytest(drover, copy_suite, tb):
    # --tb=no: no FAILURES or ERRORS section; --tb=line: one "path:line: message" per failure.
    suite = copy_suite("outcomes")
    expected = h.run_pytest(suite, f"--tb={tb}")
    result = h.run_drover(suite, "-n", "2", "--", f"--tb={tb}")
    assert result.rc == expected.rc == 1, result.describe()
    assert failures_section(result.stdout) == failures_section(expected.stdout), (
        f"pytest:\n{expected.stdout}\n\ndrover:\n{result.stdout}")
    if tb == "line":
        assert any(line.startswith("/") and ": " in line for line in failures_section(result.stdout)), result.describe()
    else:
        assert failures_section(result.stdout) == []
        assert " ERRORS " not in result.stdout, result.describe()
    assert summary_section(result.stdout) == summary_section(expected.stdout)


def test_drovers_own_verbose_reaches_pytests_assertion_diffs(drover, tmp_path):
    # pytest -v shows the full diff of two long lists; plain pytest says "Use -v to get more diff".
    suite = tmp_path / "diff"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "test_diff.py").write_text("def test_lists():\n    assert list(range(50)) == list(range(1, 51))\n")
    plain = h.run_drover(suite)
    verbose = h.run_drover(suite, "-v")
    expected = h.run_pytest(suite, "-v")
    assert plain.rc == verbose.rc == expected.rc == 1
    assert "Use -v to get more diff" in plain.stdout, plain.describe()
    assert "Use -v to get more diff" not in verbose.stdout, verbose.describe()
    assert failures_section(verbose.stdout) == failures_section(expected.stdout), verbose.stdout + expected.stdout


def test_a_doctests_failure_is_headed_as_pytest_heads_it(drover, tmp_path):
    # pytest heads it "[doctest] mod.f" (the report's own head line), not by its node id.
    suite = tmp_path / "doctests"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    (suite / "mod.py").write_text('def f():\n    """\n    >>> f()\n    2\n    """\n    return 1\n')
    expected = h.run_pytest(suite, "--doctest-modules")
    result = h.run_drover(suite, "--", "--doctest-modules")
    assert result.rc == expected.rc == 1, result.describe()
    assert failures_section(result.stdout) == failures_section(expected.stdout), result.stdout + expected.stdout
    assert any("[doctest] mod.f" in line for line in failures_section(result.stdout)), result.describe()
