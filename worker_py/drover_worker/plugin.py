"""The pytest plugin that turns one pytest session into a drover worker.

pytest collects as usual (the user's args, ini files, conftests and plugins all apply);
then our tryfirst pytest_runtestloop replaces pytest's own loop: it reports the collection,
reads `run`/`cancel`/`shutdown` commands and runs items by index through the regular
pytest_runtest_protocol hook, so other plugins still see every protocol hook.

nextitem: the head of the queue runs only once the test after it is known (or after
`shutdown`, with nextitem=None), so module/class fixtures are torn down exactly where
pytest would tear them down.
"""

import faulthandler
import gc
import hashlib
import io
import os
import random
import time
from collections import deque
from pathlib import Path

import pytest

from . import cov_support, gc_tuning, seats
from .wire import ProtocolError, Reader, Writer, check_indices

_STATUSES = frozenset(("passed", "failed", "skipped", "xfailed", "xpassed", "error", ""))
_PHASES = frozenset(("setup", "call", "teardown"))
_OUTCOMES = frozenset(("passed", "failed", "skipped"))
# pytest's own progress letter and -v word per status; a plugin's other ones are sent.
_DEFAULT_SHOWN = {
    "passed": (".", "PASSED"),
    "failed": ("F", "FAILED"),
    "skipped": ("s", "SKIPPED"),
    "xfailed": ("x", "XFAIL"),
    "xpassed": ("X", "XPASS"),
    "error": ("E", "ERROR"),
    "other": ("", ""),
}
_QUIET = (
    '{"type":"report","index":%d,"when":"%s","outcome":"%s","status":"%s","duration":%r,'
    '"longrepr":"","message":"","sections":[]}'
)


