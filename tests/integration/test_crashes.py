"""Workers that die, hang or flood their output: the run survives, the test in
flight gets the right outcome and message, and the rest runs."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import drover_helpers as h

TIMEOUT = 4


class CrashRun:
    def __init__(self, base: Path, drover_args: list[str], paths: tuple[str, ...] = ()):
        self.dir = h.copy_tree(h.SUITES_DIR / "crashes", base / "crashes")
        self.xml = base / "crashes.xml"
        self.collected = h.collect_nodeids(self.dir, *paths)
        self.result = h.run_drover(self.dir, "--junitxml", str(self.xml), *drover_args, *paths, timeout=120)
        self.leftovers = h.wait_no_processes_in(self.dir)

    def junit(self) -> h.Junit:
        assert self.xml.is_file(), f"drover wrote no JUnit report\n{self.result.describe()}"
        return h.parse_junit(self.xml)

    def case(self, name: str) -> h.Case:
        cases = self.junit().by_name(name)
        assert len(cases) == 1, f"{name}: expected one testcase, got {cases}\n{self.result.describe()}"
        return cases[0]


@pytest.fixture(scope="module")
def crash_run(drover, module_dir) -> CrashRun:
    return CrashRun(module_dir, ["-n", "2", "--timeout", str(TIMEOUT)])


def test_run_finishes_with_exit_code_1(crash_run):
    assert crash_run.result.rc == 1, crash_run.result.describe()
    # The hang is cut at TIMEOUT seconds, not after its 600 s sleep.
    assert crash_run.result.seconds < 60


def test_segfault_is_an_error_naming_the_signal(crash_run):
    case = crash_run.case("test_segfault")
    assert case.outcome.startswith("error"), case
    assert "worker crashed (signal 11)" in case.message + case.text


def test_os_exit_is_an_error_naming_the_exit_code(crash_run):
    case = crash_run.case("test_os_exit")
    assert case.outcome.startswith("error"), case
    assert "worker exited with code 3" in case.message + case.text


def test_killed_worker_is_an_error_naming_the_signal(crash_run):
    case = crash_run.case("test_sigkill_self")
    assert case.outcome.startswith("error"), case
    assert "worker crashed (signal 9)" in case.message + case.text


def test_hang_fails_with_timeout_and_stack(crash_run):
    case = crash_run.case("test_hang_forever")
    assert case.outcome == "failure", case
    assert re.search(rf"timeout after {TIMEOUT}(\.0+)? ?s", case.message + case.text), case
    # The Python stack of the hung test is part of the report: faulthandler's
    # 'File ".../test_hang.py", line 5 in test_hang_forever'.
    assert re.search(r'test_hang\.py", line \d+ in test_hang_forever', case.text), case.text[-3000:]


def test_everything_else_ran_and_passed(crash_run):
    junit = crash_run.junit()
    special = {"test_segfault", "test_os_exit", "test_sigkill_self", "test_hang_forever",
               "test_prints_8_mib_and_fails"}
    others = [c for c in junit.cases if c.name not in special]
    assert others and all(c.outcome == "passed" for c in others), [c for c in others if c.outcome != "passed"]
    assert {c.name for c in others} >= {"test_after_segfault", "test_after_exit", "test_after_hang",
                                        "test_before_segfault", "test_before_exit", "test_after_sigkill"}


def test_one_testcase_per_collected_test(crash_run):
    junit = crash_run.junit()
    assert len(junit.cases) == len(crash_run.collected)


def test_summary_counts(crash_run):
    counts = h.summary_counts(crash_run.result.stdout)
    assert counts["errors"] == 3 and counts["failed"] == 2, crash_run.result.describe()
    assert counts["passed"] == len(crash_run.collected) - 5


def test_8_mib_output_is_fine_and_truncated(crash_run):
    assert crash_run.case("test_prints_8_mib_and_passes").outcome == "passed"
    failing = crash_run.case("test_prints_8_mib_and_fails")
    assert failing.outcome == "failure"
    # The failing test's captured stdout is shown, capped at 1 MiB with a note.
    shown = crash_run.result.stdout + failing.text
    note = re.search(r"\[drover: output truncated, (\d+) bytes dropped\]", shown)
    assert note, "no truncation note in drover's report of the 8 MiB test"
    assert int(note.group(1)) >= 7 * 1024 * 1024 - 4096
    assert len(crash_run.result.stdout) < 4 * 1024 * 1024


def test_no_processes_left_behind(crash_run):
    assert crash_run.leftovers == []


def test_single_worker_is_replaced_after_each_crash(drover, tmp_path):
    run = CrashRun(tmp_path, ["-n", "1"], ("test_crash.py", "test_exit.py", "test_survivors.py"))
    assert run.result.rc == 1, run.result.describe()
    outcomes = {c.name: c.outcome for c in run.junit().cases}
    assert outcomes.pop("test_segfault").startswith("error")
    assert outcomes.pop("test_os_exit").startswith("error")
    assert set(outcomes.values()) == {"passed"} and len(outcomes) == len(run.collected) - 2
    counts = h.summary_counts(run.result.stdout)
    assert (counts["errors"], counts["passed"], counts["failed"]) == (2, len(run.collected) - 2, 0)
    assert run.leftovers == []


def test_capture_limit_option(drover, tmp_path):
    run = CrashRun(tmp_path, ["-n", "1", "--capture-limit", "1000"], ("test_big_output.py",))
    assert run.result.rc == 1, run.result.describe()
    note = re.search(r"\[drover: output truncated, (\d+) bytes dropped\]", run.result.stdout)
    assert note, run.result.describe()
    assert int(note.group(1)) == 8 * 1024 * 1024 - 1000
    assert len(run.result.stdout) < 200 * 1024
