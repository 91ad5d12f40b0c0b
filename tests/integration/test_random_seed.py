"""Python's `random` during collection: the same in every worker of a run, so tests
parametrized from it (or a plugin's default seed, pytest-random-order's) collect alike;
reseeded from the OS before the tests run."""
from __future__ import annotations

import json

import drover_helpers as h

SUITE = '''
import json
import os
import random
import time

import pytest


@pytest.mark.parametrize("n", random.sample(range(10**6), 6))
def test_drawn(n):
    time.sleep(0.2)  # long enough for both workers to get some
    with open(OUT, "a") as f:
        f.write(json.dumps([os.getpid(), random.random()]) + "\\n")
'''


def _suite(tmp_path):
    suite = tmp_path / "drawn"
    suite.mkdir()
    (suite / "pytest.ini").write_text("[pytest]\n")
    out = tmp_path / "values.jsonl"
    (suite / "test_drawn.py").write_text(SUITE.replace("OUT", repr(str(out))))
    return suite, out


def test_workers_collect_the_same_random_parametrization(drover, tmp_path):
    suite, out = _suite(tmp_path)
    first = h.run_drover(suite, "-n", "2", "-v", "--group-by", "none", "--junitxml", str(tmp_path / "a.xml"))
    assert first.rc == 0, first.describe()
    assert h.summary_counts(first.stdout)["passed"] == 6, first.describe()
    assert "[gw0]" in first.stdout and "[gw1]" in first.stdout, first.describe()
    # Each test drew its own number: the workers' `random` was reseeded before the tests
    # (else both workers' first draws would be equal).
    values = [json.loads(line) for line in out.read_text().splitlines()]
    assert len({pid for pid, _ in values}) == 2
    assert len({value for _, value in values}) == 6
    # Another run draws other parameters: the seed is new for every run.
    second = h.run_drover(suite, "-n", "2", "--junitxml", str(tmp_path / "b.xml"))
    assert second.rc == 0, second.describe()
    names = lambda xml: sorted(case.name for case in h.parse_junit(xml).cases)
    assert names(tmp_path / "a.xml") != names(tmp_path / "b.xml")
