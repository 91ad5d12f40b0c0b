import pytest


@pytest.mark.parametrize(
    "value",
    ["plain", "with space", "ünïcödé", "br[ack]ets", "sla/sh", "dou::ble", "back\\slash", "trailing "],
    ids=["plain", "with space", "ünïcödé", "br[ack]ets", "sla/sh", "dou::ble", "back\\slash", "trailing "],
)
def test_odd_ids(value):
    assert value


@pytest.mark.parametrize("value", [1, 2], ids=["a", "a"])
def test_duplicate_ids(value):
    assert value in (1, 2)


@pytest.mark.parametrize("value", [0, 1.5, None, "x", (1, 2)])
def test_generated_ids(value):
    assert value != "never"


@pytest.mark.parametrize(
    "a,b",
    [(1, 1), (2, 3), pytest.param(4, 4, marks=pytest.mark.skip(reason="param skipped")),
     pytest.param(5, 6, marks=pytest.mark.xfail(reason="param xfail"))],
)
def test_pairs(a, b):
    assert a == b


class TestParamClass:
    @pytest.mark.parametrize("n", range(3))
    def test_in_class(self, n):
        assert n < 2
