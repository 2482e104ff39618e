"""Each application command against a real daemon: what it changes, what it reads back, and the
codes its errors carry."""

from __future__ import annotations

import unittest
from datetime import datetime, timedelta, timezone
from typing import List, Tuple

from support import MANUAL_START, DaemonTestCase

from tickler_client import (
    Entity,
    EntityCompleted,
    InvalidArguments,
    NotAParticipant,
    UnknownCompletionReason,
    UnknownEntity,
)

#: Ten days after the manual clock's start (2026-03-01T09:30Z), on the hour.
DUE = datetime(2026, 3, 11, 10, 0, tzinfo=timezone.utc)
REVIEWER = "reviewer@example.org"


def occurrences(entity: Entity) -> List[Tuple[str, str]]:
    return [(reminder["occurrence"], reminder["planned_at"]) for reminder in entity["active"]]


class DueDateTests(DaemonTestCase):
    def test_a_created_due_date_plans_its_three_reminders(self) -> None:
        created = self.client().due_create(
            "due/plan",
            REVIEWER,
            due_at=DUE,
            workflow="reviewer-report",
            zone="Europe/Paris",
            title="Review of manuscript 42",
        )
        self.assertEqual(created["events"], ["created"] + ["occurrence-planned"] * 3)
        shown = self.client().show("due/plan")
        self.assertEqual(
            occurrences(shown),
            [
                ("pre-due#0", "2026-03-09T10:00:00Z"),
                ("first-late#0", "2026-03-13T10:00:00Z"),
                ("second-late#0", "2026-03-15T10:00:00Z"),
            ],
        )
        self.assertEqual(shown["attributes"]["title"], "Review of manuscript 42")
        self.assertEqual(shown["zone"], "Europe/Paris")

    def test_moving_the_due_date_moves_its_pending_reminders(self) -> None:
        client = self.client()
        client.due_create("due/move", REVIEWER, due_at=DUE)
        moved = client.due_move("due/move", DUE + timedelta(days=7))
        self.assertIn("anchor-moved", moved["events"])
        shown = client.show("due/move")
        self.assertEqual(shown["anchors"]["due_at"], "2026-03-18T10:00:00Z")
        self.assertEqual(shown["anchors"]["originally_due_at"], "2026-03-11T10:00:00Z")
        self.assertEqual(occurrences(shown)[0], ("pre-due#0", "2026-03-16T10:00:00Z"))

    def test_completing_ends_pending_reminders_as_unsent_past_events(self) -> None:
        client = self.client()
        client.due_create("due/complete", REVIEWER, due_at=DUE)
        client.due_complete("due/complete", "review-submitted")
        shown = client.show("due/complete")
        self.assertEqual(shown["completed"]["reason"], "review-submitted")  # type: ignore[index]
        self.assertEqual(shown["active"], [])
        past = client.history("due/complete")["past_events"]
        self.assertEqual(
            sorted((event["occurrence"], event["outcome"], event["reason"]) for event in past),
            [
                ("first-late#0", "unsent", "completed"),
                ("pre-due#0", "unsent", "completed"),
                ("second-late#0", "unsent", "completed"),
            ],
        )
        self.assertEqual(client.history("due/complete", outcome="sent")["past_events"], [])

    def test_explain_tells_why_an_occurrence_was_not_sent(self) -> None:
        client = self.client()
        client.due_create("due/explain", REVIEWER, due_at=DUE)
        client.due_complete("due/explain", "decision-made")
        explained = client.explain("due/explain", "pre-due#0")
        self.assertEqual(explained["entity"], "due/explain")
        [occurrence] = explained["occurrences"]
        self.assertEqual(occurrence["occurrence"], "pre-due#0")
        text = " ".join(line["text"] for line in occurrence["lines"])
        self.assertIn("planned for", text)
        self.assertIn("decision-made", text)
        self.assertTrue(explained["entity_lines"])

    def test_a_completed_due_date_takes_no_more_changes(self) -> None:
        client = self.client()
        client.due_create("due/done", REVIEWER, due_at=DUE)
        client.due_complete("due/done", "cancelled")
        with self.assertRaises(EntityCompleted) as raised:
            client.due_move("due/done", DUE + timedelta(days=1))
        self.assertEqual(raised.exception.code, "entity_completed")

    def test_an_unknown_entity_raises_unknown_entity_with_its_code(self) -> None:
        with self.assertRaises(UnknownEntity) as raised:
            self.client().show("due/nope")
        self.assertEqual(raised.exception.code, "unknown_entity")
        self.assertIn("due/nope", raised.exception.message)
        self.assertEqual(raised.exception.cmd, "show")

    def test_an_invalid_argument_raises_invalid_arguments_naming_the_value(self) -> None:
        with self.assertRaises(InvalidArguments) as raised:
            self.client().due_create("due/mars", REVIEWER, due_at=DUE, zone="Mars/Olympus_Mons")
        self.assertEqual(raised.exception.code, "invalid_arguments")
        self.assertIn("Mars/Olympus_Mons", raised.exception.message)
        with self.assertRaises(UnknownEntity):  # nothing was written
            self.client().show("due/mars")

    def test_an_instant_string_the_daemon_cannot_read_raises_invalid_arguments(self) -> None:
        with self.assertRaises(InvalidArguments) as raised:
            self.client().due_create("due/when", REVIEWER, due_at="next tuesday")
        self.assertIn("next tuesday", raised.exception.message)

    def test_a_reason_the_policy_does_not_know_raises_its_own_code(self) -> None:
        client = self.client()
        client.due_create("due/reason", REVIEWER, due_at=DUE)
        with self.assertRaises(UnknownCompletionReason) as raised:
            client.due_complete("due/reason", "bored")
        self.assertEqual(raised.exception.code, "unknown_completion_reason")

    def test_toggle_switches_a_pending_reminder_off(self) -> None:
        client = self.client()
        client.due_create("due/toggle", REVIEWER, due_at=DUE)
        self.assertEqual(
            client.toggle("due/toggle", "first-late#0", False)["events"], ["occurrence-toggled"]
        )
        states = {r["occurrence"]: r["state"] for r in client.show("due/toggle")["active"]}
        self.assertEqual(states["first-late#0"], "pending-off")

    def test_a_new_zone_replans_pending_reminders_in_local_time(self) -> None:
        client = self.client()
        client.due_create("due/zone", REVIEWER, due_at=DUE)
        changed = client.entity_change_recipient(
            "due/zone", recipient="new@example.org", zone="Asia/Tokyo"
        )
        self.assertIn("recipient-changed", changed["events"])
        shown = client.show("due/zone")
        self.assertEqual((shown["recipient"], shown["zone"]), ("new@example.org", "Asia/Tokyo"))

    def test_an_entity_of_any_policy_takes_anchors_and_attributes(self) -> None:
        client = self.client()
        client.entity_create(
            "due/generic",
            "due-date",
            REVIEWER,
            anchors={"due_at": DUE},
            attributes={"title": "Revision of manuscript 7"},
        )
        client.entity_set_attribute("due/generic", "title", "Second revision")
        client.entity_move_anchor("due/generic", "due_at", DUE + timedelta(days=1))
        client.entity_move_anchors("due/generic", {"due_at": DUE + timedelta(days=2)})
        shown = client.show("due/generic")
        self.assertEqual(shown["attributes"]["title"], "Second revision")
        self.assertEqual(shown["anchors"]["due_at"], "2026-03-13T10:00:00Z")
        client.entity_set_attribute("due/generic", "title", None)
        self.assertNotIn("title", client.show("due/generic")["attributes"])
        client.entity_complete("due/generic", "cancelled")
        self.assertEqual(client.show("due/generic")["completed"]["reason"], "cancelled")  # type: ignore[index]

    def test_list_and_due_read_what_is_planned(self) -> None:
        client = self.client()
        client.due_create("due/listed", "listed@example.org", due_at=DUE)
        listed = client.list(policy="due-date", recipient="listed@example.org")
        self.assertEqual([entity["entity"] for entity in listed["entities"]], ["due/listed"])
        self.assertIn("due/listed", [entity["entity"] for entity in client.list_all(page_size=1)])
        window = client.due(DUE - timedelta(days=3), DUE - timedelta(days=1))
        self.assertIn(
            ("due/listed", "pre-due#0"),
            [(entry["entity"], entry["occurrence"]) for entry in window["entries"]],
        )

    def test_status_reports_the_manual_clock(self) -> None:
        status = self.client().status()
        self.assertEqual(status["clock"], "manual")
        self.assertEqual(status["protocol"], 1)
        self.assertEqual(self.client().clock_now()["now"], MANUAL_START)


