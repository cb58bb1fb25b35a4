"""Property-based tests of the REST API: schemathesis generates requests for every operation of the
served OpenAPI document (every route family: OpenAI, Kolosal, Impetus, Foundry, the Rust service,
health and the transcoded tokenwire.v1 routes) and checks each answer:

- not a 5xx (`not_a_server_error`), nor a streamed error event that reports a server failure;
- its body matches the schema documented for its status code and media type
  (`response_schema_conformance`; for SSE and NDJSON, each event's data, see `stream_conformance`);
- its status code and media type are documented (`status_code_conformance`,
  `content_type_conformance`): not noisy here, and what they found were real gaps in the document.
  `positive_data_acceptance` is left out: the proto-derived schemas carry no ranges (the server
  checks them), so most generated "valid" bodies are rightly refused with a 400.

Cases: valid and invalid bodies, query and path parameters, from schemathesis' examples, coverage
(boundary and wrong-type values, missing members, unexpected methods) and fuzzing phases, seeded
and derandomized, so a run repeats exactly; no shrinking, so a failure costs no extra calls. The
fuzzing budget is TOKENWIRE_FUZZ_EXAMPLES per operation (default 10; the never-ending watch
streams get a quarter of it), shared with tests/integration/test_grpc_fuzz.py:

    TOKENWIRE_FUZZ_EXAMPLES=200 .venv/bin/pytest tests/integration/test_api_fuzz.py

runs a longer search; TOKENWIRE_FUZZ_VERBOSE=1 also prints the cases, seconds and statuses per
operation. A failure prints the request with a curl line to replay it. There is no per-case
deadline (tests assert no wall time); requests time out only as hang protection.

The suite has a server and a bridge of its own, not the session's, because it calls the
destructive operations too (unload and remove engines, auth and server config, the performance
mode, downloads): after each case, `restore` puts that state back. Downloads can only name
loopback sources, which the server refuses to fetch from (the catalog resolves to one too), so
nothing leaves the machine; directories a case would create are replaced by a temporary one.
Generations stay short: a length or sample count is lowered to 3 tokens / 2 samples, or set to
that when absent or null (other tests cover the long defaults).

The bridge is served over HTTP on 127.0.0.1 by the threaded server `tokenwire serve` uses, not
called through WSGI in-process: a watch stream that stays silent blocks a WSGI body read forever,
while a socket read has a timeout, and over a socket the bridge sees the client leave.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import grpc
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from openapi_schema_validator import OAS30Validator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance,
                                               response_schema_conformance,
                                               status_code_conformance)

from rest_bridge import create_app, openapi
from rest_bridge.config import BridgeConfig
from rest_bridge.serve import bind
from rest_bridge.threaded_server import ThreadedBridgeServer
from server.core.catalog import Catalog
from server.security.state import SecurityState
from tests.helpers import ServerThread, make_settings
from tokenwire.v1 import download_service_pb2 as download_pb
from tokenwire.v1 import download_service_pb2_grpc
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import engine_service_pb2_grpc
from tokenwire.v1 import hardware_service_pb2 as hardware_pb
from tokenwire.v1 import hardware_service_pb2_grpc
from tokenwire.v1 import server_service_pb2 as server_pb
from tokenwire.v1 import server_service_pb2_grpc

EXAMPLES = int(os.environ.get("TOKENWIRE_FUZZ_EXAMPLES", "10"))
STREAM_EXAMPLES = max(1, EXAMPLES // 4)  # each silent one costs STREAM_TIMEOUT_S
REQUEST_TIMEOUT_S = 120.0  # hang protection only; a loaded 2-core machine may be slow
STREAM_TIMEOUT_S = 2.0  # how long a watch stream is read (errors come at once)

#: Loopback: the fuzz server refuses to download from it (downloads.allow_private_addresses off).
REFUSED_SOURCE = "http://127.0.0.1:9/model.gguf"
MAX_TOKENS = 3
MAX_SAMPLES = 2
TOKEN_FIELDS = {"max_tokens", "max_completion_tokens", "maxTokens", "max-token", "max-tokens",
                "max_output_tokens"}
SAMPLE_FIELDS = {"num_samples", "numSamples"}
DIRECTORY_FIELDS = {"modelsDirectory", "cache_dir"}

#: Server-streaming operations that never end on their own: read as SSE, a few events at most.
WATCH_STREAMS = {
    "HardwareService_WatchHardwareMetrics", "MetricsService_WatchInferenceStats",
    "StatusService_WatchStatus", "DownloadService_WatchDownloads", "DownloadService_WatchDownload",
    "LogService_StreamLogs", "Foundry_LogStream",
}


def _document() -> dict:
    """The bridge's OpenAPI document; it depends only on the app's routes, so no server is needed
    to collect the tests (test_the_fuzzed_document_is_the_served_one checks it against the
    live one)."""
    with grpc.insecure_channel("127.0.0.1:9") as channel:
        app = create_app(BridgeConfig(grpc_target="127.0.0.1:9"), channel=channel)
        return openapi.build_document(app)


DOCUMENT = _document()
CONFIG = schemathesis.config.SchemathesisConfig.from_dict({
    "seed": 22,
    "max-stream-events": 2,
    "generation": {"deterministic": True},
    "output": {"sanitization": {"enabled": False}},  # show max_tokens in the curl lines
})
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)


# -- the server and bridge under test -------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_server():
    catalog = Catalog.load()

    def refusing_catalog(name: str):
        entry = catalog.find(name)
        return None if entry is None else (REFUSED_SOURCE, entry.filename, None)

    settings_ = make_settings(engine={"n_ctx": 512, "n_parallel": 2})
    running = ServerThread(settings_, catalog=refusing_catalog).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fuzz_channel(fuzz_server):
    with grpc.insecure_channel(fuzz_server.target) as channel:
        yield channel


@pytest.fixture(scope="module")
def fuzz_bridge(fuzz_server, fuzz_channel):
    """The bridge's base URL: its own app over HTTP on 127.0.0.1, like `tokenwire serve`."""
    app = create_app(BridgeConfig(grpc_target=fuzz_server.target, request_timeout_s=600),
                     channel=fuzz_channel)
    sock = bind("127.0.0.1", 0)
    http_server = ThreadedBridgeServer(sock, app, max_connections=32, header_timeout_s=30)
    port = sock.getsockname()[1]
    sock.close()
    http_server.start()
    yield f"http://127.0.0.1:{port}"
    http_server.stop_accepting()
    http_server.wait_idle(10)


