"""Python values to the protocol's text, and where the daemon's socket is.

Instants travel as RFC 3339 strings (the daemon prints them in UTC with a ``Z``), durations as
number-unit pairs (``"2d"``, ``"-1h30m"``, ``"500ms"``), local times of day as ``"HH:MM"``.
The client accepts the standard library's types and passes strings through untouched: the
daemon checks them and names a bad value in its ``invalid_arguments`` reply.
"""

from __future__ import annotations

import os
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "AttrValue",
    "DEFAULT_SOCKET",
    "Duration",
    "Instant",
    "TimeOfDay",
    "format_duration",
    "format_instant",
    "format_time_of_day",
    "resolve_socket_path",
]

#: An instant: an aware :class:`~datetime.datetime`, or an RFC 3339 string with an offset.
Instant = Union[datetime, str]
#: A duration: a :class:`~datetime.timedelta` (whole milliseconds), or a string such as ``"9d"``.
Duration = Union[timedelta, str]
#: An attribute's value: boolean, integer, string, list of strings (or of string tables);
#: ``None`` clears the attribute.
AttrValue = Union[bool, int, str, Sequence[str], Sequence[Mapping[str, str]], None]
#: A local time of day: a :class:`~datetime.time` (whole minutes), or ``"HH:MM"``.
TimeOfDay = Union[time, str]

#: Where ``tickler serve`` puts its socket by default, relative to the directory it runs in.
DEFAULT_SOCKET = os.path.join("data", "admin", "tickler.sock")

_DURATION_UNITS_MS = (
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
)


def format_instant(value: Instant, name: str = "instant") -> str:
    """The protocol's text for an instant.

    An aware datetime becomes UTC with a ``Z`` (``2026-03-11T10:00:00Z``), keeping its
    fraction of a second. A naive datetime is refused: it names no instant, and guessing the
    zone (the server's? the user's?) is how reminders end up an hour off. A string is passed
    through for the daemon to check.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"{name}: naive datetime {value.isoformat()} has no time zone, so it names no "
                "instant; pass an aware datetime (e.g. datetime(..., tzinfo=timezone.utc) or "
                "with a zoneinfo.ZoneInfo) or an RFC 3339 string with an offset"
            )
        utc = value.astimezone(timezone.utc).replace(tzinfo=None)
        if utc.microsecond == 0:
            timespec = "seconds"
        elif utc.microsecond % 1000 == 0:
            timespec = "milliseconds"
        else:
            timespec = "microseconds"
        return utc.isoformat(timespec=timespec) + "Z"
    if isinstance(value, date):
        raise TypeError(
            f"{name}: {value!r} is a date, not an instant; pass an aware datetime (which "
            "hour, in which zone?) or an RFC 3339 string"
        )
    raise TypeError(
        f"{name}: expected an aware datetime or an RFC 3339 string, not {type(value).__name__}"
    )


def format_duration(value: Duration, name: str = "duration") -> str:
    """The protocol's text for a duration: ``timedelta(days=1, hours=6)`` is ``"1d6h"``.

    A string is passed through for the daemon to check (``"9d"``, ``"-1h30m"``). The daemon
    counts whole milliseconds: a timedelta with a fraction of one is refused rather than
    rounded.
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, timedelta):
        raise TypeError(
            f'{name}: expected a timedelta or a duration string such as "9d", '
            f"not {type(value).__name__}"
        )
    total_us = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if total_us % 1_000:
        raise ValueError(
            f"{name}: {value!r} has a fraction of a millisecond; durations are whole milliseconds"
        )
    remaining_ms = abs(total_us) // 1_000
    if remaining_ms == 0:
        return "0s"
    parts = []
    for unit, size_ms in _DURATION_UNITS_MS:
        count, remaining_ms = divmod(remaining_ms, size_ms)
        if count:
            parts.append(f"{count}{unit}")
    return ("-" if total_us < 0 else "") + "".join(parts)


def format_time_of_day(value: TimeOfDay, name: str = "time") -> str:
    """The protocol's text for a local time of day: ``time(9, 0)`` is ``"09:00"``."""
    if isinstance(value, str):
        return value
    if not isinstance(value, time):
        raise TypeError(f'{name}: expected a datetime.time or "HH:MM", not {type(value).__name__}')
    if value.second or value.microsecond:
        raise ValueError(f"{name}: {value.isoformat()} is not a whole minute (HH:MM)")
    if value.tzinfo is not None:
        raise ValueError(
            f"{name}: {value.isoformat()} carries a zone; a local time of day is read in the "
            "recipient's zone (give that as zone)"
        )
    return value.strftime("%H:%M")


def resolve_socket_path(
    explicit: Union[str, os.PathLike[str], None] = None,
    environ: Optional[Mapping[str, str]] = None,
) -> Tuple[str, str]:
    """The daemon's socket as an absolute path, and how it was chosen (for error messages).

    In order: ``explicit``; the environment's ``TICKLER_SOCKET``; ``TICKLER_DATA_DIR`` +
    ``admin/tickler.sock``; ``./data/admin/tickler.sock``, the daemon's default when it runs in
    the current directory. The CLI chooses the same way.
    """
    env = os.environ if environ is None else environ
    if explicit is not None:
        path, origin = os.fsdecode(os.fspath(explicit)), "the socket_path argument"
    elif env.get("TICKLER_SOCKET"):
        path, origin = env["TICKLER_SOCKET"], "TICKLER_SOCKET"
    elif env.get("TICKLER_DATA_DIR"):
        path = os.path.join(env["TICKLER_DATA_DIR"], "admin", "tickler.sock")
        origin = "TICKLER_DATA_DIR"
    else:
        path, origin = DEFAULT_SOCKET, "the default, ./" + DEFAULT_SOCKET
    if not path:
        raise ValueError("socket_path: empty path")
    return os.path.abspath(path), origin
