import warnings

import pytest
import spreading

warnings.warn("alpha imported")


def test_quiet():
    pass


def test_deprecated_twice():
    for _ in range(2):
        warnings.warn("old api", DeprecationWarning)


def test_fixture_warns(noisy):
    pass


def test_fails_and_warns():
    warnings.warn("before failing")
    assert 1 == 2


def test_ini_filter():
    warnings.warn("filtered by the ini file")


@pytest.mark.filterwarnings("ignore:filtered by a mark")
def test_mark_filter():
    warnings.warn("filtered by a mark")


@pytest.mark.unknown_mark
def test_unknown_mark():
    pass


@pytest.mark.parametrize("n", range(6))
def test_spread(n):
    spreading.warn()
