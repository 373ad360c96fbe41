"""A loopback Sentry ingest endpoint that records the events sentry-sdk sends (reference E).

``sentry_sdk.init(dsn=double.dsn, ...)``, do the work, ``sentry_sdk.flush()``, then read
``double.events`` (the event payloads, oldest first).
"""

from __future__ import annotations

import gzip
import json
import re
import threading

from .base import DoubleServer, Fault, RecordedRequest, Reply

_ENVELOPE_PATH = re.compile(r"^/api/(\d+)/envelope/$")


def parse_envelope(raw: bytes) -> tuple[dict, list[tuple[dict, bytes]]]:
    """Split a Sentry envelope into its header and (item header, payload) pairs.

    Format (develop.sentry.dev/sdk/envelopes): a JSON header line, then per item a JSON
    header line and a payload that is either ``length`` bytes long or runs to the next
    newline."""
    header_line, _, rest = raw.partition(b"\n")
    envelope_header = json.loads(header_line)
    items = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        if not item_line.strip():
            continue
        item_header = json.loads(item_line)
        length = item_header.get("length")
        if length is not None:
            payload, rest = rest[:length], rest[length:]
            rest = rest.removeprefix(b"\n")
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((item_header, payload))
    return envelope_header, items


class SentryDouble(DoubleServer):
    PUBLIC_KEY = "publickey"
    PROJECT_ID = 42

    def __init__(self) -> None:
        super().__init__()
        self._events_lock = threading.Lock()
        self._events: list[dict] = []
        self._items: list[tuple[dict, bytes]] = []

    @property
    def dsn(self) -> str:
        return f"http://{self.PUBLIC_KEY}@127.0.0.1:{self.port}/{self.PROJECT_ID}"

    @property
    def events(self) -> list[dict]:
        """Every ``event`` item received, parsed; client reports and sessions are left out."""
        with self._events_lock:
            return list(self._events)

    @property
    def items(self) -> list[tuple[dict, bytes]]:
        """Every envelope item of any type, as (item header, raw payload)."""
        with self._events_lock:
            return list(self._items)

    def exception_types(self) -> list[str]:
        """The type of the outermost exception of each event, e.g. ``["PermanentError"]``."""
        return [e["exception"]["values"][-1]["type"] for e in self.events if e.get("exception")]

    def clear(self) -> None:
        with self._events_lock:
            self._events.clear()
            self._items.clear()

    def decode_body(self, headers, raw: bytes) -> bytes:
        # sentry-sdk 2.x gzips every envelope (Content-Encoding: gzip)
        if headers.get("Content-Encoding", "").lower() == "gzip":
            return gzip.decompress(raw)
        return raw

    def fault_reply(self, fault: Fault) -> Reply:
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        return Reply(fault.status, {"detail": "injected failure"}, headers)

    def route(self, rec: RecordedRequest, raw: bytes) -> Reply:
        match = _ENVELOPE_PATH.match(rec.path)
        if rec.method != "POST" or not match:
            return Reply(404, {"detail": "not found"})
        if int(match.group(1)) != self.PROJECT_ID:
            return Reply(403, {"detail": "project does not match the key"})
        auth = rec.headers.get("x-sentry-auth", "")
        if f"sentry_key={self.PUBLIC_KEY}" not in auth:
            return Reply(401, {"detail": "missing or wrong sentry_key"})
        try:
            envelope_header, items = parse_envelope(raw)
        except ValueError:
            return Reply(400, {"detail": "malformed envelope"})
        with self._events_lock:
            self._items.extend(items)
            for item_header, payload in items:
                if item_header.get("type") == "event":
                    self._events.append(json.loads(payload))
        return Reply(200, {"id": envelope_header.get("event_id")})
