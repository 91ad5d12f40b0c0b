"""Farm mode across real network boundaries: the coordinator in the root network
namespace on a bridge, two agents each in its own network namespace joined to
the bridge by a veth pair, all on a private /24. The agents reach the
coordinator's ZeroMQ port and its HTTP API (workspace bundle) only through
that network, never through loopback.

Needs root and iproute2; skipped with the reason otherwise. Names carry this
process's pid and a random tag so parallel or aborted runs do not collide, and
namespaces and links left behind by dead test processes are removed first.
"""
from __future__ import annotations

import os
import random
import re
import secrets
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

import drover_helpers as h
from test_farm import Farm

PREFIX = "drover-t"  # namespace names and bridge aliases: drover-t<pid>-<tag>


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ip", *args], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip() or result.returncode}")
    return result


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_pid(name: str) -> int | None:
    match = re.match(re.escape(PREFIX) + r"(\d+)-", name)
    return int(match.group(1)) if match else None


def sweep_leftovers() -> None:
    """Namespaces and bridges of test processes that died before cleaning up."""
    for line in ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        pid = _owner_pid(name)
        if pid is not None and not _pid_alive(pid):
            _delete_namespace(name)
    links = ip("-o", "link", "show", "type", "bridge", check=False).stdout
    for match in re.finditer(r"^\d+: ([^:@]+)[:@].*? alias (\S+)", links, re.M):
        pid = _owner_pid(match.group(2) + "-")
        if pid is not None and not _pid_alive(pid):
            ip("link", "del", match.group(1), check=False)


def _delete_namespace(name: str) -> None:
    # Processes left inside (a stuck agent, its workers) would keep nothing alive
    # once the namespace is gone, but they should not outlive the test either.
    for pid in ip("netns", "pids", name, check=False).stdout.split():
        try:
            os.kill(int(pid), 9)
        except (ProcessLookupError, ValueError):
            pass
    ip("netns", "del", name, check=False)


