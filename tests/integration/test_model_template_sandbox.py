"""A model file's chat template is untrusted code: one that tries to escape the sandbox is refused
when the model loads, with a clear error, and its payload never runs."""

from __future__ import annotations

import asyncio

import gguf
import grpc
import pytest

from server.backends.llama_cpp import LlamaCppBackend
from server.config import embedded_model_path, load_settings
from server.core.chat_template import CHATML_TEMPLATE, UnsafeChatTemplate
from server.core.gguf_info import read_chat_template
from server.core.types import LoadParams
from tests.helpers import ServerThread
from tokenwire import Client
from tokenwire.v1 import engine_service_pb2, engine_service_pb2_grpc


def write_gguf(path, template: str) -> str:
    """A GGUF file holding metadata only: all a loader reads before the weights."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_chat_template(template)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return str(path)


def escaping_template(marker) -> str:
    # Reaches Python's builtins through the template's own object and writes a file.
    return ("{{ self.__init__.__globals__['__builtins__']['open']('" + str(marker) +
            "', 'w').write('pwned') }}" + CHATML_TEMPLATE)


def test_the_template_is_read_from_the_file(tmp_path):
    path = write_gguf(tmp_path / "chatml.gguf", CHATML_TEMPLATE)
    assert read_chat_template(path) == CHATML_TEMPLATE


def test_loading_a_model_whose_template_escapes_the_sandbox_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = write_gguf(tmp_path / "evil.gguf", escaping_template(marker))
    backend = LlamaCppBackend("evil", path, LoadParams(n_ctx=256, n_parallel=1, n_threads=1,
                                                       n_batch=64))
    with pytest.raises(UnsafeChatTemplate, match="chat template in .*evil.gguf was refused"):
        asyncio.run(backend.load())
    assert not marker.exists()


def test_a_server_reports_the_refused_model_and_keeps_serving_the_others(tmp_path):
    marker = tmp_path / "pwned"
    path = write_gguf(tmp_path / "evil.gguf", escaping_template(marker))
    settings = load_settings(environ={}, overrides={
        "server": {"host": "127.0.0.1", "grpc_port": 0},
        "models": [{"id": "default", "path": str(embedded_model_path())},
                   {"id": "evil", "path": path}]})
    running = ServerThread(settings).start()
    try:
        with grpc.insecure_channel(running.target) as channel:
            engines = engine_service_pb2_grpc.EngineServiceStub(channel)
            evil = engines.GetEngine(engine_service_pb2.GetEngineRequest(engine_id="evil"),
                                     timeout=60).engine
        assert evil.status == engine_service_pb2.ENGINE_STATUS_FAILED
        assert "chat template" in evil.error and "sandbox" in evil.error
        with Client(running.target, timeout=60) as client:
            assert client.health() == "SERVING"
    finally:
        running.stop()
    assert not marker.exists()
