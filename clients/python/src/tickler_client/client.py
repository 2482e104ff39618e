"""The client: one method per application command over a connection that reconnects."""

from __future__ import annotations

import itertools
import os
import random
import socket
import threading
import time
from typing import (
    Any,
    Callable,
    Dict,
    FrozenSet,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    TypeVar,
    Union,
    cast,
)

from ._connection import Closed, Connection, decode_reply, encode_request, reply_error
from .errors import ConnectionLost, TicklerError, TicklerTimeout, TicklerUnavailable
from .results import (
    Applied,
    ClockReading,
    DueRange,
    Enrollment,
    Entity,
    EntityList,
    EvalResponse,
    Explanation,
    GroupChange,
    History,
    ListedEntity,
    OptOut,
)
from .values import (
    AttrValue,
    Duration,
    Instant,
    TimeOfDay,
    format_duration,
    format_instant,
    format_time_of_day,
    resolve_socket_path,
)
from .watch import Watch

__all__ = ["Client", "RETRY_SAFE_COMMANDS"]

# The commands the client sends again when the connection broke after the request went out
# (the daemon may have applied it or not): doing them twice is doing them once.
_READS = frozenset(
    {
        "status",
        "show",
        "history",
        "explain",
        "list",
        "due",
        "failures",
        "metrics",
        "export",
        "preview",
        "clock.now",
    }
)
# Creates are idempotent: the identical request again succeeds with nothing written
# (``events: []``); a different one is a ``conflict``, never a second entity. ``learner.enroll``
# answers ``exists`` the second time.
_CREATES = frozenset({"due.create", "entity.create", "eval.create", "group.join", "learner.enroll"})
# Commands that set a value rather than change it by a step: moves to an absolute instant, an
# attribute, a recipient, a toggle's state. Sent twice, the second finds the value already set
# and changes nothing.
_ASSIGNMENTS = frozenset(
    {
        "due.move",
        "entity.move-anchor",
        "entity.move-anchors",
        "eval.move-dates",
        "entity.set-attribute",
        "entity.change-recipient",
        "toggle",
        "clock.set",
    }
)
#: The commands resent after a connection broke with the request sent and its reply not yet
#: read: reads, creates (idempotent) and assignments (moves to an absolute instant,
#: set-attribute, change-recipient, toggle). Others (completions, ``eval.respond``,
#: ``group.leave``, ``learner.change-track``, ``clock.advance``, every operator action) raise
#: :class:`~tickler_client.ConnectionLost` instead: applied or not, only the daemon knows.
#: A request that never left the client (the connection was found closed, or broke while it
#: was being written) is sent again whatever the command.
RETRY_SAFE_COMMANDS: FrozenSet[str] = _READS | _CREATES | _ASSIGNMENTS

#: The daemon closes a connection after 300 s without a request; the client opens a new one
#: before that rather than race the daemon's close with a request.
IDLE_RECONNECT_AFTER_S = 240.0
#: The longest pause between two reconnection attempts.
BACKOFF_MAX_S = 1.0
#: In cluster mode: how many `not_owner` replies a request follows before raising the last,
#: and the pause before asking again while no node serves the shard (a takeover).
NOT_OWNER_FOLLOWS_MAX = 8
TAKEOVER_PAUSE_S = 0.5

# Error codes a daemon sends, with a null id, when it refuses a connection before reading any
# request from it: nothing was run, so the request may be sent again on a new connection.
_REFUSED_BEFORE_READING = frozenset({"too_many_connections"})

_T = TypeVar("_T")


class _Unset:
    def __repr__(self) -> str:
        return "<the client's timeout>"


_UNSET: Any = _Unset()


class _TryAgain(Exception):
    """A failure after which the request may be sent again on a new connection."""

    def __init__(self, error: TicklerError) -> None:
        super().__init__(error)
        self.error = error


