"""Interrupting drover (Ctrl-C, SIGTERM) ends the run like pytest (exit code 2
for Ctrl-C) and leaves no worker process behind."""
from __future__ import annotations

import signal
import subprocess
import time

import pytest

import drover_helpers as h


def _start(suite, *args, env=None):
    return subprocess.Popen(h.drover_command("-n", "2", *args), cwd=suite, env=h.clean_env(env),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)


def _wait_for_workers(suite, proc, count=2, limit=30.0):
    """Until `count` processes besides drover run inside the suite (the workers)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        others = [p for p, _ in h.processes_in(suite) if p != proc.pid]
        if len(others) >= count:
            return
        assert proc.poll() is None, "drover exited before its workers started"
        time.sleep(0.05)
    pytest.fail("workers did not start")


def _signal_when(proc, ready, sig=signal.SIGINT):
    """Sends `sig` once ready() returned, and collects drover's output; kills it if it hangs."""
    try:
        ready()
        proc.send_signal(sig)
        return proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _workers_busy(suite, proc, seconds):
    def ready():
        _wait_for_workers(suite, proc)
        time.sleep(seconds)  # let some tests run
    return ready


@pytest.mark.parametrize("sig,expected_rc", [(signal.SIGINT, 2), (signal.SIGTERM, None), (signal.SIGHUP, 2)],
                         ids=["sigint", "sigterm", "sighup"])
def test_interrupt_leaves_no_workers(drover, copy_suite, sig, expected_rc):
    suite = copy_suite("failfast")
    proc = _start(suite, "test_failfast.py::test_slow_tail")
    out, err = _signal_when(proc, _workers_busy(suite, proc, 0.5), sig)
    if expected_rc is not None:
        assert proc.returncode == expected_rc, (out.decode()[-2000:], err.decode()[-2000:])
        assert "interrupted" in (out + err).decode().lower()
        # Like pytest, the closing line reports what ran before the interrupt.
        assert h.summary_line(out.decode()) is not None, (out.decode()[-2000:], err.decode()[-2000:])
    else:
        assert proc.returncode != 0
    assert h.wait_no_processes_in(suite) == []


def test_an_early_interrupt_leaves_no_temporary_directory(drover, copy_suite, tmp_path):
    # Ctrl-C while the workers are still starting: drover-PID/ (their basetemps) goes too.
    suite = copy_suite("failfast")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    report = tmp_path / "report.xml"
    proc = _start(suite, "--junitxml", str(report), env={"TMPDIR": str(tmp)})

    def starting():
        deadline = time.monotonic() + 10
        while not list(tmp.glob("drover-*")) and time.monotonic() < deadline:
            time.sleep(0.01)
    out, err = _signal_when(proc, starting)
    assert proc.returncode == 2, (out.decode()[-2000:], err.decode()[-2000:])
    assert list(tmp.iterdir()) == []
    h.parse_junit(report)  # written even before the first test, as pytest does


def test_a_worker_ignoring_the_interrupt_is_stopped_quietly(drover, tmp_path):
    # Its test ignores SIGINT/SIGTERM and ends after the interrupt: its late report is
    # not a protocol error to show the user, just a worker being stopped.
    suite = h.write_suite(tmp_path / "deaf", {})
    (suite / "test_deaf.py").write_text(
        "import signal\nimport time\n\n\n"
        "def test_deaf():\n"
        "    signal.signal(signal.SIGINT, signal.SIG_IGN)\n"
        "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "    time.sleep(1.5)\n\n\n"
        "def test_other():\n    time.sleep(1.5)\n")
    proc = _start(suite, "--group-by", "none")
    out, err = _signal_when(proc, _workers_busy(suite, proc, 0.8))
    text = out.decode() + err.decode()
    assert proc.returncode == 2, text
    assert "unexpected" not in text and "protocol" not in text, text
    assert h.wait_no_processes_in(suite) == []
