"""The Open Inference Protocol service (`inference.GRPCInferenceService`, Triton's vLLM backend
tensors) on the real server with the embedded model, through the vendored proto's own stubs, and
its REST form through the bridge. tritonclient itself: tests/e2e/test_tritonclient.py.

Also a bounded fuzz of the service's request messages (tests/integration/test_grpc_fuzz.py
covers the tokenwire.v1 contract only): the descriptor strategies of that module, seeded, with
random bytes too; no call may end INTERNAL or UNKNOWN, nothing may log an ERROR.
"""

from __future__ import annotations

import json
import logging
import struct

import grpc
import pytest
from google.protobuf.descriptor_pool import DescriptorPool
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase)
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.helpers import ServerThread, make_settings
from tests.integration.test_grpc_fuzz import BAD_CODES, ErrorRecords, Hints, message_strategy
from tokenwire.errors import from_rpc_error
from tokenwire.inference import grpc_service_pb2 as pb
from tokenwire.inference import grpc_service_pb2_grpc as pb_grpc

SERVICE = "inference.GRPCInferenceService"
PROMPT = "The capital of France is"
GREEDY = {"temperature": 0, "max_tokens": 5}
TIMEOUT_S = 120  # hang protection only
USER_KEY = "tw-kserve-user-key-0123456789"
ADMIN_KEY = "tw-kserve-admin-key-0123456789"


@pytest.fixture(scope="module")
def stub(server):
    with grpc.insecure_channel(server.target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)


def infer_request(prompt: str | None = PROMPT, *, stream: bool | None = None,
                  params: dict | None = GREEDY, raw: bool = False, model: str = "default",
                  request_id: str = "r", **bools: bool) -> pb.ModelInferRequest:
    """A request as tritonclient builds it (`raw`: raw_input_contents) or with typed contents."""
    request = pb.ModelInferRequest(model_name=model, id=request_id)
    tensors: list[tuple[str, str, object]] = []
    if prompt is not None:
        tensors.append(("text_input", "BYTES", prompt.encode()))
    if stream is not None:
        tensors.append(("stream", "BOOL", stream))
    if params is not None:
        tensors.append(("sampling_parameters", "BYTES", json.dumps(params).encode()))
    tensors += [(name, "BOOL", value) for name, value in bools.items()]
    for name, datatype, value in tensors:
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[1])
        if raw:
            request.raw_input_contents.append(
                struct.pack("<I", len(value)) + value if datatype == "BYTES" else bytes([value]))
        elif datatype == "BYTES":
            tensor.contents.bytes_contents.append(value)
        else:
            tensor.contents.bool_contents.append(value)
    return request


def text_of(response: pb.ModelInferResponse, name: str = "text_output"):
    index = [o.name for o in response.outputs].index(name)
    raw = response.raw_output_contents[index]
    if response.outputs[index].datatype == "UINT32":
        return struct.unpack("<I", raw)[0]
    (size,) = struct.unpack_from("<I", raw)
    assert len(raw) == 4 + size
    return raw[4:].decode()


def test_health_reflection_and_metadata(server, stub):
    assert stub.ServerLive(pb.ServerLiveRequest()).live is True
    assert stub.ServerReady(pb.ServerReadyRequest()).ready is True
    assert stub.ModelReady(pb.ModelReadyRequest(name="default")).ready is True
    with grpc.insecure_channel(server.target) as channel:
        check = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE), timeout=TIMEOUT_S)
        # Reflection serves the vendored contract: grpcurl and buf curl can call it.
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
        method = DescriptorPool(ProtoReflectionDescriptorDatabase(channel)).FindServiceByName(
            SERVICE).methods_by_name["ModelInfer"]
    assert check.status == health_pb2.HealthCheckResponse.SERVING
    assert SERVICE in services and method.input_type.full_name == "inference.ModelInferRequest"
    metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name="default", version="1"))
    assert [(t.name, t.datatype) for t in metadata.inputs][:4] == [
        ("text_input", "BYTES"), ("stream", "BOOL"), ("sampling_parameters", "BYTES"),
        ("exclude_input_in_output", "BOOL")]
    assert metadata.outputs[0].name == "text_output" and list(metadata.versions) == ["1"]
    assert stub.ServerMetadata(pb.ServerMetadataRequest()).name == "tokenwire"


