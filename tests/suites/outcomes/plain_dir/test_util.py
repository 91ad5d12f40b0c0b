# No __init__.py here: this module is imported as top-level "test_util".
def test_util_without_package():
    assert __name__ == "test_util"


def test_shared_name(root_value):
    assert root_value == "root"
