"""`drover durations push` into a coordinator's history (PUT /api/v1/durations),
behind its bearer token, read back with `drover durations pull`, and used to
plan the next farm run."""
from __future__ import annotations

import json
from pathlib import Path


import drover_helpers as h
import test_farm
from test_farm import free_port


farm = test_farm.farm  # the fixture


TOKEN = "t0ken-for-tests"


def start_with_token(farm, tmp_path: Path) -> None:
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n")
    config = tmp_path / "coordinator.yaml"
    config.write_text(f"http_token_file: {token_file}\n")
    farm.start_coordinator("--config", str(config))


def one_line_error(result: h.RunResult) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ERROR: "), result.describe()
    return lines[0]


def test_push_then_pull_returns_the_pushed_values(farm, tmp_path):
    start_with_token(farm, tmp_path)
    first = tmp_path / "first.json"
    first.write_text(json.dumps({"a.py::test_x": 1.5, "a.py::test_y": 0.25, "b.py::test_z[1-2]": 3}))
    pushed = farm.tool("durations", "push", "--server", farm.http, "--token", TOKEN, "-f", str(first))
    assert pushed.rc == 0, pushed.describe()
    assert pushed.stdout == "" and pushed.stderr == "", pushed.describe()

    pulled = tmp_path / "pulled.json"
    pull = farm.tool("durations", "pull", "--server", farm.http, "--token", TOKEN, "-o", str(pulled))
    assert pull.rc == 0, pull.describe()
    assert json.loads(pulled.read_text()) == {"a.py::test_x": 1.5, "a.py::test_y": 0.25, "b.py::test_z[1-2]": 3}

    # A second push replaces the values it names and keeps the others. Without -f
    # it sends ./.test_durations; the token may come from $DROVER_TOKEN.
    (tmp_path / ".test_durations").write_text(json.dumps({"a.py::test_y": 9.0, "c.py::test_new": 0.5}))
    again = h.run_process([farm.drover, "durations", "push", "--server", farm.http], tmp_path,
                          h.clean_env({"DROVER_TOKEN": TOKEN}), 60)
    assert again.rc == 0, again.describe()
    pull = farm.tool("durations", "pull", "--server", farm.http, "--token", TOKEN, "-o", str(pulled))
    assert pull.rc == 0, pull.describe()
    assert json.loads(pulled.read_text()) == {
        "a.py::test_x": 1.5, "a.py::test_y": 9.0, "b.py::test_z[1-2]": 3, "c.py::test_new": 0.5}


def test_push_refuses_bad_input_and_bad_token_with_one_line(farm, tmp_path):
    start_with_token(farm, tmp_path)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"a.py::test_x": 1.0}))

    missing = farm.tool("durations", "push", "--server", farm.http, "--token", TOKEN, "-f", str(tmp_path / "nope.json"))
    assert missing.rc == 4
    assert one_line_error(missing) == f"ERROR: durations file not found: {tmp_path / 'nope.json'}"

    for name, text, message in [
        ("broken.json", '{"a.py::test_x": 1.0,', "invalid JSON"),
        ("list.json", "[1, 2]", "not a JSON object of node id -> seconds"),
        ("string.json", '{"a.py::test_x": "1.0"}', "not a JSON object of node id -> seconds"),
        ("negative.json", '{"a.py::test_x": -2}', "negative duration for 'a.py::test_x'"),
    ]:
        bad = tmp_path / name
        bad.write_text(text)
        result = farm.tool("durations", "push", "--server", farm.http, "--token", TOKEN, "-f", str(bad))
        assert result.rc == 4, result.describe()
        assert one_line_error(result) == f"ERROR: {bad}: {message}"

    no_token = farm.tool("durations", "push", "--server", farm.http, "-f", str(good))
    assert no_token.rc not in (0, 4), no_token.describe()
    assert "HTTP 401" in one_line_error(no_token)
    wrong = farm.tool("durations", "push", "--server", farm.http, "--token", "wrong", "-f", str(good))
    assert wrong.rc not in (0, 4) and "HTTP 401" in one_line_error(wrong)

    nobody = f"http://127.0.0.1:{free_port()}"
    unreachable = farm.tool("durations", "push", "--server", nobody, "--token", TOKEN, "-f", str(good))
    assert unreachable.rc not in (0, 4), unreachable.describe()
    assert nobody in one_line_error(unreachable)

    # Nothing above reached the history.
    pulled = tmp_path / "pulled.json"
    pull = farm.tool("durations", "pull", "--server", farm.http, "--token", TOKEN, "-o", str(pulled))
    assert pull.rc == 0, pull.describe()
    assert json.loads(pulled.read_text()) == {}


def test_farm_run_is_planned_from_pushed_durations(farm, tmp_path):
    # Four tests, each appending its parameter to a log; one agent with one worker
    # runs them in lease order, and leases go longest first by the history.
    suite = h.write_suite(tmp_path / "order", {})
    (suite / "test_order.py").write_text(
        "import os\nimport pytest\n\n"
        "@pytest.mark.parametrize('n', range(4))\n"
        "def test_n(n):\n"
        "    with open(os.environ['FARM_ORDER_LOG'], 'a') as log:\n"
        "        log.write(f'{n}\\n')\n")
    history = tmp_path / "history.json"
    history.write_text(json.dumps({f"test_order.py::test_n[{n}]": seconds
                                   for n, seconds in enumerate([0.1, 0.2, 5.0, 1.0])}))
    farm.start_coordinator()
    pushed = farm.tool("durations", "push", "--server", farm.http, "-f", str(history))
    assert pushed.rc == 0, pushed.describe()
    order_log = tmp_path / "order.log"
    farm.start_agent("a1", 1, env={"FARM_ORDER_LOG": str(order_log)})
    farm.wait_agents(1)
    result = farm.run(suite, "--group-by", "none")
    assert result.rc == 0, result.describe() + farm.log_text()
    # The two long ones first, longest first (without the history: collection order).
    # The short ones may be batched into one unit, which runs in collection order.
    order = order_log.read_text().split()
    assert sorted(order) == ["0", "1", "2", "3"] and order[:2] == ["2", "3"], order
