def test_util_in_pkg_a(pkg_name):
    assert __name__ == "pkg_a.test_util"
    assert pkg_name == "a"


def test_shared_name():
    assert True
