"""Two early failures, then many slow passing tests: -x / --maxfail must stop
scheduling long before the slow tail runs."""
import time

import pytest


def test_00_pass():
    assert True


def test_01_first_failure():
    assert False, "first failure"


def test_02_pass():
    assert True


def test_03_second_failure():
    assert False, "second failure"


@pytest.mark.parametrize("n", range(40))
def test_slow_tail(n):
    time.sleep(0.2)
