#!/usr/bin/env python3
"""A journal's reviewer reminders, driven through tickler as an application would drive them.

The journal (a web application in real life; plain functions here) tells tickler what happens
to its review assignments, and shows editors and support staff what tickler planned and did:

    invitation_accepted          a reviewer accepted: chase the report       (due.create)
    editor_changed_due_date      the editor gave the reviewer more time       (due.move)
    review_received              the report came in: stop chasing             (due.complete)
    upcoming_reminders_page      the editor's page of planned reminders       (show, history)
    why_did_they_get_that_email  support's answer, from tickler's log         (history, explain)

The journal keeps no reminder state of its own: tickler is asked each time.

Run against a daemon started with a manual clock (see README.md beside this file), ``main``
plays a scenario end to end. To make a reminder fire now rather than in nine days it moves the
daemon's clock (``clock.advance``): a demonstration only. A deployment runs on the system
clock, and an application never touches it (the daemon refuses it to an application's
connection as ``forbidden``).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, List, Optional
from zoneinfo import ZoneInfo

from tickler_client import (
    Applied,
    Client,
    ClockNotManual,
    EntityCompleted,
    Forbidden,
    TicklerError,
    TicklerUnavailable,
)

#: How a review task's reminders are known to the people who get them.
KIND_WORDING = {"due-soon": "due soon", "overdue": "overdue"}
#: How the journal words the ways a review task ends (the due-date policy's reasons).
CLOSING_WORDING = {
    "review-submitted": "review received",
    "invitation-rescinded": "invitation rescinded",
    "decision-made": "decision made",
    "cancelled": "cancelled",
}


@dataclass(frozen=True)
class Assignment:
    """A review assignment, as the journal's database holds it."""

    id: int
    manuscript: str
    title: str
    reviewer: str
    zone: str

    @property
    def entity(self) -> str:
        """The assignment's due date in tickler: one entity per assignment, a stable id."""
        return f"due/review-{self.manuscript.lower()}-{self.id}"


def invitation_accepted(tickler: Client, assignment: Assignment) -> Applied:
    """The reviewer accepted: tickler chases the report over the journal's default review
    time (the due-date policy's default workflow, ``reviewer-report``: ten days).

    Safe to call again with the same assignment (a webhook delivered twice, a retried job):
    the identical create succeeds and changes nothing.
    """
    return tickler.due_create(
        assignment.entity,
        assignment.reviewer,
        zone=assignment.zone,
        title=f"Review of {assignment.manuscript}: {assignment.title}",
    )


def editor_changed_due_date(tickler: Client, assignment: Assignment, due: datetime) -> Applied:
    """The editor moved the due date: reminders not sent yet follow it."""
    return tickler.due_move(assignment.entity, due)


def review_received(tickler: Client, assignment: Assignment) -> bool:
    """The report came in: nothing more is sent. False if the task was already closed (the
    submission was processed before)."""
    try:
        tickler.due_complete(assignment.entity, "review-submitted")
    except EntityCompleted:
        return False
    return True


def upcoming_reminders_page(tickler: Client, assignments: Iterable[Assignment]) -> str:
    """The editor's page: for each assignment, its due date and the reminders planned and
    sent, in the reviewer's local time."""
    now = tickler.status()["now"]  # the daemon's now (clock.* is the operators')
    lines = [f"Reviewer reminders, as of {_local(now, 'UTC')}", ""]
    for assignment in assignments:
        task = tickler.show(assignment.entity)
        zone = task["zone"]
        lines.append(f"{assignment.manuscript} {assignment.title!r}: {task['recipient']} ({zone})")
        due = task["anchors"]["due_at"]
        original = task["anchors"].get("originally_due_at", due)
        moved = f" (originally {_local(original, zone)})" if original != due else ""
        lines.append(f"  due {_local(due, zone)}{moved}")
        completed = task["completed"]
        if completed is not None:
            wording = CLOSING_WORDING.get(completed["reason"], completed["reason"])
            lines.append(f"  closed: {wording}, {_local(completed['at'], zone)}")
        for sent in tickler.history(assignment.entity, outcome="sent")["past_events"]:
            lines.append(
                f"  sent     {_local(sent['closed_at'], zone)}  "
                f"{KIND_WORDING.get(sent['kind'], sent['kind']):<9} {sent['occurrence']}"
            )
        for reminder in task["active"]:
            off = "" if reminder["state"] != "pending-off" else "  (switched off)"
            lines.append(
                f"  planned  {reminder['planned_local']}  "
                f"{KIND_WORDING.get(reminder['kind'], reminder['kind']):<9} "
                f"{reminder['occurrence']}{off}"
            )
        if completed is None and not task["active"]:
            lines.append("  nothing planned")
        lines.append("")
    return "\n".join(lines)


