"""The worker protocol's message shapes (PROTOCOL.md, "Worker protocol"), for the tests.

check_worker_message()/check_command() raise AssertionError when a decoded message does
not have exactly the documented fields with the documented types.
"""

import re

_INT = int
_NUMBER = (int, float)
_STR = str

STATUSES = {"passed", "failed", "skipped", "xfailed", "xpassed", "error", "", "other"}
OUTCOMES = {"passed", "failed", "skipped"}
PHASES = {"setup", "call", "teardown"}
WARNING_PHASES = {"config", "collect", "runtest"}  # pytest_warning_recorded's `when`

# type -> {field: type}; every field is required, optional ones are listed separately.
WORKER_MESSAGES = {
    "hello": {"protocol": _INT, "pid": _INT, "python": _STR, "pytest": _STR},
    "fatal": {"message": _STR},
    "collected": {"rootdir": _STR, "hash": _STR, "items": list, "errors": list, "skips": list},
    "start": {"index": _INT},
    "report": {
        "index": _INT,
        "when": _STR,
        "outcome": _STR,
        "status": _STR,
        "duration": _NUMBER,
        "longrepr": _STR,
        "message": _STR,
        "sections": list,
    },
    "finished": {"index": _INT},
    "cancelled": {"indices": list},
    "bye": {"exitstatus": _INT},
    "warning": {"when": _STR, "nodeid": _STR, "location": _STR, "message": _STR},
    "exit": {"index": _INT, "returncode": _INT, "message": _STR, "detail": _STR},
    "nosession": {"exitstatus": _INT},
}
WORKER_OPTIONAL = {
    "hello": {"features": list},
    "collected": {
        "deselected": _INT,
        "junit": dict,
        "collectonly": bool,
        "maxfail": _INT,
        "show_warnings": bool,
        "reportchars": _STR,
        "verbose": _INT,
        "junitxml": _STR,
        "continue_on_collection_errors": bool,
        "coverage": bool,
        "tbstyle": _STR,
        "header": list,
    },
    "report": {"crash": _STR, "properties": list, "skip_where": _STR, "category": _STR, "letter": _STR, "word": _STR,
               "crash_line": _STR, "head_line": _STR},
}
JUNIT = {"suite_name": _STR, "family": _STR, "logging": _STR, "duration_report": _STR, "error": _STR}

COMMANDS = {"run": {"indices": list}, "cancel": {"indices": list}, "stop": {}, "shutdown": {}}

ITEM = {"nodeid": _STR, "file": _STR, "cls": _STR, "line": _INT, "markers": list}
ERROR = {"nodeid": _STR, "longrepr": _STR}
SKIP = {"nodeid": _STR, "file": _STR, "line": _INT, "reason": _STR}


def _check_fields(value, fields, optional, what):
    assert isinstance(value, dict), "%s is not an object: %r" % (what, value)
    keys = set(value) - {"type"}
    assert set(fields) <= keys, "%s lacks %s" % (what, sorted(set(fields) - keys))
    extra = keys - set(fields) - set(optional)
    assert not extra, "%s has undocumented fields %s" % (what, sorted(extra))
    for name, kind in {**fields, **optional}.items():
        if name in value:
            field = value[name]
            assert isinstance(field, kind) and (kind is bool or not isinstance(field, bool)), "%s.%s has type %s" % (
                what,
                name,
                type(field).__name__,
            )


def _check_index(value, what):
    assert type(value) is int and value >= 0, "%s: bad index %r" % (what, value)


def check_worker_message(message):
    assert isinstance(message, dict) and isinstance(message.get("type"), str), message
    kind = message["type"]
    assert kind in WORKER_MESSAGES, "unknown worker message type %r" % kind
    _check_fields(message, WORKER_MESSAGES[kind], WORKER_OPTIONAL.get(kind, {}), kind)
    if kind == "hello":
        assert message["protocol"] == 1
        assert re.fullmatch(r"\d+\.\d+\.\d+", message["python"])
        assert all(isinstance(feature, str) for feature in message.get("features", []))
    elif kind == "collected":
        assert re.fullmatch(r"[0-9a-f]{64}", message["hash"]), message["hash"]
        for item in message["items"]:
            _check_fields(item, ITEM, {}, "collected.items[]")
            assert item["line"] >= 0 and all(isinstance(marker, str) for marker in item["markers"])
            assert "\\" not in item["file"]
        for error in message["errors"]:
            _check_fields(error, ERROR, {"message": _STR}, "collected.errors[]")
        for skip in message["skips"]:
            _check_fields(skip, SKIP, {}, "collected.skips[]")
            assert skip["line"] >= 0
        junit = dict(message.get("junit", {}))
        assert isinstance(junit.pop("log_passing_tests", True), bool), message["junit"]
        _check_fields(junit, {}, JUNIT, "collected.junit")
    elif kind in ("start", "finished"):
        _check_index(message["index"], kind)
    elif kind == "report":
        _check_index(message["index"], kind)
        assert message["when"] in PHASES, message["when"]
        assert message["status"] in STATUSES, message["status"]
        # A plugin's own category may come with its own outcome (pytest-rerunfailures: "rerun").
        assert message["outcome"] in OUTCOMES or message["status"] == "other", message["outcome"]
        assert (message["status"] == "other") == bool(message.get("category")), message
        assert message["duration"] >= 0
        assert "\n" not in message["message"], message["message"]
        for pair in message["sections"] + message.get("properties", []):
            assert isinstance(pair, list) and len(pair) == 2, pair
            assert all(isinstance(part, str) for part in pair), pair
    elif kind == "warning":
        assert message["when"] in WARNING_PHASES, message["when"]
        assert message["message"], message
        if message["when"] == "runtest":
            assert message["nodeid"] and message["location"] == message["nodeid"], message
    elif kind == "cancelled":
        for index in message["indices"]:
            _check_index(index, kind)


def check_command(command):
    assert isinstance(command, dict) and isinstance(command.get("type"), str), command
    kind = command["type"]
    assert kind in COMMANDS, "unknown command type %r" % kind
    _check_fields(command, COMMANDS[kind], {}, kind)
    for index in command.get("indices", []):
        _check_index(index, kind)
