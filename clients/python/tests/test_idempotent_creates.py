"""Creates are idempotent: the identical request again succeeds and changes nothing (a client
that lost a reply sends it again safely); different content is a ``conflict`` naming the field.
And ``due.create`` may leave the workflow out: the policy's default one applies."""

from __future__ import annotations

import unittest
from datetime import datetime, timedelta, timezone

from support import DaemonTestCase

from tickler_client import Applied, Client, Conflict

DUE = datetime(2026, 3, 11, 10, 0, tzinfo=timezone.utc)


def create_evaluation(client: Client, entity: str, title: str = "Course 201") -> Applied:
    return client.eval_create(
        entity,
        title=title,
        owner="owner@example.org",
        students=["a@example.org"],
        dates={"start": "2026-03-02T08:00:00Z", "due": "2026-03-09T17:00:00Z"},
    )


def create_revision(client: Client, entity: str, title: str = "Revision") -> Applied:
    return client.entity_create(
        entity, "due-date", "r@example.org", anchors={"due_at": DUE}, attributes={"title": title}
    )


class IdempotentCreateTests(DaemonTestCase):
    def test_an_identical_due_create_succeeds_again_and_changes_nothing(self) -> None:
        client = self.client()
        first = client.due_create("due/same", "r@example.org", due_at=DUE, title="Review")
        again = client.due_create("due/same", "r@example.org", due_at=DUE, title="Review")
        self.assertEqual(again["events"], [])
        self.assertEqual(again["version"], first["version"])

    def test_a_due_create_with_another_recipient_is_a_conflict_naming_the_field(self) -> None:
        client = self.client()
        client.due_create("due/other", "r@example.org", due_at=DUE)
        with self.assertRaises(Conflict) as raised:
            client.due_create("due/other", "someone-else@example.org", due_at=DUE)
        self.assertEqual(raised.exception.code, "conflict")
        self.assertIn("recipient", raised.exception.message)
        self.assertEqual(client.show("due/other")["recipient"], "r@example.org")

    def test_a_repeat_after_a_move_is_still_the_same_creation(self) -> None:
        client = self.client()
        client.due_create("due/moved", "r@example.org", due_at=DUE)
        client.due_move("due/moved", DUE + timedelta(days=3))
        self.assertEqual(client.due_create("due/moved", "r@example.org", due_at=DUE)["events"], [])
        self.assertEqual(client.show("due/moved")["anchors"]["due_at"], "2026-03-14T10:00:00Z")

    def test_a_due_create_without_workflow_takes_the_policys_default(self) -> None:
        created = self.client().due_create("due/default", "r@example.org")
        state = created["state"]
        self.assertEqual(state["workflow"], "reviewer-report")
        # The reviewer report's ten days from the clock's 09:30, rounded up to the hour.
        self.assertEqual(state["anchors"]["due_at"], "2026-03-11T10:00:00Z")

    def test_an_identical_entity_create_succeeds_again(self) -> None:
        client = self.client()
        create_revision(client, "due/entity")
        self.assertEqual(create_revision(client, "due/entity")["events"], [])

    def test_an_entity_create_with_other_attributes_is_a_conflict_naming_the_field(self) -> None:
        client = self.client()
        create_revision(client, "due/attrs", title="A")
        with self.assertRaises(Conflict) as raised:
            create_revision(client, "due/attrs", title="B")
        self.assertIn("title", raised.exception.message)

    def test_an_identical_eval_create_succeeds_again(self) -> None:
        client = self.client()
        create_evaluation(client, "eval/same")
        self.assertEqual(create_evaluation(client, "eval/same")["events"], [])

    def test_an_eval_create_with_another_title_is_a_conflict_naming_the_field(self) -> None:
        client = self.client()
        create_evaluation(client, "eval/other")
        with self.assertRaises(Conflict) as raised:
            create_evaluation(client, "eval/other", title="Course 202")
        self.assertIn("title", raised.exception.message)

    def test_an_identical_group_join_succeeds_again(self) -> None:
        client = self.client()
        client.group_join("karma", "c-same", "tel:+254700000002", zone="Africa/Nairobi")
        again = client.group_join("karma", "c-same", "tel:+254700000002", zone="Africa/Nairobi")
        self.assertEqual([entity["events"] for entity in again["entities"]], [[]])

    def test_a_group_join_with_another_recipient_is_a_conflict_naming_the_field(self) -> None:
        client = self.client()
        client.group_join("karma", "c-other", "tel:+254700000003")
        with self.assertRaises(Conflict) as raised:
            client.group_join("karma", "c-other", "tel:+254700000004")
        self.assertIn("recipient", raised.exception.message)


if __name__ == "__main__":
    unittest.main()
