"""Entry point: python -m drover_worker --in-fd R --out-fd W [options] -- PYTEST ARGS...

Exit codes: 0 after `bye`; 3 when the worker cannot start or the agent broke the protocol
(a `fatal` message says why); otherwise pytest's own exit code (4 for bad pytest usage,
with pytest's error line on stderr; 2 when interrupted or the agent went away; a test's
pytest.exit() returncode after `exit`).

`python -m drover_worker --plain -- PYTEST ARGS...` runs pytest in the foreground, as the
`pytest` command would (for --help, --version, --fixtures, ...), and exits with its code.

`python -m drover_worker --coverage-report FILE DIR FAILED -- PYTEST ARGS...` combines
and reports pytest-cov's data that the workers left in DIR (--coverage-dir), as after a
run with FAILED failed tests, and writes the outcome to FILE (cov_support.py).
"""

import gc
import os
import random
import sys

from . import FEATURES, PROTOCOL_VERSION, gc_tuning, seats
from .wire import Reader, Writer

USAGE = (
    "usage: python -m drover_worker --in-fd R --out-fd W [--basetemp DIR] [--timeout SEC]"
    " [--capture-limit BYTES] [--maxfail N] [--seat CMD,MSG,OUT,BASETEMP ...] [--coverage-dir DIR]"
    " [--random-seed N]"
    " -- PYTEST ARGS..."
)
EXIT_FATAL = 3
MAX_TIMEOUT = 1e9  # seconds; faulthandler's timer overflows past ~9.2e9 (drover checks the same bound)


class UsageError(Exception):
    pass


def parse_args(argv):
    """Returns (options dict, pytest args). Raises UsageError."""
    options = {
        "in_fd": None,
        "out_fd": None,
        "basetemp": None,
        "timeout": 0.0,
        "capture_limit": 1 << 20,
        "maxfail": None,
        "seat": [],
        "coverage_dir": None,
        "random_seed": None,
    }
    converters = {
        "in_fd": _fd,
        "out_fd": _fd,
        "basetemp": str,
        "timeout": _seconds,
        "capture_limit": _count,
        "maxfail": _count,
        "seat": seats.parse,
        "coverage_dir": str,
        "random_seed": _count,
    }
    position = 0
    while position < len(argv):
        arg = argv[position]
        position += 1
        if arg == "--":
            break
        name, equals, value = arg.partition("=")
        key = name[2:].replace("-", "_") if name.startswith("--") else None
        if key not in converters:
            raise UsageError("unknown option %r" % arg)
        if not equals:
            if position >= len(argv):
                raise UsageError("option %s needs a value" % name)
            value = argv[position]
            position += 1
        try:
            if key == "seat":  # repeatable
                options[key].append(converters[key](value))
            else:
                options[key] = converters[key](value)
        except ValueError:
            raise UsageError("bad value for %s: %r" % (name, value)) from None
    if options["in_fd"] is None or options["out_fd"] is None:
        raise UsageError("--in-fd and --out-fd are required")
    return options, argv[position:]


def _fd(text):
    fd = int(text)
    if fd < 3:
        raise ValueError("not a dedicated pipe")
    return fd


def _seconds(text):
    value = float(text)
    if not 0 <= value <= MAX_TIMEOUT:  # also rejects nan and inf
        raise ValueError("out of range")
    return value


def _count(text):
    value = int(text)
    if value < 0:
        raise ValueError("negative")
    return value


def _fail(message, writer=None):
    sys.stderr.write("drover_worker: %s\n" % message)
    sys.stderr.flush()
    if writer is not None:
        writer.send({"type": "fatal", "message": message})
        writer.flush()
    return EXIT_FATAL


def _original_stderr():
    # Taken before pytest's capture replaces fd 2 and sys.stderr: faulthandler's timeout
    # dump must reach the pipe the agent reads, not a test's capture file.
    try:
        return os.fdopen(os.dup(2), "w")
    except OSError:
        return open(os.devnull, "w")


def _as_pytest_command(pytest_args):
    """Makes this process look like the `pytest` command to pytest and the tests."""
    # argparse names itself after sys.argv[0]: "pytest: error: ...", not "__main__.py: ...".
    sys.argv[:] = [os.path.join(os.path.dirname(sys.executable), "pytest"), *pytest_args]
    # `-m` put the working directory first on sys.path, which would make otherwise
    # unimportable modules importable; the `pytest` command does not.
    if sys.path and sys.path[0] in ("", os.getcwd()):
        del sys.path[0]


def plain(pytest_args):
    """pytest in the foreground, on this process's stdout and stderr."""
    _as_pytest_command(pytest_args)
    import pytest

    return int(pytest.main(pytest_args))


