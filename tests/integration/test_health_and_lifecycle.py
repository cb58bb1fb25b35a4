"""grpc.health.v1 follows the engines: NOT_SERVING while loading and while draining."""

from __future__ import annotations

import asyncio
import socket
import threading
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from server.app import GENERATION_SERVICE
from server.backends.llama_cpp import LlamaCppBackend
from server.config import embedded_model_path, load_settings
from server.core import engines as engines_module
from server.core.engines import EngineState
from server.core.types import LoadParams
from server.errors import EngineUnavailable
from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import Client, UnavailableError
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import engine_service_pb2_grpc as engine_grpc



class GatedLoadBackend(LlamaCppBackend):
    """The real backend, whose load waits until the test opens the gate."""

    gate = threading.Event()
    arrived = threading.Event()  # set when a load reaches the gate
    loads = 0  # backend loads started, by every instance

    async def load(self) -> None:
        GatedLoadBackend.loads += 1
        self.arrived.set()
        await asyncio.to_thread(self.gate.wait, 30)
        await super().load()


def _gated_factory(engine_id, path, params, max_queue):
    return GatedLoadBackend(engine_id, path, params, max_queue=max_queue)

def _refuses_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        pass  # the listener is closing as we connect
    return False


async def _model_loads_left_pending() -> list[str]:
    """The engine and backend load tasks still pending on this loop (run it on the server's)."""
    return [repr(task) for task in asyncio.all_tasks()
            if task.get_coro().__qualname__.endswith(".load") and not task.done()]


def test_not_serving_while_the_model_loads_then_serving():
    GatedLoadBackend.gate.clear()
    running = ServerThread(make_settings(), backends={"llama_cpp": _gated_factory}).start(wait_loaded=False)
    try:
        with Client(running.target, timeout=30) as client:
            wait_for(lambda: client.health() == "NOT_SERVING")
            assert client.health(GENERATION_SERVICE) == "NOT_SERVING"
            with pytest.raises(UnavailableError) as caught:
                client.complete(prompt="hi", max_tokens=1)
            assert caught.value.reason == "ENGINE_LOADING"
            GatedLoadBackend.gate.set()
            wait_for(lambda: client.health() == "SERVING", timeout=30)
            assert client.health(GENERATION_SERVICE) == "SERVING"
            assert client.complete(prompt="hi", max_tokens=1).usage.completion_tokens == 1
    finally:
        GatedLoadBackend.gate.set()
        running.stop()


def test_a_kubernetes_style_watch_sees_the_model_become_ready():
    GatedLoadBackend.gate.clear()
    running = ServerThread(make_settings(), backends={"llama_cpp": _gated_factory}).start(wait_loaded=False)
    try:
        with grpc.insecure_channel(running.target) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=60)
            assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
            GatedLoadBackend.gate.set()
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            watch.cancel()
    finally:
        GatedLoadBackend.gate.set()
        running.stop()


def test_drain_refuses_new_work_reports_not_serving_and_lets_streams_finish():
    running = ServerThread(make_settings()).start()
    shutdown = None
    try:
        with Client(running.target, timeout=60) as client:
            assert client.health() == "SERVING"
            stream = client.generate(prompt="Tell me a long story.", temperature=0, max_tokens=120,
                                     logit_bias=BAN_END_OF_GENERATION)
            first = next(stream)
            shutdown = asyncio.run_coroutine_threadsafe(running.server.shutdown(30), running.loop)
            wait_for(lambda: running.server.engines.draining)
            wait_for(lambda: client.health() == "NOT_SERVING")
            with pytest.raises(UnavailableError) as caught:
                client.complete(prompt="hi", max_tokens=1)
            assert caught.value.reason == "SERVER_DRAINING"
            rest = list(stream)
            assert rest[-1].finish_reason == "length"
            assert rest[-1].usage.completion_tokens == 120
            assert first.text + "".join(d.text for d in rest)
        assert shutdown.result(30) is True  # everything finished within the grace period
    finally:
        running.stop()


def test_an_engine_closed_twice_at_once_frees_its_native_state_once():
    """A drain unloads the engines and a shutdown after it closes them again; the second close
    must find nothing to free (a double free aborts the whole process)."""
    params = load_settings().resolve_load_params(LoadParams(n_ctx=256, n_parallel=1, n_batch=64))
    backend = LlamaCppBackend("twice", str(embedded_model_path()), params)

    async def load_then_close_twice() -> None:
        await backend.load()
        await asyncio.gather(backend.close(), backend.close())
        await backend.close()

    asyncio.run(load_then_close_twice())
    assert backend.health().detail == "scheduler not running"


def test_a_drain_ends_download_watches_at_once_instead_of_waiting_out_the_grace():
    """A client watching downloads (`tokenwire pull`, the socket.io relay) holds a call open
    with nothing to finish: the drain ends it with UNAVAILABLE, and the shutdown completes
    without spending its grace period on it."""
    running = ServerThread(make_settings()).start()
    try:
        with Client(running.target, timeout=120) as client:
            watch = client.watch_downloads()
            ended: list[BaseException] = []

            def read() -> None:
                try:
                    for _ in watch:
                        pass
                except BaseException as exc:  # the end of the watch is what is under test
                    ended.append(exc)

            reader = threading.Thread(target=read)
            reader.start()
            wait_for(lambda: running.server.security.in_flight == 1)
            shutdown = asyncio.run_coroutine_threadsafe(running.server.shutdown(120), running.loop)
            reader.join(30)
            assert isinstance(ended[0], UnavailableError) and ended[0].reason == "SERVER_DRAINING"
            assert shutdown.result(30) is True  # long before the 120 s grace
    finally:
        running.stop()


