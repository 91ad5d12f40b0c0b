def test_util_in_pkg_b(pkg_name):
    assert __name__ == "pkg_b.test_util"
    assert pkg_name == "b"


def test_shared_name():
    assert False, "same test name as pkg_a, different outcome"
