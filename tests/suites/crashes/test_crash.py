import ctypes


def test_before_segfault():
    assert True


def test_segfault():
    ctypes.string_at(0)  # reads address 0: SIGSEGV


def test_after_segfault():
    assert True
