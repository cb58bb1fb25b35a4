"""The observer wraps every backend stream; leaving the observed stream must end the backend's
stream at once (its `finally` frees the engine's sequence), not whenever it is garbage."""

from __future__ import annotations

import asyncio

from server.core.types import Delta, GenerationRequest
from server.monitoring.metrics import Metrics
from server.monitoring.observer import GenerationObserver


def test_a_client_that_leaves_ends_the_backend_stream_before_aclose_returns():
    events: list[str] = []

    async def backend():
        try:
            for text in ("one", "two", "three"):
                yield Delta(text, (1,))
        finally:
            events.append("backend closed")

    async def leave_after_the_first_delta() -> None:
        observer = GenerationObserver(Metrics(engines=None, hardware=None))
        stream = observer.observe("default", GenerationRequest(prompt="hi"), backend())
        assert (await anext(stream)).text == "one"
        await stream.aclose()
        events.append("aclose returned")
        await asyncio.sleep(0)  # where a garbage-collected generator's cleanup would run

    asyncio.run(leave_after_the_first_delta())
    assert events[:2] == ["backend closed", "aclose returned"]


def test_a_stream_left_early_counts_as_cancelled():
    async def backend():
        yield Delta("one", (1,))
        yield Delta("two", (2,))

    metrics = Metrics(engines=None, hardware=None)

    async def leave() -> None:
        stream = GenerationObserver(metrics).observe("default", GenerationRequest(prompt="hi"),
                                                     backend())
        await anext(stream)
        await stream.aclose()

    asyncio.run(leave())
    assert metrics.errors.labels("default", "completion", "CANCELLED")._value.get() == 1
