"""What the tests share: a real daemon on a manual clock, and a fake one for what a real daemon
will not do on demand (never answer, answer in pieces, drop a connection midway).

The real daemon is the binary named by the environment's ``TICKLER_BIN`` (required: the tests
fail, never skip, without it), run in a temporary directory with a copy of the repository's
``config/``, as the Rust tests run it (``crates/tickler/tests/support/mod.rs``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import unittest
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

REPO_ROOT = Path(__file__).resolve().parents[3]
CLIENT_SRC = REPO_ROOT / "clients" / "python" / "src"
EXAMPLES = REPO_ROOT / "examples" / "python"

# The client under test is this checkout's, not one installed elsewhere.
sys.path.insert(0, str(CLIENT_SRC))

from tickler_client import Client, TicklerError  # noqa: E402

#: Where the manual clock of every test daemon starts.
MANUAL_START = "2026-03-01T09:30:00Z"
#: A readiness bound, not a timing assertion: it only turns a hang into a failure.
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
#: The uid and gid an "app" connection runs as in the role tests (nobody, nogroup).
APP_UID = 65534
APP_GID = 65534


def tickler_bin() -> str:
    """The daemon binary from ``TICKLER_BIN``; a test that needs one fails without it."""
    path = os.environ.get("TICKLER_BIN")
    if not path:
        raise AssertionError(
            "TICKLER_BIN is not set: these tests run a real daemon. Build it (cargo build -p "
            "tickler) and run e.g. TICKLER_BIN=target/debug/tickler python3 -m unittest "
            "discover -s clients/python/tests"
        )
    if not os.path.isfile(path) or not os.access(path, os.X_OK):
        raise AssertionError(f"TICKLER_BIN={path} is not an executable file")
    return os.path.abspath(path)


class Daemon:
    """``tickler serve --clock manual`` in a temporary directory of its own."""

    def __init__(self, *, socket_group: Optional[str] = None) -> None:
        self.binary = tickler_bin()
        self.work = Path(tempfile.mkdtemp(prefix="tickler-py-"))
        self.config = self.work / "config" / "tickler.toml"
        self.data_dir = self.work / "data"
        self.socket = str(self.data_dir / "admin" / "tickler.sock")
        self.log = self.work / "daemon.log"
        self.process: Optional[subprocess.Popen[bytes]] = None
        self._write_config(socket_group)
        if socket_group is not None:
            # Another user reaches the socket through these directories (0711: through, not
            # into); the daemon makes the socket's own directory its group's.
            os.chmod(self.work, 0o711)
            self.data_dir.mkdir(mode=0o711)
            os.chmod(self.data_dir, 0o711)

    def _write_config(self, socket_group: Optional[str]) -> None:
        target = self.work / "config"
        shutil.copytree(REPO_ROOT / "config", target)
        # The demo sites and courses of config/learning would be entities the tests do not
        # expect: the tests start from an empty store, as the Rust ones do.
        shutil.rmtree(target / "learning")
        text = self.config.read_text()
        start = f'manual_clock_start = "{MANUAL_START}"'
        replacements = {'# manual_clock_start = "2026-03-01T09:00:00Z"': start}
        if socket_group is not None:
            replacements['# socket_group = "tickler"'] = f'socket_group = "{socket_group}"'
            # Its members may open the socket; the role list makes them apps.
            replacements['# app_groups = ["tickler"]'] = f'app_groups = ["{socket_group}"]'
        for commented, setting in replacements.items():
            if commented not in text:
                raise AssertionError(f"config/tickler.toml has no line {commented!r} to set")
            text = text.replace(commented, setting)
        self.config.write_text(text)

    def start(self) -> None:
        """Starts the daemon and waits until it answers."""
        assert self.process is None, "the daemon is already running"
        env = {k: v for k, v in os.environ.items() if not k.startswith("TICKLER_")}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--config",
                    str(self.config),
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--socket",
                    self.socket,
                    "--clock",
                    "manual",
                ],
                cwd=self.work,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        started = time.monotonic()
        while not self._answers():
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise AssertionError(f"the daemon exited with {code}:\n{self.log_tail()}")
            if time.monotonic() - started > START_TIMEOUT_S:
                self.stop()
                raise AssertionError(f"the daemon did not start listening:\n{self.log_tail()}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(5.0)
                sock.connect(self.socket)
                sock.sendall(b'{"v":1,"id":0,"cmd":"clock.now"}\n')
                return sock.makefile("rb").readline().startswith(b"{")
        except OSError:
            return False

    def stop(self) -> None:
        """Stops the daemon (SIGTERM, then SIGKILL if it lingers)."""
        process, self.process = self.process, None
        if process is None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)

    def outbox(self) -> List[Dict[str, Any]]:
        """What the due-date policy's file channel "sent" (one JSON object a line)."""
        path = self.data_dir / "outbox.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return "(no daemon log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


class DaemonTestCase(unittest.TestCase):
    """Tests sharing one daemon per class (distinct entity ids per test)."""

    socket_group: Optional[str] = None
    daemon: Daemon

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.daemon = Daemon(socket_group=cls.socket_group)
        cls.addClassCleanup(cls.daemon.cleanup)
        cls.daemon.start()

    def client(self, **options: Any) -> Client:
        client = Client(self.daemon.socket, **options)
        self.addCleanup(client.close)
        return client


def outcome_as_user(uid: int, gid: int, action: Callable[[], Any]) -> Dict[str, Any]:
    """Runs ``action`` in a forked child switched to ``uid``/``gid`` (so the daemon sees that
    peer on the connections it opens) and returns ``{"result": ...}`` or ``{"error": {"type",
    "code", "message"}}``. Needs root, as CI has."""
    if os.geteuid() != 0:
        raise AssertionError(
            "this test connects as another user (uid 65534), which takes root: run it as root, "
            "as CI does"
        )
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into the test runner
        status = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            try:
                outcome: Dict[str, Any] = {"result": action()}
            except TicklerError as err:
                outcome = {
                    "error": {"type": type(err).__name__, "code": err.code, "message": err.message}
                }
            with os.fdopen(write_end, "w") as out:
                json.dump(outcome, out)
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end) as source:
        text = source.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        raise AssertionError(f"the child running as uid {uid} failed (status {status})")
    reported: Dict[str, Any] = json.loads(text)
    return reported


