"""gRPC fuzzing: every request message of the contract, generated from its descriptor, against a
live server of this module's own (so destructive RPCs are allowed: unload and remove engines,
delete sessions and models, change the auth and server config, start downloads).

Strategies come from the message descriptors (`tokenwire.methods.index()`): random field values,
unknown enum numbers, integers at and past the edges their type allows (negative counts, huge
int64), NaN and infinities, oversized strings (a few KB) and repeated fields (a few hundred items),
maps with out-of-range keys; and random bytes as the raw serialized request. Each unary method is
called through a generic `channel.unary_unary`, each server-streaming one through
`channel.unary_stream`, reading its first few messages and cancelling.

The checks: no call ends INTERNAL or UNKNOWN (nor DEADLINE_EXCEEDED for a unary call: every call is
bounded here), no ERROR record and no traceback in the log, every OK response parses as its
response type, and the server answers its grpc.health.v1 check and GetStatus afterwards.

Half the generated requests are "plausible" (ids that exist, valid sampling values, the embedded
model), so that they get past validation into the engines, the scheduler and the stores; the other
half are random.

Bounded so it fits `make test`: seeded (hypothesis `derandomize`, no example database, no
shrinking), TOKENWIRE_FUZZ_EXAMPLES (default 25) requests per method from the descriptors and
TOKENWIRE_FUZZ_RAW_EXAMPLES (default 8) of random bytes, about 1,300 calls in all; generation kept
short (Complete, RunBenchmark and CreateSession get max_tokens <= 3, Embed at most 16 inputs,
streams are cancelled after 3 messages or 30 s for generation, 0.5 s for watch streams) and a gRPC
deadline per call (CALL_TIMEOUT_S). A larger budget, and every call printed:

    TOKENWIRE_FUZZ_EXAMPLES=200 TOKENWIRE_FUZZ_RAW_EXAMPLES=50 TOKENWIRE_FUZZ_VERBOSE=1 \
        pytest tests/integration/test_grpc_fuzz.py -s

Nothing leaves the machine: the download resolver is replaced so that only 127.0.0.1 resolves
(every other host name is "not known"), and the URLs the strategies build point at a 127.0.0.1
port that is bound but not listening (connections are refused). Engines are loaded only from the
embedded model, and a test-side guard in the backend factory refuses loads too large for a shared
test machine (a large but valid n_ctx) and records, as a finding, load parameters that the server
should itself have refused.
"""

from __future__ import annotations

import collections
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from server import convert
from server.backends.registry import BACKENDS
from server.config import embedded_model_path
from server.core.engines import EngineState
from server.downloads import http as download_http
from server.downloads import sources
from server.errors import PreconditionFailed, SessionNotFound
from server.servicers.server_info import LOG_LEVELS
from tests.helpers import ServerThread, make_settings
from tokenwire import methods
from tokenwire.v1 import (server_service_pb2, server_service_pb2_grpc, session_service_pb2,
                          status_service_pb2, status_service_pb2_grpc)

FUZZ_EXAMPLES = int(os.environ.get("TOKENWIRE_FUZZ_EXAMPLES", "25"))
RAW_EXAMPLES = int(os.environ.get("TOKENWIRE_FUZZ_RAW_EXAMPLES", "8"))
CALL_TIMEOUT_S = 90  # a loaded 2-core machine; every call here is bounded far below it
STREAM_MESSAGES = 3
GENERATION_STREAM_S = 30.0  # Generate and Chat: time for a prefill of a few KB
WATCH_STREAM_S = 0.5  # watch streams may rightly send nothing for a long time
MAX_GENERATED_TOKENS = 3
# What the guard lets the backend load on a shared test machine (valid values above these are
# refused with FAILED_PRECONDITION, not a finding).
SAFE_N_CTX = 8192
# Above these the server itself must refuse the parameters (GGML_MAX_N_THREADS; llama.cpp's
# context caps its batch at n_ctx while the scheduler would allocate and send the larger one).
MAX_N_THREADS = 512

GENERATION_STREAMS = {"/tokenwire.v1.GenerationService/Generate", "/tokenwire.v1.SessionService/Chat"}
BAD_CODES = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}

