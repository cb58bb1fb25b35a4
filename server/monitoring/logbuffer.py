"""Structured logs kept in memory for the LogService, and the filter that keeps secrets out of
every log destination.

The ring buffer is a logging.Handler on the root logger: records from any thread land in a
bounded deque, and each live subscriber (a StreamLogs call) gets them through its event loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import threading
from typing import Iterable

ACCESS_LOGGER = "tokenwire.access"
REDACTED = "[REDACTED]"

# Credentials as they appear in headers, metadata dumps, URLs and config echoes. Secrets are
# redacted by shape, because a log line can quote a key that the server was never configured with
# (a client sending a wrong one).
_SECRET_PATTERNS = (
    # "Authorization: Bearer x", "authorization=Basic x", ('authorization', 'Bearer x')
    re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*\(?['\"]?\s*(?:bearer|basic|token)?\s*)([^\s'\",;)]+)"),
    re.compile(r"(?i)(\bbearer\s+)([^\s'\",;)]+)"),
    # "x-api-key: x", "api_key=x", "apiKey": "x", custom *-auth-header names
    re.compile(r"(?i)((?:x-)?api[-_]?key['\"]?\s*[:=,]\s*\(?['\"]?\s*)([^\s'\",;)]+)"),
    re.compile(r"(?i)([\w-]*auth[\w-]*-header['\"]?\s*[:=,]\s*['\"]?\s*)([^\s'\",;)]+)"),
    # OpenAI-style and Foundry-style keys anywhere
    re.compile(r"()\b((?:sk|fl)-[A-Za-z0-9_\-]{8,})"),
)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and traceback text) with credentials replaced."""

    def __init__(self, secrets: Iterable[str] = ()):
        super().__init__()
        self._secrets = {s for s in secrets if s}

    def add_secret(self, secret: str) -> None:
        if secret:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        # The console and the ring buffer both carry this filter; the record is the same object
        # and the first pass has rewritten it already.
        if getattr(record, "tokenwire_redacted", False):
            return True
        record.tokenwire_redacted = True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message or record.args:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True


#: One filter for the process, so a secret registered once (a configured API key) is redacted
#: from every handler that carries it.
REDACTOR = RedactingFilter()


class AccessLogFilter(logging.Filter):
    """Keeps per-request access lines off a handler unless the access log is enabled."""

    def __init__(self, enabled: bool):
        super().__init__()
        self.enabled = enabled

    def filter(self, record: logging.LogRecord) -> bool:
        return self.enabled or not record.name.startswith(ACCESS_LOGGER)


def _offer(queue: asyncio.Queue, entry: dict) -> None:
    try:
        queue.put_nowait(entry)
    except asyncio.QueueFull:  # a stalled reader loses records rather than stalling logging
        pass


def record_dict(record: logging.LogRecord, sequence: int) -> dict:
    return {"timestamp_unix_ms": int(record.created * 1000), "level": record.levelname,
            "message": record.getMessage() + (f"\n{record.exc_text}" if record.exc_text else ""),
            "source": record.name, "sequence": sequence}


class LogBuffer(logging.Handler):
    def __init__(self, capacity: int = 1000, level: int = logging.DEBUG):
        super().__init__(level)
        self.capacity = capacity
        self.addFilter(REDACTOR)
        self._records: collections.deque[dict] = collections.deque(maxlen=capacity)
        self._sequence = 0
        self._guard = threading.Lock()
        self._subscribers: set[tuple[asyncio.AbstractEventLoop, asyncio.Queue]] = set()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            with self._guard:
                self._sequence += 1
                entry = record_dict(record, self._sequence)
                self._records.append(entry)
                subscribers = list(self._subscribers)
            for loop, queue in subscribers:
                try:
                    loop.call_soon_threadsafe(_offer, queue, entry)
                except RuntimeError:  # that loop is closed; its subscriber is gone
                    self._subscribers.discard((loop, queue))
        except Exception:
            self.handleError(record)

    def recent(self, count: int) -> list[dict]:
        with self._guard:
            records = list(self._records)
        return records[-count:] if count > 0 else []

    def subscribe(self, backlog: int = 0) -> tuple[list[dict], asyncio.Queue]:
        """The last `backlog` records and a queue of the ones after them (call on the loop)."""
        queue: asyncio.Queue = asyncio.Queue(maxsize=10_000)
        with self._guard:
            records = list(self._records)
            self._subscribers.add((asyncio.get_running_loop(), queue))
        return (records[-backlog:] if backlog > 0 else []), queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        with self._guard:
            self._subscribers = {s for s in self._subscribers if s[1] is not queue}

    def close_subscribers(self) -> None:
        """Ends every live stream (server shutdown): each gets None."""
        with self._guard:
            subscribers, self._subscribers = list(self._subscribers), set()
        for loop, queue in subscribers:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except RuntimeError:
                pass