@pytest.fixture(scope="module")
def baseline(fuzz_server, fuzz_channel, tmp_path_factory):
    """What `restore` puts back (the performance mode, the default engine and its model), and
    the directory that stands in for any a case names."""
    hardware = hardware_service_pb2_grpc.HardwareServiceStub(fuzz_channel)
    mode = hardware.GetPerformanceMode(hardware_pb.GetPerformanceModeRequest()).mode
    spec = fuzz_server.settings.engine_specs()[0]
    return {"mode": mode, "engine_id": spec.id, "model": spec.path,
            "models_dir": tmp_path_factory.mktemp("fuzz-models-dir")}


# -- keeping cases bounded and local --------------------------------------------------------------


def _bounded(value, models_dir: Path):
    """`value` with what would leave the machine, write outside temp, or run long replaced."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(item, int) and not isinstance(item, bool):
                if key in TOKEN_FIELDS and item > MAX_TOKENS:
                    item = MAX_TOKENS
                elif key in SAMPLE_FIELDS and item > MAX_SAMPLES:
                    item = MAX_SAMPLES
            if key in DIRECTORY_FIELDS and isinstance(item, str) and item.strip() \
                    and "\0" not in item:
                item = str(models_dir)  # mkdir -p of a generated path, relative to the repo
            out[key] = _bounded(item, models_dir)
        return out
    if isinstance(value, list):
        return [_bounded(item, models_dir) for item in value]
    if isinstance(value, str) and "://" in value:
        return REFUSED_SOURCE
    return value


#: Generating operations -> the body member that bounds their length, set when absent (absent
#: means "until the context is full" or a long default; the other tests cover those defaults).
LENGTH_FIELDS = {
    "OpenAI_CreateChatCompletion": ("max_tokens",), "OpenAI_CreateCompletion": ("max_tokens",),
    "Rust_Completions": ("max_tokens",), "GenerationService_Generate": ("maxTokens",),
    "GenerationService_Complete": ("maxTokens",), "SessionService_Chat": ("maxTokens",),
    "SessionService_CreateSession": ("maxTokens",),
    "OpenAI_CreateResponse": ("max_output_tokens",),
    "Impetus_Benchmark": ("max_tokens", "num_samples"),
    "BenchmarkService_RunBenchmark": ("maxTokens", "numSamples"),
}


def _bound(case, models_dir: Path) -> None:
    if isinstance(case.body, (dict, list, str)):
        case.body = _bounded(case.body, models_dir)
    if not isinstance(case.body, dict):
        return
    fields = LENGTH_FIELDS.get(case.operation.definition.raw["operationId"], ())
    if case.operation.path == "/chat/completions":  # OpenAI's body, or the kebab-case one
        fields = ("max_tokens",) if "messages" in case.body else ("max-token",)
    for name in fields:
        if case.body.get(name) is None:  # absent or null: the long default
            case.body[name] = MAX_SAMPLES if name in SAMPLE_FIELDS else MAX_TOKENS


#: Operations that change the server config or the performance mode (put back after each case).
CONFIG_CHANGES = {"ServerService_UpdateServerConfig", "foundry_config"}
MODE_CHANGES = {"HardwareService_SetPerformanceMode", "Impetus_SetPerformanceMode"}


def restore(server: ServerThread, channel: grpc.Channel, baseline: dict,
            operation_id: str) -> None:
    """Puts back what a destructive case may have changed: auth, rate limits and CORS; the engines
    (the default one loaded and the default, no others); the server config and the performance
    mode after the cases that change them; downloads (cancelled)."""

    async def reset_security():
        fresh = SecurityState(server.settings)
        live = server.server.security
        live.keys, live.cors, live.limiter = fresh.keys, fresh.cors, fresh.limiter
        live.rate_limit_enabled = fresh.rate_limit_enabled

    server.call(reset_security())
    engines = engine_service_pb2_grpc.EngineServiceStub(channel)
    default = baseline["engine_id"]
    listed = engines.ListEngines(engine_pb.ListEnginesRequest(), timeout=60).engines
    for engine in listed:
        if engine.engine_id != default:
            engines.RemoveEngine(engine_pb.RemoveEngineRequest(engine_id=engine.engine_id,
                                                               force=True), timeout=60)
    ours = next((e for e in listed if e.engine_id == default), None)
    if ours is None:
        engines.AddEngine(engine_pb.AddEngineRequest(engine_id=default, model=baseline["model"],
                                                     load_immediately=True), timeout=120)
    elif ours.status != engine_pb.ENGINE_STATUS_LOADED:
        engines.LoadEngine(engine_pb.LoadEngineRequest(engine_id=default), timeout=120)
    if not any(e.is_default and e.engine_id == default
               for e in engines.ListEngines(engine_pb.ListEnginesRequest(), timeout=60).engines):
        engines.SwitchDefaultEngine(engine_pb.SwitchDefaultEngineRequest(engine_id=default),
                                    timeout=120)
    if operation_id in CONFIG_CHANGES:
        level = logging.getLogger().level
        server_service_pb2_grpc.ServerServiceStub(channel).UpdateServerConfig(
            server_pb.UpdateServerConfigRequest(reset_to_defaults=True), timeout=60)
        logging.getLogger().setLevel(level)  # the config's is INFO; the session records DEBUG
    if operation_id in MODE_CHANGES:
        hardware_service_pb2_grpc.HardwareServiceStub(channel).SetPerformanceMode(
            hardware_pb.SetPerformanceModeRequest(mode=baseline["mode"]), timeout=60)
    download_service_pb2_grpc.DownloadServiceStub(channel).CancelAllDownloads(
        download_pb.CancelAllDownloadsRequest(), timeout=60)


# -- checks ---------------------------------------------------------------------------------------

SSE = "text/event-stream"
NDJSON = "application/x-ndjson"
#: google.rpc.Code values that mean the server failed (UNKNOWN, INTERNAL, DATA_LOSS).
SERVER_FAILURE_CODES = {2, 13, 15}
BRIDGE_FAILURE = "internal error in the REST bridge"  # rest_bridge.errors' text for a crash


def _documented(case, status: int, media: str) -> dict | None:
    operation = DOCUMENT["paths"][case.operation.path][case.operation.method.lower()]
    response = operation["responses"].get(str(status)) or operation["responses"].get("default")
    content = (response or {}).get("content", {})
    return (content.get(media) or {}).get("schema")


def _sse_events(text: str) -> list[tuple[str, str]]:
    """(event type, data) of each event that carries data."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        kind, data = "message", []
        for line in block.split("\n"):
            if line.startswith(":") or not line:
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                kind = value
            elif name == "data":
                data.append(value)
        if data:
            events.append((kind, "\n".join(data)))
    return events


