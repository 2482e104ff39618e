"""The connection: framing, ids, timeouts, refusals, and what is sent again after a break.

These run against a fake daemon (``support.FakeDaemon``) doing on demand what a real one does
only by accident: answer in pieces, never answer, drop a connection with a request in flight.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
import unittest
from unittest import mock

from typing import Any, Callable, Dict, Optional

from support import FakeConnection, FakeDaemonTestCase, answer_everything

from tickler_client import (
    REQUEST_LEN_MAX,
    Client,
    ConnectionLost,
    Forbidden,
    NotOwner,
    RequestTooLarge,
    TicklerTimeout,
    TicklerUnavailable,
    UnknownEntity,
    WatchLagged,
)
from tickler_client.client import NOT_OWNER_FOLLOWS_MAX


def drop_after_reading(connection: FakeConnection) -> None:
    """Reads one request and closes the connection without a reply (a daemon that died)."""
    connection.request()


def close_at_once(connection: FakeConnection) -> None:
    """Closes the connection before any request (a daemon that restarted, or idled it out)."""


class FramingTests(FakeDaemonTestCase):
    def test_a_reply_split_across_reads_is_put_back_together(self) -> None:
        def in_pieces(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            line = (
                json.dumps(
                    {"v": 1, "id": request["id"], "ok": True, "result": {"title": "Révision ✓"}},
                    ensure_ascii=False,
                ).encode()
                + b"\n"
            )
            cut = line.index("✓".encode()) + 1  # inside the UTF-8 bytes of one character
            for piece in (line[:7], line[7:cut], line[cut:]):
                connection.send(piece)
                time.sleep(0.02)

        fake = self.fake(in_pieces)
        self.assertEqual(self.client(fake).show("due/x"), {"title": "Révision ✓"})

    def test_lines_arriving_in_one_read_are_taken_one_by_one(self) -> None:
        def all_at_once(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            lines = [
                {"v": 1, "id": request["id"], "ok": True, "result": {"watching": "past events"}},
                {"v": 1, "id": request["id"], "ok": True, "result": {"entity": "due/a"}},
                {"v": 1, "id": request["id"], "ok": True, "result": {"entity": "due/b"}},
            ]
            connection.send(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
            connection.hold()

        with self.client(self.fake(all_at_once)).watch(timeout=5) as events:
            self.assertEqual([next(events)["entity"], next(events)["entity"]], ["due/a", "due/b"])

    def test_a_reply_to_another_request_is_not_taken_for_this_one(self) -> None:
        def stale_then_right(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            connection.send_json({"v": 1, "id": "stale", "ok": True, "result": "not yours"})
            connection.reply(request, "yours")

        self.assertEqual(self.client(self.fake(stale_then_right)).request("status"), "yours")

    def test_each_request_gets_a_fresh_id(self) -> None:
        fake = self.fake(answer_everything)
        client = self.client(fake)
        client.status()
        client.status()
        ids = [request["id"] for request in fake.requests]
        self.assertEqual(len(set(ids)), 2)

    def test_error_replies_raise_the_class_of_their_code(self) -> None:
        def unknown(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            connection.error(request["id"], "unknown_entity", "unknown entity due/nope")

        with self.assertRaises(UnknownEntity) as raised:
            self.client(self.fake(unknown)).show("due/nope")
        self.assertEqual(raised.exception.code, "unknown_entity")
        self.assertEqual(raised.exception.cmd, "show")

    def test_a_request_over_one_mebibyte_is_refused_before_anything_is_sent(self) -> None:
        fake = self.fake(answer_everything)
        client = self.client(fake)
        with self.assertRaises(RequestTooLarge) as raised:
            client.entity_set_attribute("due/x", "notes", "x" * REQUEST_LEN_MAX)
        self.assertEqual(raised.exception.code, "request_too_large")
        self.assertEqual(fake.connections, 0)


class TimeoutTests(FakeDaemonTestCase):
    def test_a_daemon_that_never_answers_raises_tickler_timeout(self) -> None:
        def silent(connection: FakeConnection) -> None:
            connection.request()
            connection.hold()

        fake = self.fake(silent)
        client = self.client(fake, timeout=0.2)
        started = time.monotonic()
        with self.assertRaises(TicklerTimeout) as raised:
            client.status()
        self.assertLess(time.monotonic() - started, 5.0)
        self.assertIsInstance(raised.exception, TimeoutError)
        self.assertIn(fake.path, str(raised.exception))
        self.assertEqual(fake.commands(), ["status"])  # a timeout is not resent

    def test_after_a_timeout_a_late_reply_is_never_taken_for_the_next_request(self) -> None:
        def late(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            time.sleep(0.4)
            connection.reply(request, "late")
            connection.hold()

        fake = self.fake(late, answer_everything)
        client = self.client(fake, timeout=0.2)
        with self.assertRaises(TicklerTimeout):
            client.request("status")
        time.sleep(0.3)  # the late reply has arrived on the first connection by now
        self.assertEqual(client.request("status"), {"echo": "status", "connection": 2})


class RetryTests(FakeDaemonTestCase):
    def test_a_read_lost_with_the_connection_is_sent_again(self) -> None:
        fake = self.fake(drop_after_reading, answer_everything)
        result = self.client(fake).request("show", {"entity": "due/x"})
        self.assertEqual(result, {"echo": "show", "connection": 2})
        self.assertEqual(fake.commands(), ["show", "show"])

    def test_a_create_lost_with_the_connection_is_sent_again_identical(self) -> None:
        fake = self.fake(drop_after_reading, answer_everything)
        self.client(fake).due_create("due/x", "r@example.org", due_at="2026-03-20T10:00:00Z")
        self.assertEqual(fake.commands(), ["due.create", "due.create"])
        self.assertEqual(fake.requests[0], fake.requests[1])

    def test_a_move_to_an_instant_lost_with_the_connection_is_sent_again(self) -> None:
        fake = self.fake(drop_after_reading, answer_everything)
        self.client(fake).due_move("due/x", "2026-03-20T10:00:00Z")
        self.assertEqual(fake.commands(), ["due.move", "due.move"])

    def test_a_completion_lost_with_the_connection_raises_connection_lost_unsent_again(
        self,
    ) -> None:
        fake = self.fake(drop_after_reading, answer_everything)
        with self.assertRaises(ConnectionLost) as raised:
            self.client(fake).due_complete("due/x", "review-submitted")
        self.assertEqual(fake.commands(), ["due.complete"])
        self.assertIsInstance(raised.exception, TicklerUnavailable)
        self.assertEqual(raised.exception.code, "connection_lost")
        self.assertIn("may or may not have been applied", str(raised.exception))

    def test_the_caller_may_declare_a_generic_request_idempotent(self) -> None:
        fake = self.fake(drop_after_reading, answer_everything)
        self.client(fake).request("entity.replan", {"entity": "due/x"}, idempotent=True)
        self.assertEqual(fake.commands(), ["entity.replan", "entity.replan"])

    def test_a_request_on_a_connection_closed_meanwhile_goes_on_a_new_one(self) -> None:
        fake = self.fake(close_at_once, answer_everything)
        client = self.client(fake)
        client.connect()
        self.assertTrue(fake.handled.wait(5))  # the first connection is closed now
        result = client.due_complete("due/x", "review-submitted")
        self.assertEqual(result, {"echo": "due.complete", "connection": 2})
        self.assertEqual(fake.commands(), ["due.complete"])

    def test_a_line_nobody_asked_for_is_never_taken_for_the_next_reply(self) -> None:
        def answer_then_complain(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            connection.reply(request, "first")
            connection.error(None, "request_timeout", "the request did not arrive whole")

        fake = self.fake(answer_then_complain, answer_everything)
        client = self.client(fake)
        self.assertEqual(client.request("status"), "first")
        self.assertTrue(fake.handled.wait(5))
        self.assertEqual(client.request("status"), {"echo": "status", "connection": 2})

    def test_a_connection_idle_for_longer_than_the_daemon_keeps_one_is_replaced(self) -> None:
        fake = self.fake(answer_everything)
        client = self.client(fake)
        with mock.patch("tickler_client.client.IDLE_RECONNECT_AFTER_S", 0.3):
            self.assertEqual(client.status(), {"echo": "status", "connection": 1})
            self.assertEqual(client.status(), {"echo": "status", "connection": 1})
            time.sleep(0.4)
            self.assertEqual(client.status(), {"echo": "status", "connection": 2})

    def test_a_full_daemon_is_tried_again(self) -> None:
        def full(connection: FakeConnection) -> None:
            connection.error(None, "too_many_connections", "the daemon already has 256 open")

        fake = self.fake(full, answer_everything)
        result = self.client(fake).due_complete("due/x", "review-submitted")
        self.assertEqual(result, {"echo": "due.complete", "connection": 2})

    def test_a_uid_the_daemon_does_not_serve_raises_forbidden_at_once(self) -> None:
        def refuse(connection: FakeConnection) -> None:
            connection.error(None, "forbidden", "uid 1001 may not use this socket")

        fake = self.fake(refuse)
        with self.assertRaises(Forbidden) as raised:
            self.client(fake).status()
        self.assertIn("uid 1001", raised.exception.message)
        self.assertEqual(fake.connections, 1)

    def test_a_forked_child_talks_on_a_connection_of_its_own(self) -> None:
        fake = self.fake(answer_everything)
        client = self.client(fake)
        self.assertEqual(client.status(), {"echo": "status", "connection": 1})
        pid = os.fork()
        if pid == 0:  # the child: never returns into the test runner
            status = 1
            try:
                if client.status() == {"echo": "status", "connection": 2}:
                    status = 0
            finally:
                os._exit(status)
        _, status = os.waitpid(pid, 0)
        self.assertEqual(status, 0, "the child's request went on a connection of its own")
        self.assertEqual(client.status(), {"echo": "status", "connection": 1})
        self.assertEqual(fake.connections, 2)


class UnavailableTests(FakeDaemonTestCase):
    def test_no_socket_raises_tickler_unavailable_naming_the_path(self) -> None:
        directory = tempfile.mkdtemp(prefix="tickler-none-")
        self.addCleanup(os.rmdir, directory)
        path = os.path.join(directory, "tickler.sock")
        client = Client(path, retries=2, backoff=0.01)
        started = time.monotonic()
        with self.assertRaises(TicklerUnavailable) as raised:
            client.status()
        self.assertLess(time.monotonic() - started, 2.0)  # the retries are bounded
        self.assertIsInstance(raised.exception, ConnectionError)
        self.assertEqual(raised.exception.socket_path, path)
        self.assertIn(path, str(raised.exception))
        self.assertEqual(raised.exception.code, "unavailable")

    def test_a_socket_file_with_no_daemon_behind_it_raises_tickler_unavailable(self) -> None:
        directory = tempfile.mkdtemp(prefix="tickler-stale-")
        path = os.path.join(directory, "tickler.sock")
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(path)  # bound, never listening: as a killed daemon leaves its socket
        self.addCleanup(os.rmdir, directory)
        self.addCleanup(os.unlink, path)
        self.addCleanup(stale.close)
        with self.assertRaises(TicklerUnavailable) as raised:
            Client(path, retries=1, backoff=0.01).status()
        self.assertIn(path, str(raised.exception))
        self.assertIn("no daemon", str(raised.exception))


class WatchStreamTests(FakeDaemonTestCase):
    def test_a_lagging_watcher_gets_watch_lagged_and_reads_on(self) -> None:
        def lagging(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            connection.reply(request, {"watching": "past events"})
            connection.error(
                request["id"],
                "watch_lagged",
                "3 past events were missed by this slow watcher; read them with history",
            )
            event = {"entity": "due/x", "past_event": {"occurrence": "pre-due#0"}}
            connection.reply(request, event)
            connection.hold()

        with self.client(self.fake(lagging)).watch(timeout=5) as events:
            with self.assertRaises(WatchLagged) as raised:
                next(events)
            self.assertEqual(raised.exception.code, "watch_lagged")
            self.assertEqual(raised.exception.missed, 3)
            self.assertEqual(next(events)["entity"], "due/x")

    def test_a_watch_whose_daemon_goes_away_raises_connection_lost(self) -> None:
        def gone(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            connection.reply(request, {"watching": "past events"})

        events = self.client(self.fake(gone)).watch(timeout=5)
        with self.assertRaises(ConnectionLost):
            next(events)
        self.assertTrue(events.closed)
        self.assertEqual(list(events), [])

    def test_poll_returns_none_when_nothing_came_in_time(self) -> None:
        def quiet(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            connection.reply(request, {"watching": "past events"})
            connection.hold()

        with self.client(self.fake(quiet)).watch() as events:
            self.assertIsNone(events.poll(0.05))
            self.assertFalse(events.closed)

    def test_poll_without_waiting_takes_an_event_that_has_arrived(self) -> None:
        def one_event_later(connection: FakeConnection) -> None:
            request = connection.request()
            assert request is not None
            connection.reply(request, {"watching": "past events"})
            time.sleep(0.05)
            connection.reply(request, {"entity": "due/x", "past_event": {}})
            connection.hold()

        with self.client(self.fake(one_event_later)).watch() as events:
            time.sleep(0.3)
            event = events.poll(0)
        self.assertIsNotNone(event)


if __name__ == "__main__":
    unittest.main()


class ClusterTests(FakeDaemonTestCase):
    """A cluster node that does not serve an entity answers `not_owner` naming the node that
    does; the client sends the request there."""

    @staticmethod
    def sending_to(socket_path: Optional[str]) -> Callable[[FakeConnection], None]:
        def not_owner(connection: FakeConnection) -> None:
            while True:
                request = connection.request()
                if request is None:
                    return
                owner: Dict[str, Any] = {"shard": 5, "epoch": 3}
                if socket_path is not None:
                    owner.update(node="node-b", socket=socket_path)
                connection.send_json(
                    {
                        "v": 1,
                        "id": request["id"],
                        "ok": False,
                        "error": {"code": "not_owner", "message": "elsewhere", "owner": owner},
                    }
                )

        return not_owner

    def test_a_request_is_sent_on_to_the_node_named_by_not_owner(self) -> None:
        owner = self.fake(answer_everything)
        asked = self.fake(self.sending_to(owner.path))
        result = self.client(asked).show("due/x")
        self.assertEqual(result["echo"], "show")
        self.assertEqual(asked.commands(), ["show"])
        self.assertEqual(owner.commands(), ["show"])

    def test_not_owner_that_keeps_coming_is_raised_with_the_owner(self) -> None:
        asked = self.fake(self.sending_to(None))
        with mock.patch("tickler_client.client.TAKEOVER_PAUSE_S", 0.0):
            with self.assertRaises(NotOwner) as raised:
                self.client(asked).show("due/x")
        self.assertEqual(raised.exception.owner, {"shard": 5, "epoch": 3})
        self.assertEqual(len(asked.commands()), 1 + NOT_OWNER_FOLLOWS_MAX)
