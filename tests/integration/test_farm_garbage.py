"""Garbage on the coordinator's ZeroMQ and HTTP ports, from raw TCP connections,
leaves both serving: agents stay connected and a run afterwards still works."""
from __future__ import annotations

import socket

import test_farm
from test_farm import write_slow_suite

farm = test_farm.farm  # the fixture

GARBAGE = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\xff\x00\x00\x00\x00\x00\x00\x00\x01\x7f" + bytes(range(256)) * 4,  # a ZMTP-like greeting, then noise
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,      # a TLS client hello
    b"\x00" * 4096,
]


def spray(port: int) -> None:
    for payload in GARBAGE:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(payload)
            conn.settimeout(0.5)
            try:
                conn.recv(1024)
            except OSError:
                pass


def test_garbage_on_both_ports_leaves_the_coordinator_serving(farm, tmp_path):
    suite = tmp_path / "suite"
    total = write_slow_suite(suite, files=2, tests=2, seconds=0.0)
    farm.start_coordinator()
    farm.start_agent("a1", 1)
    farm.wait_agents(1)
    spray(farm.zmq_port)
    spray(farm.http_port)
    farm.wait_health(lambda health: health.get("agents") == 1, "the coordinator after garbage")
    result = farm.run(suite, "--run-id", "after-garbage")
    assert result.rc == 0, result.describe() + farm.log_text()
    assert f"0 failed, {total} passed" in result.stdout, result.describe()
    assert farm.coordinator is not None and farm.coordinator.poll() is None