def _server_failure(payload) -> str | None:
    """The error an error event reports, when it is the server failing (a 5xx in a stream): a
    google.rpc.Status with UNKNOWN, INTERNAL or DATA_LOSS, or the bridge's own failure."""
    error = payload.get("error", payload) if isinstance(payload, dict) else None
    if isinstance(error, dict) and (error.get("code") in SERVER_FAILURE_CODES or
                                    error.get("message") == BRIDGE_FAILURE):
        return json.dumps(payload)[:500]
    if error == BRIDGE_FAILURE:
        return json.dumps(payload)[:500]
    return None


def stream_conformance(ctx, response, case):
    """Streamed answers (SSE, NDJSON): each event's data matches the schema the document gives
    for it (the convention of this document: the schema of one event's payload, a string for raw
    text events), and no error event reports a server failure. schemathesis reads an OpenAPI 3.0
    SSE schema as the schema of the whole event object ({data, event, ...}), not this way."""
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if media not in (SSE, NDJSON):
        return
    schema = _documented(case, response.status_code, media)
    text = response.content.decode("utf-8")
    if media == SSE:
        events = _sse_events(text)
    else:
        events = [("message", line) for line in text.splitlines() if line.strip()]
    for kind, data in events:
        if data == "[DONE]":
            continue
        try:
            payload = json.loads(data)
        except json.JSONDecodeError:
            payload = None
        if isinstance(payload, dict) and (set(payload) == {"error"}
                                          or payload.get("type") == "error"):
            kind = "error"  # OpenAI's, NDJSON's and Foundry's error events
        if kind == "error":
            failure = _server_failure(payload)
            assert failure is None, f"an error event reports a server failure: {failure}"
            continue
        if schema is None:
            continue
        # A raw text event (`type: string`) is its data; a JSON event is its decoded data.
        validator = OAS30Validator({**schema, "components": DOCUMENT["components"]})
        candidates = [data] + ([payload] if payload is not None else [])
        if not any(validator.is_valid(candidate) for candidate in candidates):
            errors = sorted(validator.iter_errors(candidates[-1]), key=str)
            raise AssertionError(
                f"a {media} event does not match its documented schema: "
                + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:3])
                + f"\nevent: {data[:500]}")