class FakeConnection:
    """One accepted connection of a :class:`FakeDaemon`, as its handler sees it."""

    def __init__(self, sock: socket.socket, daemon: FakeDaemon) -> None:
        self.sock = sock
        self.daemon = daemon
        self._reader = sock.makefile("rb")

    def request(self, timeout: float = 10.0) -> Optional[Dict[str, Any]]:
        """The next request, or ``None`` when the client closed the connection."""
        self.sock.settimeout(timeout)
        line = self._reader.readline()
        if not line:
            return None
        request: Dict[str, Any] = json.loads(line)
        self.daemon.record(request)
        return request

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_json(self, reply: Dict[str, Any]) -> None:
        self.send(json.dumps(reply).encode() + b"\n")

    def reply(self, request: Dict[str, Any], result: Any) -> None:
        self.send_json({"v": 1, "id": request.get("id"), "ok": True, "result": result})

    def error(self, request_id: Any, code: str, message: str) -> None:
        self.send_json(
            {"v": 1, "id": request_id, "ok": False, "error": {"code": code, "message": message}}
        )

    def hold(self) -> None:
        """Reads and ignores whatever comes until the client closes (a daemon that never
        answers)."""
        self.sock.settimeout(None)
        while self.sock.recv(65536):
            pass

    def close(self) -> None:
        self._reader.close()
        self.sock.close()


Handler = Callable[[FakeConnection], None]


def answer_everything(connection: FakeConnection) -> None:
    """A handler answering each request with ``{"echo": cmd, "connection": n}``."""
    number = connection.daemon.connections
    while True:
        request = connection.request()
        if request is None:
            return
        connection.reply(request, {"echo": request["cmd"], "connection": number})


class FakeDaemon:
    """A Unix-socket server in threads: the n-th connection it accepts is given to the n-th
    handler (the last one serves the rest). It records the requests its handlers read."""

    def __init__(self, *handlers: Handler) -> None:
        assert handlers, "a fake daemon needs at least one handler"
        self._handlers = list(handlers)
        self._dir = tempfile.mkdtemp(prefix="tickler-fake-")
        self.path = os.path.join(self._dir, "fake.sock")
        self.requests: List[Dict[str, Any]] = []
        self.connections = 0
        self.handled = threading.Event()  # set when the first handler has returned
        self.failures: List[str] = []
        self._lock = threading.Lock()
        self._threads: List[threading.Thread] = []
        self._open: List[FakeConnection] = []
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def record(self, request: Dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(request)

    def commands(self) -> List[str]:
        with self._lock:
            return [request["cmd"] for request in self.requests]

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                sock, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.connections += 1
                index = min(self.connections, len(self._handlers)) - 1
            connection = FakeConnection(sock, self)
            self._open.append(connection)
            thread = threading.Thread(
                target=self._serve, args=(self._handlers[index], connection, index), daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _serve(self, handler: Handler, connection: FakeConnection, index: int) -> None:
        try:
            handler(connection)
        except OSError:
            pass  # the client went away first: what several tests do on purpose
        except BaseException:
            self.failures.append(traceback.format_exc())
        finally:
            connection.close()
            if index == 0:
                self.handled.set()

    def close(self) -> None:
        self._stopping.set()
        self._acceptor.join(5)
        self._listener.close()
        for connection in self._open:
            try:
                connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in self._threads:
            thread.join(5)
        shutil.rmtree(self._dir, ignore_errors=True)
        if self.failures:
            raise AssertionError("a fake daemon handler failed:\n" + "\n".join(self.failures))


class FakeDaemonTestCase(unittest.TestCase):
    def fake(self, *handlers: Handler) -> FakeDaemon:
        daemon = FakeDaemon(*handlers)
        self.addCleanup(daemon.close)
        return daemon

    def client(self, daemon: FakeDaemon, **options: Any) -> Client:
        options.setdefault("timeout", 5.0)
        options.setdefault("backoff", 0.01)
        client = Client(daemon.path, **options)
        self.addCleanup(client.close)
        return client