class FamilyTests(DaemonTestCase):
    def test_an_evaluation_is_created_answered_moved_and_deleted(self) -> None:
        client = self.client()
        created = client.eval_create(
            "eval/course-101",
            title="Course 101",
            owner="owner@example.org",
            students=["a@example.org", "b@example.org"],
            instructors=["prof@example.org"],
            zone="Europe/Paris",
            dates={
                "start": "2026-03-02T08:00:00Z",
                "due": datetime(2026, 3, 9, 17, 0, tzinfo=timezone.utc),
                "view": "2026-03-11T08:00:00Z",
            },
            reminder="every-2d",
        )
        self.assertEqual(created["state"]["phase"], "in-queue")
        answered = client.eval_respond("eval/course-101", "b@example.org")
        self.assertEqual(answered["student"], "b@example.org")
        self.assertEqual(
            client.show("eval/course-101")["attributes"]["respondents"], ["b@example.org"]
        )
        with self.assertRaises(NotAParticipant):
            client.eval_respond("eval/course-101", "stranger@example.org")
        moved = client.eval_move_dates(
            "eval/course-101", {"due": "2026-03-16T17:00:00Z", "view": "2026-03-18T08:00:00Z"}
        )
        self.assertIn("anchor-moved", moved["events"])
        client.eval_delete("eval/course-101")
        self.assertEqual(client.show("eval/course-101")["completed"]["reason"], "deleted")  # type: ignore[index]

    def test_a_contact_joins_and_leaves_a_group(self) -> None:
        client = self.client()
        joined = client.group_join("karma", "c-1", "tel:+254700000001", zone="Africa/Nairobi")
        [entity] = joined["entities"]
        self.assertEqual(entity["entity"], "contact/karma/c-1")
        self.assertEqual(len(client.show("contact/karma/c-1")["active"]), 16)
        left = client.group_leave("karma", "c-1")
        self.assertEqual(left["entities"][0]["state"]["completed"]["reason"], "left-group")  # type: ignore[index]

    def test_a_learner_enrolls_upgrades_opts_out_and_unenrolls(self) -> None:
        client = self.client()
        client.request(
            "site.set",
            {"site": "demo", "create_schedules": True, "default_zone": "Europe/Paris"},
        )
        course = "course-v1:Demo+Py101+2026"
        client.request(
            "course.set",
            {"course": course, "site": "demo", "start": "2026-02-01T00:00:00Z", "verified": True},
        )
        enrolled = client.learner_enroll(
            "ana", "ana@example.org", course, enrolled_at="2026-03-01T09:00:00Z", name="Ana"
        )
        self.assertEqual(enrolled["outcome"], "scheduled")
        schedule = enrolled["schedule"]
        again = client.learner_enroll(
            "ana", "ana@example.org", course, enrolled_at="2026-03-01T09:00:00Z", name="Ana"
        )
        self.assertEqual(again["outcome"], "exists")
        client.learner_change_track(course, "ana", "verified")
        self.assertEqual(
            client.learner_opt_out("demo", "ana", "ana@example.org", course=course)[
                "schedules_changed"
            ],
            1,
        )
        client.learner_unenroll(course, "ana")
        self.assertEqual(client.show(schedule)["completed"]["reason"], "unenrolled")  # type: ignore[index]


if __name__ == "__main__":
    unittest.main()
