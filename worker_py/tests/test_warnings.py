"""The `warning` messages: what pytest recorded, where, with the text its summary prints."""

from worker_harness import Worker, write_suite

SUITE = {
    "conftest.py": '''
import warnings
import pytest

warnings.warn("conftest imported")

@pytest.fixture
def noisy():
    warnings.warn("fixture setup")
    yield
    warnings.warn("fixture teardown")
''',
    "test_w.py": '''
import warnings

warnings.warn("module imported")

def test_quiet():
    pass

def test_warns(noisy):
    warnings.warn("in the test", DeprecationWarning)
    warnings.warn("in the test", DeprecationWarning)
''',
}


def run_session(tmp_path, args=()):
    write_suite(tmp_path, SUITE)
    worker = Worker(tmp_path, ["-p", "no:cacheprovider", *args])
    worker.expect("hello")
    early = worker.until("collected")
    collected = early.pop()
    worker.run([0, 1])
    worker.shutdown()
    messages = worker.until("bye")
    assert worker.wait() == 0, worker.stderr()
    return early, collected, messages


def test_collection_and_config_warnings_come_before_collected(tmp_path):
    early, collected, _ = run_session(tmp_path)
    assert collected["show_warnings"] is True
    assert [(m["when"], m["nodeid"], m["location"]) for m in early] == [
        ("config", "", "conftest.py:5"),
        ("collect", "", "test_w.py:4"),
    ]
    # pytest's warning_record_to_str: warnings.formatwarning() with the absolute path.
    assert early[1]["message"] == '%s:4: UserWarning: module imported\n  warnings.warn("module imported")\n' % (
        tmp_path / "test_w.py"
    )


def test_a_tests_warnings_come_between_its_start_and_finished(tmp_path):
    _, collected, messages = run_session(tmp_path)
    nodeid = collected["items"][1]["nodeid"]
    kinds = [m["type"] for m in messages]
    start, finished = kinds.index("start", kinds.index("finished") + 1), len(kinds) - 1 - kinds[::-1].index("finished")
    warnings = [m for m in messages if m["type"] == "warning"]
    assert all(start < messages.index(m) < finished for m in warnings)
    assert [(m["when"], m["location"], m["message"].split(": ", 1)[1].splitlines()[0]) for m in warnings] == [
        ("runtest", nodeid, "UserWarning: fixture setup"),
        ("runtest", nodeid, "DeprecationWarning: in the test"),
        ("runtest", nodeid, "DeprecationWarning: in the test"),
        ("runtest", nodeid, "UserWarning: fixture teardown"),
    ]


def test_disable_warnings_hides_the_summary_not_the_warnings(tmp_path):
    early, collected, messages = run_session(tmp_path, ["--disable-warnings"])
    assert collected["show_warnings"] is False
    assert len(early) == 2 and sum(m["type"] == "warning" for m in messages) == 4


def test_no_warnings_plugin_records_none(tmp_path):
    early, collected, messages = run_session(tmp_path, ["-p", "no:warnings"])
    assert early == [] and all(m["type"] != "warning" for m in messages)


def test_filterwarnings_ini_and_error_apply(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    ignore:module imported\n    error::DeprecationWarning\n")
    early, _, messages = run_session(tmp_path)
    assert [m["location"] for m in early] == ["conftest.py:5"]
    reports = [m for m in messages if m["type"] == "report" and m["when"] == "call"]
    assert [r["status"] for r in reports] == ["passed", "failed"]
    assert [m["message"].split(": ", 1)[1].splitlines()[0] for m in messages if m["type"] == "warning"] == [
        "UserWarning: fixture setup",
        "UserWarning: fixture teardown",
    ]
