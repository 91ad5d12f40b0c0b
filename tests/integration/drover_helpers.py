"""Helpers shared by the end-to-end tests: locating the drover binary, copying
fixture suites, running drover and plain pytest, and reading what they report
(exit code, summary line, JUnit XML, durations file, leftover processes).

Plain functions so module-scoped fixtures and tests can both use them; the
pytest fixtures that wrap them live in conftest.py.
"""
from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

SOURCE_DIR = Path(os.environ.get("DROVER_SOURCE_DIR") or Path(__file__).resolve().parents[2])
SUITES_DIR = SOURCE_DIR / "tests" / "suites"
EXAMPLES_DIR = SOURCE_DIR / "examples"
PY = os.environ.get("DROVER_TEST_PYTHON", "/usr/bin/python3")

# Default wall-clock limit for one drover or pytest invocation: nothing may hang.
RUN_TIMEOUT = 180

# Variables that would change what drover or pytest does if they leaked in from
# the environment running these tests (CI shard variables, pytest options).
_SCRUBBED_ENV = (
    "PYTEST_ADDOPTS", "PYTEST_PLUGINS", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_AUTO_NUM_WORKERS",
    "PYTEST_DISABLE_PLUGIN_AUTOLOAD",
    "CI_NODE_INDEX", "CI_NODE_TOTAL", "CIRCLE_NODE_INDEX", "CIRCLE_NODE_TOTAL",
    "BUILDKITE_PARALLEL_JOB", "BUILDKITE_PARALLEL_JOB_COUNT",
    # pytest (and drover) cut short-summary lines to $COLUMNS, and not at all on CI.
    "CI", "BUILD_NUMBER", "COLUMNS",
)


def drover_bin() -> str | None:
    """The drover binary under test: $DROVER_BIN, else a build in the repo."""
    env = os.environ.get("DROVER_BIN")
    if env:
        return env
    for build in ("build", "build-tests", "build-release"):
        candidate = SOURCE_DIR / build / "drover"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV and not k.startswith("DROVER_")}
    env["PYTHONHASHSEED"] = "0"
    if extra:
        env.update(extra)
    return env


