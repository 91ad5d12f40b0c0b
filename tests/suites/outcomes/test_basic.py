import sys

import pytest


def test_pass():
    assert 1 + 1 == 2


def test_fail():
    assert [1, 2, 3] == [1, 2, 4]


def test_fail_with_message():
    raise ValueError("a clear reason")


def test_skip_imperative():
    pytest.skip("skipped inside the test")


@pytest.mark.skip(reason="skipped by marker")
def test_skip_marker():
    raise AssertionError("never runs")


@pytest.mark.skipif(sys.platform.startswith("linux"), reason="skipif true on linux")
def test_skipif_true():
    raise AssertionError("never runs on linux")


@pytest.mark.skipif(sys.version_info < (3, 0), reason="skipif false")
def test_skipif_false():
    assert True


@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert 0


@pytest.mark.xfail(raises=KeyError, reason="raises KeyError")
def test_xfail_raises_matching():
    {}["missing"]


@pytest.mark.xfail(raises=KeyError, reason="wrong exception fails")
def test_xfail_raises_other():
    raise TypeError("not a KeyError")


def test_xfail_imperative():
    pytest.xfail("decided at run time")


@pytest.mark.xfail(reason="unexpectedly fine")
def test_xpass():
    assert True


@pytest.mark.xfail(strict=True, reason="strict xpass fails")
def test_xpass_strict():
    assert True


@pytest.mark.xfail(run=False, reason="not run")
def test_xfail_not_run():
    raise SystemExit("never runs")


@pytest.mark.tagged
def test_tagged(root_value):
    assert root_value == "root"


class TestPlainClass:
    def test_method_pass(self):
        assert "a" in "abc"

    def test_method_fail(self):
        assert "z" in "abc"

    @pytest.mark.skip(reason="class method skipped")
    def test_method_skip(self):
        pass
