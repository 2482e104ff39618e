"""The shapes of the commonest results, as :class:`~typing.TypedDict` for type checkers.

At run time every result is the plain ``dict`` / ``list`` decoded from the reply: these types
only describe them (``proto/admin-protocol.md``, "Shapes"). They are not total: the daemon may
add fields (clients must ignore those they do not know), and a few results leave some out.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, TypedDict

__all__ = [
    "Applied",
    "ClockReading",
    "Completion",
    "DueEntry",
    "DueRange",
    "Enrollment",
    "Entity",
    "EntityList",
    "EvalResponse",
    "ExplainLine",
    "Explanation",
    "ExplainedOccurrence",
    "GroupChange",
    "History",
    "ListedEntity",
    "OptOut",
    "PastEvent",
    "Reminder",
    "WatchEvent",
]


class Completion(TypedDict, total=False):
    reason: str
    at: str


class Reminder(TypedDict, total=False):
    """An active reminder: an occurrence not processed yet."""

    occurrence: str
    idempotency_key: str
    rule: str
    kind: str
    planned_at: str
    planned_local: str
    #: ``pending-on``, ``pending-off``, ``processing`` or ``retry-waiting``.
    state: str
    attempts: int
    wake_at: Optional[str]


class PastEvent(TypedDict, total=False):
    """How an occurrence ended; immutable."""

    occurrence: str
    idempotency_key: str
    rule: str
    kind: str
    planned_at: str
    closed_at: str
    #: ``sent`` or ``unsent``.
    outcome: str
    #: For ``unsent``: ``completed``, ``deactivated``, ``not-applicable``, ``condition-false``,
    #: ``delivery-disabled``, ``opted-out``, ``missed`` or ``system-error``.
    reason: Optional[str]
    detail: str
    channel: Optional[str]
    receipt: Optional[str]
    attempts: int
    seq: int
    retry_of: str


class Entity(TypedDict, total=False):
    """An entity as ``show`` returns it."""

    entity: str
    policy: str
    policy_version: int
    workflow: Optional[str]
    recipient: str
    zone: str
    created_at: str
    version: int
    anchors: Dict[str, str]
    attributes: Dict[str, Any]
    completed: Optional[Completion]
    phase: Optional[str]
    #: Ordered by planned instant.
    active: List[Reminder]


class Applied(TypedDict, total=False):
    """The result of a command that changes an entity. ``events`` is empty when nothing
    changed (an identical create repeated, a move to the current instant)."""

    entity: str
    version: int
    events: List[str]
    past_events: List[PastEvent]
    state: Entity


class History(TypedDict, total=False):
    entity: str
    past_events: List[PastEvent]


class ExplainLine(TypedDict, total=False):
    seq: int
    at: str
    text: str


class ExplainedOccurrence(TypedDict, total=False):
    occurrence: str
    status: str
    #: Why an unsent occurrence ended, as fields (``{"anchor": {...}}``, ``{"condition": ...}``).
    cause: Dict[str, Any]
    lines: List[ExplainLine]


class Explanation(TypedDict, total=False):
    entity: str
    entity_lines: List[ExplainLine]
    occurrences: List[ExplainedOccurrence]


class ListedEntity(TypedDict, total=False):
    entity: str
    policy: str
    recipient: str
    zone: str
    active: int
    errored: int
    completed: Optional[str]
    next_wake: Optional[str]


class EntityList(TypedDict, total=False):
    entities: List[ListedEntity]
    #: The ``after`` of the next page; ``None`` at the end.
    next: Optional[str]


class DueEntry(TypedDict, total=False):
    due: str
    entity: str
    occurrence: str
    kind: str
    state: str
    channel: str
    paused: bool


# "from" is a keyword: the functional form.
DueRange = TypedDict("DueRange", {"from": str, "to": str, "entries": List[DueEntry]}, total=False)


class GroupChange(TypedDict, total=False):
    """The result of ``group.join`` and ``group.leave``: one applied per entity."""

    group: str
    contact: str
    entities: List[Applied]


class EvalResponse(TypedDict, total=False):
    entity: str
    student: str
    applied: List[Applied]


class Enrollment(TypedDict, total=False):
    #: ``scheduled``, ``exists`` (sent twice: nothing changed) or ``no-schedule``.
    outcome: str
    schedule: str
    held_back: bool
    pending: int
    reason: str


class OptOut(TypedDict, total=False):
    schedules_changed: int


class ClockReading(TypedDict, total=False):
    #: ``system`` or ``manual``.
    clock: str
    now: str
    #: ``clock.advance`` only: how many occurrences were processed.
    fired: int


class WatchEvent(TypedDict):
    """One streamed past event: the entity it belongs to, and the past event."""

    entity: str
    past_event: PastEvent