ALL_METHODS = [m for m in methods.index().values() if not m.descriptor.client_streaming]


def _cls(descriptor: Descriptor) -> type[Message]:
    return message_factory.GetMessageClass(descriptor)


# -- strategies from descriptors ------------------------------------------------------------------

CHARS = st.characters(blacklist_categories=("Cs",))  # protobuf strings are valid Unicode
TEXT = st.text(CHARS, max_size=24)
BIG_TEXT = st.builds(lambda s, n: (s or "x") * n, st.text(CHARS, min_size=1, max_size=4),
                     st.integers(256, 1024))
ODD_TEXT = st.sampled_from(["", " ", "\x00", "\n", "../../../etc/passwd", "..", "/", "C:\\x",
                            "%s%n", "{}", "é" * 8, "\u202e", "a" * 300, "default ", "DEFAULT"])
STRING = st.one_of(TEXT, ODD_TEXT, BIG_TEXT)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1), FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted({v for v in (lo, lo + 1, -(2**31), -1, 0, 1, 2, 16, 2**31 - 1, 2**31, 2**32 - 1,
                                2**53 + 1, hi - 1, hi) if lo <= v <= hi})
    return st.one_of(st.integers(max(lo, -3), min(hi, 64)), st.sampled_from(edges), st.integers(lo, hi))


def _floats(width: int) -> st.SearchStrategy[float]:
    edges = st.sampled_from([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 100.0, 1e30, -1e30, float("inf"),
                             float("-inf"), float("nan")])
    return st.one_of(st.floats(-3, 3, width=width), edges, st.floats(width=width))


def _enums(field: FieldDescriptor) -> st.SearchStrategy[int]:
    defined = sorted(field.enum_type.values_by_number)
    return st.one_of(st.sampled_from(defined), st.sampled_from([-1, max(defined) + 1, 99, 2**31 - 1]),
                     st.integers(-2**31, 2**31 - 1))


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _real_oneofs(descriptor: Descriptor):
    """Oneofs written in the proto (not the synthetic ones of proto3 `optional` fields)."""
    return [o for o in descriptor.oneofs
            if not (len(o.fields) == 1 and o.name == "_" + o.fields[0].name)]


@dataclass
class Hints:
    """Values worth trying for fields of a given name (ids that exist, URLs that stay on this
    machine, directories under a temporary root), mixed into the generic strategy for that field;
    `only` replaces the generic strategy where a random value could do harm (a random path)."""

    mixed: dict[str, st.SearchStrategy] = field(default_factory=dict)
    only: dict[str, st.SearchStrategy] = field(default_factory=dict)
    #: In a "plausible" request (half of them) these fields take only these values, mostly valid
    #: ones, so that requests get past validation into the engine, the scheduler and the stores.
    plausible: dict[str, st.SearchStrategy] = field(default_factory=dict)


def _element(field: FieldDescriptor, hints: Hints, depth: int, plausible: bool) -> st.SearchStrategy:
    if field.name in hints.only:
        return hints.only[field.name]
    if plausible and field.name in hints.plausible:
        return hints.plausible[field.name]
    t = field.type
    if t == FieldDescriptor.TYPE_MESSAGE:
        generic = message_strategy(field.message_type, hints, depth + 1, plausible)
    elif t == FieldDescriptor.TYPE_ENUM:
        generic = _enums(field)
    elif t == FieldDescriptor.TYPE_BOOL:
        generic = st.booleans()
    elif t == FieldDescriptor.TYPE_STRING:
        generic = STRING
    elif t == FieldDescriptor.TYPE_BYTES:
        generic = st.binary(max_size=64)
    elif t == FieldDescriptor.TYPE_FLOAT:
        generic = _floats(32)
    elif t == FieldDescriptor.TYPE_DOUBLE:
        generic = _floats(64)
    else:
        generic = _integers(*_INT_RANGES[t])
    if field.name in hints.mixed:
        return st.one_of(hints.mixed[field.name], generic)
    return generic


