import warnings

import pytest
import spreading


@pytest.mark.parametrize("n", range(6))
def test_spread(n):
    spreading.warn()


def test_multiline():
    warnings.warn("first line\nsecond line", RuntimeWarning)
