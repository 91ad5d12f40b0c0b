"""Forked workers: the first worker collects once, then forks the pool's other workers.

The agent starts one interpreter with a `--seat CMD,MSG,OUT,BASETEMP` option per other
worker: the inherited descriptors of that worker's command socket, message pipe and
stdout/stderr pipe, and its basetemp. When collection is done, before `collected` is sent
and before any test ran, fork() makes one process per seat, so Python's start, pytest's
import and the collection are paid once instead of once per worker.

Each fork is a double fork: the intermediate process exits at once, so the new worker is
re-parented to the agent (a child subreaper meanwhile) and becomes an ordinary child of
it: the agent reaps it, reads its exit status and kills its process group, and its
PR_SET_PDEATHSIG is re-armed against the agent, so the first worker's crash cannot take
the others with it and none outlives the agent. In the new worker, every descriptor that
pointed at the first worker's stdout/stderr pipe (fds 1 and 2, pytest's saved copies,
faulthandler's) now points at its own, pytest's capture files are fresh private ones, and
the basetemp is its own.

The first worker forks nobody, and the agent starts those workers as new interpreters,
when another Python thread is running (its work would silently vanish in the copies) or
when pytest's capture or tmp_path internals are not as expected.
"""

import atexit
import os
import sys
import tempfile
import threading
import time

# A new worker that cannot take its seat exits with this before saying hello; the agent
# sees the seat close and starts the worker itself.
EXIT_NO_SEAT = 3
_PR_SET_PDEATHSIG = 1
_REPARENT_LIMIT = 5.0  # seconds for the intermediate process to exit

forked = False  # this process forked workers, or is one: it ends with exit()


class Seat:
    __slots__ = ("command_fd", "message_fd", "output_fd", "basetemp")

    def __init__(self, command_fd, message_fd, output_fd, basetemp):
        self.command_fd = command_fd
        self.message_fd = message_fd
        self.output_fd = output_fd
        self.basetemp = basetemp  # None: none given

    def fds(self):
        return (self.command_fd, self.message_fd, self.output_fd)


def parse(text):
    """`CMD,MSG,OUT,BASETEMP` (BASETEMP may be empty) -> Seat. Raises ValueError."""
    parts = text.split(",", 3)
    if len(parts) != 4:
        raise ValueError("expected CMD,MSG,OUT,BASETEMP")
    fds = [int(part) for part in parts[:3]]
    if min(fds) < 3 or len(set(fds)) != 3:
        raise ValueError("not three dedicated descriptors")
    return Seat(fds[0], fds[1], fds[2], parts[3] or None)


def close(seats):
    for seat in seats:
        for fd in seat.fds():
            try:
                os.close(fd)
            except OSError:
                pass


def cannot_fork(config, seats):
    """Why these seats cannot be forked now, or None."""
    if threading.active_count() > 1:
        return "other Python threads are running"
    try:
        for capture_file in _capture_files(config):
            capture_file.fileno()
    except Exception as error:
        return "unexpected pytest capture internals (%s)" % error
    if any(seat.basetemp for seat in seats):
        factory = getattr(config, "_tmp_path_factory", None)
        if not (hasattr(factory, "_given_basetemp") and hasattr(factory, "_basetemp")):
            return "unexpected pytest tmp_path internals"
    return None


def fork(seats):
    """Forks one worker per seat. Returns the seat this process now serves (in a new
    worker, re-parented to the agent, in a process group of its own, not yet settled:
    see settle()), or None in the first worker, which has closed every seat."""
    import ctypes  # loaded once, before the forks

    global forked
    forked = True
    libc = ctypes.CDLL(None, use_errno=True)
    agent = os.getppid()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    remaining = list(seats)
    intermediates = []
    while remaining:
        seat = remaining.pop(0)
        try:
            pid = os.fork()
        except OSError:
            close([seat])
            continue
        if pid == 0:
            close(remaining)
            _detach(agent, libc)  # returns only in the new worker
            return seat
        close([seat])
        intermediates.append(pid)
    # Reaped only now: each exits while the next fork is made, not one after the other.
    for pid in intermediates:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    return None


def _detach(agent, libc):
    """In the forked child: forks the new worker and exits; the new worker waits until
    the agent adopted it, ties its life to the agent's and takes a process group."""
    intermediate = os.getpid()
    try:
        if os.fork() != 0:
            os._exit(0)
        deadline = time.monotonic() + _REPARENT_LIMIT
        while True:
            parent = os.getppid()
            if parent == agent:
                break
            if parent != intermediate or time.monotonic() > deadline:
                os._exit(EXIT_NO_SEAT)  # adopted by someone else: the agent is no subreaper
            time.sleep(0.0002)
        import signal

        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0 or os.getppid() != agent:
            os._exit(EXIT_NO_SEAT)  # cannot tie our life to the agent's, or it just died
        os.setpgid(0, 0)
    except BaseException:
        os._exit(EXIT_NO_SEAT)


def settle(seat, config, output_id, old_fds):
    """In a new worker, after its hello: its own stdout/stderr, capture files and basetemp.

    `output_id` is (st_dev, st_ino) of the first worker's stdout/stderr pipe; `old_fds`
    are the first worker's protocol descriptors, closed here.
    """
    for fd in old_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    replacements = {output_id: seat.output_fd}
    fresh = []
    for capture_file in _capture_files(config):
        status = os.fstat(capture_file.fileno())
        new_file = tempfile.TemporaryFile(buffering=0)
        fresh.append(new_file)
        replacements[(status.st_dev, status.st_ino)] = new_file.fileno()
    own = set(replacements.values())
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd in own:
            continue
        try:
            status = os.fstat(fd)
        except OSError:  # the directory listing's own descriptor, closed by now
            continue
        target = replacements.get((status.st_dev, status.st_ino))
        if target is not None:
            os.dup2(target, fd, inheritable=os.get_inheritable(fd))
    for new_file in fresh:
        new_file.close()
    os.close(seat.output_fd)


def set_basetemp(config, path):
    """Points pytest's tmp_path factory at `path` (nothing was created under it yet)."""
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is None:
        return
    from pathlib import Path

    factory._given_basetemp = Path(os.path.abspath(path))
    factory._basetemp = None


def _capture_files(config):
    """pytest's global fd-level capture files (stdout, stderr), shared after a fork."""
    capman = config.pluginmanager.get_plugin("capturemanager")
    multi = getattr(capman, "_global_capturing", None)
    files = []
    for name in ("out", "err"):
        capture = getattr(multi, name, None)
        if capture is not None and hasattr(capture, "targetfd_save"):  # FDCapture; SysCapture is in memory
            files.append(capture.tmpfile)
    return files


def exit(status):
    """Ends a process that shares its heap with forked workers, without tearing it down.

    The interpreter's finalization writes to every object, and after a fork every page
    written is copied first: on the 2-core VM benchmarks run on, a page fault costs 12-25
    microseconds, so tearing down pytest's heap took 0.2 s per worker. As
    multiprocessing's forked children do, this waits for non-daemon threads, runs the
    atexit handlers, flushes the standard streams and calls _exit.
    """
    import threading

    try:
        shutdown = getattr(threading, "_shutdown", None)
        if shutdown is not None:
            shutdown()
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)
