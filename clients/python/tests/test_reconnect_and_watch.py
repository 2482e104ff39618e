"""A client outlives a daemon restart; a stopped daemon is reported, not waited for; ``watch``
streams the past events a clock advance records."""

from __future__ import annotations

import time
import unittest
from datetime import datetime, timezone

from support import DaemonTestCase

from tickler_client import TicklerUnavailable

DUE = datetime(2026, 3, 11, 10, 0, tzinfo=timezone.utc)


class ReconnectTests(DaemonTestCase):
    def test_a_client_keeps_working_across_a_daemon_restart(self) -> None:
        client = self.client()
        client.due_create("due/restart", "r@example.org", due_at=DUE)
        self.daemon.restart()
        self.assertEqual(client.show("due/restart")["recipient"], "r@example.org")
        client.due_complete("due/restart", "review-submitted")  # not retry-safe, never sent before
        self.assertEqual(client.show("due/restart")["completed"]["reason"], "review-submitted")  # type: ignore[index]

    def test_a_stopped_daemon_raises_unavailable_after_bounded_retries(self) -> None:
        client = self.client(retries=2, backoff=0.01)
        client.status()
        self.daemon.stop()
        self.addCleanup(self.daemon.start)
        started = time.monotonic()
        with self.assertRaises(TicklerUnavailable) as raised:
            client.status()
        self.assertLess(time.monotonic() - started, 2.0)
        self.assertIn(self.daemon.socket, str(raised.exception))


class WatchTests(DaemonTestCase):
    def test_watch_yields_the_past_event_of_a_reminder_the_clock_fires(self) -> None:
        client = self.client()
        client.due_create("due/watched", "reviewer@example.org", due_at=DUE)
        with client.watch(timeout=10) as events:
            fired = client.clock_advance("9d")
            event = next(events)
        self.assertEqual(fired["fired"], 1)
        self.assertEqual(event["entity"], "due/watched")
        past = event["past_event"]
        self.assertEqual(
            (past["occurrence"], past["outcome"], past["channel"]), ("pre-due#0", "sent", "file")
        )
        self.assertEqual(
            [line["idempotency_key"] for line in self.daemon.outbox()], ["due/watched#pre-due#0"]
        )


if __name__ == "__main__":
    unittest.main()
