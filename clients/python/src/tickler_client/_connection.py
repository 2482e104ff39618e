"""One socket to the daemon: newline framing, deadlines, and the request and reply lines."""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Dict, Optional

from .errors import BadReply, NotOwner, RequestTooLarge, TicklerError, error_for

#: The protocol version this client speaks.
PROTOCOL_VERSION = 1
#: The longest request the daemon reads, newline included (it refuses a longer one and closes
#: the connection); the client refuses one before sending it.
REQUEST_LEN_MAX = 1_048_576

_RECV_SIZE = 64 * 1024


class Closed(Exception):
    """The daemon closed (or reset) the connection."""


def encode_request(request_id: Any, cmd: str, args: Optional[Dict[str, Any]]) -> bytes:
    """A request line, newline included; :class:`RequestTooLarge` past the daemon's limit."""
    request: Dict[str, Any] = {"v": PROTOCOL_VERSION, "id": request_id, "cmd": cmd}
    if args is not None:
        request["args"] = args
    text = json.dumps(request, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    line = text.encode("utf-8") + b"\n"
    if len(line) > REQUEST_LEN_MAX:
        raise RequestTooLarge(
            "request_too_large",
            f"the {cmd} request is {len(line):,} bytes, more than the {REQUEST_LEN_MAX:,} the "
            "daemon reads (newline included); it was not sent",
            cmd=cmd,
        )
    return line


def decode_reply(line: bytes, cmd: Optional[str]) -> Dict[str, Any]:
    """A reply line as a dict with a boolean ``ok``; :class:`BadReply` for anything else."""
    try:
        reply = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise BadReply(f"the reply is not JSON ({err}): {_excerpt(line)}", cmd=cmd) from None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        raise BadReply(f"the reply is not a reply object: {_excerpt(line)}", cmd=cmd)
    if reply.get("v", PROTOCOL_VERSION) != PROTOCOL_VERSION:
        raise BadReply(
            f"the reply is of protocol version {reply.get('v')!r}; this client speaks "
            f"version {PROTOCOL_VERSION}",
            cmd=cmd,
        )
    if not reply["ok"] and not isinstance(reply.get("error"), dict):
        raise BadReply(f"an error reply without an error object: {_excerpt(line)}", cmd=cmd)
    return reply


def reply_error(reply: Dict[str, Any], cmd: Optional[str]) -> TicklerError:
    """The exception of an error reply (one :func:`decode_reply` accepted)."""
    body = reply["error"]
    error = error_for(str(body.get("code", "")), str(body.get("message", "")), cmd=cmd)
    if isinstance(error, NotOwner) and isinstance(body.get("owner"), dict):
        error.owner = body["owner"]
    return error


def _excerpt(line: bytes) -> str:
    text = line[:200].decode("utf-8", errors="replace")
    return text + ("..." if len(line) > 200 else "")


class Connection:
    """A connected Unix socket carrying newline-delimited JSON, one line at a time.

    Reads keep what arrived past a newline for the next line, so replies split across reads
    (or several in one read) are framed correctly.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        # Where to look for the next newline: the bytes before it were searched already.
        self._scanned = 0

    @classmethod
    def open(cls, path: str, connect_timeout: float) -> Connection:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(connect_timeout)
            sock.connect(path)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def close(self) -> None:
        self._sock.close()

    def send(self, data: bytes, deadline: Optional[float]) -> None:
        """Sends all of ``data`` by ``deadline`` (a ``time.monotonic()`` value), else
        :class:`socket.timeout`."""
        remaining = _remaining(deadline)
        if remaining == 0:
            raise socket.timeout("timed out")
        self._sock.settimeout(remaining)
        self._sock.sendall(data)

    def read_line(self, deadline: Optional[float]) -> bytes:
        """The next line without its newline. :class:`Closed` at the end of the stream (a
        partial line then is lost), :class:`socket.timeout` when ``deadline`` passes first
        (a deadline already past still takes what has arrived); what was read of a partial
        line is kept for the next call."""
        while True:
            newline = self._buffer.find(b"\n", self._scanned)
            if newline >= 0:
                line = bytes(self._buffer[:newline])
                del self._buffer[: newline + 1]
                self._scanned = 0
                return line
            self._scanned = len(self._buffer)
            self._sock.settimeout(_remaining(deadline))
            try:
                chunk = self._sock.recv(_RECV_SIZE)
            except BlockingIOError:  # the deadline had passed, and nothing more is there
                raise socket.timeout("timed out") from None
            except ConnectionResetError as err:
                raise Closed(str(err)) from None
            if not chunk:
                raise Closed("the daemon closed the connection")
            self._buffer += chunk

    def buffered_line(self) -> Optional[bytes]:
        """A line that already arrived, without waiting (the reason a daemon gave before
        closing the connection), or ``None``."""
        try:
            self._sock.settimeout(0.0)
            while self._buffer.find(b"\n") < 0:
                chunk = self._sock.recv(_RECV_SIZE)
                if not chunk:
                    return None
                self._buffer += chunk
        except OSError:  # nothing more there (BlockingIOError), or reset
            return None
        return self.read_line(None)

    def is_idle(self) -> bool:
        """Whether the connection is open with nothing waiting on it: the state it is in
        between two requests. A closed one (the daemon restarted, or closed it after its idle
        timeout) or one holding an unasked-for line is not fit for the next request."""
        if self._buffer:
            return False
        try:
            self._sock.settimeout(0.0)
            self._sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return True
        except OSError:
            return False
        # Read without blocking: b"" (the daemon closed the connection), or a line nobody
        # asked for.
        return False


def _remaining(deadline: Optional[float]) -> Optional[float]:
    """Seconds left until ``deadline``: ``None`` for none, ``0`` (non-blocking) once past."""
    if deadline is None:
        return None
    return max(0.0, deadline - time.monotonic())
