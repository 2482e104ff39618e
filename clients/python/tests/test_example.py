"""``examples/python/reviewer_reminders.py`` runs its scenario end to end against a daemon and
shows what the journal would show."""

from __future__ import annotations

import os
import subprocess
import sys
import unittest

from support import CLIENT_SRC, EXAMPLES, DaemonTestCase


class ReviewerRemindersExampleTests(DaemonTestCase):
    output: str

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        env = dict(os.environ, PYTHONPATH=str(CLIENT_SRC), PYTHONDONTWRITEBYTECODE="1")
        run = subprocess.run(
            [
                sys.executable,
                str(EXAMPLES / "reviewer_reminders.py"),
                "--socket",
                cls.daemon.socket,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if run.returncode != 0:
            raise AssertionError(
                f"the example exited with {run.returncode}:\n{run.stdout}\n{run.stderr}"
            )
        cls.output = run.stdout

    def test_a_repeated_acceptance_schedules_nothing_twice(self) -> None:
        self.assertIn("arrives twice: already scheduled, nothing changed", self.output)

    def test_the_editors_page_shows_the_moved_due_date_in_local_time(self) -> None:
        self.assertIn("due 2026-03-16 06:00 EDT (originally 2026-03-11 06:00 EDT)", self.output)

    def test_the_reminder_the_clock_fires_is_sent_to_the_reviewer(self) -> None:
        self.assertIn("1 reminder(s) fired", self.output)
        self.assertIn("sent     2026-03-09 11:00 CET  due soon  pre-due#0", self.output)
        self.assertEqual(
            [(line["recipient"], line["idempotency_key"]) for line in self.daemon.outbox()],
            [("ana@example.org", "due/review-ms-42-1#pre-due#0")],
        )

    def test_a_received_review_stops_the_chasing(self) -> None:
        self.assertIn("closed: review received", self.output)

    def test_support_gets_the_reason_from_the_log(self) -> None:
        self.assertIn("got the 'due soon' reminder pre-due#0 for MS-42", self.output)
        self.assertIn(
            "by rule pre-due (2d before due_at 2026-03-11 11:00 Europe/Paris)", self.output
        )
        self.assertIn("sent at 2026-03-09 11:00 Europe/Paris through file", self.output)


if __name__ == "__main__":
    unittest.main()