def documented_answer(ctx, response, case):
    """The body matches the schema documented for its status code and media type."""
    media = (response.headers.get("content-type") or [""])[0].split(";")[0].strip()
    if media in (SSE, NDJSON):
        return stream_conformance(ctx, response, case)
    return response_schema_conformance(ctx, response, case)


CHECKS = [not_a_server_error, documented_answer, status_code_conformance,
          content_type_conformance]


# -- the properties -------------------------------------------------------------------------------

CASES: Counter = Counter()
SECONDS: Counter = Counter()
STATUSES: dict[str, Counter] = defaultdict(Counter)


@pytest.fixture(scope="module", autouse=True)
def case_count(request):
    """Writes how many cases ran (TOKENWIRE_FUZZ_VERBOSE=1: per operation, with seconds)."""
    yield CASES
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not CASES:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\n{__name__}: {sum(CASES.values())} generated cases over "
                            f"{len(CASES)} operations (fewest {min(CASES.values())}, most "
                            f"{max(CASES.values())})")
        if os.environ.get("TOKENWIRE_FUZZ_VERBOSE"):
            for label, n in sorted(CASES.items(), key=lambda item: -SECONDS[item[0]]):
                statuses = " ".join(f"{code}:{k}" for code, k in sorted(STATUSES[label].items()))
                reporter.write_line(f"  {n:4d} {SECONDS[label]:7.1f}s {label}  {statuses}")


