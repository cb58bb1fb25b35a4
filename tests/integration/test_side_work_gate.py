"""Tokenize and Detokenize wait their turn while the engine generates (server/core/side_work.py),
through the real server: here the gate admits one call at once and lets none wait, so a second
concurrent call while a stream runs is RESOURCE_EXHAUSTED; with the engine idle both pass."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import Client
from tokenwire.errors import ResourceExhaustedError


@pytest.fixture(scope="module")
def strict_gate():
    settings = make_settings(engine={"side_work_per_second": 0.001, "side_work_burst": 1,
                                     "side_work_max_waiting": 0})
    server = ServerThread(settings).start()
    yield server
    server.stop()


def test_an_idle_engine_admits_every_tokenize_call(strict_gate):
    with Client(strict_gate.target, timeout=120) as client:
        for _ in range(5):
            assert client.tokenize("Hello world")


def test_while_a_stream_runs_tokenize_calls_past_the_gate_are_refused(strict_gate):
    with Client(strict_gate.target, timeout=240) as client:
        received, done = [], threading.Event()

        def read():
            stream = client.generate(prompt="Once upon a time", max_tokens=4000,
                                     temperature=0, logit_bias=BAN_END_OF_GENERATION)
            for delta in stream:
                received.append(delta)
                if done.is_set():
                    break
            stream.close()  # cancels the call

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            wait_for(lambda: len(received) >= 2, timeout=120)
            outcomes = []
            for _ in range(3):
                try:
                    client.tokenize("Hello world")
                    outcomes.append("ok")
                except ResourceExhaustedError as error:
                    outcomes.append(error.reason)
            # The burst admits one; the bucket refills at 0.001/s and nothing may wait.
            assert outcomes[0] == "ok"
            assert outcomes[1:] == ["QUEUE_FULL", "QUEUE_FULL"]
        finally:
            done.set()
            reader.join(60)
