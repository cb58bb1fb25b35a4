"""The interface every backend implements (server.backends holds the implementations), so that
the engine manager and servicers never depend on a backend's internals.

`generate` returns an async iterator of deltas. Closing or cancelling the iterator aborts the work
(the backend's own `finally`), so a client that disconnects or whose deadline passes frees the
engine within one decode step without any cancel logic in servicers. A continuous-batching
scheduler is an implementation detail behind the same four calls.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import AsyncGenerator

from server.core.types import Delta, GenerationRequest


@dataclass(frozen=True)
class BackendInfo:
    """What a loaded backend tells about itself."""

    backend: str
    model_path: str
    n_ctx: int
    n_vocab: int
    n_threads: int
    chat_template_source: str  # "model" or why a fallback is used
    #: How the model calls tools (ChatTemplate.tool_format): "generic" or a native format.
    tool_format: str = "generic"


@dataclass(frozen=True)
class Embedding:
    values: list[float]
    tokens: int


@dataclass(frozen=True)
class BackendHealth:
    healthy: bool
    active_requests: int
    queued_requests: int
    tokens_generated_total: int = 0
    cancelled_total: int = 0
    #: Most decode steps any cancelled request ran after its cancellation was requested; the
    #: engine promises at most one.
    max_steps_after_cancel: int = 0
    detail: str = ""


class Backend(abc.ABC):
    #: Registry name, e.g. "llama_cpp".
    name: str
    engine_id: str
    model_path: str

    @abc.abstractmethod
    async def load(self) -> None:
        """Loads the model; raises EngineFailure with a readable reason if it cannot."""

    @abc.abstractmethod
    def generate(self, request: GenerationRequest) -> AsyncGenerator[Delta, None]:
        """Streams deltas; the last carries `finish`. Errors surface as TokenwireError subclasses.
        An async generator: closing it early (a client left) stops the work in its `finally`."""

    @abc.abstractmethod
    async def embed(self, inputs: list[str], *, normalize: bool) -> list[Embedding]:
        """One pooled embedding per input, in order."""

    @abc.abstractmethod
    async def abort(self, request_id: str) -> None:
        """Stops a request wherever it is (queued or decoding); unknown ids are ignored."""

    @abc.abstractmethod
    def health(self) -> BackendHealth:
        """Cheap, non-blocking snapshot."""

    @abc.abstractmethod
    async def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]: ...

    @abc.abstractmethod
    async def detokenize(self, token_ids: list[int], *, render_special: bool) -> str: ...

    @abc.abstractmethod
    def info(self) -> BackendInfo: ...

    def scheduler_status(self) -> dict[str, float] | None:
        """The scheduler's figures as SchedulerStatus field values, for backends that batch."""
        return None

    def generating(self) -> bool:
        """Whether the backend is decoding for some request on this machine now: cheap calls
        then yield to it (server/core/side_work.py). Remote backends never are."""
        return False

    def tuning(self) -> tuple[int, int] | None:
        """(decode threads, prompt batch size) in use now, for backends that have them."""
        return None

    def tune(self, *, n_threads: int, n_batch: int) -> None:
        """Changes decode threads and prompt batch size of a loaded backend (performance modes);
        backends without such knobs ignore it."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Aborts everything in flight and frees the model."""