class WorkerPlugin:
    def __init__(
        self,
        reader,
        writer,
        basetemp=None,
        timeout=0.0,
        capture_limit=1 << 20,
        stderr=None,
        gc_threshold=None,
        seats=(),
        hello=None,
        output_id=None,
        maxfail=None,
        coverage_dir=None,
        reseed=False,
    ):
        self._reader = reader
        self._writer = writer
        self._basetemp = basetemp
        self._user_basetemp = None  # the user's --basetemp, parent of each worker's own
        self._seats = list(seats)  # workers to fork once collected (seats.py)
        self._hello = hello  # what a forked worker says first, with its own pid
        self._output_id = output_id
        self._timeout = timeout
        self._maxfail = maxfail  # None: never stop on this worker's own failures (see _loop)
        self._failures = 0  # tests of this worker that failed or errored
        self._failed_now = False  # a phase of the running test failed
        self._pytest_maxfail = 0  # pytest's own -x/--maxfail, reported to the agent
        self._coverage = False  # pytest-cov measures: drover combines and reports (cov_support)
        self._coverage_dir = coverage_dir
        self._reseed = reseed  # `random` was seeded for collection: reseed it before the tests
        self._junitxml = None  # pytest's own --junitxml: drover writes it from every worker's results
        self._dropped = []  # tests dropped by a stop, until the agent asks for them
        self._capture_limit = capture_limit
        self._stderr = stderr  # the worker's original stderr, for faulthandler dumps
        self._gc_threshold = gc_threshold  # to restore before the first test (gc_tuning)
        self._errors = []
        self._skips = []
        self._deselected = 0
        self._index = -1  # the test running now
        self._relpaths = {}
        self._ran = set()  # indices of the tests this worker ran
        self._collect_nodeids = []  # collectors pytest reported on
        self.config = None
        self.collected = False  # `collected` was sent
        self.shutdown = False  # `shutdown` received and the queue drained
        self.fatal = None  # message of a `fatal` we sent
        self.agent_gone = False  # the agent closed a pipe: nothing more to say
        self.exited = False  # a test ended the session (pytest.exit, KeyboardInterrupt): `exit` sent

    @property
    def writer(self):
        return self._writer

    # -- configuration -------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_cmdline_main(self, config):
        self.config = config
        option = config.option
        self._user_basetemp = getattr(option, "basetemp", None)
        self._set_basetemp(self._basetemp)
        for name, flag in (("stepwise", "--stepwise"), ("stepwise_skip", "--stepwise-skip")):
            if getattr(option, name, False):
                # pytest's stepwise needs one process running every test in order with
                # its cache; drover would silently skip and reorder tests.
                raise pytest.UsageError("%s is not supported by drover: run pytest itself for it" % flag)
        # drover stops on failures itself (the stricter of its own and pytest's limit, see
        # `collected`); pytest's -x/--maxfail must not end the loop on their own.
        self._pytest_maxfail = max(0, option.maxfail or 0)
        if self._maxfail is not None and self._pytest_maxfail:
            self._maxfail = min(self._maxfail or self._pytest_maxfail, self._pytest_maxfail)
        option.maxfail = 0
        no_xdist(option)
        self._junitxml = take_junitxml(option)
        self._coverage = cov_support.adopt(config, self._coverage_dir)

    def _set_basetemp(self, basetemp):
        if not basetemp:
            return
        # pytest empties its basetemp at start: workers sharing one would delete each
        # other's files. A user's --basetemp gets a per-worker subdirectory, as in xdist.
        user = self._user_basetemp
        name = os.path.basename(os.path.normpath(basetemp))
        self.config.option.basetemp = os.path.join(user, name) if user else basetemp
        if user:
            try:  # pytest creates only the last level (xdist's controller makes `user`)
                os.makedirs(user, exist_ok=True)
            except OSError:
                pass  # pytest reports the problem when it needs the directory

    # -- collection ----------------------------------------------------------------------

    def pytest_deselected(self, items):
        self._deselected += len(items)

    def pytest_collectreport(self, report):
        self._collect_nodeids.append(report.nodeid)
        if report.failed:
            error = {"nodeid": report.nodeid, "longrepr": _text(report.longrepr)}
            crash = getattr(report.longrepr, "reprcrash", None)
            if crash is not None:  # pytest's short summary shows it after the node id
                error["message"] = _first_line(crash.message)
            self._errors.append(error)
        elif report.skipped and isinstance(report.longrepr, tuple):
            path, line, reason = report.longrepr
            self._skips.append(
                {"nodeid": report.nodeid, "file": self._relpath(path), "line": line or 0, "reason": reason}
            )

    def _relpath(self, path):
        relpath = self._relpaths.get(path)
        if relpath is None:
            relpath = os.path.relpath(str(path), self._rootdir()).replace(os.sep, "/")
            self._relpaths[path] = relpath
        return relpath

    def _rootdir(self):
        rootpath = getattr(self.config, "rootpath", None)  # pytest < 6.1 has only rootdir
        return str(rootpath if rootpath is not None else self.config.rootdir)

    def _collected_message(self, session):
        items = []
        for item in session.items:
            try:
                location = item.location
            except Exception:  # a plugin item whose reportinfo() fails: pytest copes too
                location = (None, None, None)
            cls = getattr(item, "cls", None)
            markers = []
            for marker in item.iter_markers():
                if marker.name not in markers:
                    markers.append(marker.name)
            items.append(
                {
                    "nodeid": item.nodeid,
                    "file": self._relpath(getattr(item, "path", None) or item.fspath),
                    "cls": cls.__name__ if cls is not None else "",
                    "line": location[1] + 1 if location[1] is not None else 0,
                    "markers": markers,
                }
            )
        digest = hashlib.sha256("\n".join(item.nodeid for item in session.items).encode("utf-8"))
        message = {
            "type": "collected",
            "rootdir": self._rootdir(),
            "hash": digest.hexdigest(),
            "items": items,
            "errors": self._errors,
            "skips": self._skips,
            "deselected": self._deselected,
            "junit": _junit_options(self.config),
            "show_warnings": _shows_warnings(self.config),
            "collectonly": bool(getattr(self.config.option, "collectonly", False)),
            "maxfail": self._pytest_maxfail,
            "reportchars": _reportchars(self.config),
            "verbose": int(getattr(self.config.option, "verbose", 0) or 0),
            "continue_on_collection_errors": bool(
                getattr(self.config.option, "continue_on_collection_errors", False)
            ),
        }
        header = _report_header(self.config)
        if header:
            message["header"] = header
        tbstyle = getattr(self.config.option, "tbstyle", None)
        if tbstyle in ("no", "line"):
            message["tbstyle"] = tbstyle
        if self._coverage:
            message["coverage"] = True
        if self._junitxml:
            message["junitxml"] = self._junitxml
        return message

    def _fork_seats(self):
        """Forks the other workers (seats.py); in a forked one, takes its seat."""
        pending, self._seats = self._seats, []
        reason = seats.cannot_fork(self.config, pending)
        if reason is not None:
            seats.close(pending)  # the agent starts them itself
            if self._stderr is not None:
                self._stderr.write("drover_worker: not forking workers: %s\n" % reason)
                self._stderr.flush()
            return
        self._writer.flush()
        # Objects built so far live as long as the session: the collector never scans
        # them again, and never writes to their pages, which stay shared with the forks.
        gc.freeze()
        seat = seats.fork(pending)
        if seat is None:
            return
        old_fds = (self._reader.fd, self._writer.fd)
        self._reader = Reader(seat.command_fd)
        self._writer = Writer(seat.message_fd)
        self._writer.send(dict(self._hello, pid=os.getpid()))
        self._writer.flush()
        seats.settle(seat, self.config, self._output_id, old_fds)
        if seat.basetemp:
            self._set_basetemp(seat.basetemp)
            seats.set_basetemp(self.config, self.config.option.basetemp)

    # -- the run loop --------------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session):
        collected = self._collected_message(session)
        if self._seats:
            self._fork_seats()
        self._writer.send(collected)
        self._writer.flush()
        self.collected = True
        if self._reseed:
            random.seed()  # from the OS, as at interpreter start (forked workers reseed at fork)
        gc_tuning.restore(self._gc_threshold)
        muted = _mute_progress(self.config)
        try:
            self._loop(session)
        except ProtocolError as error:
            self.send_fatal(str(error))
            pytest.exit("drover: " + str(error), returncode=3)
        finally:
            for impl, function in muted:
                impl.function = function
        return True

    def _loop(self, session):
        items = session.items
        count = len(items)
        queue = deque()
        shutdown = False
        stopped = False  # after a stop: run nothing more, only end the session
        committed = False  # queue[0] was the nextitem of the test before it: it must run
        reader = self._reader
        writer = self._writer
        while True:
            if not shutdown:
                # Block only when the head cannot run yet; otherwise just pick up what the
                # agent already sent (cheap: one select per test).
                block = stopped or len(queue) < 2
                if block:
                    writer.flush()
                for command in reader.read(block):
                    kind = command["type"]
                    if kind == "run":
                        (self._dropped if stopped else queue).extend(check_indices(command, count))
                    elif kind == "cancel":
                        self._cancel(queue, check_indices(command, count), committed and not stopped)
                    elif kind == "stop":
                        stopped = True
                        self._stop(queue)
                    elif kind == "shutdown":
                        shutdown = True
                        break
                    else:
                        raise ProtocolError("unknown command type %r" % kind)
            if reader.eof and not shutdown or writer.broken:
                # The agent is gone: run nothing more; pytest still finishes the session.
                self.agent_gone = True
                pytest.exit("drover: the agent closed the worker's pipes", returncode=2)
            if not stopped and (len(queue) >= 2 or shutdown and queue):
                index = queue.popleft()
                nextitem = items[queue[0]] if queue else None
                committed = nextitem is not None
                self._run_one(index, items[index], nextitem)
                if self._maxfail and self._failures >= self._maxfail:
                    # -x/--maxfail: the agent stops the whole run on the same count (every
                    # failure here is one there too) but would learn of it only after the
                    # next test started. Like pytest, drop even the committed nextitem:
                    # the session's end tears its fixtures down.
                    stopped = True
                    self._dropped.extend(queue)
                    queue.clear()
            elif shutdown:
                break
        self.shutdown = True
        writer.flush()

    def _cancel(self, queue, indices, committed):
        # The committed head was already someone's nextitem (fixtures kept for it): pytest's
        # SetupState requires it to run next, so it is never cancelled.
        keep = [queue.popleft()] if committed and queue else []
        cancelled = []
        for index in indices:
            for pending in (queue, self._dropped):
                try:
                    pending.remove(index)
                except ValueError:
                    continue
                cancelled.append(index)
                break
        queue.extendleft(keep)
        self._writer.send({"type": "cancelled", "indices": cancelled})

    def _stop(self, queue):
        # The session ends after the running test: nothing queued runs, the committed head
        # included (pytest's -x does not run it either; sessionfinish tears down its fixtures).
        self._dropped.extend(queue)
        queue.clear()
        dropped, self._dropped = self._dropped, []
        self._writer.send({"type": "cancelled", "indices": dropped})

    def _run_one(self, index, item, nextitem):
        self._index = index
        self._failed_now = False
        self._ran.add(index)
        writer = self._writer
        writer.send_raw('{"type":"start","index":%d}' % index)
        writer.flush()
        if self._timeout > 0:
            try:
                self.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
            finally:
                faulthandler.cancel_dump_traceback_later()
        else:
            self.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        self._index = -1
        self._failures += self._failed_now
        writer.send_raw('{"type":"finished","index":%d}' % index)

    def pytest_runtest_logstart(self):
        # Armed here, inside the protocol, rather than before it: pytest's own faulthandler
        # plugin (faulthandler_timeout) arms its timer in a wrapper around the protocol and
        # would otherwise replace ours.
        if self._timeout > 0 and self._index >= 0:
            faulthandler.dump_traceback_later(self._timeout, exit=True, file=self._stderr)

    # -- reports -------------------------------------------------------------------------

    def pytest_runtest_logreport(self, report):
        if self._index < 0:
            return
        if report.failed:  # drover's count: a test failed or errored in any phase
            self._failed_now = True
        try:
            self._report(report)
        except Exception as error:  # a plugin's odd report must not end the whole session
            self._writer.send(
                {
                    "type": "report",
                    "index": self._index,
                    "when": report.when if report.when in _PHASES else "call",
                    "outcome": "failed",  # visible, never a silent pass
                    "status": "failed" if report.when == "call" else "error",
                    "duration": float(getattr(report, "duration", 0.0) or 0.0),
                    "longrepr": _text(report.longrepr) if report.longrepr is not None else "",
                    "message": "drover worker could not report this phase: %r" % error,
                    "sections": [],
                }
            )

    def _report(self, report):
        config = self.config
        category = config.hook.pytest_report_teststatus(report=report, config=config)
        # None: no plugin answered (pytest's answer for a passed call lives in its terminal
        # plugin, which -p no:terminal removes).
        status = category[0] if category else None
        shown = {}  # a plugin's own category, letter or -v word (pytest-rerunfailures: "rerun", "R")
        if status not in _STATUSES:
            if isinstance(status, str) and status:
                shown["category"] = status
                status = "other"
            else:
                status = _fallback_status(report)
        if category and len(category) == 3 and status in _DEFAULT_SHOWN:
            letter, word = category[1], category[2]
            if isinstance(word, tuple):  # (word, markup)
                word = word[0] if word else ""
            if isinstance(letter, str) and letter and letter != _DEFAULT_SHOWN[status][0]:
                shown["letter"] = letter
            if isinstance(word, str) and word and word != _DEFAULT_SHOWN[status][1]:
                shown["word"] = word
        longrepr = report.longrepr
        wasxfail = getattr(report, "wasxfail", None)
        sections = report.sections
        properties = getattr(report, "user_properties", None)
        quiet = longrepr is None and not sections and wasxfail is None and not properties and not shown
        if quiet and report.when in _PHASES and report.outcome in _OUTCOMES:
            # The common case (a quiet passed phase), formatted without the JSON encoder:
            # every interpolated value is JSON-safe as it is.
            quiet = _QUIET % (self._index, report.when, report.outcome, status, float(report.duration))
            self._writer.send_raw(quiet)
            return
        crash = skip_where = None
        if longrepr is None:
            text = message = ""
        elif isinstance(longrepr, tuple):  # a skip: (path, 1-based line, "Skipped: reason")
            path, line, reason = longrepr
            message = _strip_prefix(reason)
            text = "%s:%s: %s" % (self._relpath(path), line, message)
            skip_where = self._skip_where(report, path, line)
        else:
            text = _text(longrepr)
            crash = getattr(longrepr, "reprcrash", None)
            message = _first_line(crash.message if crash is not None else text)
        if wasxfail is not None and report.outcome != "failed":
            message = wasxfail
        if sections:
            sections = [[title, self._cap(content)] for title, content in sections]
        sent = {
            "type": "report",
            "index": self._index,
            # pytest-forked reports a crashed child as when="???": the test's outcome, as
            # pytest's terminal shows it (FAILED).
            "when": report.when if report.when in _PHASES else "call",
            "outcome": report.outcome,
            "status": status,
            "duration": report.duration,
            "longrepr": text,
            "message": message,
            "sections": sections,
        }
        if crash is not None and report.outcome == "failed":
            sent["crash"] = str(crash.message)  # pytest's JUnit message, all its lines
        if report.outcome == "failed" and getattr(self.config.option, "tbstyle", None) == "line":
            # pytest's _getcrashline(): what --tb=line prints for the failure
            try:
                sent["crash_line"] = str(longrepr.reprcrash)  # "None" when it has none, as pytest prints
            except AttributeError:
                sent["crash_line"] = str(longrepr)[:50]
        if report.outcome == "failed":
            # pytest's head of the FAILURES/ERRORS section: "TestX.test_y[1]",
            # "[doctest] mod.f", a pytest-subtests "test_x [check] (i=1)".
            head = getattr(report, "head_line", None)
            if isinstance(head, str) and head:
                sent["head_line"] = head
        if properties:
            sent["properties"] = [[str(name), str(value)] for name, value in properties]
        if skip_where is not None:
            sent["skip_where"] = skip_where
        sent.update(shown)
        self._writer.send(sent)

    def _skip_where(self, report, path, line):
        """Where pytest's short summary puts a skip ("SKIPPED [2] file:line: reason"): relative
        to the invocation directory, without the line for a skip marker (_folded_skips)."""
        try:
            from _pytest.pathlib import bestrelpath

            where = bestrelpath(self.config.invocation_params.dir, Path(path))
        except (ImportError, AttributeError, ValueError):
            where = self._relpath(path)
        keywords = getattr(report, "keywords", {})
        if report.when == "setup" and "skip" in keywords and "pytestmark" not in keywords:
            return where
        return "%s:%s" % (where, line)

    def pytest_warning_recorded(self, warning_message, when, nodeid, location):
        # Warnings recorded once the run loop is over (sessionfinish, the worker's own
        # terminal summary) come after pytest's summary line too: pytest shows none of them.
        if self.shutdown or self.agent_gone or self.fatal is not None:
            return
        from _pytest.warnings import warning_record_to_str

        self._writer.send(
            {
                "type": "warning",
                "when": when,
                "nodeid": nodeid,
                "location": nodeid or self._warning_place(warning_message),
                "message": self._cap(warning_record_to_str(warning_message)),
            }
        )

    def _warning_place(self, warning_message):
        # pytest's WarningReport.get_location for a warning outside any test.
        filename, lineno = warning_message.filename, warning_message.lineno
        if not filename:
            return ""
        # Config-time warnings (conftest imports) come before pytest_cmdline_main: no config
        # yet, and the invocation directory is still the working directory.
        base = str(self.config.invocation_params.dir) if self.config is not None else os.getcwd()
        try:
            from _pytest.pathlib import absolutepath, bestrelpath

            relpath = bestrelpath(absolutepath(base), absolutepath(filename))
        except (ImportError, ValueError):
            relpath = os.path.relpath(filename, base)
        return "%s:%s" % (relpath, lineno)

    def _cap(self, content):
        limit = self._capture_limit
        if len(content) * 4 <= limit:  # fast path: cannot exceed the limit in UTF-8
            return content
        data = content.encode("utf-8", "surrogatepass")
        if len(data) <= limit:
            return content
        kept = data[:limit].decode("utf-8", "ignore")  # never cut a character in half
        dropped = len(data) - len(kept.encode("utf-8", "surrogatepass"))
        return "%s\n[drover: output truncated, %d bytes dropped]" % (kept, dropped)

    # -- endings -------------------------------------------------------------------------

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_sessionfinish(self, session):
        # pytest's cache plugin rewrites cache/lastfailed with what this process saw. Several
        # workers share one cache: under a lock, re-read the file and apply only the tests
        # this worker ran, so `--lf`/`--ff` see every worker's failures.
        lock = self._merge_lastfailed(session)
        try:
            yield
        finally:
            if lock is not None:
                lock.close()

    def _merge_lastfailed(self, session):
        config = self.config
        lfplugin = config.pluginmanager.get_plugin("lfplugin")
        cache = getattr(config, "cache", None)
        lastfailed = getattr(lfplugin, "lastfailed", None)
        if cache is None or not isinstance(lastfailed, dict) or not self.collected:
            return None
        try:
            import fcntl

            lock = open(os.path.join(str(cache.mkdir("drover")), "lastfailed.lock"), "w")
        except (ImportError, OSError):
            return None
        deadline = time.monotonic() + 10  # never hang on a stuck sibling: merge unlocked then
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            except OSError:
                break
        merged = dict(cache.get("cache/lastfailed", {}))
        for nodeid in self._touched(session):
            if nodeid in lastfailed:
                merged[nodeid] = lastfailed[nodeid]
            else:
                merged.pop(nodeid, None)
        lfplugin.lastfailed = merged
        return lock

    def _touched(self, session):
        items = session.items
        touched = {items[index].nodeid for index in self._ran}
        touched.update(self._collect_nodeids)
        return touched

    def pytest_keyboard_interrupt(self, excinfo):
        # pytest.exit() or KeyboardInterrupt in a test (or SIGINT): the session ends
        # without `shutdown`. The agent stops the whole run, as pytest stops its session.
        if self.fatal is None and self.collected and not self.shutdown and not self.agent_gone:
            self.exited = True
            self._writer.send(_exit_message(excinfo, self._index, self.config))
            self._writer.flush()

    def send_fatal(self, message):
        self.fatal = message
        self._writer.send({"type": "fatal", "message": message})
        self._writer.flush()


