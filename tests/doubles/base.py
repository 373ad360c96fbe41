"""What the HTTP doubles share: a loopback server in a daemon thread, a request log and a
thread-safe plan of injected faults.

Each double subclasses :class:`DoubleServer`, implements ``route`` (the service's behaviour)
and ``fault_body`` (how that service words a 429/5xx). The server is a ``ThreadingHTTPServer``
speaking HTTP/1.1 with keep-alive, because both SDKs hold pooled connections open: a
single-threaded server would deadlock as soon as a second connection arrives.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour. ``status`` None means "answer normally, but late"
    (``delay`` alone); ``drop`` closes the connection without an answer."""

    status: int | None = None
    delay: float = 0.0
    retry_delay: str | None = None  # Gemini: RetryInfo.retryDelay, e.g. "12.5s"
    retry_after: str | None = None  # Pinecone: Retry-After header, e.g. "2"
    drop: bool = False
    message: str | None = None  # the error's wording, when the test needs a particular one


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: object  # parsed JSON, or None when the body was not JSON
    raw_size: int
    status: int = 0  # filled in once the answer is known
    notes: dict = field(default_factory=dict)  # what the double decided, e.g. the API version


@dataclass
class Reply:
    """An answer. ``body`` is sent as JSON unless it is ``str``/``bytes``, which go out as
    they are with ``content_type`` (Google's front end answers an unknown path with HTML)."""

    status: int
    body: object = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


class ManualClock:
    """A clock a test moves by hand: ``Double(clock=clock)`` then ``clock.advance(3)``, so
    time-based behaviour is exercised without sleeping (and without flaky timing)."""

    def __init__(self, start: float = 1_000.0) -> None:
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._now += seconds


class FaultPlan:
    """Faults queued with ``fail_next`` are served first, in order; otherwise, with
    ``set_fault_rate``, a seeded RNG picks a status for that share of requests. Everything
    is guarded by one lock because the server answers on many threads at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[Fault] = []
        self._rate = 0.0
        self._statuses: tuple[int, ...] = ()
        self._rng = random.Random(0)
        self._rate_fault = Fault()
        self._delay = 0.0

    def push(self, fault: Fault, times: int) -> None:
        with self._lock:
            self._queue.extend([fault] * times)

    def set_rate(self, rate: float, statuses: Iterable[int], seed: int, fault: Fault) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        with self._lock:
            self._rate = rate
            self._statuses = tuple(statuses)
            self._rng = random.Random(seed)
            self._rate_fault = fault

    def set_delay(self, seconds: float) -> None:
        with self._lock:
            self._delay = seconds

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()
            self._rate = 0.0
            self._delay = 0.0

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def take(self) -> Fault | None:
        with self._lock:
            if self._queue:
                return self._queue.pop(0)
            if self._rate and self._statuses and self._rng.random() < self._rate:
                status = self._rng.choice(self._statuses)
                f = self._rate_fault
                return Fault(status, f.delay, f.retry_delay, f.retry_after)
            if self._delay:
                return Fault(delay=self._delay)
            return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDKs expect
    # Headers and body leave in two writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (~40 ms per answer on Linux), which made every request slow.
    disable_nagle_algorithm = True
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass  # keep pytest output clean; the double keeps its own log

    def _serve(self) -> None:
        double = self.server.double
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            raw = double.decode_body(self.headers, raw)
        except (OSError, EOFError, ValueError):  # e.g. a body that claims gzip but is not
            self._send(Reply(400, {"message": "the body could not be decoded"}))
            return
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        parts = urlsplit(self.path)
        rec = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_size=len(raw),
        )
        double._record(rec)
        # the service's own processing time, on every answer (faulted ones too)
        if double.latency and double._stopping.wait(double.latency):
            self.close_connection = True
            return
        fault = double.faults.take()
        # wait on an Event, not time.sleep, so stop() releases slow answers at once
        if fault is not None and fault.delay and double._stopping.wait(fault.delay):
            self.close_connection = True
            return
        if fault is not None and fault.drop:
            rec.status = -1
            self.close_connection = True
            self.connection.close()
            return
        if fault is not None and fault.status is not None:
            reply = double.fault_reply(fault)
        else:
            try:
                reply = double.route(rec, raw)
            except Exception as exc:  # a bug in the double must show up, not hang the client
                reply = Reply(500, {"message": f"test double crashed: {exc!r}"})
        rec.status = reply.status
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if isinstance(reply.body, bytes | str):
            payload = reply.body.encode() if isinstance(reply.body, str) else reply.body
        else:
            payload = json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (its timeout), nothing to do


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    double: DoubleServer

    def handle_error(self, request, client_address) -> None:
        # a client closing its keep-alive connection (or timing out) is normal here
        exc = sys.exc_info()[1]
        if not isinstance(exc, ConnectionError):
            super().handle_error(request, client_address)


class DoubleServer:
    """Base of the doubles: ``with Double() as d: ... d.url``, or ``start()``/``stop()``.

    ``latency`` (seconds) delays every answer, as the real service's processing time does;
    ``clock`` (monotonic seconds) is what time-based behaviour (consistency lag, quota
    windows) reads, so a test can move time on without sleeping."""

    def __init__(
        self, *, latency: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if latency < 0:
            raise ValueError("latency must not be negative")
        self.latency = latency
        self.clock = clock
        self.faults = FaultPlan()
        self._log_lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.double = self
        self._thread: threading.Thread | None = None

    # lifecycle ---------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DoubleServer:
        if self._thread is None:
            name = f"{type(self).__name__}:{self.port}"
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.name = name
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # fault injection ---------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        delay: float = 0.0,
        retry_delay: str | None = None,
        retry_after: str | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (after ``delay`` seconds)."""
        self.faults.push(Fault(status, delay, retry_delay, retry_after, message=message), times)

    def slow_next(self, delay: float, *, times: int = 1) -> None:
        """Answer the next ``times`` requests normally, but only after ``delay`` seconds."""
        self.faults.push(Fault(delay=delay), times)

    def drop_next(self, *, times: int = 1) -> None:
        """Close the connection of the next ``times`` requests without answering."""
        self.faults.push(Fault(drop=True), times)

    def set_fault_rate(
        self,
        rate: float,
        statuses: Iterable[int] = (429, 503),
        *,
        seed: int = 0,
        retry_delay: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        """Fail a share ``rate`` of requests with a status drawn from ``statuses``;
        the RNG is seeded so a failing run can be replayed."""
        fault = Fault(retry_delay=retry_delay, retry_after=retry_after)
        self.faults.set_rate(rate, statuses, seed, fault)

    def set_delay(self, seconds: float) -> None:
        """Delay every answer by ``seconds`` until cleared (``set_delay(0)``)."""
        self.faults.set_delay(seconds)

    def clear_faults(self) -> None:
        self.faults.clear()

    # inspection --------------------------------------------------------------------------
    def _record(self, rec: RecordedRequest) -> None:
        with self._log_lock:
            self._requests.append(rec)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every request received, in arrival order, faulted ones included."""
        with self._log_lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        with self._log_lock:
            return len(self._requests)

    def reset_log(self) -> None:
        with self._log_lock:
            self._requests.clear()

    # to implement ------------------------------------------------------------------------
    def decode_body(self, headers, raw: bytes) -> bytes:
        return raw

    def route(self, rec: RecordedRequest, raw: bytes) -> Reply:
        raise NotImplementedError

    def fault_reply(self, fault: Fault) -> Reply:
        raise NotImplementedError
