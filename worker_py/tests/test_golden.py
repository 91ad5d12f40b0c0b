"""The golden protocol files (tests/golden/worker/*.jsonl) that the C++ codec tests decode too.

Each line must decode and match PROTOCOL.md's field names and types; together they cover
every message type; and a fresh session of the real worker still has the recorded shape
(regenerate with make_golden.py when the protocol grows).
"""

import json

from make_golden import GOLDEN_DIR, command_lines, record_session
from worker_schema import COMMANDS, STATUSES, WORKER_MESSAGES, check_command, check_worker_message


def load(name):
    text = (GOLDEN_DIR / name).read_text(encoding="utf-8")
    assert text.endswith("\n") and "\r" not in text
    return [json.loads(line) for line in text.splitlines()]


def test_worker_lines_follow_the_protocol():
    messages = load("worker_session.jsonl") + load("worker_fatal.jsonl")
    for message in messages:
        check_worker_message(message)
    assert {message["type"] for message in messages} == set(WORKER_MESSAGES)
    reports = [message for message in messages if message["type"] == "report"]
    # "other" (a plugin's own category) needs a plugin: test_outcomes.py covers it.
    assert {report["status"] for report in reports} == STATUSES - {"other"}
    assert any(any("[drover: output truncated," in text for _, text in r["sections"]) for r in reports)
    collected = next(message for message in messages if message["type"] == "collected")
    assert collected["errors"] and collected["skips"] and any(item["cls"] for item in collected["items"])


def test_agent_lines_follow_the_protocol():
    commands = load("agent_commands.jsonl")
    for command in commands:
        check_command(command)
    assert {command["type"] for command in commands} == set(COMMANDS)
    assert [json.dumps(c, separators=(",", ":")) for c in commands] == command_lines()


def shape(message):
    kept = {"type", "index", "when", "outcome", "status", "indices", "exitstatus", "protocol", "hash"}
    result = {key: value for key, value in message.items() if key in kept}
    result["keys"] = sorted(message)
    if message["type"] == "collected":
        result["items"] = [item["nodeid"] for item in message["items"]]
        result["errors"] = [error["nodeid"] for error in message["errors"]]
        result["skips"] = message["skips"]
    return result


def test_a_fresh_session_matches_the_golden_file(tmp_path):
    fresh = [shape(json.loads(line)) for line in record_session(tmp_path)]
    golden = [shape(message) for message in load("worker_session.jsonl")]
    assert fresh == golden
