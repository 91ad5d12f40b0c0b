import pytest


@pytest.fixture
def pkg_name():
    return "a"