def main(argv):
    if argv[:1] == ["--plain"]:
        return plain(argv[2:] if argv[1:2] == ["--"] else argv[1:])
    if argv[:1] == ["--coverage-report"]:
        if len(argv) < 5 or argv[4] != "--" or not argv[3].isdigit():
            return _fail("usage: python -m drover_worker --coverage-report FILE DIR FAILED -- PYTEST ARGS...")
        _as_pytest_command(argv[5:])
        from . import cov_support

        return cov_support.report(argv[5:], argv[1], argv[2], int(argv[3]))
    out_fd = None
    try:
        options, pytest_args = parse_args(argv)
    except UsageError as error:
        out_fd = _guess_out_fd(argv)
        return _fail("%s\n%s" % (error, USAGE), Writer(out_fd) if out_fd is not None else None)
    in_fd, out_fd = options["in_fd"], options["out_fd"]
    writer = Writer(out_fd)
    try:
        # Test subprocesses must not inherit (and keep open) the protocol pipes.
        os.set_inheritable(out_fd, False)
        os.set_inheritable(in_fd, False)
    except OSError as error:
        return _fail("bad --in-fd/--out-fd: %s" % error.strerror, writer)
    try:
        for seat in options["seat"]:
            for fd in seat.fds():
                os.set_inheritable(fd, False)
        output = os.fstat(1)  # forked workers swap every descriptor of this pipe for their own
    except OSError as error:
        return _fail("bad --seat or stdout: %s" % error.strerror, writer)

    saved_gc = gc_tuning.relax()
    try:
        import pytest
    except Exception as error:  # ImportError, or a broken pytest installation
        return _fail("pytest is not installed for %s (%s)" % (sys.executable, error), writer)

    from .plugin import WorkerPlugin

    hello = {
        "type": "hello",
        "protocol": PROTOCOL_VERSION,
        "pid": os.getpid(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "pytest": pytest.__version__,
        "features": list(FEATURES),
    }
    writer.send(hello)
    writer.flush()

    _as_pytest_command(pytest_args)
    if options["random_seed"] is not None:
        # Every worker of a run draws the same numbers from `random` while pytest
        # configures and collects (pytest-random-order's default seed, random parametrize
        # values), so all collect the same tests in the same order; the plugin reseeds it
        # from the OS before the first test.
        random.seed(options["random_seed"])

    plugin = WorkerPlugin(
        Reader(in_fd),
        writer,
        basetemp=options["basetemp"],
        timeout=options["timeout"],
        capture_limit=options["capture_limit"],
        stderr=_original_stderr(),
        gc_threshold=saved_gc,
        seats=options["seat"],
        hello=hello,
        output_id=(output.st_dev, output.st_ino),
        maxfail=options["maxfail"],
        coverage_dir=options["coverage_dir"],
        reseed=options["random_seed"] is not None,
    )
    status = int(pytest.main(pytest_args, plugins=[plugin]))
    writer = plugin.writer  # a forked worker has its own

    if plugin.exited:  # `exit` sent: pytest's code for it (the test's returncode, or 2)
        writer.flush()
        return status
    if plugin.fatal is not None and not plugin.shutdown:
        writer.flush()
        return status or EXIT_FATAL
    if plugin.shutdown:
        writer.send({"type": "bye", "exitstatus": status})
        writer.flush()
        return 0
    if plugin.agent_gone:
        return status or 2
    if not plugin.collected:
        # pytest stopped before its run loop: usage error (4, message already on stderr),
        # an error in a conftest, or an informational option (--help, --version,
        # --fixtures, --markers): its output was meant for the user, who gets it from
        # `--plain` (PROTOCOL.md).
        if status == 0:
            writer.send({"type": "nosession", "exitstatus": status})
            writer.flush()
        return status
    writer.flush()
    return _fail("pytest stopped the session unexpectedly (exit code %d)" % status, writer)


def _guess_out_fd(argv):
    """--out-fd from a command line that failed to parse, to report the error on it."""
    for position, arg in enumerate(argv):
        value = None
        if arg.startswith("--out-fd="):
            value = arg[len("--out-fd=") :]
        elif arg == "--out-fd" and position + 1 < len(argv):
            value = argv[position + 1]
        if value is not None:
            try:
                fd = _fd(value)
                os.fstat(fd)
                return fd
            except (ValueError, OSError):
                return None
        if arg == "--":
            return None
    return None


if __name__ == "__main__":
    status = main(sys.argv[1:])
    if seats.forked:
        seats.exit(status)  # does not return
    # The session is over (`bye` sent). Freezing the heap spares the interpreter's
    # final garbage collections over everything pytest built, which took longer than a
    # hundred trivial tests. Objects are still freed by reference counting (open files
    # are flushed and closed); only objects in reference cycles skip their finalizers at
    # exit, which CPython does not promise to run anyway.
    gc.freeze()
    sys.exit(status)
