import pytest


def test_one():
    assert True


@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n