def test_a_shutdown_during_the_model_load_lets_it_finish_then_frees_the_model():
    """SIGTERM while the model is still loading. The loader thread cannot be interrupted, so the
    shutdown waits for it (within the grace) and frees what it built: no loaded model or running
    scheduler is left behind, and no load task is left pending on the loop."""
    GatedLoadBackend.gate.clear()
    GatedLoadBackend.arrived.clear()
    running = ServerThread(make_settings(), backends={"llama_cpp": _gated_factory}).start(wait_loaded=False)
    try:
        assert GatedLoadBackend.arrived.wait(30)
        shutdown = asyncio.run_coroutine_threadsafe(running.server.shutdown(60), running.loop)
        # The listener closes before the engines are freed: from here on only the load is left.
        wait_for(lambda: _refuses_connections(running.port), timeout=30)
        GatedLoadBackend.gate.set()
        assert shutdown.result(60) is True
        engine = running.server.engines.describe("default")
        assert engine.state is EngineState.UNLOADED  # it loaded, then the shutdown unloaded it
        assert engine.backend.health().detail == "scheduler not running"
        with pytest.raises(EngineUnavailable):
            engine.backend.info()  # the model is freed
        assert running.call(_model_loads_left_pending()) == []
    finally:
        GatedLoadBackend.gate.set()
        running.stop()


def test_a_load_that_outlasts_the_shutdown_grace_is_given_up_not_left_pending():
    """The grace bounds the shutdown: a load still held when it runs out is cancelled and the
    engine reported as not loaded, instead of a task left pending on a loop about to close
    ("Task was destroyed but it is pending")."""
    GatedLoadBackend.gate.clear()
    GatedLoadBackend.arrived.clear()
    running = ServerThread(make_settings(), backends={"llama_cpp": _gated_factory}).start(wait_loaded=False)
    try:
        assert GatedLoadBackend.arrived.wait(30)
        assert running.call(running.server.shutdown(0.2)) is True  # the gate is still closed
        assert running.call(_model_loads_left_pending()) == []
        engine = running.server.engines.describe("default")
        assert engine.state is EngineState.FAILED and engine.error == "loading was cancelled"
    finally:
        GatedLoadBackend.gate.set()
        running.stop()


def _unloaded_server(backends=None) -> ServerThread:
    """A server whose default engine has loaded once and been unloaded again."""
    GatedLoadBackend.gate.set()
    running = ServerThread(make_settings(), backends=backends or {"llama_cpp": _gated_factory}).start()
    with grpc.insecure_channel(running.target) as channel:
        engine_grpc.EngineServiceStub(channel).UnloadEngine(
            engine_pb.UnloadEngineRequest(engine_id="default"), timeout=30)
    return running


def _load_engine(target: str, timeout: float) -> engine_pb.LoadEngineResponse:
    with grpc.insecure_channel(target) as channel:
        return engine_grpc.EngineServiceStub(channel).LoadEngine(
            engine_pb.LoadEngineRequest(engine_id="default"), timeout=timeout)


def test_a_load_retried_after_a_deadline_joins_the_load_still_running():
    """A client's LoadEngine runs out of time while the model loads; the load goes on (its thread
    cannot be stopped). The client retries: the retry waits for that load instead of starting a
    second one on the same backend, which would build a second model and leak the first."""
    running = _unloaded_server()
    manager = running.server.engines
    try:
        GatedLoadBackend.gate.clear()
        GatedLoadBackend.arrived.clear()
        GatedLoadBackend.loads = 0
        with pytest.raises(grpc.RpcError) as gave_up:
            _load_engine(running.target, timeout=1)
        assert gave_up.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert GatedLoadBackend.arrived.wait(30)
        wait_for(lambda: not manager._lifecycle.locked())  # the first caller has left
        with ThreadPoolExecutor(1) as pool:
            retry = pool.submit(_load_engine, running.target, 60)
            wait_for(lambda: manager._lifecycle.locked())  # the retry is in, and has decided
            GatedLoadBackend.gate.set()
            assert retry.result(60).engine.status == engine_pb.ENGINE_STATUS_LOADED
        assert GatedLoadBackend.loads == 1
        with Client(running.target, timeout=60) as client:
            assert client.complete(prompt="hi", max_tokens=1).usage.completion_tokens == 1
    finally:
        GatedLoadBackend.gate.set()
        running.stop()


def test_a_load_given_up_while_its_model_file_is_read_leaves_the_engine_as_it_was(monkeypatch):
    """The deadline passes while the GGUF header is still being read, before any load started:
    the engine goes back to UNLOADED instead of showing LOADING for good, and loads later."""
    running = _unloaded_server()
    reading, read_gate = threading.Event(), threading.Event()
    real_estimate = engines_module.estimate_memory

    def slow_estimate(path, params):
        reading.set()
        read_gate.wait(30)
        return real_estimate(path, params)

    monkeypatch.setattr(engines_module, "estimate_memory", slow_estimate)
    try:
        with pytest.raises(grpc.RpcError) as gave_up:
            _load_engine(running.target, timeout=1)
        assert gave_up.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        assert reading.is_set()
        engine = running.server.engines.describe("default")
        wait_for(lambda: engine.state is EngineState.UNLOADED)
        read_gate.set()
        assert _load_engine(running.target, timeout=60).engine.status == engine_pb.ENGINE_STATUS_LOADED
    finally:
        read_gate.set()
        running.stop()
