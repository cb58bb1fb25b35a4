"""Numbers no field can hold: an integer past its proto field's range, an enum number the contract
does not define. Every family answers 400 naming the field (gRPC: INVALID_ARGUMENT with the field
in BadRequest), never a 500 from a protobuf setter deep in a route."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from tokenwire.v1 import hardware_service_pb2 as hw_pb
from tokenwire.v1 import hardware_service_pb2_grpc as hw_grpc

HUGE = 99999999999999
CHAT = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("method, path, body, param", [
    ("get", "/iblink/v1/foundry-local/logs?count=99999999999999", None, None),
    ("post", "/v1/chat/completions", {"messages": CHAT, "top_k": HUGE}, "top_k"),
    ("post", "/v1/chat/completions", {"messages": CHAT, "max_completion_tokens": HUGE},
     "max_completion_tokens"),
    ("post", "/v1/completions", {"prompt": "hi", "seed": 2**64}, "seed"),
    ("post", "/completions", {"model": "default", "prompt": "hi", "max_tokens": HUGE}, None),
    ("post", "/chat/completions", {"model-name": "default", "prompt": "hi", "top-k": HUGE}, None),
    ("post", "/engines", {"engine_id": "x", "model_path": "/nowhere.gguf", "n_ctx": HUGE}, "n_ctx"),
    ("post", "/api/models/benchmark/default", {"num_samples": HUGE}, None),
])
def test_an_integer_past_its_field_is_a_400_naming_the_field(http, method, path, body, param):
    response = getattr(http, method)(path, json=body)
    assert response.status_code == 400, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert "out of range" in text
    if param is not None:
        assert response.get_json()["error"]["param"] == param


def test_the_foundry_logs_count_names_its_error_code(http):
    error = http.get("/iblink/v1/foundry-local/logs?count=99999999999999").get_json()["error"]
    assert error["code"] == "invalid_count" and "count" in error["message"]


def _bad_request_fields(error: grpc.RpcError) -> list[str]:
    details = dict(error.trailing_metadata()).get("grpc-status-details-bin")
    status = status_pb2.Status.FromString(details)
    fields = []
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields += [v.field for v in bad.field_violations]
    return fields


def test_an_unknown_enum_number_is_invalid_argument_over_grpc(server):
    with grpc.insecure_channel(server.target) as channel:
        stub = hw_grpc.HardwareServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            stub.SetPerformanceMode(hw_pb.SetPerformanceModeRequest(mode=99), timeout=60)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert _bad_request_fields(caught.value) == ["mode"]
    assert "99" in caught.value.details()


def test_an_unknown_enum_number_is_a_400_over_rest(http):
    response = http.post("/v1/hardware/performance-mode", json={"mode": 99})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["code"] == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    # Known modes still apply.
    ok = http.post("/v1/hardware/performance-mode", json={"mode": "PERFORMANCE_MODE_BALANCED"})
    assert ok.status_code == 200, ok.get_data(as_text=True)
