import pytest


@pytest.fixture
def broken_setup():
    raise RuntimeError("setup exploded")


@pytest.fixture
def broken_teardown():
    yield
    raise RuntimeError("teardown exploded")


def test_setup_error(broken_setup):
    pass


def test_teardown_error_after_pass(broken_teardown):
    assert True


def test_teardown_error_after_fail(broken_teardown):
    assert False, "call failed too"


def test_missing_fixture(no_such_fixture):
    pass


def test_after_errors_still_runs():
    assert True