def why_did_they_get_that_email(
    tickler: Client, assignment: Assignment, occurrence: Optional[str] = None
) -> str:
    """Support's answer: each email sent for the assignment (or the one ``occurrence``), and
    tickler's account of why, from its log."""
    task = tickler.show(assignment.entity)
    sent = tickler.history(assignment.entity, outcome="sent")["past_events"]
    if occurrence is not None:
        sent = [event for event in sent if event["occurrence"] == occurrence]
    if not sent:
        return f"{assignment.reviewer} got no reminder for {assignment.manuscript}."
    answers: List[str] = []
    for email in sent:
        explained = tickler.explain(assignment.entity, email["occurrence"])
        answers.append(
            f"{assignment.reviewer} got the {KIND_WORDING.get(email['kind'], email['kind'])!r} "
            f"reminder {email['occurrence']} for {assignment.manuscript} on "
            f"{_local(email['closed_at'], task['zone'])} ({email['receipt']}, key "
            f"{email['idempotency_key']}). Why:"
        )
        for step in explained["occurrences"]:
            for line in step["lines"]:
                answers.append(f"  - {line['text']}")
    return "\n".join(answers)


def _instant(text: str) -> datetime:
    # fromisoformat reads a "Z" from Python 3.11 on; the daemon always writes one.
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _local(instant: str, zone: str) -> str:
    return _instant(instant).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def _advance_clock(tickler: Client, by: str) -> None:
    """Moves a manual clock for the demonstration; says why not when it cannot."""
    try:
        fired = tickler.clock_advance(by)
    except ClockNotManual:
        print("  (the daemon runs on the system clock: the reminders fire when they are due)")
        return
    except Forbidden:
        print("  (this connection is an application's: the clock is an operator's to move)")
        return
    print(f"  the daemon's clock is now {fired['now']}; {fired['fired']} reminder(s) fired")


def scenario(tickler: Client) -> None:
    """Two reviewers of one manuscript, from their acceptance to a question to support."""
    ana = Assignment(1, "MS-42", "Graphene under strain", "ana@example.org", "Europe/Paris")
    bo = Assignment(2, "MS-42", "Graphene under strain", "bo@example.org", "America/New_York")

    print("1. Both reviewers accept their invitations.")
    for assignment in (ana, bo):
        task = invitation_accepted(tickler, assignment)["state"]
        due = _local(task["anchors"]["due_at"], assignment.zone)
        print(f"  {assignment.reviewer}: due {due}, {len(task['active'])} reminders planned")
    again = invitation_accepted(tickler, ana)
    outcome = "already scheduled, nothing changed" if not again["events"] else "scheduled AGAIN"
    print(f"  the acceptance webhook for {ana.reviewer} arrives twice: {outcome}")

    print(f"2. The editor gives {bo.reviewer} five more days.")
    due_at = _instant(tickler.show(bo.entity)["anchors"]["due_at"])
    editor_changed_due_date(tickler, bo, due_at + timedelta(days=5))
    print()
    print(upcoming_reminders_page(tickler, [ana, bo]))

    print("3. Nine days pass (a demonstration: the daemon's manual clock moves).")
    _advance_clock(tickler, "9d")

    print(f"4. {bo.reviewer} sends the report.")
    print("  chasing stopped" if review_received(tickler, bo) else "  it was already closed")
    print()
    print(upcoming_reminders_page(tickler, [ana, bo]))

    print(f"5. {ana.reviewer} asks support why they got an email.")
    print(why_did_they_get_that_email(tickler, ana))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--socket",
        help="the daemon's admin socket (default: TICKLER_SOCKET, else "
        "TICKLER_DATA_DIR/admin/tickler.sock, else ./data/admin/tickler.sock)",
    )
    options = parser.parse_args(argv)
    try:
        with Client(options.socket) as tickler:
            scenario(tickler)
    except TicklerUnavailable as err:
        print(f"reviewer_reminders: {err.message}", file=sys.stderr)
        return 1
    except TicklerError as err:
        print(f"reviewer_reminders: tickler refused {err.cmd}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
