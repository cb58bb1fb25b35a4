"""Several engines at once: add, route by model id, switch the default, unload, remove, and the
model store and catalog behind them. A server of its own, since these tests change its engines."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import grpc
import pytest
import yaml

from server.config import embedded_model_path
from tests.conftest import BAN_END_OF_GENERATION, CAPITAL_QUESTION
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import Client
from tokenwire.errors import from_rpc_error
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import engine_service_pb2_grpc as engine_grpc
from tokenwire.v1 import model_service_pb2 as model_pb
from tokenwire.v1 import model_service_pb2_grpc as model_grpc
from tokenwire.v1 import server_service_pb2 as server_pb
from tokenwire.v1 import server_service_pb2_grpc as server_grpc

COPY_NAME = "SmolLM2-copy-Q4_1"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory) -> Path:
    """A catalog entry whose file is our copy of the embedded model, as if downloaded earlier."""
    path = tmp_path_factory.mktemp("catalog") / "catalog.yaml"
    path.write_text(yaml.safe_dump({"models": [{
        "name": "Smol-Copy-GGUF", "model_id": "Tests/Smol-Copy-GGUF",
        "url": "http://127.0.0.1:9/none.gguf", "filename": f"{COPY_NAME}.gguf",
        "size_bytes": 1, "quantization": "Q4_1", "parameters": "135M", "architecture": "llama",
        "categories": ["tiny"], "tags": ["test"]}]}))
    return path


@pytest.fixture(scope="module")
def server(models_dir, catalog_file):
    shutil.copyfile(embedded_model_path(), models_dir / f"{COPY_NAME}.gguf")
    (models_dir / "notes.gguf").write_text("not a model")
    settings = make_settings(model_store={"directory": str(models_dir), "catalog_path": str(catalog_file)},
                             engine={"unload_grace_seconds": 60.0})
    running = ServerThread(settings).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def channel(server):
    with grpc.insecure_channel(server.target) as ch:
        yield ch


@pytest.fixture(scope="module")
def engines(channel):
    return engine_grpc.EngineServiceStub(channel)


@pytest.fixture(scope="module")
def models(channel):
    return model_grpc.ModelServiceStub(channel)


def _error(call, *args):
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)
    return from_rpc_error(caught.value)


def _engine_ids(engines) -> list[str]:
    return [e.engine_id for e in engines.ListEngines(engine_pb.ListEnginesRequest()).engines]


def test_local_models_are_described_from_their_gguf_headers(models, models_dir):
    answer = models.ListLocalModels(model_pb.ListLocalModelsRequest())
    assert answer.directory == str(models_dir)
    by_name = {m.name: m for m in answer.models}
    embedded = answer.models[0]
    assert embedded.embedded and embedded.loaded and embedded.engine_ids == ["default"]
    copy = by_name[COPY_NAME]
    assert copy.size_bytes == (models_dir / f"{COPY_NAME}.gguf").stat().st_size
    assert copy.metadata.architecture == "llama" and copy.metadata.quantization == "Q4_1"
    assert copy.metadata.size_label == "135M" and 130e6 < copy.metadata.parameters < 140e6
    assert copy.downloaded_unix > 0 and not copy.loaded and not copy.embedded
    assert (copy.catalog_name, copy.catalog_model_id) == ("Smol-Copy-GGUF", "Tests/Smol-Copy-GGUF")
    broken = by_name["notes"]
    assert not broken.HasField("metadata") and "not a GGUF file" in broken.problem


def test_catalog_lists_entries_with_their_local_state_and_filters(models):
    answer = models.ListCatalogModels(model_pb.ListCatalogModelsRequest())
    names = {m.name: m for m in answer.models}
    assert {"Qwen2.5-0.5B-Instruct-Q8_0-GGUF", "Llama-3.2-1B-Instruct-Q8_0-GGUF",
            "SmolLM2-135M-Instruct-Q8_0-GGUF", "Smol-Copy-GGUF"} <= set(names)
    assert names["Smol-Copy-GGUF"].is_downloaded and names["Smol-Copy-GGUF"].local_name == COPY_NAME
    assert not names["Qwen2.5-0.5B-Instruct-Q8_0-GGUF"].is_downloaded
    assert names["Qwen2.5-3B-Instruct-Q4_K_M-GGUF"].url.startswith("https://")
    assert "tiny" in answer.categories and "instruct" in answer.categories
    small = models.ListCatalogModels(model_pb.ListCatalogModelsRequest(
        category="instruct", max_size_bytes=600 << 20)).models
    assert small and all("instruct" in m.categories and m.size_bytes <= 600 << 20 for m in small)
    assert "Qwen2.5-7B-Instruct-Q4_K_M-GGUF" not in {m.name for m in small}


def test_a_second_engine_serves_requests_that_name_it(server, engines):
    added = engines.AddEngine(engine_pb.AddEngineRequest(
        engine_id="second", model="Smol-Copy-GGUF", params=engine_pb.LoadParams(n_ctx=1024, n_parallel=2)))
    engine = added.engine
    assert engine.status == engine_pb.ENGINE_STATUS_LOADED and engine.params.n_ctx == 1024
    assert engine.memory.model_bytes > 90e6 and engine.memory.context_bytes > 0
    assert engine.model.quantization == "Q4_1" and engine.load_seconds > 0
    assert _engine_ids(engines) == ["default", "second"]
    with Client(server.target, timeout=240) as client:
        done = client.complete(messages=CAPITAL_QUESTION, model="second", max_tokens=8, temperature=0)
        assert "Paris" in done.text and done.model == "second"
        assert client.complete(messages=CAPITAL_QUESTION, max_tokens=8, temperature=0).model == "default"
    got = engines.GetEngine(engine_pb.GetEngineRequest(engine_id="second")).engine
    assert got.requests_total == 1 and got.last_tokens_per_second > 0 and got.last_used_unix > 0


@pytest.mark.parametrize("request_, code, reason", [
    (dict(engine_id="second", model="Smol-Copy-GGUF"), "ALREADY_EXISTS", "ENGINE_EXISTS"),
    (dict(engine_id="x", model="no-such-model"), "NOT_FOUND", "MODEL_NOT_FOUND"),
    (dict(engine_id="x", model="file:///etc/passwd"), "INVALID_ARGUMENT", "UNSUPPORTED_URL"),
    (dict(engine_id="x", model="ftp://example.com/m.gguf"), "INVALID_ARGUMENT", "UNSUPPORTED_URL"),
    (dict(engine_id="x", model="/etc/hostname"), "INVALID_ARGUMENT", "NOT_GGUF"),
    (dict(engine_id="../x", model="Smol-Copy-GGUF"), "INVALID_ARGUMENT", "INVALID_ENGINE_ID"),
    (dict(engine_id="x", model="Smol-Copy-GGUF", backend="tensorrt"), "INVALID_ARGUMENT", "INVALID_ARGUMENT"),
])
def test_bad_engine_requests_get_clear_statuses(engines, request_, code, reason):
    error = _error(engines.AddEngine, engine_pb.AddEngineRequest(**request_))
    assert (error.code.name, error.reason) == (code, reason)
    assert "x" not in _engine_ids(engines)


def test_load_parameters_are_validated_by_field(engines):
    error = _error(engines.AddEngine, engine_pb.AddEngineRequest(
        engine_id="x", model="Smol-Copy-GGUF", params=engine_pb.LoadParams(n_ctx=2)))
    assert error.code.name == "INVALID_ARGUMENT" and error.violations[0].field == "params.n_ctx"


def test_a_load_beyond_the_memory_budget_is_refused_before_it_starts(tmp_path):
    # The embedded model alone needs ~250 MiB by the estimate; a second one does not fit in 400.
    settings = make_settings(engine={"memory_budget_mb": 400})
    shutil.copyfile(embedded_model_path(), Path(settings.model_store.directory) / "copy.gguf")
    running = ServerThread(settings).start()
    try:
        with grpc.insecure_channel(running.target) as ch:
            stub = engine_grpc.EngineServiceStub(ch)
            error = _error(stub.AddEngine, engine_pb.AddEngineRequest(engine_id="big", model="copy"))
            assert (error.code.name, error.reason) == ("RESOURCE_EXHAUSTED", "MEMORY_BUDGET_EXCEEDED")
            assert "memory budget" in error.message and int(error.metadata["required_mb"]) > 0
            assert _engine_ids(stub) == ["default"]
            # Unloading the default frees its share: now the new one fits.
            stub.UnloadEngine(engine_pb.UnloadEngineRequest(engine_id="default"))
            added = stub.AddEngine(engine_pb.AddEngineRequest(engine_id="big", model="copy"))
            assert added.engine.status == engine_pb.ENGINE_STATUS_LOADED
    finally:
        running.stop()


def test_switching_the_default_is_atomic_and_the_old_default_is_unloaded(server, engines):
    switched = engines.SwitchDefaultEngine(engine_pb.SwitchDefaultEngineRequest(engine_id="second"))
    assert switched.previous_engine_id == "default" and switched.engine.is_default
    with Client(server.target, timeout=240) as client:
        assert client.complete(messages=CAPITAL_QUESTION, max_tokens=8, temperature=0).model == "second"
    wait_for(lambda: engines.GetEngine(engine_pb.GetEngineRequest(engine_id="default")).engine.status
             == engine_pb.ENGINE_STATUS_UNLOADED, timeout=60)
    with Client(server.target, timeout=240) as client:
        with pytest.raises(Exception) as caught:
            client.complete("Hello", model="default", max_tokens=2)
        assert caught.value.reason == "ENGINE_NOT_LOADED"
    back = engines.SwitchDefaultEngine(engine_pb.SwitchDefaultEngineRequest(engine_id="default"))
    assert back.engine.status == engine_pb.ENGINE_STATUS_LOADED and back.previous_engine_id == "second"


def test_removing_an_engine_lets_its_stream_finish_then_forgets_it(server, engines):
    engines.AddEngine(engine_pb.AddEngineRequest(engine_id="doomed", model=COPY_NAME))
    with Client(server.target, timeout=240) as client:
        stream = client.generate("Once upon a time", model="doomed", max_tokens=48,
                                 logit_bias=BAN_END_OF_GENERATION)
        first = next(stream)
        removal = threading.Thread(target=engines.RemoveEngine,
                                   args=(engine_pb.RemoveEngineRequest(engine_id="doomed"),))
        removal.start()
        wait_for(lambda: engines.GetEngine(engine_pb.GetEngineRequest(engine_id="doomed")).engine.status
                 == engine_pb.ENGINE_STATUS_UNLOADING)
        with pytest.raises(Exception) as refused:
            client.complete("Hello", model="doomed", max_tokens=2)
        assert refused.value.reason == "ENGINE_UNLOADING"
        rest = list(stream)
        removal.join(timeout=120)
    assert rest[-1].finish_reason == "length"
    assert sum(len(d.token_ids) for d in [first, *rest]) == 48
    assert "doomed" not in _engine_ids(engines)


def test_a_forced_removal_ends_the_stream_with_unavailable(server, engines):
    engines.AddEngine(engine_pb.AddEngineRequest(engine_id="forced", model=COPY_NAME))
    with Client(server.target, timeout=240) as client:
        stream = client.generate("Once upon a time", model="forced", max_tokens=2000,
                                 logit_bias=BAN_END_OF_GENERATION)
        next(stream)
        engines.RemoveEngine(engine_pb.RemoveEngineRequest(engine_id="forced", force=True))
        with pytest.raises(Exception) as ended:
            list(stream)
        assert (ended.value.code, ended.value.reason) == (grpc.StatusCode.UNAVAILABLE,
                                                          "ENGINE_UNLOADED")
        assert "forced" not in _engine_ids(engines)
        with pytest.raises(Exception) as gone:
            client.complete("Hello", model="forced", max_tokens=2)
        assert gone.value.code == grpc.StatusCode.NOT_FOUND


def test_a_stream_that_outlives_the_unload_grace_is_cancelled(server, models_dir):
    settings = make_settings(model_store={"directory": str(models_dir)},
                             engine={"unload_grace_seconds": 0.5})
    running = ServerThread(settings).start()
    try:
        with grpc.insecure_channel(running.target) as channel, \
                Client(running.target, timeout=240) as client:
            stub = engine_grpc.EngineServiceStub(channel)
            stub.AddEngine(engine_pb.AddEngineRequest(engine_id="slow", model=COPY_NAME))
            stream = client.generate("Once upon a time", model="slow", max_tokens=2000,
                                     logit_bias=BAN_END_OF_GENERATION)
            next(stream)
            stub.RemoveEngine(engine_pb.RemoveEngineRequest(engine_id="slow"))  # waits the grace
            with pytest.raises(Exception) as ended:
                list(stream)
            assert ended.value.code == grpc.StatusCode.UNAVAILABLE
            assert "slow" not in _engine_ids(stub)
            # The server is fine afterwards.
            assert client.complete(messages=CAPITAL_QUESTION, max_tokens=8,
                                   temperature=0).usage.completion_tokens > 0
    finally:
        running.stop()


def test_the_default_engine_cannot_be_removed(engines):
    error = _error(engines.RemoveEngine, engine_pb.RemoveEngineRequest(engine_id="default"))
    assert (error.code.name, error.reason) == ("FAILED_PRECONDITION", "ENGINE_IS_DEFAULT")


def test_unload_all_then_load_again(engines):
    unloaded = engines.UnloadAllEngines(engine_pb.UnloadAllEnginesRequest()).unloaded_engine_ids
    assert set(unloaded) >= {"default"}
    assert all(e.status == engine_pb.ENGINE_STATUS_UNLOADED
               for e in engines.ListEngines(engine_pb.ListEnginesRequest()).engines)
    loaded = engines.LoadEngine(engine_pb.LoadEngineRequest(engine_id="default")).engine
    assert loaded.status == engine_pb.ENGINE_STATUS_LOADED
    reloaded = engines.LoadEngine(engine_pb.LoadEngineRequest(engine_id="default", force_reload=True))
    assert reloaded.engine.loaded_unix >= loaded.loaded_unix


def test_deleting_a_model_in_use_needs_force_and_reports_bytes_freed(engines, models, models_dir):
    if "second" not in _engine_ids(engines):
        engines.AddEngine(engine_pb.AddEngineRequest(engine_id="second", model=COPY_NAME))
    engines.LoadEngine(engine_pb.LoadEngineRequest(engine_id="second"))
    error = _error(models.DeleteLocalModel, model_pb.DeleteLocalModelRequest(name=COPY_NAME))
    assert (error.code.name, error.reason) == ("FAILED_PRECONDITION", "MODEL_IN_USE")
    size = (models_dir / f"{COPY_NAME}.gguf").stat().st_size
    deleted = models.DeleteLocalModel(model_pb.DeleteLocalModelRequest(name=COPY_NAME, force=True))
    assert deleted.freed_bytes == size and list(deleted.removed_engine_ids) == ["second"]
    assert not (models_dir / f"{COPY_NAME}.gguf").exists()
    assert "second" not in _engine_ids(engines)


@pytest.mark.parametrize("name, code", [
    ("no-such-model", "NOT_FOUND"), ("../etc/passwd", "INVALID_ARGUMENT"),
    ("/etc/passwd", "INVALID_ARGUMENT"), ("%2e%2e", "INVALID_ARGUMENT"), ("a\0b", "INVALID_ARGUMENT"),
    # A catalog model that was never downloaded: not found, though its id holds a "/".
    ("HuggingFaceTB/SmolLM2-360M-Instruct-Q8_0-GGUF", "NOT_FOUND"),
])
def test_deleting_unknown_or_unsafe_names_is_refused(models, name, code):
    assert _error(models.DeleteLocalModel, model_pb.DeleteLocalModelRequest(name=name)).code.name == code


def test_the_embedded_model_cannot_be_deleted(models):
    embedded = models.ListLocalModels(model_pb.ListLocalModelsRequest()).models[0]
    error = _error(models.DeleteLocalModel, model_pb.DeleteLocalModelRequest(name=embedded.name, force=True))
    assert (error.code.name, error.reason) == ("FAILED_PRECONDITION", "MODEL_EMBEDDED")


def test_server_info_and_live_config(channel, models_dir, tmp_path):
    stub = server_grpc.ServerServiceStub(channel)
    info = stub.GetServerInfo(server_pb.GetServerInfoRequest())
    assert info.version and info.llama_cpp_version and "llama_cpp" in info.backends
    assert info.config.models_directory == str(models_dir) and info.catalog_models >= 16
    error = _error(stub.UpdateServerConfig, server_pb.UpdateServerConfigRequest(log_level="LOUD"))
    assert error.code.name == "INVALID_ARGUMENT"
    updated = stub.UpdateServerConfig(server_pb.UpdateServerConfigRequest(
        log_level="debug", models_directory=str(tmp_path / "elsewhere")))
    assert updated.config.log_level == "DEBUG" and (tmp_path / "elsewhere").is_dir()
    reset = stub.UpdateServerConfig(server_pb.UpdateServerConfigRequest(reset_to_defaults=True))
    assert reset.config.models_directory == str(models_dir) and reset.config.log_level == "INFO"
