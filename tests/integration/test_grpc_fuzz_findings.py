"""What the gRPC fuzzing (test_grpc_fuzz.py) and issue 22 found, one request each, so that every
fix is pinned by a plain test that names the field: undecodable bytes, errors too large for the
trailers, non-finite sampling numbers, logit_bias ids outside the vocabulary, load parameters
llama.cpp cannot take, and model references that cannot be paths."""

from __future__ import annotations

import logging

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from server.config import embedded_model_path
from server.core.types import LoadParams
from tests import sentinel
from tests.helpers import ServerThread, make_settings
from tokenwire.v1 import download_service_pb2 as dl_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import generation_service_pb2 as gen_pb
from tokenwire.v1 import server_service_pb2 as server_pb
from tokenwire.v1 import session_service_pb2 as session_pb

GENERATE = "/tokenwire.v1.GenerationService/Generate"
COMPLETE = "/tokenwire.v1.GenerationService/Complete"
CHAT = "/tokenwire.v1.SessionService/Chat"
ADD_ENGINE = "/tokenwire.v1.EngineService/AddEngine"
TRAILER_SOFT_LIMIT = 8192  # grpc's default: a client may refuse trailers past it


class ErrorRecords(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def errors(self) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.fixture
def log_records():
    handler = ErrorRecords()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


@pytest.fixture
def channel(server):
    with grpc.insecure_channel(server.target) as ch:
        yield ch


def call(channel, path: str, payload: bytes, *, stream: bool = False):
    """Sends raw bytes; the RpcError the call ends with (None if it ends OK)."""
    try:
        if stream:
            for _ in channel.unary_stream(path)(payload, timeout=60):
                pass
        else:
            channel.unary_unary(path)(payload, timeout=60)
    except grpc.RpcError as error:
        return error
    return None


def status_of(error: grpc.RpcError) -> status_pb2.Status:
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    return status_pb2.Status.FromString(details)


def violations(error: grpc.RpcError) -> list[error_details_pb2.BadRequest.FieldViolation]:
    found = []
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found += list(bad.field_violations)
    return found


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    for detail in status_of(error).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    raise AssertionError("no ErrorInfo")


def trailer_bytes(error: grpc.RpcError) -> int:
    return sum(len(k) + len(v) for k, v in error.trailing_metadata() or ())


# -- undecodable requests --------------------------------------------------------------------------

FIELD_ZERO, TRUNCATED, BAD_UTF8 = b"\x00", b"\x0a\xff\xff\xff\xff\x0f", b"\x12\x02\xc3\x28"


@pytest.mark.parametrize("path, stream, payload", [
    (COMPLETE, False, FIELD_ZERO), (COMPLETE, False, TRUNCATED),
    (COMPLETE, False, BAD_UTF8),  # field 2 is the prompt: a string must be UTF-8
    (GENERATE, True, FIELD_ZERO), (GENERATE, True, BAD_UTF8),
    ("/tokenwire.v1.StatusService/WatchStatus", True, TRUNCATED),
])
def test_undecodable_bytes_are_invalid_argument_with_one_short_line(channel, log_records, path,
                                                                     stream, payload):
    error = call(channel, path, payload, stream=stream)
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert error_info(error).reason == "MALFORMED_REQUEST"
    assert "not a valid message" in error.details()
    assert log_records.errors() == []
    lines = [r for r in log_records.records if "undecodable request" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None and lines[0].levelno < logging.WARNING


@pytest.fixture(scope="module")
def keyed_server():
    running = ServerThread(make_settings(auth={"api_keys": [sentinel.USER_KEY]})).start()
    yield running
    running.stop()


def test_undecodable_bytes_are_checked_after_authentication(keyed_server):
    with grpc.insecure_channel(keyed_server.target) as ch:
        error = call(ch, COMPLETE, b"\x00")
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
        rpc = ch.unary_unary(COMPLETE)
        with pytest.raises(grpc.RpcError) as caught:
            rpc(b"\x00", timeout=60, metadata=(("x-api-key", sentinel.USER_KEY),))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# -- errors that echo a large request stay small -----------------------------------------------

def test_an_error_echoing_a_huge_name_fits_the_trailers(channel):
    request = engine_pb.GetEngineRequest(engine_id="é\U0001f600" * 2000)
    error = call(channel, "/tokenwire.v1.EngineService/GetEngine", request.SerializeToString())
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()[:200]
    assert len(error.details().encode()) <= 512 and error.details().endswith("…")
    assert trailer_bytes(error) < TRAILER_SOFT_LIMIT


def test_hundreds_of_violations_are_cut_to_a_few_and_counted(channel):
    request = dl_pb.ListDownloadsRequest(statuses=[99] * 300)
    error = call(channel, "/tokenwire.v1.DownloadService/ListDownloads", request.SerializeToString())
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    found = violations(error)
    assert len(found) == 8 and found[0].field == "statuses[0]"
    assert error_info(error).metadata["omitted_field_violations"] == "292"
    assert trailer_bytes(error) < TRAILER_SOFT_LIMIT


# -- sampling numbers ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, value", [("temperature", float("inf")), ("temperature", float("nan")),
                                         ("repeat_penalty", float("inf")), ("top_p", float("nan"))])
