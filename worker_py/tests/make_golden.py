"""Records the golden worker-protocol files from a real worker session.

    /usr/bin/python3 worker_py/tests/make_golden.py

writes tests/golden/worker/{worker_session,worker_fatal,agent_commands}.jsonl: real lines,
one message per line, covering every message type in both directions. The C++ codec tests
and test_golden.py decode them; test_golden.py also checks that a fresh session still has
the recorded shape. The temporary project path is replaced by /home/dev/project.
"""

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from worker_harness import Worker, write_suite  # noqa: E402

GOLDEN_DIR = Path(__file__).resolve().parents[2] / "tests" / "golden" / "worker"
PROJECT = "/home/dev/project"

SUITE = {
    "test_golden.py": '''
import sys
import warnings
import pytest

def test_pass():
    warnings.warn("careful")

def test_fail():
    assert 1 + 1 == 3

@pytest.mark.skip(reason="no network")
def test_skip():
    pass

@pytest.mark.xfail(reason="bug 12")
def test_xfail():
    raise KeyError("k")

@pytest.mark.xfail(reason="fixed")
def test_xpass():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("no database")

def test_setup_error(broken):
    pass

class TestOutput:
    @pytest.mark.slow
    def test_output(self):
        print('h\\u00e9llo "quoted" \\\\ back\\tslash')
        sys.stderr.write("x" * 100)

@pytest.mark.parametrize("n", [1, 2])
def test_param(n, record_property):
    record_property("n", n)
''',
    "test_broken.py": "import no_such_module\n",
    "test_skipped.py": "import pytest\npytest.skip('needs a GPU', allow_module_level=True)\n",
}

# What the agent sends in this session, in order (cancel goes out with the run).
COMMANDS = [
    b'{"type":"run","indices":[0,1,2,3,4,5,6,7,8]}\n{"type":"cancel","indices":[8]}\n',
    b'{"type":"shutdown"}\n',
]


def record_session(root):
    """The worker's lines for SUITE, with the project path normalised."""
    write_suite(root, SUITE)
    worker = Worker(root, ["-p", "no:cacheprovider"], worker_args=["--capture-limit", "64"])
    worker.start()
    for command in COMMANDS:
        worker.send_raw(command)
    worker.until("bye")
    assert worker.wait() == 0, worker.stderr()
    return [line.replace(str(root), PROJECT) for line in worker.lines]


# Ending a session early: after test 0, drop its committed nextitem 1.
STOP = b'{"type":"stop"}\n'


def record_fatal(root):
    """Lines of sessions that end without `bye`, or with a stop."""
    lines = []
    write_suite(root, {"test_end.py": "import pytest\ndef test_0():\n    pass\ndef test_1():\n    pytest.exit('bye', returncode=7)\n"})
    worker = Worker(root, ["-p", "no:cacheprovider"])
    worker.start()
    worker.run([0, 1])
    worker.until("finished")
    worker.send_raw(STOP)
    worker.expect("cancelled")
    lines.append(worker.lines[-1])
    worker.shutdown()
    worker.until("bye")
    worker.wait()
    worker = Worker(root, ["-p", "no:cacheprovider"])
    worker.start()
    worker.run([1])
    worker.shutdown()
    worker.until("exit")
    assert worker.wait() == 7
    lines.append(worker.lines[-1])
    worker = Worker(root, ["--version"])
    worker.until("nosession")
    worker.wait()
    lines.append(worker.lines[-1])
    write_suite(root, {"test_one.py": "def test_one():\n    pass\n"})
    worker = Worker(root, ["-p", "no:cacheprovider"])
    worker.start()
    worker.send_raw(b"{not json\n")
    worker.until("fatal")
    worker.wait()
    lines.append(worker.lines[-1])
    worker = Worker(root, python_args=["-S"])  # no site-packages: no pytest
    worker.until("fatal")
    worker.wait()
    lines.append(worker.lines[-1])
    return lines


def command_lines():
    return [line for chunk in [*COMMANDS, STOP] for line in chunk.decode().splitlines()]


def main():
    GOLDEN_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as session_dir, tempfile.TemporaryDirectory() as fatal_dir:
        files = {
            "worker_session.jsonl": record_session(Path(session_dir)),
            "worker_fatal.jsonl": record_fatal(Path(fatal_dir)),
            "agent_commands.jsonl": command_lines(),
        }
    for name, lines in files.items():
        for line in lines:
            json.loads(line)
        (GOLDEN_DIR / name).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        print("wrote", GOLDEN_DIR / name, len(lines), "lines")


if __name__ == "__main__":
    main()
