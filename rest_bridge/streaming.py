"""Server-streaming gRPC calls as HTTP streams.

The first message is read before any header is sent, so an error the server reports up front
(bad argument, unknown model) becomes a real HTTP status; meanwhile the client's socket is
watched, so a client that leaves while its request is queued cancels it. Once streaming, closing
the response (the client went away, or the stream ended) cancels the gRPC call, which stops the
engine.
"""

from __future__ import annotations

import json
import threading
from typing import Callable, Iterable, Iterator

import grpc
from flask import Response, stream_with_context

from rest_bridge.grpc_client import ClientGone, client_socket, wait_while_connected
from tokenwire.errors import from_rpc_error

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


class PeekedCall:
    """A started server-streaming call whose first message has already arrived.

    While it waits for that message (a request queued behind others may wait long), the HTTP
    client's socket is watched: a client that leaves cancels the call, so the server drops the
    queued request (it never decodes a token nor holds a queue place), and the view ends with
    ClientGone. Then the headers go out with the first message, as before.

    With `wait_s`, the peek is bounded: a watch stream may stay silent for a long time (no
    download yet), and then its HTTP headers go out after `wait_s` without the first message
    (and the socket is still watched until it comes). Errors the server raises before that (bad
    arguments, no access) still become real HTTP statuses, since they arrive at once.
    """

    def __init__(self, call, *, wait_s: float | None = None):
        self._call = call
        self._pending: _Peek | None = None
        self._client = client_socket()
        if wait_s is None and self._client is None:  # nothing to watch: no thread needed
            self._first = _unwrap(_next_of(call))
            return
        peek = _Peek(call)
        if wait_while_connected(peek.done.wait, call.cancel, self._client, wait_s):
            self._first = _unwrap(peek.outcome)
        else:
            self._first, self._pending = [], peek

    @property
    def waiting(self) -> bool:
        """True when the headers go out before the first message (a silent stream)."""
        return self._pending is not None

    @property
    def first(self):
        """The first message, or None if the stream ended without one (or has not sent it)."""
        return self._first[0] if self._first else None

    def __iter__(self) -> Iterator:
        if self._pending is not None:
            try:
                wait_while_connected(self._pending.done.wait, self._call.cancel, self._client)
            except ClientGone:
                return  # the headers are out: the stream just ends (the call is cancelled)
            kind, value = self._pending.outcome
            self._pending = None
            if kind == "error":
                raise value
            if kind == "end":
                return
            yield value
        yield from self._first
        self._first = []
        yield from self._call

    def cancel(self) -> None:
        self._call.cancel()


class _Peek:
    """Reads a call's first message on a thread of its own, so the request's thread can watch
    the client meanwhile."""

    def __init__(self, call):
        self.done = threading.Event()
        self.outcome: tuple[str, object] = ("end", None)
        threading.Thread(target=self._read, args=(call,), daemon=True, name="stream-peek").start()

    def _read(self, call) -> None:
        try:
            self.outcome = _next_of(call)
        finally:
            self.done.set()


def _next_of(call) -> tuple[str, object]:
    try:
        return "message", next(call)
    except StopIteration:
        return "end", None
    except grpc.RpcError as error:
        return "error", error


def _unwrap(outcome: tuple[str, object]) -> list:
    kind, value = outcome
    if kind == "error":
        raise from_rpc_error(value) from None
    return [] if kind == "end" else [value]


def _json(data: object) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def sse_event(data: object) -> bytes:
    payload = data if isinstance(data, str) else _json(data)
    return f"data: {payload}\n\n".encode()


class TextEvents:
    """SSE events that differ only in one text field, rendered from a template: per token only
    the text is encoded, not the whole chunk."""

    _MARKER = "\x00tokenwire-text\x00"

    def __init__(self, shape: dict, place: Callable[[dict, str], dict]):
        """`place(shape, marker)` puts the marker where the text goes."""
        rendered = _json(place(shape, self._MARKER))
        self._head, self._tail = rendered.split(_json(self._MARKER))
        self._head = "data: " + self._head

    def __call__(self, text: str) -> bytes:
        return f"{self._head}{_json(text)}{self._tail}\n\n".encode()


def sse_response(events: Iterable[bytes]) -> Response:
    """An SSE response streaming `events` as they are produced (no buffering on the way)."""
    return Response(stream_with_context(events), mimetype="text/event-stream",
                    headers=SSE_HEADERS, direct_passthrough=True)


def stream_response(call: PeekedCall, render: Callable[[PeekedCall], Iterable[bytes]],
                    on_error: Callable[[BaseException], bytes], mimetype: str) -> Response:
    """Streams `render(call)`; a failure after the headers went out is written with `on_error`."""

    def body() -> Iterator[bytes]:
        try:
            yield from render(call)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                yield on_error(from_rpc_error(error))
        finally:
            call.cancel()  # no-op after a normal end; stops the engine when the client left

    return Response(stream_with_context(body()), mimetype=mimetype, headers=SSE_HEADERS,
                    direct_passthrough=True)