class Network:
    """A bridge in the root namespace (.1) and namespaces hanging off it (.2, .3, ...)."""

    def __init__(self) -> None:
        self.tag = secrets.token_hex(3)
        self.owner = f"{PREFIX}{os.getpid()}"
        self.bridge = f"dv{self.tag}br"  # interface names: at most 15 characters
        self.namespaces: list[str] = []
        self.links: list[str] = []
        self.subnet = self._free_subnet()
        self.host = f"{self.subnet}.1"

    @staticmethod
    def _free_subnet() -> str:
        used = ip("-4", "-o", "addr", "show").stdout + ip("-4", "route", "show", "table", "all").stdout
        for _ in range(200):
            candidate = f"10.{random.randint(100, 254)}.{random.randint(0, 254)}"
            if candidate + "." not in used:
                return candidate
        raise RuntimeError("no free 10.x.y.0/24 subnet")

    def create_bridge(self) -> None:
        ip("link", "add", self.bridge, "type", "bridge")
        self.links.append(self.bridge)
        ip("link", "set", self.bridge, "alias", self.owner)
        ip("addr", "add", f"{self.host}/24", "dev", self.bridge)
        ip("link", "set", self.bridge, "up")

    def namespace(self, index: int) -> str:
        return f"{self.owner}-{self.tag}-{index}"

    def add_namespace(self, index: int) -> None:
        """A namespace with address .(index+1) on the bridge."""
        name = self.namespace(index)
        host_end, ns_end = f"dv{self.tag}h{index}", f"dv{self.tag}n{index}"
        address = f"{self.subnet}.{index + 1}"
        ip("netns", "add", name)
        self.namespaces.append(name)
        ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        self.links.append(host_end)  # deleting one end deletes the pair
        ip("link", "set", ns_end, "netns", name)
        ip("link", "set", host_end, "master", self.bridge)
        ip("link", "set", host_end, "up")
        ip("-n", name, "addr", "add", f"{address}/24", "dev", ns_end)
        ip("-n", name, "link", "set", ns_end, "up")
        ip("-n", name, "link", "set", "lo", "up")

    def unreachable_namespaces(self, indices) -> list[str]:
        """Namespaces from which a TCP connection to the bridge address fails."""
        failed = []
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
            listener.bind((self.host, 0))
            listener.listen(8)
            port = listener.getsockname()[1]
            for index in indices:
                probe = subprocess.run(
                    ["ip", "netns", "exec", self.namespace(index), h.PY, "-c",
                     f"import socket; socket.create_connection(({self.host!r}, {port}), timeout=10).close()"],
                    stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
                if probe.returncode != 0:
                    failed.append(self.namespace(index))
        return failed

    def destroy(self) -> None:
        for name in self.namespaces:
            _delete_namespace(name)
        for link in reversed(self.links):
            if ip("link", "show", link, check=False).returncode == 0:
                ip("link", "del", link, check=False)


@pytest.fixture
def network():
    """The bridge and two namespaces, "1" (.2) and "2" (.3); removed on every exit path."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add)")
    if shutil.which("ip") is None:
        pytest.skip("iproute2's ip is not installed (deploy/install-deps.sh installs it)")
    sweep_leftovers()
    net = Network()
    try:
        try:
            net.create_bridge()
            for index in (1, 2):
                net.add_namespace(index)
        except RuntimeError as error:
            pytest.skip(f"cannot set up network namespaces here: {error}")
        unreachable = net.unreachable_namespaces((1, 2))
        if unreachable:
            pytest.skip(f"namespaces cannot reach {net.host} over the bridge (firewall?): {unreachable}")
        yield net
    finally:
        net.destroy()


class NetnsFarm(Farm):
    """Farm with the coordinator on the bridge address and agents in namespaces."""

    def __init__(self, base: Path, drover: str, net: Network):
        super().__init__(base, drover)
        self.net = net
        self.zmq_port, self.http_port = _free_port(net.host), _free_port(net.host)
        self.endpoint = f"tcp://{net.host}:{self.zmq_port}"
        self.http = f"http://{net.host}:{self.http_port}"

    def start_coordinator(self, *extra: str) -> None:
        # A non-loopback address without CURVE keys needs --insecure.
        self.coordinator = self._spawn("coordinator", [
            self.drover, "coordinator", "--bind", self.endpoint, "--http", f"{self.net.host}:{self.http_port}",
            "--data", str(self.data), "--insecure", *extra])
        self.wait_health(lambda health: True, "the coordinator's HTTP API")

    def start_agent_in(self, namespace: str, name: str, workers: int) -> subprocess.Popen:
        proc = self._spawn(name, [
            "ip", "netns", "exec", namespace,
            self.drover, "agent", "--connect", self.endpoint, "--http", self.http, "--name", name,
            "--workers", str(workers), "--python", h.PY, "--workdir", str(self.base / f"{name}-work")])
        self.agents[name] = proc
        return proc


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def test_agents_in_separate_network_namespaces_match_plain_pytest(network, drover, copy_suite, tmp_path):
    farm = NetnsFarm(tmp_path, drover, network)
    try:
        farm.start_coordinator()
        placed = {}
        for index, name in ((1, "a1"), (2, "a2")):
            namespace = network.namespace(index)
            # The namespace reaches the coordinator through the bridge, and has no other way out.
            assert ip("-n", namespace, "-4", "-o", "addr", "show").stdout.count("inet ") == 2  # lo + veth
            placed[name] = namespace
            farm.start_agent_in(namespace, name, 1)
        farm.wait_agents(2)
        for name, namespace in placed.items():
            pids = ip("netns", "pids", namespace).stdout.split()
            assert str(farm.agents[name].pid) in pids, f"agent {name} is not in namespace {namespace}"

        plain_dir = copy_suite("outcomes")
        farm_dir = copy_suite("outcomes")
        plain = h.run_pytest(plain_dir, "--junitxml", str(tmp_path / "pytest.xml"))
        result = farm.run(farm_dir, "-v", "--run-id", "netns", "--junitxml", str(tmp_path / "farm.xml"))
        assert result.rc == plain.rc, result.describe() + farm.log_text()
        expected = h.parse_junit(tmp_path / "pytest.xml").outcome_multiset()
        actual = h.parse_junit(tmp_path / "farm.xml").outcome_multiset()
        diff = h.multiset_diff(expected, actual)
        assert not diff, f"per-test outcomes differ from plain pytest:\n{diff}\n{result.describe()}"
        assert h.summary_counts(result.stdout) == h.summary_counts(plain.stdout), result.describe()
        # Both agents fetched the bundle over the bridge and ran tests: with one slot
        # each (two leases of credit), the first agent cannot take every module.
        workers = re.findall(r" \[([^/\]]+)/[^\]]*\]$", result.stdout, re.M)
        assert set(workers) == {"a1", "a2"}, result.describe()
        for name in placed:
            assert list((tmp_path / f"{name}-work").rglob("*.py")), f"agent {name} unpacked no workspace"
    finally:
        farm.stop()
        h.kill_processes_in(tmp_path)