@pytest.mark.parametrize("raw", [False, True], ids=["typed contents", "raw contents"])
def test_infer_is_the_servers_own_generation(stub, client, raw):
    expected = client.complete(PROMPT, max_tokens=5, temperature=0.0).choices[0].text
    answer = stub.ModelInfer(infer_request(raw=raw, return_finish_reason=True,
                                           return_num_output_tokens=True), timeout=TIMEOUT_S)
    assert answer.id == "r" and answer.model_name == "default" and answer.model_version == "1"
    assert text_of(answer) == PROMPT + expected
    assert text_of(answer, "finish_reason") == "length"
    assert text_of(answer, "num_output_tokens") == 5
    excluded = stub.ModelInfer(infer_request(exclude_input_in_output=True), timeout=TIMEOUT_S)
    assert text_of(excluded) == expected and [o.name for o in excluded.outputs] == ["text_output"]
    # The backend's examples send numbers as strings; the request's parameters work too.
    stringly = stub.ModelInfer(infer_request(params={"temperature": "0", "max_tokens": "5"}),
                               timeout=TIMEOUT_S)
    assert text_of(stringly) == PROMPT + expected
    by_parameters = infer_request(params=None)
    by_parameters.parameters["temperature"].double_param = 0.0
    by_parameters.parameters["max_tokens"].int64_param = 5
    assert text_of(stub.ModelInfer(by_parameters, timeout=TIMEOUT_S)) == PROMPT + expected


def _invalid(**changes) -> pb.ModelInferRequest:
    request = infer_request()
    for name, change in changes.items():
        change(request) if callable(change) else None
    return request


def _set_first(field: str, value):
    return lambda r: setattr(r.inputs[0], field, value)


def _dup(r):
    r.inputs.add().CopyFrom(r.inputs[0])


def _two_prompts(r):
    r.inputs[0].shape[:] = [2]
    r.inputs[0].contents.bytes_contents.append(b"again")


def _raw_cut(r):
    r.Clear()
    r.model_name = "default"
    r.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    r.raw_input_contents.append(b"\x10\x00\x00\x00abc")


def _unknown_output(r):
    r.outputs.add(name="logits")


BAD_REQUESTS = {
    "no text_input": (infer_request(prompt=None), "text_input"),
    "empty prompt": (infer_request(prompt=""), "text_input"),
    "wrong datatype": (_invalid(c=_set_first("datatype", "FP32")), "text_input"),
    "unknown input": (_invalid(c=_set_first("name", "prompt")), "prompt"),
    "sent twice": (_invalid(c=_dup), "text_input"),
    "two prompts": (_invalid(c=_two_prompts), "text_input"),
    "raw data cut short": (_invalid(c=_raw_cut), "text_input"),
    "unknown output": (_invalid(c=_unknown_output), "logits"),
    "not JSON": (_invalid(c=lambda r: r.inputs[1].contents.bytes_contents.__setitem__(
        0, b"{temperature")), "sampling_parameters"),
    "top_p out of range": (infer_request(params={"top_p": 5}), "sampling_parameters.top_p"),
    "max_tokens zero": (infer_request(params={"max_tokens": 0}), "sampling_parameters.max_tokens"),
    "top_k too large": (infer_request(params={"top_k": 2**40}), "sampling_parameters.top_k"),
    "not a number": (infer_request(params={"temperature": "hot"}),
                     "sampling_parameters.temperature"),
    "unsupported key": (infer_request(params={"use_beam_search": True}),
                        "sampling_parameters.use_beam_search"),
    "n of two": (infer_request(params={"n": 2}), "sampling_parameters.n"),
    "stream on ModelInfer": (infer_request(stream=True), "stream"),
    "no model name": (infer_request(model=""), "model_name"),
}


