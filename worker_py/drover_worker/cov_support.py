"""pytest-cov across drover's workers, as pytest-xdist's controller does it.

In every worker (adopt): pytest-cov measures as usual but only saves its data, to a file
of its own (`.coverage.HOST.PID.RANDOM`), which the worker then moves out of the project
into drover's scratch directory; no worker combines, reports or judges --cov-fail-under
on its part alone.

Once every worker is done, drover runs `python -m drover_worker --coverage-report FILE
DIR FAILED` with the user's pytest arguments (report): a pytest session that collects
and runs nothing. pytest-cov starts in it (the data file of an earlier run is removed,
unless --cov-append; files the tests' subprocesses wrote stay); then the workers' files
come back next to the data file, and pytest-cov combines them
and writes its reports (term, html, xml, ...) as after a plain pytest run. Its terminal
section and the --cov-fail-under verdict go to FILE as JSON for drover to print.
This leans on pytest-cov 4's plugin object (`_cov`: cov_controller, _should_report,
pytest_terminal_summary); with anything else adopt() does nothing and the report says so.
"""

import functools
import json
import os

import pytest

_PLUGIN = "_cov"  # the name pytest-cov registers its plugin object under
_WORKER_FILES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "*")


def _controller(config):
    plugin = config.pluginmanager.get_plugin(_PLUGIN)
    if plugin is None or getattr(plugin, "_disabled", True):
        return None, None
    controller = getattr(plugin, "cov_controller", None)
    if controller is None or getattr(controller, "cov", None) is None:
        return plugin, None
    return plugin, controller


def adopt(config, data_dir=None):
    """In a worker: pytest-cov saves this worker's data (moved to `data_dir`, if given) and
    reports nothing. True if pytest-cov is measuring."""
    plugin, controller = _controller(config)
    if controller is None or not hasattr(plugin, "_should_report"):
        return False
    # pytest-cov reports, and applies --cov-fail-under, only where _should_report() is true.
    plugin._should_report = lambda: False
    controller.finish = functools.partial(_save_only, controller, data_dir)
    return True


def _save_only(controller, data_dir):
    """What pytest-cov's own xdist worker does on the controller's machine, then the move."""
    cwd = os.getcwd()
    os.chdir(controller.topdir)
    try:
        controller.unset_env()
        controller.cov.stop()
        controller.cov.save()
        if data_dir:
            _move_own_files(controller.cov.config.data_file, data_dir)
    finally:
        os.chdir(cwd)


def _move_own_files(data_file, data_dir):
    """Moves this process's files of `data_file` (DATA_FILE.HOST.PID.RANDOM: a forked worker
    writes more than one, each under a random number of its own) to data_dir."""
    directory, base = os.path.split(os.path.abspath(data_file))
    own = ".%d." % os.getpid()
    os.makedirs(data_dir, exist_ok=True)
    for entry in os.listdir(directory):
        if entry.startswith(base + ".") and own in entry[len(base) :]:
            os.replace(os.path.join(directory, entry), os.path.join(data_dir, entry))


class ReportPlugin:
    """Ends a pytest session at once, as after a run with `tests_failed` failures, and keeps
    what pytest-cov writes to the terminal from then on."""

    def __init__(self, data_dir, tests_failed):
        self._data_dir = data_dir
        self._tests_failed = tests_failed
        self.config = None
        self.parts = []
        self.failed = False
        self.active = False

    @pytest.hookimpl(hookwrapper=True)
    def pytest_load_initial_conftests(self, early_config):
        # pytest-cov starts in this hook (tryfirst) and erases the data of an earlier run,
        # which would also delete what the tests' subprocesses wrote in this one. It is
        # told to append instead, and only the data file of an earlier run goes.
        options = early_config.known_args_namespace
        append = getattr(options, "cov_append", True)
        if not append:
            options.cov_append = True
        yield
        _, controller = _controller(early_config)
        if controller is None:
            return
        # This process runs no test: its own imports are not the suite's.
        controller.cov.stop()
        data_file = os.path.abspath(controller.cov.config.data_file)
        if not append and os.path.exists(data_file):
            os.remove(data_file)
        try:
            names = os.listdir(self._data_dir)
        except OSError:
            names = []  # no worker saved any data (all crashed): pytest-cov reports none
        for name in names:  # next to the data file, where pytest-cov's combine looks
            os.replace(os.path.join(self._data_dir, name), os.path.join(os.path.dirname(data_file), name))

    @pytest.hookimpl(tryfirst=True)
    def pytest_cmdline_main(self, config):
        from .plugin import no_xdist, take_junitxml

        self.config = config
        no_xdist(config.option)
        take_junitxml(config.option)  # this session runs no test: no report of its own
        _, controller = _controller(config)
        if controller is None:
            return
        self.active = True
        for cov in (controller.cov, getattr(controller, "combining_cov", None)):
            if cov is not None:  # drover's worker is not part of the user's code
                omit = list(cov.get_option("report:omit") or [])
                cov.set_option("report:omit", omit + [_WORKER_FILES])

    def pytest_collection(self, session):
        session.items = []
        return True

    def pytest_runtestloop(self, session):
        # pytest-cov's wrapper around this hook reads testsfailed (--no-cov-on-fail), then
        # combines, reports, and adds one for --cov-fail-under.
        session.testsfailed = self._tests_failed
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            write = terminal.write

            def keep(content, **markup):
                self.parts.append(content)
                write(content, **markup)

            terminal.write = keep
        return True

    def pytest_sessionfinish(self, session):
        self.failed = session.testsfailed > self._tests_failed


def report(pytest_args, out_path, data_dir, tests_failed):
    """The finishing session; writes {"active", "text", "failed"} to out_path. pytest's exit code."""
    plugin = ReportPlugin(data_dir, tests_failed)
    # No cache either: pytest's last-failed list is the workers' to write.
    status = int(pytest.main(list(pytest_args) + ["-p", "no:cacheprovider"], plugins=[plugin]))
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump({"active": plugin.active, "text": "".join(plugin.parts), "failed": plugin.failed}, out)
    return status