def test_non_finite_sampling_numbers_are_refused_naming_the_field(channel, name, value):
    request = gen_pb.CompleteRequest(prompt="hi", max_tokens=1)
    setattr(request.sampling, name, value)
    error = call(channel, COMPLETE, request.SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in violations(error)] == [f"sampling.{name}"]


@pytest.mark.parametrize("path, stream", [(COMPLETE, False), (GENERATE, True)])
def test_a_logit_bias_outside_the_vocabulary_is_refused(server, channel, path, stream):
    n_vocab = server.backend().info().n_vocab
    request = gen_pb.CompleteRequest(prompt="hi", max_tokens=1)
    request.sampling.logit_bias[n_vocab] = 1.0
    error = call(channel, path, request.SerializeToString(), stream=stream)
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = violations(error)
    assert violation.field == "sampling.logit_bias" and str(n_vocab) in violation.description


def test_a_chat_turn_with_a_logit_bias_outside_the_vocabulary_is_refused(server, channel):
    n_vocab = server.backend().info().n_vocab
    request = session_pb.ChatRequest(content="hi", create_if_missing=True)
    request.sampling.logit_bias[n_vocab + 7] = -5.0
    error = call(channel, CHAT, request.SerializeToString(), stream=True)
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in violations(error)] == ["sampling.logit_bias"]


def test_a_logit_bias_inside_the_vocabulary_still_works(server, channel):
    request = gen_pb.CompleteRequest(prompt="hi", max_tokens=1)
    request.sampling.logit_bias[server.backend().info().n_vocab - 1] = 1.0
    assert call(channel, COMPLETE, request.SerializeToString()) is None


# -- load parameters and model references -----------------------------------------------------

@pytest.mark.parametrize("params, field", [
    (engine_pb.LoadParams(n_threads=513), "params.n_threads"),
    (engine_pb.LoadParams(n_threads=2**31 - 1), "params.n_threads"),
    (engine_pb.LoadParams(n_batch=2**31 - 1), "params.n_batch"),
    (engine_pb.LoadParams(n_ctx=256, n_batch=512), "params.n_batch"),
])
def test_load_parameters_llama_cpp_cannot_take_are_refused_before_loading(server, channel, params,
                                                                          field):
    # Not loaded even where the check were missing: a 2**31-token batch is tens of GB.
    request = engine_pb.AddEngineRequest(engine_id="fuzz-found", model=str(embedded_model_path()),
                                         params=params, load_immediately=False)
    error = call(channel, ADD_ENGINE, request.SerializeToString())
    if error is None:  # accepted: leave the shared server as it was before failing
        server.call(server.server.engines.remove("fuzz-found", force=True))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert [v.field for v in violations(error)] == [field]


def test_the_default_batch_never_exceeds_a_smaller_window():
    settings = make_settings()
    assert settings.resolve_load_params(LoadParams(n_ctx=256)).n_batch == 256
    assert settings.resolve_load_params(LoadParams()).n_batch == settings.engine.n_batch


@pytest.mark.parametrize("model", ["m" * 300, "x/" + "y" * 5000, "~fuzz-no-such-user/model.gguf"],
                         ids=["name-too-long", "path-too-long", "home-of-no-user"])
def test_a_model_reference_that_cannot_be_a_path_is_not_found(channel, log_records, model):
    request = engine_pb.AddEngineRequest(engine_id="fuzz-found", model=model)
    error = call(channel, ADD_ENGINE, request.SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.NOT_FOUND, error
    assert log_records.errors() == []


def test_a_models_directory_in_the_home_of_no_user_is_invalid(channel, log_records):
    request = server_pb.UpdateServerConfigRequest(models_directory="~fuzz-no-such-user/models")
    error = call(channel, "/tokenwire.v1.ServerService/UpdateServerConfig",
                 request.SerializeToString())
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    assert [v.field for v in violations(error)] == ["models_directory"]
    assert log_records.errors() == []
