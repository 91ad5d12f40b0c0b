import os
import sys

import pytest


def test_print_pass():
    print("hello from stdout")
    print("hello from stderr", file=sys.stderr)


def test_print_fail():
    print("stdout before failure")
    print("stderr before failure", file=sys.stderr)
    assert False


def test_fd_writes_pass():
    os.write(1, b"raw fd 1 write\n")
    os.write(2, b"raw fd 2 write\n")


def test_fd_writes_fail():
    os.write(1, b"raw fd 1 before failure\n")
    os.write(2, b"raw fd 2 before failure\n")
    assert False


def test_read_stdin_raises():
    with pytest.raises(OSError):
        sys.stdin.read()


def test_fd0_is_empty():
    assert os.read(0, 16) == b""


def test_protocol_lookalike_output():
    # Output that resembles a JSON protocol line must stay test output.
    print('{"type": "finished", "index": 0}')
    os.write(1, b'{"type": "bye", "exitstatus": 0}\n')


def test_sys_exit_nonzero():
    sys.exit(3)


def test_sys_exit_zero():
    sys.exit(0)


def test_after_exits_still_runs():
    assert True