def _value(field: FieldDescriptor, hints: Hints, depth: int, plausible: bool) -> st.SearchStrategy:
    if plausible and field.name in hints.plausible:
        return hints.plausible[field.name]
    if _is_map(field):
        key_field = field.message_type.fields_by_name["key"]
        value_field = field.message_type.fields_by_name["value"]
        keys = _element(key_field, hints, depth, plausible)
        values = _element(value_field, hints, depth, plausible)
        few = st.dictionaries(keys, values, max_size=4)
        many = st.builds(lambda ks, v: dict.fromkeys(ks, v),
                         st.lists(keys, min_size=50, max_size=300, unique=True), values)
        return st.one_of(few, many)
    element = _element(field, hints, depth, plausible)
    if field.is_repeated:
        few = st.lists(element, max_size=4)
        many = st.builds(lambda x, n: [x] * n, element, st.integers(100, 300))
        return st.one_of(few, many)
    return element


def _assign(msg: Message, field: FieldDescriptor, value) -> None:
    target = getattr(msg, field.name)
    if _is_map(field):
        if field.message_type.fields_by_name["value"].message_type is not None:
            for k, v in value.items():
                target[k].CopyFrom(v)
        else:
            target.update(value)
    elif field.is_repeated:
        if field.message_type is not None:
            for v in value:
                target.add().CopyFrom(v)
        else:
            target.extend(value)
    elif field.message_type is not None:
        target.CopyFrom(value)
    else:
        setattr(msg, field.name, value)


def message_strategy(descriptor: Descriptor, hints: Hints, depth: int = 0,
                     plausible: bool | None = None) -> st.SearchStrategy:
    """Messages of `descriptor`; at the top (plausible=None) half of them plausible ones."""
    cls = _cls(descriptor)
    oneofs = _real_oneofs(descriptor)

    def wanted(draw, f: FieldDescriptor, mode: bool) -> bool:
        """Whether to set `f`: half the fields of a random request; in a plausible one most of
        the fields with plausible values and a few others."""
        if not mode:
            return draw(st.booleans())
        roll = draw(st.integers(0, 7))
        return roll != 0 if f.name in hints.plausible else roll < 2

    @st.composite
    def build(draw):
        mode = draw(st.booleans()) if plausible is None else plausible
        msg = cls()
        if depth > 4:
            return msg
        chosen = {o.name: draw(st.sampled_from(list(o.fields) if mode else [None, *o.fields]))
                  for o in oneofs}
        for f in descriptor.fields:
            oneof = f.containing_oneof
            if oneof is not None and oneof.name in chosen:
                if chosen[oneof.name] is not f:
                    continue
            elif not wanted(draw, f, mode):
                continue
            _assign(msg, f, draw(_value(f, hints, depth, mode)))
        return msg

    return build()


# -- per-method bounds on the work a request may ask for ------------------------------------------

def _short_generation(msg: Message) -> None:
    """Generation that would run long is made short; invalid values (<= 0) stay to be refused."""
    if not msg.HasField("max_tokens") or msg.max_tokens > MAX_GENERATED_TOKENS:
        msg.max_tokens = MAX_GENERATED_TOKENS


def _short_benchmark(msg: Message) -> None:
    if not msg.HasField("num_samples") or 1 <= msg.num_samples <= 100:
        msg.num_samples = 1
    _short_generation(msg)


def _few_embeddings(msg: Message) -> None:
    """More than the server's limit of inputs stays (refused before any work); otherwise at most
    16 inputs of 1 KB in all: each input is a decode of its own, which the scheduler runs between
    steps, and on a busy shared machine a few hundred of them take minutes."""
    if len(msg.inputs) > convert.MAX_EMBED_INPUTS:
        return
    total, kept = 0, []
    for text in msg.inputs[:16]:
        total += len(text) + 1
        if total > 1024:
            break
        kept.append(text)
    del msg.inputs[len(kept):]