@pytest.mark.parametrize("name", BAD_REQUESTS)
def test_bad_tensors_are_invalid_argument_naming_the_tensor(stub, name):
    request, field = BAD_REQUESTS[name]
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelInfer(request, timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert [v.field for v in from_rpc_error(caught.value).violations] == [field]


def test_unknown_models_versions_and_methods(stub):
    for call in (lambda: stub.ModelInfer(infer_request(model="nope"), timeout=TIMEOUT_S),
                 lambda: stub.ModelReady(pb.ModelReadyRequest(name="nope")),
                 lambda: stub.ModelMetadata(pb.ModelMetadataRequest(name="default", version="2"))):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as caught:
        stub.ModelConfig(pb.ModelConfigRequest(name="default"))
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_stream_runs_requests_concurrently_and_reports_errors_in_the_stream(stub, client):
    expected = [d.text for d in client.generate(PROMPT, max_tokens=5, temperature=0.0) if d.text]
    requests = [infer_request(stream=True, request_id="a"),
                infer_request(params={"top_p": 5}, stream=True, request_id="bad"),
                infer_request(stream=False, request_id="whole"),
                infer_request(stream=True, model="nope", request_id="lost")]
    final = infer_request(stream=True, request_id="flagged")
    final.parameters["triton_enable_empty_final_response"].bool_param = True
    responses = list(stub.ModelStreamInfer(iter(requests + [final]), timeout=TIMEOUT_S))
    by_id: dict[str, list] = {}
    for response in responses:
        by_id.setdefault(response.infer_response.id, []).append(response)
    assert [text_of(r.infer_response) for r in by_id["a"]] == expected
    # Asked for its end flag: every response says whether it is the last; the last one may
    # carry no text (a finish with no token of its own).
    flagged = [text_of(r.infer_response) for r in by_id["flagged"]]
    assert [t for t in flagged if t] == expected
    flags = [r.infer_response.parameters["triton_final_response"].bool_param
             for r in by_id["flagged"]]
    assert flags == [False] * (len(flagged) - 1) + [True]
    assert "sampling_parameters.top_p" in by_id["bad"][0].error_message
    assert "nope" in by_id["lost"][0].error_message and len(by_id["lost"]) == 1
    assert text_of(by_id["whole"][0].infer_response) == PROMPT + "".join(expected)
    assert all(not r.error_message for i in ("a", "whole", "flagged") for r in by_id[i])


def test_a_stream_of_bytes_that_do_not_parse_is_invalid_argument(server):
    with grpc.insecure_channel(server.target) as channel:
        call = channel.stream_stream(f"/{SERVICE}/ModelStreamInfer")(iter([b"\xff\xff\xff"]),
                                                                     timeout=TIMEOUT_S)
        with pytest.raises(grpc.RpcError) as caught:
            list(call)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def keyed():
    running = ServerThread(make_settings(auth={"api_keys": [USER_KEY],
                                               "admin_api_keys": [ADMIN_KEY]})).start()
    with grpc.insecure_channel(running.target) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)
    running.stop()


