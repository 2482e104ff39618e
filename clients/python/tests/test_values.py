"""Python values become the protocol's text; the socket is found as the CLI finds it."""

from __future__ import annotations

import os
import pickle
import unittest
from datetime import date, datetime, time, timedelta, timezone
from typing import Dict, Optional
from unittest import mock
from zoneinfo import ZoneInfo

import support  # noqa: F401  (puts this checkout's client first on the path)

from tickler_client import (
    Client,
    Conflict,
    ConnectionLost,
    TicklerError,
    TicklerUnavailable,
    UnknownEntity,
    error_for,
    format_duration,
    format_instant,
    format_time_of_day,
)


class InstantTests(unittest.TestCase):
    def test_an_aware_datetime_is_sent_in_utc_with_a_z(self) -> None:
        paris = ZoneInfo("Europe/Paris")
        self.assertEqual(
            format_instant(datetime(2026, 3, 11, 11, 0, tzinfo=paris)), "2026-03-11T10:00:00Z"
        )
        self.assertEqual(
            format_instant(datetime(2026, 3, 11, 10, 0, tzinfo=timezone(timedelta(hours=-5)))),
            "2026-03-11T15:00:00Z",
        )

    def test_a_fraction_of_a_second_is_kept(self) -> None:
        self.assertEqual(
            format_instant(datetime(2026, 3, 11, 10, 0, 0, 250_000, tzinfo=timezone.utc)),
            "2026-03-11T10:00:00.250Z",
        )
        self.assertEqual(
            format_instant(datetime(2026, 3, 11, 10, 0, 0, 250_001, tzinfo=timezone.utc)),
            "2026-03-11T10:00:00.250001Z",
        )

    def test_a_naive_datetime_is_refused_naming_the_argument(self) -> None:
        with self.assertRaises(ValueError) as raised:
            format_instant(datetime(2026, 3, 11, 10, 0), "due_at")
        self.assertIn("due_at", str(raised.exception))
        self.assertIn("naive", str(raised.exception))

    def test_a_client_method_refuses_a_naive_datetime_before_connecting(self) -> None:
        client = Client("/nonexistent/tickler.sock", retries=0)
        with self.assertRaises(ValueError) as raised:
            client.due_move("due/review-1", datetime(2026, 3, 11, 10, 0))
        self.assertIn("due_at", str(raised.exception))

    def test_a_string_is_passed_through_for_the_daemon_to_check(self) -> None:
        self.assertEqual(format_instant("2026-03-11T11:00:00+01:00"), "2026-03-11T11:00:00+01:00")

    def test_a_date_is_refused_as_not_an_instant(self) -> None:
        with self.assertRaises(TypeError):
            format_instant(date(2026, 3, 11))  # type: ignore[arg-type]


class DurationTests(unittest.TestCase):
    def test_a_timedelta_is_written_in_number_unit_pairs(self) -> None:
        self.assertEqual(format_duration(timedelta(days=9)), "9d")
        self.assertEqual(format_duration(timedelta(hours=1, minutes=30)), "1h30m")
        self.assertEqual(format_duration(timedelta(weeks=1, seconds=1, milliseconds=5)), "7d1s5ms")
        self.assertEqual(format_duration(timedelta(0)), "0s")

    def test_a_negative_timedelta_takes_a_sign(self) -> None:
        self.assertEqual(format_duration(-timedelta(hours=1, minutes=30)), "-1h30m")

    def test_a_fraction_of_a_millisecond_is_refused_not_rounded(self) -> None:
        with self.assertRaises(ValueError):
            format_duration(timedelta(microseconds=1500), "by")

    def test_a_string_is_passed_through(self) -> None:
        self.assertEqual(format_duration("3d"), "3d")

    def test_a_time_of_day_is_hours_and_minutes(self) -> None:
        self.assertEqual(format_time_of_day(time(9, 5)), "09:05")
        with self.assertRaises(ValueError):
            format_time_of_day(time(9, 5, 30))


class SocketPathTests(unittest.TestCase):
    def path(self, environ: Dict[str, str], explicit: Optional[str] = None) -> str:
        with mock.patch.dict(os.environ, environ, clear=True):
            return Client(explicit).socket_path

    def test_the_argument_wins_over_the_environment(self) -> None:
        self.assertEqual(
            self.path({"TICKLER_SOCKET": "/run/other.sock"}, "/run/tickler.sock"),
            "/run/tickler.sock",
        )

    def test_tickler_socket_wins_over_tickler_data_dir(self) -> None:
        self.assertEqual(
            self.path({"TICKLER_SOCKET": "/run/t.sock", "TICKLER_DATA_DIR": "/srv/tickler"}),
            "/run/t.sock",
        )

    def test_tickler_data_dir_gives_its_admin_socket(self) -> None:
        self.assertEqual(
            self.path({"TICKLER_DATA_DIR": "/srv/tickler"}), "/srv/tickler/admin/tickler.sock"
        )

    def test_the_default_is_the_daemons_under_the_current_directory(self) -> None:
        self.assertEqual(self.path({}), os.path.join(os.getcwd(), "data/admin/tickler.sock"))


class ErrorTests(unittest.TestCase):
    def test_an_error_code_raises_the_class_named_after_it(self) -> None:
        error = error_for("unknown_entity", "unknown entity due/nope", cmd="show")
        self.assertIsInstance(error, UnknownEntity)
        self.assertEqual(
            (error.code, error.message, error.cmd),
            ("unknown_entity", "unknown entity due/nope", "show"),
        )
        self.assertEqual(str(error), "unknown_entity: unknown entity due/nope")

    def test_a_code_this_client_does_not_know_keeps_its_code(self) -> None:
        error = error_for("brand_new_code", "something new")
        self.assertIs(type(error), TicklerError)
        self.assertEqual(error.code, "brand_new_code")

    def test_errors_survive_pickling_with_their_fields(self) -> None:
        conflict = pickle.loads(pickle.dumps(error_for("conflict", "a different recipient")))
        self.assertIsInstance(conflict, Conflict)
        self.assertEqual(conflict.message, "a different recipient")
        lost = pickle.loads(pickle.dumps(ConnectionLost("broke", socket_path="/s", cmd="x")))
        self.assertIsInstance(lost, TicklerUnavailable)
        self.assertEqual((lost.code, lost.socket_path, lost.cmd), ("connection_lost", "/s", "x"))

    def test_unavailable_is_a_connection_error(self) -> None:
        self.assertTrue(issubclass(TicklerUnavailable, ConnectionError))


if __name__ == "__main__":
    unittest.main()
