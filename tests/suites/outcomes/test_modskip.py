import pytest

pytest.skip("whole module skipped", allow_module_level=True)


def test_never_collected():
    raise AssertionError("module was skipped")
