"""NVIDIA's own client, the unmodified PyPI `tritonclient` (gRPC), against the server's Open
Inference Protocol service (`inference.GRPCInferenceService`, Triton's vLLM backend tensors).

tritonclient runs in a child process: its generated `grpc_service.proto` and the server's
vendored copy define the same `inference.*` symbols, which one protobuf descriptor pool cannot
hold twice. The child is this file run as a script (`python tests/e2e/test_tritonclient.py
TARGET SCENARIO`): it prints one JSON document of what the client saw, which the tests check
against what the server's own GenerationService answers for the same greedy request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Nothing of the server at module level: the child imports this file too (see above).

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "The capital of France is"
MAX_TOKENS = 6
KEY = "tw-triton-test-key-0123456789"
CHILD_TIMEOUT_S = 240  # hang protection on a loaded 2-core machine; no timing is asserted


def run_client(target: str, scenario: str, *args: str) -> dict:
    done = subprocess.run([sys.executable, __file__, target, scenario, *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    assert done.returncode == 0, f"tritonclient child failed:\n{done.stdout}\n{done.stderr}"
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def seen(server) -> dict:
    return run_client(server.target, "all")


def test_health_and_metadata(seen):
    assert seen["live"] is True and seen["ready"] is True
    assert seen["model_ready"] is True
    metadata = seen["metadata"]
    assert metadata["name"] == "default" and metadata["versions"] == ["1"]
    inputs = {t["name"]: (t["datatype"], t["shape"]) for t in metadata["inputs"]}
    assert inputs["text_input"] == ("BYTES", ["1"])
    assert inputs["stream"] == ("BOOL", ["1"])
    assert inputs["sampling_parameters"] == ("BYTES", ["1"])
    assert inputs["exclude_input_in_output"] == ("BOOL", ["1"])
    assert {t["name"]: t["datatype"] for t in metadata["outputs"]}["text_output"] == "BYTES"
    assert seen["server_metadata"]["name"] == "tokenwire"


def _greedy_deltas(client) -> list[str]:
    deltas = [d.text for d in client.generate(PROMPT, max_tokens=MAX_TOKENS, temperature=0.0)]
    return [d for d in deltas if d]


def test_infer_matches_the_servers_own_generation(seen, client):
    expected = "".join(_greedy_deltas(client))
    assert seen["infer"]["text_output"] == PROMPT + expected  # the prompt first, as in vLLM's
    assert seen["infer_excluding_input"]["text_output"] == expected
    assert seen["infer"]["id"] == "infer-1"
    assert seen["infer_excluding_input"]["num_output_tokens"] == MAX_TOKENS
    assert seen["infer_excluding_input"]["finish_reason"] == "length"


def test_stream_gives_one_response_per_token_delta(seen, client):
    expected = _greedy_deltas(client)
    stream = seen["stream"]
    assert stream["errors"] == []
    texts = [r["text_output"] for r in stream["responses"] if not r["final"]]
    assert texts == expected and len(texts) > 1
    assert all(r["id"] == "stream-1" for r in stream["responses"])
    assert [r["final"] for r in stream["responses"]][-1] is True
    assert sum(r["num_output_tokens"] for r in stream["responses"]) == MAX_TOKENS


def test_errors_reach_the_client(seen):
    errors = seen["errors"]
    assert errors["unknown_model"]["status"] == "StatusCode.NOT_FOUND"
    assert errors["bad_tensor"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "text_input" in errors["bad_tensor"]["message"]
    assert errors["bad_sampling"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert "sampling_parameters.top_p" in errors["bad_sampling"]["message"]
    # On a stream, a failed request is that request's response, as Triton reports it.
    assert "nope" in errors["stream_unknown_model"] and errors["stream_after_error"] is True


@pytest.fixture(scope="module")
def keyed_server():
    from tests.helpers import ServerThread, make_settings

    running = ServerThread(make_settings(auth={"api_keys": [KEY]})).start()
    yield running
    running.stop()


def test_api_keys_apply_to_tritonclient(keyed_server):
    seen = run_client(keyed_server.target, "auth", KEY)
    assert seen["live_without_key"] == "StatusCode.UNAUTHENTICATED"
    assert seen["live_with_key"] is True
    assert seen["infer_without_key"] == "StatusCode.UNAUTHENTICATED"
    assert seen["stream_without_key"] == "StatusCode.UNAUTHENTICATED"
    assert seen["infer_with_key"].startswith(PROMPT)


def test_leaving_a_stream_frees_the_engine(keyed_server):
    from server.core.engines import EngineState
    from tests.helpers import wait_for

    seen = run_client(keyed_server.target, "leave", KEY)
    assert seen["first"]  # it was generating when the client stopped the stream
    engine = keyed_server.server.engines.describe("default")
    wait_for(lambda: engine.in_flight == 0, timeout=60)
    assert engine.state is EngineState.LOADED


# -- the child: tritonclient ----------------------------------------------------------------------


def _main(target: str, scenario: str, *args: str) -> None:  # pragma: no cover - runs in a child
    import queue

    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(url=target)

    def tensors(prompt: str, *, stream: bool = False, exclude: bool | None = None,
                params: dict | None = None, extra: bool = False):
        made = [grpcclient.InferInput("text_input", [1], "BYTES"),
                grpcclient.InferInput("stream", [1], "BOOL")]
        made[0].set_data_from_numpy(np.array([prompt.encode()], dtype=np.object_))
        made[1].set_data_from_numpy(np.array([stream], dtype=bool))
        named = {"sampling_parameters": (np.array([json.dumps(params).encode()], dtype=np.object_)
                                         if params is not None else None),
                 "exclude_input_in_output": (np.array([exclude], dtype=bool)
                                             if exclude is not None else None)}
        if extra:
            named["return_finish_reason"] = np.array([True], dtype=bool)
            named["return_num_output_tokens"] = np.array([True], dtype=bool)
        for name, value in named.items():
            if value is not None:
                tensor = grpcclient.InferInput(name, [1], "BOOL" if value.dtype == bool else "BYTES")
                tensor.set_data_from_numpy(value)
                made.append(tensor)
        return made

    # As Triton's vLLM examples send them: numbers as strings.
    greedy = {"temperature": "0", "max_tokens": str(MAX_TOKENS)}

    def outputs(result) -> dict:
        seen = {"id": result.get_response().id}
        for name in ("text_output", "finish_reason"):
            value = result.as_numpy(name)
            if value is not None:
                seen[name] = value[0].decode()
        tokens = result.as_numpy("num_output_tokens")
        if tokens is not None:
            seen["num_output_tokens"] = int(tokens[0])
        parameters = result.get_response().parameters
        seen["final"] = (parameters["triton_final_response"].bool_param
                         if "triton_final_response" in parameters else None)
        return seen

    def failure(call) -> dict:
        try:
            call()
        except InferenceServerException as exc:
            return {"status": exc.status(), "message": exc.message()}
        return {"status": "OK", "message": ""}

    def streamed(requests: list[tuple[str, list]], headers=None, until: int | None = None):
        """Sends the requests on one stream; (responses, errors) once each request ended
        (its final response or its error), or after `until` responses."""
        got: queue.Queue = queue.Queue()
        client.start_stream(callback=lambda result, error: got.put((result, error)),
                            headers=headers)
        for request_id, inputs in requests:
            client.async_stream_infer("default" if request_id != "unknown" else "nope", inputs,
                                      request_id=request_id, enable_empty_final_response=True)
        responses, errors, open_requests = [], [], len(requests)
        while open_requests and (until is None or len(responses) < until):
            result, error = got.get(timeout=CHILD_TIMEOUT_S)
            if error is not None:
                errors.append(error.message())
                open_requests -= 1
                continue
            seen = outputs(result)
            responses.append(seen)
            open_requests -= bool(seen["final"])
        client.stop_stream(cancel_requests=until is not None)
        return responses, errors

    out: dict = {}
    if scenario == "all":
        out["live"] = client.is_server_live()
        out["ready"] = client.is_server_ready()
        out["model_ready"] = client.is_model_ready("default")
        out["metadata"] = client.get_model_metadata("default", as_json=True)
        out["server_metadata"] = client.get_server_metadata(as_json=True)
        out["infer"] = outputs(client.infer("default", tensors(PROMPT, params=greedy),
                                            request_id="infer-1"))
        out["infer_excluding_input"] = outputs(client.infer(
            "default", tensors(PROMPT, exclude=True, params=greedy, extra=True),
            outputs=[grpcclient.InferRequestedOutput(n) for n in
                     ("text_output", "finish_reason", "num_output_tokens")]))
        responses, errors = streamed([("stream-1", tensors(PROMPT, stream=True, params=greedy,
                                                           extra=True))])
        out["stream"] = {"responses": responses, "errors": errors}
        bad = tensors(PROMPT)
        bad[0] = grpcclient.InferInput("text_input", [1], "FP32")
        bad[0].set_data_from_numpy(np.array([1.0], dtype=np.float32))
        out["errors"] = {
            "unknown_model": failure(lambda: client.infer("nope", tensors(PROMPT))),
            "bad_tensor": failure(lambda: client.infer("default", bad)),
            "bad_sampling": failure(lambda: client.infer(
                "default", tensors(PROMPT, params={"top_p": 5}))),
        }
        responses, errors = streamed([("unknown", tensors(PROMPT, stream=True)),
                                      ("after", tensors(PROMPT, stream=True, params=greedy))])
        out["errors"]["stream_unknown_model"] = " ".join(errors)
        out["errors"]["stream_after_error"] = bool(responses) and responses[-1]["final"] is True
    elif scenario == "auth":
        key = {"authorization": f"Bearer {args[0]}"}
        out["live_without_key"] = failure(client.is_server_live)["status"]
        out["live_with_key"] = client.is_server_live(headers=key)
        out["infer_without_key"] = failure(lambda: client.infer("default", tensors(PROMPT)))["status"]
        got: queue.Queue = queue.Queue()
        client.start_stream(callback=lambda result, error: got.put(error))
        try:
            client.async_stream_infer("default", tensors(PROMPT, stream=True))
        except InferenceServerException:
            pass  # the stream already ended: the callback has its status
        error = got.get(timeout=CHILD_TIMEOUT_S)
        out["stream_without_key"] = error.status() if error is not None else "OK"
        client.stop_stream()
        out["infer_with_key"] = outputs(client.infer("default", tensors(PROMPT, params=greedy),
                                                     headers=key))["text_output"]
    elif scenario == "leave":
        key = {"authorization": f"Bearer {args[0]}"}
        long = {"temperature": 0, "max_tokens": 800}
        responses, _ = streamed([("long", tensors(PROMPT, stream=True, params=long))],
                                headers=key, until=2)
        out["first"] = [r["text_output"] for r in responses]
    client.close()
    print(json.dumps(out))


if __name__ == "__main__":  # pragma: no cover
    sys.path.insert(0, str(ROOT))
    _main(*sys.argv[1:])