class Client:
    """A client of a tickler daemon's admin socket.

    ``Client()`` finds the socket as the CLI does: ``socket_path``, else the environment's
    ``TICKLER_SOCKET``, else ``$TICKLER_DATA_DIR/admin/tickler.sock``, else
    ``./data/admin/tickler.sock``. It connects on the first request and keeps one connection,
    which it replaces when it finds it closed (a daemon restart), waiting ``backoff`` seconds,
    doubled each time up to a second, for at most ``retries`` more attempts.

    ``timeout`` bounds the wait for each reply (``None``: no bound); ``connect_timeout`` each
    connection attempt. A reply that does not come in time raises
    :class:`~tickler_client.TicklerTimeout` and is never resent.

    Methods return the decoded ``result`` of the reply, and raise the
    :class:`~tickler_client.TicklerError` subclass of an error reply's code. A client may be
    shared by threads (requests take turns on the connection) and survives a ``fork`` (the
    child opens a connection of its own).
    """

    def __init__(
        self,
        socket_path: Union[str, os.PathLike[str], None] = None,
        timeout: Optional[float] = 10.0,
        connect_timeout: float = 2.0,
        retries: int = 3,
        backoff: float = 0.05,
    ) -> None:
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout: {timeout!r} is not a positive number of seconds (or None)")
        if connect_timeout <= 0:
            raise ValueError(f"connect_timeout: {connect_timeout!r} is not a positive number")
        if retries < 0:
            raise ValueError(f"retries: {retries!r} is negative")
        if backoff < 0:
            raise ValueError(f"backoff: {backoff!r} is negative")
        path, origin = resolve_socket_path(socket_path)
        #: The absolute path of the daemon's socket.
        self.socket_path = path
        self._socket_origin = origin
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.retries = retries
        self.backoff = backoff
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._connection: Optional[Connection] = None
        self._connection_pid = 0
        self._last_used = 0.0
        #: Clients of the other nodes of a cluster that `not_owner` replies sent us to.
        self._peers: Dict[str, Client] = {}

    def __repr__(self) -> str:
        return f"Client({self.socket_path!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Closes the connection (and those to other nodes of a cluster). A later request
        opens a new one."""
        with self._lock:
            self._drop()
            for peer in self._peers.values():
                peer.close()
            self._peers.clear()

    def connect(self) -> None:
        """Connects now rather than on the first request (to fail early when the daemon cannot
        be reached): :class:`~tickler_client.TicklerUnavailable` after the retries."""
        with self._lock:
            self._with_retries(self._usable_connection)

    # The generic request.

    def request(
        self,
        cmd: str,
        args: Optional[Mapping[str, Any]] = None,
        *,
        idempotent: Optional[bool] = None,
        timeout: Optional[float] = _UNSET,
    ) -> Any:
        """Sends ``cmd`` with ``args`` (JSON values, sent as they are) and returns the reply's
        ``result``, or raises the error reply's exception.

        ``idempotent`` says whether the request may be resent when the connection breaks after
        sending it; by default, whether ``cmd`` is one of :data:`RETRY_SAFE_COMMANDS`.
        ``timeout`` overrides the client's for this request (``None``: wait for ever).
        """
        retry_safe = cmd in RETRY_SAFE_COMMANDS if idempotent is None else idempotent
        reply_timeout = self.timeout if timeout is _UNSET else timeout
        reply = self._send(cmd, args, retry_safe, reply_timeout)
        # In cluster mode: a node that does not serve the entity ran nothing and names the one
        # that does; send it there (or again, after a pause, while no node serves it).
        for _ in range(NOT_OWNER_FOLLOWS_MAX):
            owner = _not_owner(reply)
            if owner is None:
                break
            socket_path = owner.get("socket")
            if isinstance(socket_path, str):
                reply = self._peer(socket_path)._send(cmd, args, retry_safe, reply_timeout)
            else:
                time.sleep(TAKEOVER_PAUSE_S)
                reply = self._send(cmd, args, retry_safe, reply_timeout)
        return _result(reply, cmd)

    def _peer(self, socket_path: str) -> Client:
        """A client of another node of the cluster, with this one's settings, kept open."""
        with self._lock:
            peer = self._peers.get(socket_path)
            if peer is None:
                peer = Client(
                    socket_path,
                    timeout=self.timeout,
                    connect_timeout=self.connect_timeout,
                    retries=self.retries,
                    backoff=self.backoff,
                )
                self._peers[socket_path] = peer
            return peer

    def _send(
        self,
        cmd: str,
        args: Optional[Mapping[str, Any]],
        retry_safe: bool,
        reply_timeout: Optional[float],
    ) -> Dict[str, Any]:
        """One request and its reply (an error reply too), with the connection's retries."""
        with self._lock:
            request_id = next(self._ids)
            line = encode_request(request_id, cmd, dict(args) if args is not None else None)

            def attempt() -> Dict[str, Any]:
                connection = self._usable_connection()
                try:
                    reply = self._round_trip(
                        connection, line, request_id, cmd, retry_safe, reply_timeout
                    )
                except BaseException:
                    # Whatever broke (even an interrupt), the connection's state is unknown.
                    self._drop()
                    raise
                self._last_used = time.monotonic()
                return reply

            return self._with_retries(attempt, cmd)

    # Due dates (the due-date policy).

    def due_create(
        self,
        entity: str,
        recipient: str,
        *,
        due_at: Optional[Instant] = None,
        workflow: Optional[str] = None,
        zone: Optional[str] = None,
        title: Optional[str] = None,
    ) -> Applied:
        """Creates a due date ``entity`` (``due/<key>``) for ``recipient``.

        Without ``due_at`` the workflow's default length from now applies (``reviewer-report``:
        10 days); without ``workflow``, the policy's default workflow. ``zone`` is the
        recipient's IANA zone (default ``UTC``); ``due_at`` is rounded up to the hour.
        Idempotent: the identical call again returns ``events: []``; a different one raises
        :class:`~tickler_client.Conflict` naming the field.
        """
        args: Dict[str, Any] = {"entity": entity, "recipient": recipient}
        if due_at is not None:
            args["due_at"] = format_instant(due_at, "due_at")
        _put(args, workflow=workflow, zone=zone, title=title)
        return cast(Applied, self.request("due.create", args))

    def due_move(self, entity: str, due_at: Instant) -> Applied:
        """Moves the due date: pending reminders follow it, sent ones stay in history."""
        return cast(
            Applied,
            self.request(
                "due.move", {"entity": entity, "due_at": format_instant(due_at, "due_at")}
            ),
        )

    def due_complete(self, entity: str, reason: str) -> Applied:
        """Completes the task: ``review-submitted``, ``invitation-rescinded``,
        ``decision-made`` or ``cancelled``. What is pending ends unsent."""
        return cast(Applied, self.request("due.complete", {"entity": entity, "reason": reason}))

    # Any policy's entities.

    def entity_create(
        self,
        entity: str,
        policy: str,
        recipient: str,
        *,
        workflow: Optional[str] = None,
        zone: Optional[str] = None,
        anchors: Optional[Mapping[str, Instant]] = None,
        attributes: Optional[Mapping[str, AttrValue]] = None,
    ) -> Applied:
        """Creates ``entity`` under ``policy``. Idempotent, as :meth:`due_create`."""
        args: Dict[str, Any] = {"entity": entity, "policy": policy, "recipient": recipient}
        _put(args, workflow=workflow, zone=zone)
        if anchors is not None:
            args["anchors"] = _instants(anchors, "anchors")
        if attributes is not None:
            args["attributes"] = _attributes(attributes)
        return cast(Applied, self.request("entity.create", args))

    def entity_move_anchor(self, entity: str, anchor: str, to: Instant) -> Applied:
        """Moves one anchor; pending occurrences are re-planned."""
        args = {"entity": entity, "anchor": anchor, "to": format_instant(to, "to")}
        return cast(Applied, self.request("entity.move-anchor", args))

    def entity_move_anchors(self, entity: str, to: Mapping[str, Instant]) -> Applied:
        """Moves several anchors in one decision; their order is checked on the result."""
        args = {"entity": entity, "to": _instants(to, "to")}
        return cast(Applied, self.request("entity.move-anchors", args))

    def entity_set_attribute(self, entity: str, name: str, value: AttrValue) -> Applied:
        """Sets an attribute (boolean, integer, string, list of strings); ``None`` clears it."""
        args = {"entity": entity, "name": name, "value": _attribute(value, name)}
        return cast(Applied, self.request("entity.set-attribute", args))

    def entity_complete(self, entity: str, reason: str) -> Applied:
        """Completes the entity with one of its policy's completion reasons."""
        return cast(Applied, self.request("entity.complete", {"entity": entity, "reason": reason}))

    def entity_change_recipient(
        self, entity: str, *, recipient: Optional[str] = None, zone: Optional[str] = None
    ) -> Applied:
        """Changes the recipient's address and/or zone; a new zone re-plans pending
        occurrences in the new local time."""
        args: Dict[str, Any] = {"entity": entity}
        _put(args, recipient=recipient, zone=zone)
        return cast(Applied, self.request("entity.change-recipient", args))

    def toggle(self, entity: str, occurrence: str, enabled: bool) -> Applied:
        """Switches a pending occurrence (``rule#index``) on or off."""
        args = {"entity": entity, "occurrence": occurrence, "enabled": enabled}
        return cast(Applied, self.request("toggle", args))

    # Learner schedules (the learning family).

    def learner_enroll(
        self,
        learner: str,
        email: str,
        course: str,
        *,
        enrolled_at: Optional[Instant] = None,
        name: Optional[str] = None,
        zone: Optional[str] = None,
        track: Optional[str] = None,
        delivery_time: Optional[TimeOfDay] = None,
    ) -> Enrollment:
        """Enrols ``learner`` in ``course``: the schedule's outcome is ``scheduled``,
        ``exists`` (sent twice) or ``no-schedule``. ``track`` is ``audit`` (default) or
        ``verified``; ``delivery_time`` a local ``HH:MM``."""
        args: Dict[str, Any] = {"learner": learner, "email": email, "course": course}
        if enrolled_at is not None:
            args["enrolled_at"] = format_instant(enrolled_at, "enrolled_at")
        if delivery_time is not None:
            args["delivery_time"] = format_time_of_day(delivery_time, "delivery_time")
        _put(args, name=name, zone=zone, track=track)
        return cast(Enrollment, self.request("learner.enroll", args))

    def learner_unenroll(self, course: str, learner: str) -> Applied:
        """Ends the learner's schedule in ``course``; pending messages end unsent."""
        args = {"course": course, "learner": learner}
        return cast(Applied, self.request("learner.unenroll", args))

    def learner_change_track(self, course: str, learner: str, track: str) -> Applied:
        """Moves the learner to ``track`` (``verified``: the upgrade, which ends a pending
        upgrade reminder; ``audit``); the schedule restarts."""
        args = {"course": course, "learner": learner, "track": track}
        return cast(Applied, self.request("learner.change-track", args))

    def learner_opt_out(
        self, site: str, learner: str, email: str, *, course: Optional[str] = None
    ) -> OptOut:
        """Opts the learner out of one course's email, or (without ``course``) all the
        site's; pending messages end unsent ``opted-out``."""
        args: Dict[str, Any] = {"site": site, "learner": learner, "email": email}
        _put(args, course=course)
        return cast(OptOut, self.request("learner.opt-out", args))

    # Course evaluations (the evaluation family).

    def eval_create(
        self,
        entity: str,
        *,
        title: str,
        owner: str,
        dates: Mapping[str, Instant],
        students: Optional[Sequence[str]] = None,
        instructors: Optional[Sequence[str]] = None,
        zone: Optional[str] = None,
        reminder: Optional[str] = None,
        available_notice: Optional[bool] = None,
        allow_saving: Optional[bool] = None,
        results_to_instructors: Optional[bool] = None,
        results_to_students: Optional[bool] = None,
        consolidated: Optional[bool] = None,
    ) -> Applied:
        """Creates an evaluation ``entity`` (``eval/<key>``) and plans its notices.

        ``dates`` has ``start`` and ``due``, optionally ``stop``, and ``view`` or
        ``view_instructors`` / ``view_students``. ``reminder`` is ``never`` (default),
        ``every-1d`` ... ``every-7d`` or ``24h-before-due``. Idempotent, as :meth:`due_create`.
        """
        args: Dict[str, Any] = {
            "entity": entity,
            "title": title,
            "owner": owner,
            "dates": _instants(dates, "dates"),
        }
        if students is not None:
            args["students"] = _strings(students, "students")
        if instructors is not None:
            args["instructors"] = _strings(instructors, "instructors")
        _put(
            args,
            zone=zone,
            reminder=reminder,
            available_notice=available_notice,
            allow_saving=allow_saving,
            results_to_instructors=results_to_instructors,
            results_to_students=results_to_students,
            consolidated=consolidated,
        )
        return cast(Applied, self.request("eval.create", args))

    def eval_respond(self, entity: str, student: str, *, saved: bool = False) -> EvalResponse:
        """Records that ``student`` answered (``saved=True``: saved without submitting); later
        reminders leave a respondent out."""
        args: Dict[str, Any] = {"entity": entity, "student": student}
        if saved:
            args["saved"] = True
        return cast(EvalResponse, self.request("eval.respond", args))

    def eval_move_dates(self, entity: str, dates: Mapping[str, Instant]) -> Applied:
        """Moves any of the evaluation's dates; the notification chain is repaired."""
        args = {"entity": entity, "dates": _instants(dates, "dates")}
        return cast(Applied, self.request("eval.move-dates", args))

    def eval_delete(self, entity: str) -> Applied:
        """Deletes the evaluation: completed as ``deleted``, what is pending ends unsent."""
        return cast(Applied, self.request("eval.delete", {"entity": entity}))

    # Contact cadences (groups).

    def group_join(
        self,
        group: str,
        contact: str,
        recipient: str,
        *,
        zone: Optional[str] = None,
        anchors: Optional[Mapping[str, Instant]] = None,
        attributes: Optional[Mapping[str, AttrValue]] = None,
    ) -> GroupChange:
        """Starts the cadence of each policy running for ``group`` for the contact
        (entities ``<kind>/<group>/<contact>``). Idempotent, as :meth:`due_create`."""
        args: Dict[str, Any] = {"group": group, "contact": contact, "recipient": recipient}
        _put(args, zone=zone)
        if anchors is not None:
            args["anchors"] = _instants(anchors, "anchors")
        if attributes is not None:
            args["attributes"] = _attributes(attributes)
        return cast(GroupChange, self.request("group.join", args))

    def group_leave(self, group: str, contact: str) -> GroupChange:
        """Ends the contact's cadences in ``group`` (completed as ``left-group``)."""
        args = {"group": group, "contact": contact}
        return cast(GroupChange, self.request("group.leave", args))

    # Reading.

    def show(self, entity: str) -> Entity:
        """The entity: anchors, attributes, completion, and its active reminders in order."""
        return cast(Entity, self.request("show", {"entity": entity}))

    def history(
        self,
        entity: str,
        *,
        outcome: Optional[str] = None,
        since: Optional[Instant] = None,
        until: Optional[Instant] = None,
    ) -> History:
        """The entity's past events: how each occurrence ended. ``outcome`` filters (``sent``,
        ``unsent`` or an unsent reason); ``since`` / ``until`` bound ``closed_at``."""
        args: Dict[str, Any] = {"entity": entity}
        _put(args, outcome=outcome)
        if since is not None:
            args["since"] = format_instant(since, "since")
        if until is not None:
            args["until"] = format_instant(until, "until")
        return cast(History, self.request("history", args))

    def explain(self, entity: str, occurrence: Optional[str] = None) -> Explanation:
        """Why each occurrence (or one, ``rule#index``) was sent, not sent, moved, or is
        pending, in sentences traced to the log."""
        args: Dict[str, Any] = {"entity": entity}
        _put(args, occurrence=occurrence)
        return cast(Explanation, self.request("explain", args))

    def list(
        self,
        *,
        kind: Optional[str] = None,
        policy: Optional[str] = None,
        recipient: Optional[str] = None,
        after: Optional[str] = None,
        limit: Optional[int] = None,
    ) -> EntityList:
        """One page of entities (``limit``: default 100, at most 1,000); pass the page's
        ``next`` as ``after`` for the following one, or use :meth:`list_all`."""
        args: Dict[str, Any] = {}
        _put(args, kind=kind, policy=policy, recipient=recipient, after=after, limit=limit)
        return cast(EntityList, self.request("list", args))

    def list_all(
        self,
        *,
        kind: Optional[str] = None,
        policy: Optional[str] = None,
        recipient: Optional[str] = None,
        page_size: Optional[int] = None,
    ) -> Iterator[ListedEntity]:
        """Every entity matching the filters, page after page."""
        after: Optional[str] = None
        while True:
            page = self.list(
                kind=kind, policy=policy, recipient=recipient, after=after, limit=page_size
            )
            yield from page.get("entities", [])
            after = page.get("next")
            if after is None:
                return

    def due(self, from_: Instant, to: Instant, *, limit: Optional[int] = None) -> DueRange:
        """The reminders due in [``from_``, ``to``), in due order: a dry run."""
        args: Dict[str, Any] = {
            "from": format_instant(from_, "from_"),
            "to": format_instant(to, "to"),
        }
        _put(args, limit=limit)
        return cast(DueRange, self.request("due", args))

    def status(self) -> Dict[str, Any]:
        """The daemon's status: version, clock, counts, what is errored, paused or parked."""
        return cast(Dict[str, Any], self.request("status"))

    def watch(self, *, timeout: Optional[float] = None) -> Watch:
        """Subscribes to past events as they are recorded, on a connection of its own.

        Returns once the daemon confirmed the subscription: events recorded from then on are
        streamed. ``timeout`` bounds each wait for the next event (``None``: wait for ever).
        See :class:`Watch`.
        """
        with self._lock:
            request_id = next(self._ids)
            line = encode_request(request_id, "watch", None)

            def attempt() -> Connection:
                connection = self._open_connection()
                try:
                    self._round_trip(connection, line, request_id, "watch", True, self.timeout)
                except BaseException:
                    connection.close()
                    raise
                return connection

            connection = self._with_retries(attempt, "watch")
        return Watch(connection, self.socket_path, timeout)

    # The manual clock (operator commands: refused to an app connection as ``forbidden``).

    def clock_now(self) -> ClockReading:
        """The daemon's clock, ``system`` or ``manual``, and its now."""
        return cast(ClockReading, self.request("clock.now"))

    def clock_advance(self, by: Duration) -> ClockReading:
        """Moves a manual clock forward by ``by``, processing every occurrence due on the way
        at its own instant (for tests and demonstrations: a deployment runs on the system
        clock). Not resent after a lost connection."""
        return cast(ClockReading, self.request("clock.advance", {"by": format_duration(by, "by")}))

    def clock_set(self, to: Instant) -> ClockReading:
        """Sets a manual clock to ``to`` in one jump, as after downtime."""
        return cast(ClockReading, self.request("clock.set", {"to": format_instant(to, "to")}))

    # The connection.

    def _with_retries(self, attempt: Callable[[], _T], cmd: Optional[str] = None) -> _T:
        failures = 0
        while True:
            try:
                return attempt()
            except _TryAgain as again:
                if failures >= self.retries:
                    error = again.error
                    if cmd is not None and error.cmd is None:
                        error.cmd = cmd
                    raise error from again.error.__cause__
                failures += 1
                pause = min(self.backoff * 2 ** (failures - 1), BACKOFF_MAX_S)
                time.sleep(pause * random.uniform(0.5, 1.0))

    def _usable_connection(self) -> Connection:
        """The connection, opened (again) when there is none or it is unfit for a request."""
        connection = self._connection
        if connection is not None:
            # In a fork's child the socket is shared with the parent, and a reply could reach
            # either: the child opens its own (closing its copy leaves the parent's open).
            if (
                self._connection_pid != os.getpid()
                or time.monotonic() - self._last_used > IDLE_RECONNECT_AFTER_S
                or not connection.is_idle()
            ):
                self._drop()
                connection = None
        if connection is None:
            connection = self._open_connection()
            self._connection = connection
            self._connection_pid = os.getpid()
            self._last_used = time.monotonic()
        return connection

    def _open_connection(self) -> Connection:
        try:
            return Connection.open(self.socket_path, self.connect_timeout)
        except (FileNotFoundError, ConnectionRefusedError, BlockingIOError, socket.timeout) as err:
            # No daemon there yet (starting, restarting), or its backlog is full: try again.
            raise _TryAgain(self._unavailable(err)) from err
        except OSError as err:
            raise self._unavailable(err) from err

    def _unavailable(self, err: OSError) -> TicklerUnavailable:
        if isinstance(err, FileNotFoundError):
            hint = "no socket there: is `tickler serve` running, with this data dir?"
        elif isinstance(err, ConnectionRefusedError):
            hint = "a socket file with no daemon behind it (a daemon that stopped or was killed)"
        elif isinstance(err, PermissionError):
            hint = (
                "permission denied: the socket is for the daemon's user, root, admin_uids and "
                "socket_group members"
            )
        elif isinstance(err, socket.timeout):
            hint = f"no connection within {self.connect_timeout} s"
        else:
            hint = str(err)
        return TicklerUnavailable(
            f"cannot connect to the tickler daemon at {self.socket_path} "
            f"(from {self._socket_origin}): {hint}",
            socket_path=self.socket_path,
        )

    def _round_trip(
        self,
        connection: Connection,
        line: bytes,
        request_id: int,
        cmd: str,
        retry_safe: bool,
        timeout: Optional[float],
    ) -> Dict[str, Any]:
        """Sends one request line and reads its reply; raises :class:`_TryAgain` when the
        request may be sent again on a new connection."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            connection.send(line, deadline)
        except socket.timeout:
            raise self._timeout(cmd, timeout) from None
        except OSError as err:
            # The daemon closed the connection before the request was written whole, so it
            # never read it. It may have said why first (too many connections, a uid it
            # does not serve).
            said = connection.buffered_line()
            if said is not None:
                self._refusal(decode_reply(said, cmd), cmd)
            raise _TryAgain(
                TicklerUnavailable(
                    f"the connection to {self.socket_path} broke before {cmd} was sent: {err}",
                    socket_path=self.socket_path,
                    cmd=cmd,
                )
            ) from err
        while True:
            try:
                raw = connection.read_line(deadline)
            except socket.timeout:
                raise self._timeout(cmd, timeout) from None
            except (Closed, OSError) as err:
                unknown = (
                    ""
                    if retry_safe
                    else (
                        "; it may or may not have been applied (show tells), and it is not sent "
                        "again: only reads, creates and assignments are"
                    )
                )
                lost = ConnectionLost(
                    f"the connection to {self.socket_path} broke after {cmd} was sent and "
                    f"before its reply ({err}){unknown}",
                    socket_path=self.socket_path,
                    cmd=cmd,
                )
                if retry_safe:
                    raise _TryAgain(lost) from None
                raise lost from None
            reply = decode_reply(raw, cmd)
            if reply.get("id") == request_id:
                return reply
            if reply.get("id") is None and not reply["ok"]:
                self._refusal(reply, cmd)
            # A reply to another request: requests take turns, so only one a timeout gave up
            # on could be left, and that connection was closed. Not ours: read on.

    def _refusal(self, reply: Dict[str, Any], cmd: str) -> None:
        """Raises the error of a reply the daemon sent with no id: it refused the connection
        (or the request line) as a whole, and closes the connection."""
        error = reply_error(reply, cmd)
        if error.code in _REFUSED_BEFORE_READING:
            raise _TryAgain(error)
        raise error

    def _timeout(self, cmd: str, timeout: Optional[float]) -> TicklerTimeout:
        return TicklerTimeout(
            f"no reply to {cmd} from {self.socket_path} within {timeout} s; it may or may not "
            "have been applied, and it is not sent again",
            socket_path=self.socket_path,
            timeout=timeout,
            cmd=cmd,
        )

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


def _not_owner(reply: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The owner a `not_owner` reply names, or None for any other reply."""
    error = reply.get("error")
    if reply["ok"] or not isinstance(error, dict) or error.get("code") != "not_owner":
        return None
    owner = error.get("owner")
    return owner if isinstance(owner, dict) else {}


def _result(reply: Dict[str, Any], cmd: str) -> Any:
    if reply["ok"]:
        return reply.get("result")
    raise reply_error(reply, cmd)


def _put(args: Dict[str, Any], **optional: Any) -> None:
    """Adds the optional arguments that were given: one left out takes the daemon's default."""
    for name, value in optional.items():
        if value is not None:
            args[name] = value


def _instants(values: Mapping[str, Instant], name: str) -> Dict[str, str]:
    return {key: format_instant(value, f"{name}[{key!r}]") for key, value in values.items()}


def _strings(values: Sequence[str], name: str) -> List[str]:
    if isinstance(values, str):
        raise TypeError(f"{name}: expected a list of strings, not a string")
    return list(values)


def _attribute(value: AttrValue, name: str) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, Sequence):  # a list of strings, or of tables (string to string)
        return list(value)
    raise TypeError(
        f"attribute {name!r}: expected a boolean, an integer, a string, a list or None, "
        f"not {type(value).__name__}"
    )


def _attributes(values: Mapping[str, AttrValue]) -> Dict[str, Any]:
    return {name: _attribute(value, name) for name, value in values.items()}