def test_the_fuzzed_document_is_the_served_one(fuzz_bridge):
    served = requests.get(f"{fuzz_bridge}/openapi.json", timeout=60)
    assert served.status_code == 200
    assert served.json() == DOCUMENT


def test_the_stream_check_fails_on_a_wrong_event_and_on_a_server_failure():
    from types import SimpleNamespace

    def answer(path: str, method: str, media: str, body: str):
        case = SimpleNamespace(operation=SimpleNamespace(path=path, method=method))
        response = SimpleNamespace(status_code=200, headers={"content-type": [media]},
                                   content=body.encode())
        return lambda: stream_conformance(None, response, case)

    chunk = ('{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", '
             '"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": null}]}')
    answer("/v1/chat/completions", "POST", SSE, f"data: {chunk}\n\ndata: [DONE]\n\n")()
    answer("/completions", "POST", SSE, "data: 42\n\ndata: Paris\n\n")()  # raw tokens
    for wrong in (answer("/v1/chat/completions", "POST", SSE, 'data: {"choices": 3}\n\n'),
                  answer("/v1/generate", "POST", NDJSON, '{"error": {"code": 13, "message": "x"}}'),
                  answer("/iblink/v1/foundry-local/logs/stream", "GET", SSE, "data: [1]\n\n")):
        with pytest.raises(AssertionError):
            wrong()


def _call(case, fuzz_server, fuzz_channel, fuzz_bridge, baseline, *, stream: bool) -> None:
    CASES[case.operation.label] += 1
    started = time.monotonic()
    _bound(case, baseline["models_dir"])
    headers = {"Accept": SSE} if stream else None
    try:
        # A session per case, closed after it: a stream cut short is closed too, so the bridge
        # sees its client leave and cancels the gRPC call.
        with requests.Session() as session:
            try:
                response = case.call_and_validate(
                    base_url=fuzz_bridge, session=session, headers=headers, checks=CHECKS,
                    timeout=STREAM_TIMEOUT_S if stream else REQUEST_TIMEOUT_S)
                STATUSES[case.operation.label][response.status_code] += 1
            except requests.exceptions.ReadTimeout:
                # A watch stream that has nothing to say sends its headers only after the
                # bridge's peek (5 s); an error would have come at once, so there is nothing to
                # judge. Elsewhere a timeout is a hang and fails the test.
                if not stream:
                    raise
    finally:
        restore(fuzz_server, fuzz_channel, baseline, case.operation.definition.raw["operationId"])
        SECONDS[case.operation.label] += time.monotonic() - started


# No deadline (no wall-time assertions) and no shrinking (a failure costs no extra calls).
_SETTINGS = {"deadline": None, "derandomize": True, "database": None,
             "suppress_health_check": list(HealthCheck),
             "phases": [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]}


@schema.exclude(operation_id=sorted(WATCH_STREAMS)).parametrize()
@settings(max_examples=EXAMPLES, **_SETTINGS)
def test_no_request_gets_a_server_error_and_every_answer_is_documented(
        case, fuzz_server, fuzz_channel, fuzz_bridge, baseline):
    _call(case, fuzz_server, fuzz_channel, fuzz_bridge, baseline, stream=False)


@schema.include(operation_id=sorted(WATCH_STREAMS)).parametrize()
@settings(max_examples=STREAM_EXAMPLES, **_SETTINGS)
def test_no_watch_stream_request_gets_a_server_error(
        case, fuzz_server, fuzz_channel, fuzz_bridge, baseline):
    _call(case, fuzz_server, fuzz_channel, fuzz_bridge, baseline, stream=True)
