"""Drives a real `python -m drover_worker` through real pipes, like the agent does.

Every line the worker writes is decoded and checked against the protocol schema, so any
test using the harness also checks the wire format.
"""

import json
import os
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

from worker_schema import check_worker_message

WORKER_PATH = str(Path(__file__).resolve().parent.parent)  # the folder holding drover_worker
PYTHON = sys.executable  # the tests run under the interpreter that has pytest
DEADLINE = 60.0  # seconds any single wait may take before the test fails


class Worker:
    def __init__(
        self,
        cwd,
        pytest_args=(),
        *,
        worker_args=(),
        python_args=(),
        python=PYTHON,
        command_socket=False,
        nonblocking=False,
        high_fds=False,
    ):
        self.cwd = Path(cwd)
        self._socket = None
        if command_socket:  # the agent may use a Unix stream socket for commands
            self._socket, child = socket.socketpair()
            in_read, self._in_write = os.dup(child.fileno()), self._socket.fileno()
            child.close()
        else:
            in_read, self._in_write = os.pipe()
        self._out_read, out_write = os.pipe()
        self.stdout_path = self.cwd / ".worker-stdout"
        self.stderr_path = self.cwd / ".worker-stderr"
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [WORKER_PATH, env.get("PYTHONPATH")]))
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("PYTEST_XDIST_WORKER", None)
        if high_fds:  # descriptors beyond select()'s FD_SETSIZE
            in_read, out_write = _move_high(in_read, 1500), _move_high(out_write, 1501)
        if nonblocking:  # the worker must cope with descriptors someone made non-blocking
            os.set_blocking(in_read, False)
            os.set_blocking(out_write, False)
        command = [python, *python_args, "-m", "drover_worker", "--in-fd", str(in_read), "--out-fd", str(out_write)]
        with open(self.stdout_path, "wb") as stdout, open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                [*command, *worker_args, "--", *pytest_args],
                cwd=str(self.cwd),
                env=env,
                pass_fds=(in_read, out_write),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        os.close(in_read)
        os.close(out_write)
        self._buffer = b""
        self.lines = []  # raw lines received, for golden files
        self.messages = []  # every decoded message, in order
        self.eof = False

    # -- agent -> worker ----------------------------------------------------------------

    def send(self, command):
        self.send_raw((json.dumps(command) + "\n").encode())

    def send_raw(self, data):
        os.write(self._in_write, data)

    def run(self, indices):
        self.send({"type": "run", "indices": list(indices)})

    def shutdown(self):
        self.send({"type": "shutdown"})

    def close_input(self):
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        elif self._in_write is not None:
            os.close(self._in_write)
        self._in_write = None

    # -- worker -> agent ----------------------------------------------------------------

    def recv(self, timeout=DEADLINE):
        """The next message, or None at EOF / after `timeout` seconds without one."""
        end = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            if self.eof:
                return None
            left = end - time.monotonic()
            if left <= 0 or not select.select([self._out_read], [], [], left)[0]:
                return None
            chunk = os.read(self._out_read, 1 << 20)
            if not chunk:
                self.eof = True
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        self.lines.append(line.decode("utf-8"))
        message = json.loads(line)
        check_worker_message(message)
        self.messages.append(message)
        return message

    def expect(self, kind, timeout=DEADLINE):
        message = self.recv(timeout)
        assert message is not None, "expected %r, got EOF or timeout; stderr:\n%s" % (kind, self.stderr())
        assert message["type"] == kind, "expected %r, got %r" % (kind, message)
        return message

    def until(self, kind, timeout=DEADLINE):
        """Messages up to and including the first of type `kind`."""
        got = []
        while True:
            message = self.recv(timeout)
            assert message is not None, "no %r before EOF; got %r; stderr:\n%s" % (kind, got, self.stderr())
            got.append(message)
            if message["type"] == kind:
                return got

    def drain(self, timeout=DEADLINE):
        """Every message until EOF."""
        got = []
        while True:
            message = self.recv(timeout)
            if message is None:
                assert self.eof, "worker neither wrote nor closed its pipe"
                return got
            got.append(message)

    def start(self):
        """Waits for hello and collected (warnings may come between); returns collected."""
        self.expect("hello")
        return self.until("collected")[-1]

    def wait(self, timeout=DEADLINE):
        try:
            return self.process.wait(timeout)
        finally:
            self.close()

    def stderr(self):
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def stdout(self):
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def close(self):
        self.close_input()
        if self._out_read is not None:
            os.close(self._out_read)
            self._out_read = None
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    # -- whole sessions -----------------------------------------------------------------

    def run_all(self, order=None):
        """Runs every collected test (or `order`), shuts down; returns (collected, results, bye)."""
        collected = self.start()
        indices = list(range(len(collected["items"]))) if order is None else list(order)
        self.run(indices)
        self.shutdown()
        messages = self.until("bye")
        assert self.wait() == 0, self.stderr()
        return collected, results_by_index(messages), messages[-1]


def _move_high(fd, number):
    os.dup2(fd, number, inheritable=False)
    os.close(fd)
    return number


def results_by_index(messages):
    """{index: {"start": bool, "finished": bool, "setup"/"call"/"teardown": report}}."""
    results = {}
    for message in messages:
        if message["type"] in ("start", "report", "finished"):
            result = results.setdefault(message["index"], {})
            if message["type"] == "report":
                assert message["when"] not in result, "phase reported twice: %r" % message
                result[message["when"]] = message
            else:
                result[message["type"]] = True
    return results


def final_status(result):
    """The single word pytest's summary would count the test under."""
    for when in ("setup", "call", "teardown"):
        report = result.get(when)
        if report is not None and report["status"] not in ("", "passed"):
            return report["status"]
    return "passed"


def write_suite(root, files):
    for name, text in files.items():
        path = Path(root) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
