import warnings

import pytest

warnings.warn("conftest imported")


@pytest.fixture
def noisy():
    warnings.warn("fixture setup")
    yield
    warnings.warn("fixture teardown")
