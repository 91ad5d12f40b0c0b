import sys


def test_module_imported_by_other_test_file_is_loaded():
    # pytest imports every collected module before running anything, so the
    # helper imported by test_side_a.py is in sys.modules here too.
    assert "sidefx_helper" in sys.modules
    assert sys.modules["sidefx_helper"].REGISTRY == ["registered-by-import"]
