"""The exceptions the client raises.

Every one is a :class:`TicklerError` with a ``code`` and a ``message``. A daemon's error reply
becomes the subclass named after its code (``unknown_entity`` raises :class:`UnknownEntity`),
so an application catches what it handles by class and leaves the rest to its error handling;
a code this version of the client does not know yet (new codes do not change the protocol
version) raises :class:`TicklerError` itself, with the code as the daemon sent it.

The client's own failures have codes that are not the protocol's: ``unavailable``
(:class:`TicklerUnavailable`, also a :class:`ConnectionError`), ``connection_lost``
(:class:`ConnectionLost`), ``timeout`` (:class:`TicklerTimeout`, also a :class:`TimeoutError`)
and ``bad_reply`` (:class:`BadReply`).
"""

from __future__ import annotations

import re
from typing import Any, Dict, Optional, Tuple, Type

__all__ = [
    "AlreadyExists",
    "AlreadyProcessed",
    "AnchorBeforeCreation",
    "AnchorOrder",
    "BadReply",
    "BeingDelivered",
    "ClockNotManual",
    "Conflict",
    "ConnectionLost",
    "ERRORS_BY_CODE",
    "EntityCompleted",
    "Forbidden",
    "InternalError",
    "InvalidArguments",
    "InvalidAttribute",
    "InvalidAttributeValue",
    "InvalidConfig",
    "InvalidItem",
    "InvalidRecipient",
    "MalformedRequest",
    "MissingAnchor",
    "NotAParticipant",
    "NotErrored",
    "Quarantined",
    "ReadOnlyAnchor",
    "RequestTimeout",
    "NotInClusterMode",
    "NotOwner",
    "RequestTooLarge",
    "ShuttingDown",
    "StorageError",
    "TicklerError",
    "TicklerTimeout",
    "TicklerUnavailable",
    "TooManyConnections",
    "UnknownAnchor",
    "UnknownChannel",
    "UnknownCommand",
    "UnknownCompletionReason",
    "UnknownCourse",
    "UnknownEntity",
    "UnknownGroup",
    "UnknownOccurrence",
    "UnknownPolicy",
    "UnknownSite",
    "UnknownWorkflow",
    "UnsupportedVersion",
    "WatchLagged",
    "WrongKind",
    "error_for",
]


def _restore(cls: Type[TicklerError], args: Tuple[Any, ...], state: Dict[str, Any]) -> TicklerError:
    error = cls.__new__(cls)
    BaseException.__init__(error, *args)
    error.__dict__.update(state)
    return error


