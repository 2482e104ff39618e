"""Roles: a connection from another user (an application, here uid 65534 let in by
``socket_group`` and listed in ``app_groups``) is an ``app``; the daemon's own user and root are operators. An app may
create, change and read; an operator's command is refused to it as ``forbidden``, naming the
role, and changes nothing."""

from __future__ import annotations

import unittest
from typing import Any, Callable, Dict

from support import APP_GID, APP_UID, MANUAL_START, DaemonTestCase, outcome_as_user

from tickler_client import Client


class RoleTests(DaemonTestCase):
    # nogroup is uid 65534's primary group: the daemon lets it in (0660 socket of that group).
    socket_group = "nogroup"

    def as_app(self, action: Callable[[Client], Any]) -> Dict[str, Any]:
        socket_path = self.daemon.socket

        def run() -> Any:
            with Client(socket_path, retries=0) as client:
                return action(client)

        return outcome_as_user(APP_UID, APP_GID, run)

    def test_an_app_may_create_and_read_its_entities(self) -> None:
        outcome = self.as_app(
            lambda client: (
                client.due_create("due/app-made", "r@example.org", due_at="2026-03-11T10:00:00Z")[
                    "events"
                ],
                client.show("due/app-made")["recipient"],
                client.history("due/app-made")["past_events"],
            )
        )
        self.assertEqual(
            outcome,
            {"result": [["created"] + ["occurrence-planned"] * 3, "r@example.org", []]},
        )

    def test_an_app_is_refused_clock_advance_as_forbidden_naming_its_role(self) -> None:
        outcome = self.as_app(lambda client: client.clock_advance("1d"))
        self.assertEqual(outcome.get("error", {}).get("type"), "Forbidden", outcome)
        self.assertEqual(outcome["error"]["code"], "forbidden")
        self.assertIn("app", outcome["error"]["message"])
        self.assertEqual(self.client().clock_now()["now"], MANUAL_START)

    def test_an_app_is_refused_pausing_delivery_as_forbidden(self) -> None:
        # Should the pause get through, it is undone for the other tests.
        self.addCleanup(self.client().request, "resume", {"channel": "file"})
        outcome = self.as_app(lambda client: client.request("pause", {"channel": "file"}))
        self.assertEqual(outcome.get("error", {}).get("code"), "forbidden", outcome)
        self.assertNotIn("file", self.client().status()["paused"]["channels"])

    def test_the_daemons_own_user_is_an_operator(self) -> None:
        client = self.client()
        self.assertIn("log", client.request("pause", {"channel": "log"})["paused"]["channels"])
        self.assertNotIn("log", client.request("resume", {"channel": "log"})["paused"]["channels"])


if __name__ == "__main__":
    unittest.main()
