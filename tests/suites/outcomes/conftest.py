"""Rootdir conftest of the outcomes suite.

Fixtures of module, class and session scope record every set-up in a counter
file, one line per set-up with the process id, so tests can assert that a
fixture was set up exactly once *in the process that runs them* (a worker),
whatever other workers do.
"""
import os
from pathlib import Path

import pytest

COUNTS = Path(__file__).resolve().parent / ".setup_counts"
PIDS = Path(__file__).resolve().parent / ".test_pids"


def record_setup(name):
    with open(COUNTS, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()} {name}\n")


def setups_in_this_process(name):
    if not COUNTS.exists():
        return 0
    mine = f"{os.getpid()} {name}"
    return sum(1 for line in COUNTS.read_text(encoding="utf-8").splitlines() if line == mine)


@pytest.fixture(scope="session")
def session_resource():
    record_setup("session")
    yield "session-value"


@pytest.fixture
def root_value():
    return "root"


@pytest.fixture(autouse=True)
def _record_worker_pid():
    """One line per test setup: the id of the process that runs the test."""
    with open(PIDS, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