# The terminal reporter's per-test hooks: progress letters, file names and percentages.
_PROGRESS_HOOKS = ("pytest_runtest_logstart", "pytest_runtest_logreport", "pytest_runtest_logfinish")


def _report_header(config):
    """Plugins' lines for pytest's session header (pytest_report_header), in pytest's order,
    without the terminal reporter's own (rootdir, plugins), which drover writes itself."""
    terminal = config.pluginmanager.get_plugin("terminalreporter")
    hook = config.pluginmanager.subset_hook_caller("pytest_report_header", [terminal] if terminal else [])
    start_path = config.invocation_params.dir
    try:
        from _pytest.compat import legacy_path

        results = hook(config=config, start_path=start_path, startdir=legacy_path(start_path))
    except Exception:  # a plugin's broken header must not cost the run
        return []
    lines = []
    for result in reversed(results):
        for line in [result] if isinstance(result, str) else result:
            lines.append(str(line))
    return lines


def _reportchars(config):
    """pytest's -r characters as its terminal reporter resolves them ("fE" by default)."""
    try:
        from _pytest.terminal import getreportopt

        return getreportopt(config)
    except (ImportError, AttributeError):  # no terminal plugin (-p no:terminal)
        return "fE"


def take_junitxml(option):
    """pytest's own --junitxml (args or addopts), as pytest resolves it; pytest's junitxml
    plugin, which reads it at configure time, then writes nothing here: every worker would
    overwrite one file with its own part of the run."""
    xmlpath = getattr(option, "xmlpath", None)
    if not xmlpath:
        return None
    option.xmlpath = None
    return os.path.normpath(os.path.abspath(os.path.expanduser(os.path.expandvars(xmlpath))))