def test_keys_and_admin_scope_apply(keyed):
    user = (("authorization", f"Bearer {USER_KEY}"),)
    with pytest.raises(grpc.RpcError) as caught:
        keyed.ModelInfer(infer_request(), timeout=TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        list(keyed.ModelStreamInfer(iter([infer_request(stream=True)]), timeout=TIMEOUT_S))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert text_of(keyed.ModelInfer(infer_request(), metadata=user, timeout=TIMEOUT_S))
    with pytest.raises(grpc.RpcError) as caught:  # would change the server: admin only
        keyed.LogSettings(pb.LogSettingsRequest(), metadata=user)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


# -- REST (the bridge's kserve family) ------------------------------------------------------------


def test_rest_health_metadata_and_readiness(http):
    assert http.get("/v2/health/live").get_json() == {"live": True}
    assert http.get("/v2/health/ready").status_code == 200
    assert http.get("/v2").get_json()["name"] == "tokenwire"
    metadata = http.get("/v2/models/default").get_json()
    assert metadata["inputs"][0] == {"name": "text_input", "datatype": "BYTES", "shape": [1]}
    assert http.get("/v2/models/default/versions/1/ready").get_json() == {"name": "default",
                                                                         "ready": True}
    missing = http.get("/v2/models/nope/ready")
    assert missing.status_code == 404 and "nope" in missing.get_json()["error"]
    assert http.get("/v2/models/default/versions/7").status_code == 404


def _rest_body(**extra) -> dict:
    return {"id": "rest-1", "inputs": [
        {"name": "text_input", "shape": [1], "datatype": "BYTES", "data": [PROMPT]},
        {"name": "sampling_parameters", "shape": [1], "datatype": "BYTES",
         "data": [json.dumps(GREEDY)]}, *extra.get("inputs", [])],
        **{k: v for k, v in extra.items() if k != "inputs"}}


def test_rest_infer(http, client):
    expected = client.complete(PROMPT, max_tokens=5, temperature=0.0).choices[0].text
    answer = http.post("/v2/models/default/infer", json=_rest_body(
        inputs=[{"name": "return_num_output_tokens", "shape": [1], "datatype": "BOOL",
                 "data": [[True]]}]))
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["id"] == "rest-1" and body["model_name"] == "default"
    assert body["outputs"] == [
        {"name": "text_output", "datatype": "BYTES", "shape": [1], "data": [PROMPT + expected]},
        {"name": "num_output_tokens", "datatype": "UINT32", "shape": [1], "data": [5]}]
    only_text = http.post("/v2/models/default/versions/1/infer",
                          json=_rest_body(outputs=[{"name": "text_output"}]))
    assert [o["name"] for o in only_text.get_json()["outputs"]] == ["text_output"]


@pytest.mark.parametrize("body, status, words", [
    ({"inputs": [{"name": "text_input", "shape": [1], "datatype": "FP32", "data": [1.5]}]},
     400, "text_input: must be BYTES"),
    ({"inputs": [{"name": "text_input", "shape": [1], "datatype": "BYTES", "data": [5]}]},
     400, "inputs[0].data"),
    ({"inputs": [{"name": "text_input", "shape": [1], "datatype": "FP16", "data": [1]}]},
     400, "FP16"),
    ({"inputs": "x"}, 400, "inputs"),
    (_rest_body(inputs=[{"name": "stream", "shape": [1], "datatype": "BOOL", "data": [True]}]),
     400, "stream"),
], ids=["wrong datatype", "wrong JSON kind", "no JSON form", "not a list", "stream"])
def test_rest_infer_errors(http, body, status, words):
    answer = http.post("/v2/models/default/infer", json=body)
    assert answer.status_code == status
    assert words in answer.get_json()["error"]


def test_rest_unknown_model_is_404(http):
    answer = http.post("/v2/models/nope/infer", json=_rest_body())
    assert answer.status_code == 404 and "nope" in answer.get_json()["error"]


# -- fuzz -----------------------------------------------------------------------------------------

DESCRIPTOR = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
IMPLEMENTED = ("ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata",
               "ModelInfer")
TENSOR_NAMES = ["text_input", "stream", "sampling_parameters", "exclude_input_in_output",
                "return_finish_reason", "return_num_output_tokens", "text_output"]
PARAMS = st.sampled_from([b"{}", b'{"max_tokens": 2, "temperature": 0}', b'{"top_p": "0.5"}',
                          b'{"max_tokens": -1}', b"[1]", b"\xff", b'{"seed": 1e400}',
                          b'{"stop": ["x"], "max_tokens": 3}', b'{"top_k": 1e30}'])


def _tensor(name: str, datatype: str, value) -> pb.ModelInferRequest.InferInputTensor:
    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=[1])
    getattr(tensor.contents, "bytes_contents" if datatype == "BYTES" else "bool_contents").append(
        value)
    return tensor


