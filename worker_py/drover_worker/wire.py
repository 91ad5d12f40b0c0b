"""The two protocol pipes: batched message writes and validated command reads.

Only the inherited --in-fd/--out-fd descriptors are used, never stdin/stdout/stderr, so
tests that print, write to fd 1/2 or read stdin cannot disturb the protocol. Both fds are
made non-inheritable so test subprocesses do not keep the pipes open.

Messages are queued and written in one os.write per flush: the plugin flushes when a test
starts (so the agent always knows what is in flight) and before blocking for commands.
A dead agent (EPIPE) marks the writer broken instead of raising inside pytest hooks.
"""

import codecs
import json
import os
import select

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _visible_surrogates(error):
    # A lone surrogate (undecodable output, "\udcff") has no UTF-8 form, and JSON
    # readers reject it escaped too. It is sent as pytest's junitxml shows it: "#xDCFF".
    bad = error.object[error.start : error.end]
    return "".join("#x%04X" % ord(char) for char in bad), error.end


codecs.register_error("drover_visible_surrogates", _visible_surrogates)

# Longest command line we accept before calling it malformed: protects against an agent
# that writes garbage without newlines.
_MAX_COMMAND = 64 << 20


class ProtocolError(Exception):
    """A command from the agent that does not follow the protocol."""


class Writer:
    def __init__(self, fd):
        self._fd = fd
        self._parts = []
        self.broken = False

    @property
    def fd(self):
        return self._fd

    def send(self, message):
        self._parts.append(_encode(message))

    def send_raw(self, line):
        """Queues an already encoded message (no trailing newline)."""
        self._parts.append(line)

    def flush(self):
        if not self._parts:
            return
        data = ("\n".join(self._parts) + "\n").encode("utf-8", "drover_visible_surrogates")
        self._parts.clear()
        if self.broken:
            return
        view = memoryview(data)
        try:
            while view:
                try:
                    written = os.write(self._fd, view)
                except BlockingIOError:  # someone made the pipe non-blocking: wait instead
                    _wait(self._fd, select.POLLOUT)
                    continue
                view = view[written:]
        except OSError:
            self.broken = True


class Reader:
    """Reads newline-separated JSON commands; returns them as dicts."""

    def __init__(self, fd):
        self._fd = fd
        self._buffer = b""
        self.eof = False
        # poll, not select: select cannot watch descriptors numbered 1024 and above.
        self._poll = select.poll()
        self._poll.register(fd, select.POLLIN)

    @property
    def fd(self):
        return self._fd

    def read(self, block):
        """Returns the complete commands available now (waiting for one if `block`).

        Returns [] when nothing is available, and sets `eof` when the agent closed the pipe.
        Raises ProtocolError on a line that is not a JSON object with a string "type".
        """
        commands = []
        while not commands and not self.eof:
            if not block and not self._poll.poll(0):
                break
            try:
                chunk = os.read(self._fd, 1 << 16)
            except BlockingIOError:  # a non-blocking descriptor with nothing to read yet
                if block:
                    self._poll.poll()
                    continue
                break
            if not chunk:
                self.eof = True
                break
            self._buffer += chunk
            if b"\n" in self._buffer:
                *lines, self._buffer = self._buffer.split(b"\n")
                commands.extend(_parse(line) for line in lines if line.strip())
            elif len(self._buffer) > _MAX_COMMAND:
                raise ProtocolError("command line longer than %d bytes" % _MAX_COMMAND)
        return commands


def _wait(fd, events):
    poller = select.poll()
    poller.register(fd, events)
    poller.poll()


def _parse(line):
    try:
        command = json.loads(line)
    except ValueError as error:
        raise ProtocolError("malformed command %s: %s" % (_shorten(line), error)) from None
    if not isinstance(command, dict) or not isinstance(command.get("type"), str):
        raise ProtocolError("malformed command %s: not an object with a \"type\"" % _shorten(line))
    return command


def _shorten(line):
    text = line.decode("utf-8", "replace")
    return repr(text if len(text) <= 200 else text[:200] + "...")


def check_indices(command, count):
    """The `indices` of a run/cancel command, validated against `count` collected tests."""
    indices = command.get("indices")
    if not isinstance(indices, list):
        raise ProtocolError("bad %s command: \"indices\" is not a list" % command["type"])
    for index in indices:
        if type(index) is not int:  # bool is an int subclass, and not an index
            raise ProtocolError("bad %s command: index %r is not an integer" % (command["type"], index))
        if not 0 <= index < count:
            raise ProtocolError(
                "bad %s command: index %d out of range (%d tests collected)" % (command["type"], index, count)
            )
    return indices