def no_xdist(option):
    """pytest-xdist: `-n` in the user's addopts must not make this process a controller.
    Called before xdist's own pytest_cmdline_main, which turns numprocesses into `tx`."""
    if hasattr(option, "numprocesses"):
        option.numprocesses = 0
        option.dist = "no"
        option.tx = []
        if hasattr(option, "distload"):
            option.distload = False
        if hasattr(option, "looponfail"):
            option.looponfail = False


def _mute_progress(config):
    """Silences the terminal reporter's per-test progress on the worker's stdout.

    Nobody reads it (drover reports the results), yet it costs a status hook call,
    string work and a write per test. Only those three hooks of the reporter are muted,
    for the run loop: collection errors, warnings and the session summary still go to
    the worker's stdout, where the agent keeps the last lines for crash messages.
    Returns (hookimpl, function) pairs to restore.
    """
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    muted = []
    if reporter is None:  # -p no:terminal
        return muted
    for name in _PROGRESS_HOOKS:
        caller = getattr(config.hook, name, None)
        try:
            impls = caller.get_hookimpls() if caller is not None else ()
            for impl in impls:
                if impl.plugin is reporter and not getattr(impl, "hookwrapper", False):
                    muted.append((impl, impl.function))
                    impl.function = _ignore
        except (AttributeError, TypeError):  # a pluggy without these internals: keep the output
            break
    return muted


