"""Fixtures for the end-to-end tests of `drover run` against plain pytest.

Environment (set by ctest): DROVER_BIN (the binary under test), DROVER_TEST_PYTHON
(an interpreter with pytest), DROVER_SOURCE_DIR (the repository). Without
DROVER_BIN the tests look for <repo>/build/drover; without a binary every test
that needs one fails with a clear message.
"""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

import drover_helpers as h


@pytest.fixture(scope="session")
def drover() -> str:
    binary = h.drover_bin()
    if binary is None:
        pytest.fail("no drover binary: set DROVER_BIN or build into <repo>/build", pytrace=False)
    return binary


@pytest.fixture
def copy_suite(tmp_path: Path):
    """copy_suite("outcomes") -> a fresh copy of tests/suites/outcomes under tmp_path.

    Processes still running inside the copies when the test ends are killed so
    a broken drover cannot leave workers behind for the next test.
    """
    counter = itertools.count()

    def make(name: str, base: Path = h.SUITES_DIR) -> Path:
        return h.copy_tree(base / name, tmp_path / f"{name}-{next(counter)}")

    yield make
    h.kill_processes_in(tmp_path)


@pytest.fixture(scope="module")
def module_dir(tmp_path_factory, request) -> Path:
    """A module-wide scratch dir, for runs shared by the tests of one module."""
    path = tmp_path_factory.mktemp(request.module.__name__.replace(".", "_"))
    yield path
    h.kill_processes_in(path)