BOUNDS = {
    "/tokenwire.v1.GenerationService/Complete": _short_generation,
    "/tokenwire.v1.SessionService/CreateSession": _short_generation,
    "/tokenwire.v1.BenchmarkService/RunBenchmark": _short_benchmark,
    "/tokenwire.v1.GenerationService/Embed": _few_embeddings,
}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _raw_suffix(method: methods.Method, models_dir: Path) -> bytes:
    """Fields appended to a random-bytes request (the last value of a field wins on the wire), so
    that random bytes that happen to parse still ask for bounded work in a safe place."""
    fields = method.descriptor.input_type.fields_by_name
    suffix = b""
    if method.path in BOUNDS and "max_tokens" in fields:
        suffix += _varint(fields["max_tokens"].number << 3) + _varint(MAX_GENERATED_TOKENS)
    if "num_samples" in fields:
        suffix += _varint(fields["num_samples"].number << 3) + _varint(1)
    if "models_directory" in fields:
        path = str(models_dir / "raw").encode()
        suffix += _varint(fields["models_directory"].number << 3 | 2) + _varint(len(path)) + path
    return suffix


# -- the server under fuzz ------------------------------------------------------------------------

@dataclass
class Finding:
    method: str
    request: str
    outcome: str

    def __str__(self) -> str:
        return f"{self.method} <- {self.request[:300]!r}: {self.outcome[:500]}"