def _exit_message(excinfo, index, config):
    """The `exit` message, in the words pytest's terminal uses for it (_report_keyboardinterrupt)."""
    returncode = 2  # pytest's ExitCode.INTERRUPTED
    value = excinfo.value
    if isinstance(value, pytest.exit.Exception) and value.returncode is not None:
        returncode = int(value.returncode)
    detail = ""
    try:
        excrepr = excinfo.getrepr(funcargs=True)
        message = excrepr.reprcrash.message
        if "KeyboardInterrupt" in message:
            if getattr(config.option, "fulltrace", False):
                detail = _text(excrepr)
            else:
                detail = _text(excrepr.reprcrash) + "\n(to show a full traceback on KeyboardInterrupt use --full-trace)"
    except Exception:  # an exception pytest cannot render either
        message = _first_line(excinfo.exconly())
    return {"type": "exit", "index": index, "returncode": returncode, "message": message, "detail": detail}


def _ignore(*args):
    return None


# pytest's ini options for --junitxml, with the key drover sends each under.
_JUNIT_INI = (
    ("suite_name", "junit_suite_name"),
    ("family", "junit_family"),
    ("logging", "junit_logging"),
    ("duration_report", "junit_duration_report"),
    ("log_passing_tests", "junit_log_passing_tests"),
)


