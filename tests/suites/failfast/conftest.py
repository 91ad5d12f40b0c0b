import os
from pathlib import Path

import pytest

PIDS = Path(__file__).resolve().parent / ".test_pids"


@pytest.fixture(autouse=True)
def _record_worker_pid():
    """One line per test: the id of the process that runs it."""
    with open(PIDS, "a", encoding="utf-8") as f:
        f.write(f"{os.getpid()}\n")