# Inputs that mostly pass: a prompt, some sampling parameters, a stream flag.
PLAUSIBLE_INPUTS = st.builds(
    lambda prompt, params, stream: [_tensor("text_input", "BYTES", prompt.encode() or b"x"),
                                    *([_tensor("sampling_parameters", "BYTES", params)]
                                      if params is not None else []),
                                    *([_tensor("stream", "BOOL", stream)]
                                      if stream is not None else [])],
    st.text(max_size=24), st.none() | PARAMS, st.none() | st.booleans())
HINTS = Hints(
    mixed={"name": st.sampled_from(["default", *TENSOR_NAMES]),
           "model_name": st.sampled_from(["default", "nope"]),
           "datatype": st.sampled_from(["BYTES", "BOOL", "FP32", ""]),
           "version": st.sampled_from(["", "1", "2"]),
           "model_version": st.sampled_from(["", "1"]),
           "bytes_contents": PARAMS},
    plausible={"model_name": st.just("default"), "model_version": st.just(""),
               "name": st.sampled_from(["default", *TENSOR_NAMES[:2]]),
               "parameters": st.just({}), "outputs": st.just([]), "inputs": PLAUSIBLE_INPUTS,
               "datatype": st.sampled_from(["BYTES", "BOOL"]),
               "shape": st.just([1]), "raw_input_contents": st.just([]),
               "bytes_contents": st.lists(PARAMS, min_size=1, max_size=1),
               "bool_contents": st.lists(st.booleans(), min_size=1, max_size=1)})
FUZZ = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                phases=(Phase.explicit, Phase.generate),
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def error_records():
    handler = ErrorRecords()
    logging.getLogger().addHandler(handler)
    yield handler
    logging.getLogger().removeHandler(handler)


def _outcome(call) -> grpc.StatusCode:
    try:
        call()
    except grpc.RpcError as error:
        assert error.code() not in BAD_CODES, error.details()
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method", IMPLEMENTED)
def test_fuzz_unary(server, error_records, method):
    descriptor = DESCRIPTOR.methods_by_name[method]
    channel = grpc.insecure_channel(server.target)
    rpc = channel.unary_unary(f"/{SERVICE}/{method}")
    outcomes: list[grpc.StatusCode] = []

    @FUZZ
    @given(st.one_of(message_strategy(descriptor.input_type, HINTS).map(
        lambda m: m.SerializeToString()), st.binary(max_size=64)))
    def run(payload: bytes):
        outcomes.append(_outcome(lambda: rpc(payload, timeout=TIMEOUT_S)))

    try:
        run()
    finally:
        channel.close()
    assert error_records.take() == []
    # Some requests got past validation into the engine (or the answer), not all were refused.
    assert grpc.StatusCode.OK in outcomes, sorted(set(map(str, outcomes)))
    assert health_pb2_grpc.HealthStub(grpc.insecure_channel(server.target)).Check(
        health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S).status == 1


def test_fuzz_stream(server, error_records):
    descriptor = DESCRIPTOR.methods_by_name["ModelStreamInfer"]
    channel = grpc.insecure_channel(server.target)
    rpc = channel.stream_stream(f"/{SERVICE}/ModelStreamInfer")

    @FUZZ
    @given(st.lists(message_strategy(descriptor.input_type, HINTS).map(
        lambda m: m.SerializeToString()), min_size=1, max_size=4))
    def run(payloads: list[bytes]):
        _outcome(lambda: [pb.ModelStreamInferResponse.FromString(r)
                          for r in rpc(iter(payloads), timeout=TIMEOUT_S)])

    try:
        run()
    finally:
        channel.close()
    assert error_records.take() == []
