"""Tests that print, write to fd 1/2, read stdin or exit cannot disturb the protocol."""

import pytest

from worker_harness import Worker, write_suite

NOISY = '''
import os, subprocess, sys

def test_print():
    print("to stdout")
    print("to stderr", file=sys.stderr)
    os.write(1, b"raw fd 1\\n")
    os.write(2, b"raw fd 2\\n")

def test_json_lookalike_output():
    os.write(1, b'{"type": "bye", "exitstatus": 0}\\n')
    print('{"type": "fatal", "message": "not from the worker"}')

def test_read_stdin():
    assert sys.stdin.read() == ""

def test_read_fd0():
    assert os.read(0, 10) == b""

def test_exit():
    sys.exit(3)

def test_subprocess_inherits_no_protocol_pipes():
    child = subprocess.run(["ls", "/proc/self/fd"], close_fds=False, capture_output=True, text=True)
    open("child-fds.txt", "w").write(child.stdout)
    assert child.returncode == 0

def test_after_all():
    pass
'''


@pytest.mark.parametrize("capture", ["fd", "sys", "no"])
def test_output_and_stdin_do_not_reach_the_protocol(tmp_path, capture):
    write_suite(tmp_path, {"test_noisy.py": NOISY})
    worker = Worker(tmp_path, ["-p", "no:cacheprovider", "--capture=" + capture])
    collected, results, bye = worker.run_all()
    names = [item["nodeid"].split("::")[1] for item in collected["items"]]
    tests = dict(zip(names, (results[i] for i in range(len(names)))))
    assert len(tests) == 7 and all("finished" in result for result in tests.values())
    assert tests["test_exit"]["call"]["status"] == "failed"
    assert tests["test_exit"]["call"]["message"] == "SystemExit: 3"
    for name in ("test_print", "test_json_lookalike_output", "test_after_all"):
        assert tests[name]["call"]["status"] == "passed", name
    assert bye == {"type": "bye", "exitstatus": 1}
    sections = dict(tests["test_print"]["call"]["sections"])
    if capture == "no":
        assert sections == {}
        assert "raw fd 1" in worker.stdout() and "raw fd 2" in worker.stderr()
    else:
        assert sections["Captured stdout call"].startswith("to stdout\n")
        assert sections["Captured stderr call"].startswith("to stderr\n")
        if capture == "fd":
            assert sections == {"Captured stdout call": "to stdout\nraw fd 1\n", "Captured stderr call": "to stderr\nraw fd 2\n"}
    # The child of a test sees only 0, 1, 2 and its own listing fd: not the protocol pipes.
    assert len((tmp_path / "child-fds.txt").read_text().split()) == 4


BIG = '''
import sys

def test_big():
    sys.stdout.write("x" * (8 << 20))
    sys.stdout.write("tail")
    sys.stderr.write("é" * 10)

def test_small():
    print("short")
'''


@pytest.mark.parametrize("limit", [None, 1000, 15])
def test_captured_output_is_capped(tmp_path, limit):
    write_suite(tmp_path, {"test_big.py": BIG})
    worker_args = [] if limit is None else ["--capture-limit", str(limit)]
    # Non-blocking pipes too: a 1 MiB message does not fit a pipe at once.
    worker = Worker(tmp_path, ["-p", "no:cacheprovider"], worker_args=worker_args, nonblocking=True)
    _, results, _ = worker.run_all()
    cap = 1 << 20 if limit is None else limit
    sections = dict(results[0]["call"]["sections"])
    out = sections["Captured stdout call"]
    dropped = (8 << 20) + 4 - cap
    assert out == "x" * cap + "\n[drover: output truncated, %d bytes dropped]" % dropped
    err = sections["Captured stderr call"]
    if cap >= 20:
        assert err == "é" * 10
    else:  # 15 bytes: 7 whole characters, the 8th is not cut in half
        assert err == "é" * 7 + "\n[drover: output truncated, 6 bytes dropped]"
    small = dict(results[1]["call"]["sections"])["Captured stdout call"]
    assert small == "short\n"