class TicklerError(Exception):
    """An error the daemon replied with, or one the client met talking to it.

    ``code`` is the protocol's stable error code (``proto/admin-protocol.md``, "Error codes"),
    or one of the client's own (``unavailable``, ``connection_lost``, ``timeout``,
    ``bad_reply``). ``message`` is for people: it names the offending value, and may be
    reworded between versions, so match on the class or the code, never on the message.
    ``cmd`` is the command that failed, when there was one.
    """

    #: The code of the class; an instance's ``code`` is the one it was raised with.
    code: str = ""

    def __init__(self, code: str, message: str, *, cmd: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.cmd = cmd

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __reduce__(self) -> Tuple[Any, ...]:
        # Subclasses take different constructor arguments: rebuild from the state instead, so
        # an error survives pickling (a task queue sending it back to its caller).
        return (_restore, (type(self), self.args, dict(self.__dict__)))


# The protocol's codes. One class per code, named after it.


class MalformedRequest(TicklerError):
    """The request line is not a JSON object, lacks ``v`` or ``cmd``, or has an unknown field."""

    code = "malformed_request"


class UnsupportedVersion(TicklerError):
    """The daemon does not speak the request's protocol version."""

    code = "unsupported_version"


class UnknownCommand(TicklerError):
    """``cmd`` is not a command of the daemon's protocol version (an older daemon?)."""

    code = "unknown_command"


class InvalidArguments(TicklerError):
    """An argument is missing, unknown, not a valid value, or contradicts another."""

    code = "invalid_arguments"


class RequestTooLarge(TicklerError):
    """The request is longer than 1 MiB. The client refuses one before sending it."""

    code = "request_too_large"


class RequestTimeout(TicklerError):
    """The daemon did not receive the whole request within its 30 s; it closed the connection."""

    code = "request_timeout"


class Forbidden(TicklerError):
    """This connection may not do that.

    Either the peer's uid may not use the socket at all (the connection is closed), or the
    connection's role (``app``) may not run an operator's command (``clock.advance``,
    ``pause``, ``cancel``...); the message names the uid or the role.
    """

    code = "forbidden"


class TooManyConnections(TicklerError):
    """The daemon holds its maximum of connections. The client tries again before raising it."""

    code = "too_many_connections"


class WatchLagged(TicklerError):
    """A watch fell behind the daemon: ``missed`` past events were not streamed to it.

    Raised by :class:`tickler_client.Watch`; the missed events are in ``history``.
    """

    code = "watch_lagged"

    def __init__(self, code: str, message: str, *, cmd: Optional[str] = None) -> None:
        super().__init__(code, message, cmd=cmd)
        found = re.match(r"\s*(\d+)", message)
        #: How many past events the watch missed, when the message says (it does today).
        self.missed: Optional[int] = int(found.group(1)) if found else None


class NotErrored(TicklerError):
    """``retry`` of an occurrence that did not end in a system error, or was already retried."""

    code = "not_errored"


class UnknownEntity(TicklerError):
    """No entity has this id."""

    code = "unknown_entity"


class AlreadyExists(TicklerError):
    """A create for an id that exists (daemons before idempotent creates; now :class:`Conflict`)."""

    code = "already_exists"


class Conflict(TicklerError):
    """A create repeated with different content: the message names the first differing field.

    Creates are idempotent: sending the identical request again succeeds and changes nothing.
    A change to an existing entity takes its own command (a move, ``set-attribute``,
    ``change-recipient``).
    """

    code = "conflict"


class UnknownPolicy(TicklerError):
    """The policy is not one the daemon has (the message lists the known ones)."""

    code = "unknown_policy"


class UnknownWorkflow(TicklerError):
    """The workflow is not in the policy (the message lists the known ones)."""

    code = "unknown_workflow"


class UnknownAnchor(TicklerError):
    """The anchor is not in the policy (the message lists the known ones)."""

    code = "unknown_anchor"


class UnknownCompletionReason(TicklerError):
    """The completion reason is not in the policy (the message lists the known ones)."""

    code = "unknown_completion_reason"


class UnknownChannel(TicklerError):
    """The channel is not one the daemon has (the message lists the known ones)."""

    code = "unknown_channel"


class AnchorOrder(TicklerError):
    """Two anchors out of their policy's order (a due date before the start)."""

    code = "anchor_order"


class InvalidAttributeValue(TicklerError):
    """A value the policy does not allow for the attribute."""

    code = "invalid_attribute_value"


class InvalidItem(TicklerError):
    """An item of a list attribute the policy does not allow."""

    code = "invalid_item"


class NotAParticipant(TicklerError):
    """``eval.respond`` for an address that is not one of the evaluation's students."""

    code = "not_a_participant"


class UnknownSite(TicklerError):
    """The site was never set (``site.set``)."""

    code = "unknown_site"


class UnknownCourse(TicklerError):
    """The course was never set (``course.set``)."""

    code = "unknown_course"


class UnknownGroup(TicklerError):
    """No policy runs for this group (the message lists the groups that have one)."""

    code = "unknown_group"


class WrongKind(TicklerError):
    """The entity id's kind is not the policy's kind (``due/...`` for the due-date policy)."""

    code = "wrong_kind"


class MissingAnchor(TicklerError):
    """A required anchor has no value and no workflow default."""

    code = "missing_anchor"


class ReadOnlyAnchor(TicklerError):
    """The anchor keeps an original value (``originally_due_at``) and cannot be moved."""

    code = "read_only_anchor"


class AnchorBeforeCreation(TicklerError):
    """An anchor before the entity's creation (a due date in the past)."""

    code = "anchor_before_creation"


class InvalidRecipient(TicklerError):
    """A recipient empty, too long, or holding control characters."""

    code = "invalid_recipient"


class InvalidAttribute(TicklerError):
    """An attribute name empty, too long, or holding control characters."""

    code = "invalid_attribute"


class EntityCompleted(TicklerError):
    """The entity was completed; it takes no more changes."""

    code = "entity_completed"


class UnknownOccurrence(TicklerError):
    """The entity has no such occurrence."""

    code = "unknown_occurrence"


class AlreadyProcessed(TicklerError):
    """The occurrence is a past event; past events never change."""

    code = "already_processed"


class BeingDelivered(TicklerError):
    """The occurrence is being delivered and cannot be changed now."""

    code = "being_delivered"


class ClockNotManual(TicklerError):
    """``clock.advance`` or ``clock.set`` on a daemon running on the system clock."""

    code = "clock_not_manual"


class Quarantined(TicklerError):
    """The entity's log failed a check; it takes no commands until an operator repairs it."""

    code = "quarantined"


class StorageError(TicklerError):
    """The daemon's store failed: the outcome is unknown (``show`` tells what happened)."""

    code = "storage_error"


class InvalidConfig(TicklerError):
    """The daemon's configuration cannot do what was asked (a channel it cannot open)."""

    code = "invalid_config"


class ShuttingDown(TicklerError):
    """The daemon is stopping; nothing was written."""

    code = "shutting_down"


class InternalError(TicklerError):
    """A bug in the daemon."""

    code = "internal_error"


class NotOwner(TicklerError):
    """(Cluster mode) The entity's shard is served by another node, or by none while it is
    taken over; ``owner`` is the reply's ``{"shard", "epoch", "node", "socket"}`` (the last two
    absent during a takeover). The client sends the request on to the owner itself, so this is
    raised only when it keeps happening."""

    code = "not_owner"

    def __init__(
        self,
        code: str,
        message: str,
        *,
        cmd: Optional[str] = None,
        owner: Optional[Dict[str, Any]] = None,
    ) -> None:
        super().__init__(code, message, cmd=cmd)
        self.owner = owner or {}


class NotInClusterMode(TicklerError):
    """(Cluster mode) The command spans entities or the whole node, which a cluster node does
    not route yet; commands on one entity, ``status`` and ``clock_now`` work."""

    code = "not_in_cluster_mode"


# The client's own failures.


class TicklerUnavailable(TicklerError, ConnectionError):
    """The daemon cannot be reached at ``socket_path`` (not running, wrong path, no access).

    Raised after the client's bounded reconnection attempts; nothing was sent.
    """

    code = "unavailable"

    def __init__(
        self,
        message: str,
        *,
        socket_path: str,
        cmd: Optional[str] = None,
        code: str = "unavailable",
    ) -> None:
        super().__init__(code, message, cmd=cmd)
        self.socket_path = socket_path


class ConnectionLost(TicklerUnavailable):
    """The connection broke after the request was sent and before its reply came.

    The command may or may not have been applied: the client raises this only for commands it
    does not resend (see ``RETRY_SAFE_COMMANDS``). Read the entity back (``show``) to know.
    """

    code = "connection_lost"

    def __init__(self, message: str, *, socket_path: str, cmd: Optional[str] = None) -> None:
        super().__init__(message, socket_path=socket_path, cmd=cmd, code="connection_lost")


class TicklerTimeout(TicklerError, TimeoutError):
    """No reply came within the client's ``timeout``.

    The command may or may not have been applied; the client closes the connection (a late
    reply is never taken for another request's) and does not resend it.
    """

    code = "timeout"

    def __init__(
        self, message: str, *, socket_path: str, timeout: Optional[float], cmd: Optional[str] = None
    ) -> None:
        super().__init__("timeout", message, cmd=cmd)
        self.socket_path = socket_path
        self.timeout = timeout


class BadReply(TicklerError):
    """A reply line that is not the protocol's (not JSON, not a reply object): not a tickler
    daemon at that path, or a bug. The connection is closed."""

    code = "bad_reply"

    def __init__(self, message: str, *, cmd: Optional[str] = None) -> None:
        super().__init__("bad_reply", message, cmd=cmd)


_PROTOCOL_ERRORS: Tuple[Type[TicklerError], ...] = (
    MalformedRequest,
    UnsupportedVersion,
    UnknownCommand,
    InvalidArguments,
    RequestTooLarge,
    RequestTimeout,
    Forbidden,
    TooManyConnections,
    WatchLagged,
    NotErrored,
    UnknownEntity,
    AlreadyExists,
    Conflict,
    UnknownPolicy,
    UnknownWorkflow,
    UnknownAnchor,
    UnknownCompletionReason,
    UnknownChannel,
    AnchorOrder,
    InvalidAttributeValue,
    InvalidItem,
    NotAParticipant,
    UnknownSite,
    UnknownCourse,
    UnknownGroup,
    WrongKind,
    MissingAnchor,
    ReadOnlyAnchor,
    AnchorBeforeCreation,
    InvalidRecipient,
    InvalidAttribute,
    EntityCompleted,
    UnknownOccurrence,
    AlreadyProcessed,
    BeingDelivered,
    ClockNotManual,
    Quarantined,
    StorageError,
    InvalidConfig,
    ShuttingDown,
    InternalError,
    NotOwner,
    NotInClusterMode,
)

#: The exception class for each protocol error code.
ERRORS_BY_CODE: Dict[str, Type[TicklerError]] = {cls.code: cls for cls in _PROTOCOL_ERRORS}


def error_for(code: str, message: str, *, cmd: Optional[str] = None) -> TicklerError:
    """The exception for an error reply: the class of its code, else :class:`TicklerError`."""
    cls = ERRORS_BY_CODE.get(code, TicklerError)
    return cls(code, message, cmd=cmd)