class ErrorRecords(logging.Handler):
    """ERROR records and records with a traceback, from any logger of this process."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)

    def take(self) -> list[str]:
        taken, self.records = self.records, []
        return [f"{r.levelname} {r.name}: {r.getMessage()}"
                + (f"\n{logging.Formatter().formatException(r.exc_info)}" if r.exc_info else "")
                for r in taken]


def _guarded_backends(findings: list[str]):
    """The real llama_cpp backend behind a guard: parameters the server must refuse become
    findings (and are never loaded); valid but large ones are refused as a precondition."""
    real = BACKENDS["llama_cpp"]

    def factory(engine_id, path, params, *args, **kwargs):
        problems = []
        if params.n_threads is not None and params.n_threads > MAX_N_THREADS:
            problems.append(f"n_threads={params.n_threads}")
        if params.n_batch is not None and params.n_ctx is not None and params.n_batch > params.n_ctx:
            problems.append(f"n_batch={params.n_batch} > n_ctx={params.n_ctx}")
        if problems:
            findings.append(f"the server accepted load parameters it must refuse: {', '.join(problems)}")
            raise PreconditionFailed("refused by the fuzz test's guard", reason="FUZZ_GUARD")
        if (params.n_ctx or 0) > SAFE_N_CTX:
            raise PreconditionFailed("too large for a shared test machine", reason="FUZZ_GUARD")
        return real(engine_id, path, params, *args, **kwargs)

    return {**BACKENDS, "llama_cpp": factory}


class Fuzz:
    def __init__(self, tmp: Path, monkeypatch: pytest.MonkeyPatch):
        self.tmp = tmp
        self.guard_findings: list[str] = []
        self.log = ErrorRecords()
        self.cases = 0
        self.outcomes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        # Bound but never listening: every connection to it is refused, and nothing else can
        # take the port while the module runs.
        self._refusing = socket.socket()
        self._refusing.bind(("127.0.0.1", 0))
        port = self._refusing.getsockname()[1]
        self.refusing_url = f"http://127.0.0.1:{port}"

        def resolve(host: str, port: int) -> list[str]:
            if host == "127.0.0.1":
                return ["127.0.0.1"]
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(download_http, "resolve", resolve)
        monkeypatch.setattr(sources, "resolve", resolve)
        monkeypatch.chdir(tmp)  # a relative path from a random request lands in here
        self.models_dir = tmp / "models"
        self.models_dir.mkdir()
        self.embedded = embedded_model_path()

        def catalog(name: str):
            if name.startswith("fuzz"):
                return f"{self.refusing_url}/{name}.gguf", "fuzz-model.gguf", None
            return None

        server_settings = make_settings(
            engine={"n_ctx": 2048, "n_parallel": 2, "unload_grace_seconds": 0.5,
                    "memory_budget_mb": 4096},
            model_store={"directory": str(self.models_dir)},
            downloads={"allow_private_addresses": True, "max_retries": 0,
                       "retry_backoff_seconds": 0.01},
            sessions={"store_path": str(tmp / "sessions.db")},
        )
        self.running = ServerThread(server_settings, backends=_guarded_backends(self.guard_findings),
                                    catalog=catalog).start()
        self.server = self.running.server
        self.channel = grpc.insecure_channel(self.running.target)
        self.default_params = self.server.engines.describe("default").params
        security = self.server.security
        self._security = (security.keys, security.rate_limit_enabled, security.cors,
                          (security.limiter.max_requests, security.limiter.window_seconds,
                           security.limiter.burst_per_second))
        self.session_id = "fuzz-session"
        self._ensure_session()
        self.hints = self._hints()

    def close(self) -> None:
        self.channel.close()
        self.running.stop()
        self._refusing.close()

    def _hints(self) -> Hints:
        ids = st.sampled_from(["default", "", "fuzz-engine", "DEFAULT", "default/x"])
        safe_dir = st.builds(lambda s: str(self.models_dir / ("d-" + "".join(
            c for c in s if c.isalnum())[:40])), TEXT)
        segment = st.text(st.sampled_from("abcxyz-._%/?#"), max_size=12)
        urls = st.one_of(
            st.builds(lambda s: f"{self.refusing_url}/{s}", segment),
            st.builds(lambda s: f"{self.refusing_url}/{s}.gguf", segment),
            st.builds(lambda s: f"http://no-such-host.invalid/{s}.gguf", segment),
            st.sampled_from(["ftp://127.0.0.1/x.gguf", "file:///etc/passwd", "http://", "https://",
                             "http://[::1", "http://127.0.0.1:0/x.gguf", "//x", "http:x.gguf"]))
        return Hints(
            mixed={
                "engine_id": ids,
                "model": st.sampled_from(["", "default", str(self.embedded), self.embedded.name,
                                          "smollm2-135m", str(self.tmp), "/dev/null"]),
                "session_id": st.sampled_from([self.session_id, "", "fuzz-new"]),
                "new_session_id": st.sampled_from([self.session_id, "fuzz-branch"]),
                "name": st.sampled_from([self.embedded.name, self.embedded.stem]),
                "catalog_name": st.sampled_from(["fuzz-model", "fuzz"]),
                "role": st.sampled_from(["system", "user", "assistant", "tool"]),
                "methods": st.sampled_from([m.name for m in ALL_METHODS]),
                "log_level": st.sampled_from(LOG_LEVELS),
                "backend": st.sampled_from(["llama_cpp", "openai_upstream", "mlx"]),
                "download_id": st.sampled_from(["dl-0000000000000000"]),
            },
            plausible={
                "engine_id": st.sampled_from(["default", "fuzz-engine"]),
                "model": st.sampled_from(["", "default", str(self.embedded)]),
                "prompt": TEXT.filter(bool), "content": TEXT.filter(bool), "text": TEXT,
                "role": st.sampled_from(["system", "user", "assistant"]),
                "inputs": st.lists(TEXT.filter(bool), min_size=1, max_size=3),
                "stop": st.lists(TEXT.filter(bool), max_size=2),
                "temperature": st.sampled_from([0.0, 0.7, 2.0]),
                "top_p": st.floats(0.0, 1.0, width=32, exclude_min=True), "top_k": st.integers(0, 100),
                "min_p": st.floats(0.0, 1.0, width=32), "repeat_penalty": st.floats(0.5, 2.0, width=32),
                "presence_penalty": st.floats(-2, 2, width=32),
                "frequency_penalty": st.floats(-2, 2, width=32),
                "logit_bias": st.dictionaries(st.sampled_from([0, 1, 2, 42, 49151]),
                                              st.sampled_from([-100.0, -1.0, 5.0, 100.0,
                                                               float("-inf")]), max_size=3),
                "max_tokens": st.integers(1, MAX_GENERATED_TOKENS),
                "token_ids": st.lists(st.sampled_from([0, 1, 42, 49151, 49152, -1, 2**31 - 1]),
                                      max_size=5),
                "session_id": st.sampled_from([self.session_id, "fuzz-new"]),
                "message_count": st.integers(-1, 4),
                # Load parameters: valid ones, and the ones a server must refuse before loading.
                "n_ctx": st.sampled_from([16, 256, 2048, 4096, SAFE_N_CTX + 1, 2**31 - 1]),
                "n_threads": st.sampled_from([1, 2, MAX_N_THREADS + 1, 2**31 - 1]),
                "n_batch": st.sampled_from([1, 64, 512, 8192, 2**31 - 1]),
                "n_parallel": st.sampled_from([1, 2, 64, 256]),
                "n_gpu_layers": st.sampled_from([-1, 0, 100, 2**31 - 1]),
                "main_gpu_id": st.sampled_from([0, 1, 2**31 - 1]),
                "load_immediately": st.booleans(),
                "backend": st.sampled_from(["", "llama_cpp"]),
                "force": st.booleans(),
                "interval_ms": st.sampled_from([0, 1, 100, 2**31 - 1]),
                "count": st.sampled_from([0, 1, 100, 2**31 - 1]),
                "backlog": st.sampled_from([0, 1, 100, 2**31 - 1]),
            },
            only={
                # A random directory path is created on disk: keep it under the temporary root.
                "models_directory": st.one_of(safe_dir, st.sampled_from(["", " ", "a\x00b", "~fuzz-no-such-user/models"])),
                "url": urls,
            })

    # -- calls ----------------------------------------------------------------------------------

    def call(self, method: methods.Method, payload: bytes) -> tuple[grpc.StatusCode, str]:
        """Sends `payload` as the serialized request; (status, details). OK responses must parse."""
        response_type = _cls(method.descriptor.output_type)
        self.cases += 1
        if not method.descriptor.server_streaming:
            rpc = self.channel.unary_unary(method.path)  # bytes in, bytes out
            try:
                response_type.FromString(rpc(payload, timeout=CALL_TIMEOUT_S))
            except grpc.RpcError as error:
                return error.code(), error.details() or ""
            return grpc.StatusCode.OK, ""
        seconds = GENERATION_STREAM_S if method.path in GENERATION_STREAMS else WATCH_STREAM_S
        stream = self.channel.unary_stream(method.path)(payload, timeout=CALL_TIMEOUT_S)
        timer = threading.Timer(seconds, stream.cancel)
        timer.start()
        try:
            for i, response in enumerate(stream):
                response_type.FromString(response)
                if i + 1 >= STREAM_MESSAGES:
                    break
        except grpc.RpcError as error:
            return error.code(), error.details() or ""
        finally:
            timer.cancel()
            stream.cancel()
        return grpc.StatusCode.OK, ""

    def check(self, method: methods.Method, request_text: str, code: grpc.StatusCode,
              details: str, kind: str) -> list[Finding]:
        self.outcomes[f"{method.name.split('.')[-1]} ({kind})"][code.name] += 1
        if os.environ.get("TOKENWIRE_FUZZ_VERBOSE"):
            print(f"{time.strftime('%X')} {method.name} {code.name} {details[:160]!r} "
                  f"<- {request_text[:160]!r}")
        found = []
        if (code in BAD_CODES
                or code == grpc.StatusCode.DEADLINE_EXCEEDED and not method.descriptor.server_streaming
                # An error too large for the HTTP/2 trailers reaches the client as this instead.
                or code == grpc.StatusCode.RESOURCE_EXHAUSTED and "metadata size" in details):
            found.append(Finding(method.path, request_text, f"{code.name}: {details}"))
        found += [Finding(method.path, request_text, f"log: {text}") for text in self.log.take()]
        found += [Finding(method.path, request_text, text) for text in self.guard_findings]
        self.guard_findings.clear()
        return found

    # -- keeping the server usable between destructive calls ------------------------------------

    def restore(self) -> None:
        """Undoes what a call may have changed, so every method meets the same server."""
        logging.getLogger().setLevel(logging.DEBUG)
        server = self.server
        security = server.security
        security.keys, security.rate_limit_enabled, security.cors, limits = self._security
        security.limiter.configure(*limits)
        security.limiter.clear()
        # UpdateServerConfig may have moved the model store or changed the log level.
        server_service_pb2_grpc.ServerServiceStub(self.channel).UpdateServerConfig(
            server_service_pb2.UpdateServerConfigRequest(models_directory=str(self.models_dir),
                                                         log_level="DEBUG"), timeout=CALL_TIMEOUT_S)
        self.running.call(self._restore_engines(), timeout=CALL_TIMEOUT_S)
        self._ensure_session()

    async def _restore_engines(self) -> None:
        engines = self.server.engines
        if "default" not in {e.id for e in engines.engines()}:
            await engines.create("default", str(self.embedded), self.default_params, load=True)
        if engines.default_id != "default":
            await engines.switch("default")
        if engines.describe("default").state is not EngineState.LOADED:
            await engines.load("default", raise_errors=True)
        for engine in engines.engines():
            if engine.id != "default":
                await engines.remove(engine.id, force=True)

    def _ensure_session(self) -> None:
        sessions = self.server.sessions

        async def ensure():
            try:
                await sessions.get(self.session_id)
            except SessionNotFound:  # deleted by a fuzzed call: create it again
                request = session_service_pb2.CreateSessionRequest(
                    session_id=self.session_id, max_tokens=MAX_GENERATED_TOKENS)
                await sessions.create(convert.session_record_from_pb(request))

        self.running.call(ensure(), timeout=CALL_TIMEOUT_S)

    def healthy(self) -> None:
        health = health_pb2_grpc.HealthStub(self.channel)
        answer = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        status = status_service_pb2_grpc.StatusServiceStub(self.channel).GetStatus(
            status_service_pb2.GetStatusRequest(), timeout=30)
        assert status.live and status.ready, status


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory):
    with pytest.MonkeyPatch.context() as monkeypatch:
        running = Fuzz(tmp_path_factory.mktemp("fuzz"), monkeypatch)
        root = logging.getLogger()
        root.addHandler(running.log)
        try:
            yield running
        finally:
            root.removeHandler(running.log)
            running.close()


FUZZ_SETTINGS = dict(derandomize=True, database=None, deadline=None, print_blob=False,
                     phases=(Phase.explicit, Phase.generate),
                     suppress_health_check=list(HealthCheck))


def _report(findings: list[Finding]) -> str:
    lines = [str(f) for f in findings[:20]]
    more = len(findings) - len(lines)
    return "\n".join(lines + ([f"... and {more} more"] if more > 0 else []))


@pytest.mark.parametrize("method", ALL_METHODS, ids=lambda m: m.name.split(".")[-1])
def test_generated_requests_get_a_domain_status(fuzz, method):
    strategy = message_strategy(method.descriptor.input_type, fuzz.hints)
    bound = BOUNDS.get(method.path)
    findings: list[Finding] = []

    @settings(max_examples=FUZZ_EXAMPLES, **FUZZ_SETTINGS)
    @given(strategy)
    def one(request):
        if bound is not None:
            bound(request)
        code, details = fuzz.call(method, request.SerializeToString())
        fuzz.restore()
        findings.extend(fuzz.check(method, str(request), code, details, "generated"))

    one()
    fuzz.healthy()
    assert not findings, _report(findings)


@pytest.mark.parametrize("method", ALL_METHODS, ids=lambda m: m.name.split(".")[-1])
def test_random_bytes_get_a_domain_status(fuzz, method):
    suffix = _raw_suffix(method, fuzz.models_dir)
    findings: list[Finding] = []

    @settings(max_examples=RAW_EXAMPLES, **FUZZ_SETTINGS)
    @given(st.one_of(st.binary(min_size=1, max_size=512),
                     st.sampled_from([b"\xff", b"\x0a\x05ab", b"\x0a\xff\xff\xff\xff\x0f",
                                      b"\x12\x02\xc3\x28", b"\x08"])))
    def one(payload):
        code, details = fuzz.call(method, payload + suffix)
        fuzz.restore()
        findings.extend(fuzz.check(method, repr(payload), code, details, "bytes"))

    one()
    fuzz.healthy()
    assert not findings, _report(findings)


def test_the_server_is_healthy_after_the_fuzzing(fuzz):
    fuzz.healthy()
    print(f"\n{fuzz.cases} fuzz cases sent")
    for name, counts in sorted(fuzz.outcomes.items()):
        print(f"  {name}: {dict(counts.most_common())}")