def _junit_options(config):
    """The ini options pytest's junitxml plugin reads, read the same way (config.getini).

    pytest reads them only with --junitxml, which the worker never has: a value pytest
    could not read (a bad bool) is sent as `error`, for drover to fail as pytest would.
    Without pytest's junitxml plugin (-p no:junitxml) the options do not exist: {}.
    """
    options = {}
    if not config.pluginmanager.has_plugin("junitxml"):
        return options
    for key, name in _JUNIT_INI:
        try:
            value = config.getini(name)
        except ValueError as error:
            options.setdefault("error", "%s: %s" % (name, error))
            continue
        options[key] = value if isinstance(value, bool) else str(value)
    return options


def _shows_warnings(config):
    """Whether pytest's terminal would print a warnings summary (not --disable-warnings)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and hasattr(reporter, "hasopt"):
        return bool(reporter.hasopt("w"))
    return not getattr(config.option, "disable_warnings", False)


def _text(longrepr):
    # Rendered as pytest's terminal renders it (str() loses the first line's indent).
    try:
        if hasattr(longrepr, "toterminal"):
            from _pytest._io import TerminalWriter

            out = io.StringIO()
            writer = TerminalWriter(file=out)
            writer.hasmarkup = False
            longrepr.toterminal(writer)
            return out.getvalue().rstrip()
        return str(longrepr)
    except Exception as error:  # a plugin's repr object that cannot render
        return "<unprintable longrepr: %s>" % error


def _first_line(text):
    text = text.strip()
    end = text.find("\n")
    return text if end < 0 else text[:end]


def _strip_prefix(reason):
    # pytest's skip summary and JUnit both show the reason without this prefix.
    return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason


def _fallback_status(report):
    # A plugin category drover does not know (e.g. "rerun"): use pytest's plain meaning.
    if report.outcome == "passed":
        return "passed" if report.when == "call" else ""
    if report.outcome == "failed":
        return "failed" if report.when == "call" else "error"
    return "skipped"