def copy_tree(src: Path, dest: Path) -> Path:
    """Copy a suite or example into dest, leaving caches and old durations behind."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns(
        "__pycache__", "*.pyc", ".pytest_cache", ".test_durations", ".setup_counts", ".test_pids"))
    return dest


def write_suite(root: Path, files: dict[str, str]) -> Path:
    """A fresh suite at root: an empty pytest.ini (the rootdir) and `files` (name -> text)."""
    root.mkdir()
    (root / "pytest.ini").write_text("[pytest]\n")
    for name, text in files.items():
        (root / name).write_text(text)
    return root


@dataclasses.dataclass
class RunResult:
    args: list[str]
    cwd: Path
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        def tail(text: str, limit: int = 6000) -> str:
            return text if len(text) <= limit else "...\n" + text[-limit:]
        return (f"command: {self.args}\ncwd: {self.cwd}\nexit code: {self.rc} after {self.seconds:.1f}s\n"
                f"--- stdout ---\n{tail(self.stdout)}\n--- stderr ---\n{tail(self.stderr)}")


class RunTimedOut(AssertionError):
    pass


def run_process(args: list[str], cwd: Path, env: dict[str, str] | None = None,
                timeout: float = RUN_TIMEOUT) -> RunResult:
    """Run a command to completion with stdin closed; a hang is a test failure.

    The command gets its own process group so a hang can be cleaned up with
    everything it started.
    """
    start = time.monotonic()
    proc = subprocess.Popen(args, cwd=cwd, env=env if env is not None else clean_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid)
        out, err = proc.communicate()
        result = RunResult(list(args), cwd, proc.returncode, out.decode("utf-8", "replace"),
                           err.decode("utf-8", "replace"), time.monotonic() - start)
        raise RunTimedOut(f"timed out after {timeout}s\n{result.describe()}")
    return RunResult(list(args), cwd, proc.returncode, out.decode("utf-8", "replace"),
                     err.decode("utf-8", "replace"), time.monotonic() - start)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def drover_command(*args: str, python: str | None = PY, subcommand: str = "run") -> list[str]:
    binary = drover_bin()
    if binary is None:
        raise AssertionError("no drover binary: set DROVER_BIN or build into <repo>/build")
    cmd = [binary, subcommand]
    if python is not None and subcommand == "run":
        cmd += ["--python", python]
    return cmd + list(args)


def run_drover(cwd: Path, *args: str, python: str | None = PY, env: dict[str, str] | None = None,
               timeout: float = RUN_TIMEOUT) -> RunResult:
    return run_process(drover_command(*args, python=python), cwd, clean_env(env), timeout)


def run_drover_tool(cwd: Path, subcommand: str, *args: str, timeout: float = 60) -> RunResult:
    """drover merge / drover plan."""
    return run_process(drover_command(*args, subcommand=subcommand), cwd, clean_env(), timeout)


def run_pytest(cwd: Path, *args: str, timeout: float = RUN_TIMEOUT) -> RunResult:
    return run_process([PY, "-m", "pytest", "-p", "no:cacheprovider", *args], cwd, clean_env(), timeout)


def collect_nodeids(cwd: Path, *args: str) -> list[str]:
    """Node ids plain pytest collects, in order."""
    result = run_pytest(cwd, "--collect-only", "-q", *args)
    ids = [line for line in result.stdout.splitlines() if "::" in line and not line.startswith(" ")]
    assert ids or result.rc == 5, result.describe()
    return ids


def collection_hash(nodeids: list[str]) -> str:
    """PROTOCOL.md: SHA-256 of the node ids joined by newlines."""
    return hashlib.sha256("\n".join(nodeids).encode("utf-8")).hexdigest()


# ---------------------------------------------------------------- summary line

_SUMMARY_RE = re.compile(r"^=*\s*((?:\d+ [a-z]+(?:, )?)+|no tests ran) in [0-9.]+s(?: \([^)]*\))?\s*=*$")
_PLURALS = {"error": "errors", "warning": "warnings"}
SUMMARY_KEYS = ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "errors")


def summary_line(text: str) -> str | None:
    """The last pytest-style closing line ("3 failed, 72 passed in 1.31s")."""
    for line in reversed(text.splitlines()):
        stripped = line.strip()
        if _SUMMARY_RE.match(stripped):
            return stripped.strip("=").strip()
    return None


def summary_counts(text: str) -> dict[str, int]:
    """Counts from the closing line, every key of SUMMARY_KEYS present (0 if absent)."""
    line = summary_line(text)
    assert line is not None, f"no pytest-style summary line in output:\n{text[-3000:]}"
    counts = dict.fromkeys(SUMMARY_KEYS, 0)
    body = line.rsplit(" in ", 1)[0]
    if body != "no tests ran":
        for part in body.split(", "):
            number, word = part.split(" ", 1)
            counts[_PLURALS.get(word, word)] = int(number)
    counts.pop("warnings", None)
    return counts


def expected_drover_summary(pytest_counts: dict[str, int]) -> str:
    """pytest's closing line words for these counts, with failed and passed always shown."""
    parts = []
    for key in ("failed", "passed", "skipped", "deselected", "xfailed", "xpassed", "errors"):
        value = pytest_counts.get(key, 0)
        if value or key in ("failed", "passed"):
            word = key if not (key == "errors" and value == 1) else "error"
            parts.append(f"{value} {word}")
    return ", ".join(parts)


# ------------------------------------------------------------------- JUnit XML

@dataclasses.dataclass(frozen=True)
class Case:
    classname: str
    name: str
    outcome: str          # "passed", "failure", "error:setup", "skipped:pytest.xfail", ...
    message: str
    text: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.classname, self.name)


@dataclasses.dataclass
class Junit:
    cases: list[Case]
    properties: list[tuple[str, str]]
    suite_attrs: dict[str, str]

    def property(self, name: str) -> str | None:
        values = self.property_values(name)
        return values[0] if values else None

    def property_values(self, name: str) -> list[str]:
        return [v for k, v in self.properties if k == name]

    def outcome_multiset(self, include_collection: bool = True) -> collections.Counter:
        return collections.Counter((c.classname, c.name, c.outcome) for c in self.cases
                                   if include_collection or c.classname)

    def by_name(self, name: str) -> list[Case]:
        return [c for c in self.cases if c.name == name]


