import pytest

from calc.ops import div


def test_div():
    assert div(6, 3) == 2


def test_div_by_zero():
    with pytest.raises(ZeroDivisionError):
        div(1, 0)
