"""``watch``: past events streamed as the daemon records them."""

from __future__ import annotations

import socket
import time
from typing import Optional, cast

from ._connection import Closed, Connection, decode_reply, reply_error
from .errors import ConnectionLost, TicklerError, TicklerTimeout, WatchLagged
from .results import WatchEvent

__all__ = ["Watch"]


class Watch:
    """Past events as the daemon records them: an iterator of ``{"entity", "past_event"}``.

    Made by :meth:`Client.watch`, on a connection of its own; close it (or use it as a context
    manager) when done. Each ``next()`` waits up to the watch's ``timeout``
    (:class:`~tickler_client.TicklerTimeout` then; the watch stays usable); :meth:`poll`
    returns ``None`` instead.

    A watcher too slow for the daemon gets :class:`~tickler_client.WatchLagged` raised in place
    of the events it missed (``missed`` says how many; ``history`` has them). The watch stays
    open: catch it, catch up, and iterate on. When the daemon goes away (a restart) the watch
    raises :class:`~tickler_client.ConnectionLost` and ends: events recorded meanwhile are in
    ``history``; watch again. It is not reconnected silently, which would hide the gap.
    """

    def __init__(self, connection: Connection, socket_path: str, timeout: Optional[float]) -> None:
        self._connection: Optional[Connection] = connection
        self.socket_path = socket_path
        self.timeout = timeout

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> WatchEvent:
        if self._connection is None:
            raise StopIteration
        event = self.poll(self.timeout)
        if event is None:
            raise TicklerTimeout(
                f"no past event from {self.socket_path} within {self.timeout} s",
                socket_path=self.socket_path,
                timeout=self.timeout,
                cmd="watch",
            )
        return event

    def poll(self, timeout: Optional[float]) -> Optional[WatchEvent]:
        """The next event, waiting up to ``timeout`` seconds (``None``: for ever, ``0``: not
        at all); ``None`` if none came."""
        connection = self._connection
        if connection is None:
            raise ValueError("the watch is closed")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            raw = connection.read_line(deadline)
        except socket.timeout:
            return None
        except (Closed, OSError) as err:
            self.close()
            raise ConnectionLost(
                f"the watch on {self.socket_path} ended ({err}); past events recorded since "
                "are in history: watch again",
                socket_path=self.socket_path,
                cmd="watch",
            ) from None
        try:
            reply = decode_reply(raw, "watch")
        except TicklerError:
            self.close()
            raise
        if reply["ok"]:
            return cast(WatchEvent, reply["result"])
        error = reply_error(reply, "watch")
        if not isinstance(error, WatchLagged):
            self.close()
        raise error

    def close(self) -> None:
        """Ends the subscription."""
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    @property
    def closed(self) -> bool:
        return self._connection is None