def _outcome(testcase: ET.Element) -> tuple[str, str, str]:
    children = [c for c in testcase if c.tag in ("failure", "error", "skipped")]
    if not children:
        return "passed", "", ""
    child = children[0]
    message = child.get("message") or ""
    text = child.text or ""
    if child.tag == "skipped":
        outcome = f"skipped:{child.get('type') or ''}"
    elif child.tag == "error":
        # pytest records setup and teardown errors as "failed on setup with ..."
        # and "failed on teardown with ..."; a collection error has its own message.
        phase = re.match(r"failed on (setup|teardown)", message)
        outcome = f"error:{phase.group(1)}" if phase else "error"
    else:
        outcome = child.tag
    if len(children) > 1:
        outcome += "+" + "+".join(c.tag for c in children[1:])
    return outcome, message, text


def parse_junit(path: Path) -> Junit:
    assert path.is_file(), f"JUnit report {path} was not written"
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    assert suites, f"{path}: no <testsuite>"
    cases, properties, attrs = [], [], {}
    for suite in suites:
        attrs.update(suite.attrib)
        for prop in suite.iter("property"):
            properties.append((prop.get("name") or "", prop.get("value") or ""))
        for tc in suite.iter("testcase"):
            outcome, message, text = _outcome(tc)
            cases.append(Case(tc.get("classname") or "", tc.get("name") or "", outcome, message, text))
    return Junit(cases, properties, attrs)


def junit_view(path: Path) -> tuple[dict[str, str], list[str]]:
    """Everything pytest's JUnit writer decides, for comparing reports exactly: the
    testsuite's name and totals, and each testcase whole (attributes, properties,
    messages, texts, captured output) without its time and drover's own suite
    properties. Testcases sorted: workers finish in any order."""
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None, f"{path}: no <testsuite>"
    totals = {k: suite.get(k, "") for k in ("name", "tests", "failures", "errors", "skipped")}
    cases = []
    for testcase in suite.findall("testcase"):
        testcase = ET.fromstring(ET.tostring(testcase))  # a copy
        testcase.attrib.pop("time", None)
        cases.append(ET.tostring(testcase, encoding="unicode"))
    return totals, sorted(cases)


def multiset_diff(expected: collections.Counter, actual: collections.Counter) -> str:
    missing = expected - actual
    extra = actual - expected
    lines = [f"  missing (pytest has, drover lacks): {k} x{v}" for k, v in sorted(missing.items())]
    lines += [f"  extra (drover has, pytest lacks): {k} x{v}" for k, v in sorted(extra.items())]
    return "\n".join(lines)


# ------------------------------------------------------------- durations file

def read_durations(path: Path) -> dict[str, float]:
    assert path.is_file(), f"durations file {path} was not written"
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path}: expected a JSON object of node id -> seconds"
    return data


# -------------------------------------------------------------- process checks

def processes_in(directory: Path) -> list[tuple[int, str]]:
    """Live processes (other than this one) whose cwd or command line is inside directory."""
    directory = directory.resolve()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
            stat = (entry / "stat").read_text()
            cwd = Path(os.readlink(entry / "cwd"))
        except (OSError, ValueError):
            continue
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            continue  # a zombie is already dead; its parent may be reaping it
        if cwd == directory or directory in cwd.parents or str(directory) in cmdline:
            found.append((int(entry.name), cmdline.strip()))
    return found


def wait_no_processes_in(directory: Path, grace: float = 5.0) -> list[tuple[int, str]]:
    """Leftover processes after a grace period (a dying worker may need a moment)."""
    deadline = time.monotonic() + grace
    while True:
        left = processes_in(directory)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def kill_processes_in(directory: Path) -> None:
    """Last-resort cleanup of processes this test run started inside directory."""
    for pid, _ in processes_in(directory):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
