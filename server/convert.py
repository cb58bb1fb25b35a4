"""The one place where protobuf messages become domain objects and back.

Validation of request fields lives here too, because it speaks in the request's field paths
("sampling.top_p"), which is what a client needs to hear.
"""

from __future__ import annotations

import json
import math
import os
import re
import time

from pydantic import ValidationError

from server.core import gguf_info
from server.core.backend import Embedding
from server.core.engines import Engine, EngineState
from server.core.model_library import CatalogModelState, LocalModelState
from server.core.session_store import SessionRecord
from server.core.sessions import SESSION_ID, ChatTurn, TurnDelta
from server.core.types import (ChatMessage, Constraint, ConstraintKind, Delta, FinishReason,
                               GenerationRequest, LoadParams, Sampling, Timings, TokenLogprob,
                               Tool, ToolCall, ToolChoice, Truncation, Usage)
from server.downloads.types import (CancelAllOutcome, DownloadRequest, DownloadSnapshot,
                                    DownloadStatus, DownloadType)
from server.errors import FieldViolation, InvalidArgument
from tokenwire.v1 import download_service_pb2 as download_pb
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2 as svc_pb
from tokenwire.v1 import model_pb2
from tokenwire.v1 import model_service_pb2 as model_pb
from tokenwire.v1 import session_service_pb2 as session_pb

MAX_STOP_SEQUENCES = 16
MAX_EMBED_INPUTS = 256
MAX_TOOLS = 128
MAX_TOP_LOGPROBS = 20
MAX_CHOICES = 128  # the engine's parallel sequences bound n further
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CHAT_ROLES = frozenset({"system", "user", "assistant", "tool"})
LOGIT_BIAS_LIMIT = 100.0

_FINISH_TO_PB = {
    FinishReason.STOP: gen_pb.FINISH_REASON_STOP,
    FinishReason.STOP_SEQUENCE: gen_pb.FINISH_REASON_STOP_SEQUENCE,
    FinishReason.LENGTH: gen_pb.FINISH_REASON_LENGTH,
    FinishReason.TOOL_CALLS: gen_pb.FINISH_REASON_TOOL_CALLS,
}
_CONSTRAINT_KINDS = {"json_object": ConstraintKind.JSON_OBJECT,
                     "json_schema": ConstraintKind.JSON_SCHEMA, "gbnf": ConstraintKind.GBNF,
                     "lark": ConstraintKind.LARK, "regex": ConstraintKind.REGEX}
_TOOL_CHOICES = {gen_pb.TOOL_CHOICE_MODE_AUTO: ToolChoice.AUTO,
                 gen_pb.TOOL_CHOICE_MODE_NONE: ToolChoice.NONE,
                 gen_pb.TOOL_CHOICE_MODE_REQUIRED: ToolChoice.REQUIRED,
                 gen_pb.TOOL_CHOICE_MODE_FUNCTION: ToolChoice.FUNCTION}

# (field, default, check, description of the valid range)
_SAMPLING_RULES = (
    ("temperature", 0.8, lambda v: v >= 0, "must be a number >= 0"),
    ("top_p", 0.95, lambda v: 0 < v <= 1, "must be in (0, 1]"),
    ("top_k", 40, lambda v: v >= 0, "must be >= 0"),
    ("min_p", 0.05, lambda v: 0 <= v <= 1, "must be in [0, 1]"),
    ("repeat_penalty", 1.0, lambda v: v > 0, "must be > 0"),
    ("presence_penalty", 0.0, lambda v: -2 <= v <= 2, "must be in [-2, 2]"),
    ("frequency_penalty", 0.0, lambda v: -2 <= v <= 2, "must be in [-2, 2]"),
)


def _sampling_from_pb(pb: gen_pb.SamplingParams, violations: list[FieldViolation]) -> Sampling:
    values: dict = {}
    for name, default, ok, rule in _SAMPLING_RULES:
        if not pb.HasField(name):
            values[name] = default
            continue
        value = getattr(pb, name)
        if isinstance(value, float) and not math.isfinite(value):  # inf passes "v >= 0"
            violations.append(FieldViolation(f"sampling.{name}", f"must be a finite number "
                                                                 f"(got {value})"))
        elif not ok(value):
            violations.append(FieldViolation(f"sampling.{name}", f"{rule} (got {value})"))
        values[name] = value
    for token, bias in pb.logit_bias.items():
        if token < 0:
            violations.append(FieldViolation("sampling.logit_bias", f"token id {token} is negative"))
        elif math.isnan(bias) or not (bias == -math.inf or -LOGIT_BIAS_LIMIT <= bias <= LOGIT_BIAS_LIMIT):
            violations.append(FieldViolation("sampling.logit_bias",
                                             f"bias for token {token} must be in [-100, 100] (got {bias})"))
    return Sampling(**values, seed=pb.seed if pb.HasField("seed") else None,
                    logit_bias=dict(pb.logit_bias))


def generation_request_from_pb(
    pb: svc_pb.GenerateRequest | svc_pb.CompleteRequest, *, request_id: str = ""
) -> GenerationRequest:
    """Validates a Generate or Complete request (they share their fields) into the domain type."""
    arrived_at = time.monotonic()
    violations: list[FieldViolation] = []
    which = pb.WhichOneof("input")
    prompt = messages = None
    if which is None:
        violations.append(FieldViolation("input", "set either prompt or chat"))
    elif which == "prompt":
        prompt = pb.prompt
        if not prompt:
            violations.append(FieldViolation("prompt", "must not be empty"))
    else:
        if not pb.chat.messages:
            violations.append(FieldViolation("chat.messages", "must hold at least one message"))
        messages = chat_messages_from_pb(pb.chat.messages, "chat.messages", violations)
    sampling = _sampling_from_pb(pb.sampling, violations)
    max_tokens = pb.max_tokens if pb.HasField("max_tokens") else None
    if max_tokens is not None and max_tokens < 1:
        violations.append(FieldViolation("max_tokens", f"must be >= 1 (got {max_tokens})"))
    if len(pb.stop) > MAX_STOP_SEQUENCES:
        violations.append(FieldViolation("stop", f"at most {MAX_STOP_SEQUENCES} sequences (got {len(pb.stop)})"))
    if any(not s for s in pb.stop):
        violations.append(FieldViolation("stop", "stop sequences must not be empty"))
    constraint = constraint_from_pb(pb, violations)
    tools, choice, tool_name = _tools_from_pb(pb, violations)
    if tools and which == "prompt":
        violations.append(FieldViolation("tools", "tools need chat input (a raw prompt has no "
                                                  "chat template to show them with)"))
    if constraint is not None and choice is not ToolChoice.NONE:
        violations.append(FieldViolation("constraint", "a constraint and tool calling cannot be "
                                                       "combined (set tool_choice none, or drop "
                                                       "the constraint)"))
    top_logprobs = _top_logprobs(pb, violations)
    n = pb.n if pb.HasField("n") else 1
    if not 1 <= n <= MAX_CHOICES:
        violations.append(FieldViolation("n", f"must be between 1 and {MAX_CHOICES} (got {n})"))
    truncation = _truncation_from_pb(pb.truncation, Truncation.ERROR, violations)
    if violations:
        raise InvalidArgument(violations)
    return GenerationRequest(prompt=prompt, messages=messages, sampling=sampling,
                             max_tokens=max_tokens, stop=tuple(pb.stop), request_id=request_id,
                             arrived_at=arrived_at, constraint=constraint, tools=tools,
                             tool_choice=choice, tool_name=tool_name,
                             parallel_tool_calls=(pb.parallel_tool_calls
                                                  if pb.HasField("parallel_tool_calls") else True),
                             top_logprobs=top_logprobs, n=n, truncation=truncation)


def chat_messages_from_pb(messages, path: str,
                          violations: list[FieldViolation]) -> tuple[ChatMessage, ...]:
    out = []
    for i, m in enumerate(messages):
        if m.role not in CHAT_ROLES:
            violations.append(FieldViolation(f"{path}[{i}].role", f"must be one of "
                                             f"{', '.join(sorted(CHAT_ROLES))} (got {m.role!r})"))
        if m.tool_calls and m.role != "assistant":
            violations.append(FieldViolation(f"{path}[{i}].tool_calls",
                                             "only assistant messages make tool calls"))
        for j, call in enumerate(m.tool_calls):
            if not _is_json_object(call.arguments):
                violations.append(FieldViolation(f"{path}[{i}].tool_calls[{j}].arguments",
                                                 "must be a JSON object text"))
        out.append(ChatMessage(m.role, m.content,
                               tuple(ToolCall(c.id, c.name, c.arguments) for c in m.tool_calls),
                               m.tool_call_id, m.name))
    return tuple(out)


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def constraint_from_pb(pb, violations: list[FieldViolation]) -> Constraint | None:
    """The request's OutputConstraint (GenerateRequest, CompleteRequest, session ChatRequest)."""
    if not pb.HasField("constraint"):
        return None
    kind = pb.constraint.WhichOneof("kind")
    if kind is None:
        violations.append(FieldViolation("constraint", "set one of json_object, json_schema, "
                                                       "gbnf, lark or regex"))
        return None
    value = getattr(pb.constraint, kind)
    path = f"constraint.{kind}"
    if kind == "json_object":
        if not value:
            violations.append(FieldViolation(path, "must be true when set"))
        return Constraint(ConstraintKind.JSON_OBJECT, "", path)
    if not value.strip():
        violations.append(FieldViolation(path, "must not be empty"))
    return Constraint(_CONSTRAINT_KINDS[kind], value, path)


def _tools_from_pb(pb, violations: list[FieldViolation]) -> tuple[tuple[Tool, ...], ToolChoice, str]:
    tools = []
    if len(pb.tools) > MAX_TOOLS:
        violations.append(FieldViolation("tools", f"at most {MAX_TOOLS} tools (got {len(pb.tools)})"))
    names = set()
    for i, t in enumerate(pb.tools):
        if not TOOL_NAME.match(t.name):
            violations.append(FieldViolation(f"tools[{i}].name", "must be 1 to 64 letters, digits, "
                                                                 f"'_' or '-' (got {t.name!r})"))
        elif t.name in names:
            violations.append(FieldViolation(f"tools[{i}].name", f"{t.name!r} is given twice"))
        names.add(t.name)
        parameters: dict = {}
        if t.parameters_json:
            try:
                parameters = json.loads(t.parameters_json)
            except ValueError as exc:
                violations.append(FieldViolation(f"tools[{i}].parameters_json",
                                                 f"is not valid JSON: {exc}"))
            if not isinstance(parameters, dict):
                violations.append(FieldViolation(f"tools[{i}].parameters_json",
                                                 "must be a JSON object (a schema)"))
                parameters = {}
        tools.append(Tool(t.name, t.description, parameters))
    mode = pb.tool_choice.mode
    if mode == gen_pb.TOOL_CHOICE_MODE_UNSPECIFIED:
        choice = ToolChoice.AUTO if tools else ToolChoice.NONE
    else:
        choice = _TOOL_CHOICES[mode]
    name = pb.tool_choice.function_name
    if choice in (ToolChoice.REQUIRED, ToolChoice.FUNCTION) and not tools:
        violations.append(FieldViolation("tool_choice", "requires tools"))
    if choice is ToolChoice.FUNCTION and name not in names:
        violations.append(FieldViolation("tool_choice.function_name",
                                         f"must name one of the tools (got {name!r})"))
    if choice is ToolChoice.AUTO and not tools:
        choice = ToolChoice.NONE
    return tuple(tools), choice, name if choice is ToolChoice.FUNCTION else ""


def _top_logprobs(pb, violations: list[FieldViolation]) -> int | None:
    if not pb.HasField("top_logprobs"):
        return None
    if not 0 <= pb.top_logprobs <= MAX_TOP_LOGPROBS:
        violations.append(FieldViolation("top_logprobs", f"must be between 0 and "
                                                         f"{MAX_TOP_LOGPROBS} (got {pb.top_logprobs})"))
    return pb.top_logprobs


def usage_to_pb(usage: Usage, cached_prompt_tokens: int = 0,
                truncated_messages: int = 0) -> gen_pb.Usage:
    return gen_pb.Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                        total_tokens=usage.total_tokens, cached_prompt_tokens=cached_prompt_tokens,
                        truncated_messages=truncated_messages)


_TRUNCATION_FROM_PB = {gen_pb.TRUNCATION_AUTO: Truncation.AUTO,
                       gen_pb.TRUNCATION_ERROR: Truncation.ERROR}
_TRUNCATION_TO_PB = {v: k for k, v in _TRUNCATION_FROM_PB.items()}


def _truncation_from_pb(value: int, default: Truncation | None,
                        violations: list[FieldViolation]) -> Truncation | None:
    if value == gen_pb.TRUNCATION_UNSPECIFIED:
        return default
    if value not in _TRUNCATION_FROM_PB:
        violations.append(FieldViolation("truncation", f"unknown value {value}"))
        return default
    return _TRUNCATION_FROM_PB[value]


def timings_to_pb(t: Timings) -> gen_pb.Timings:
    return gen_pb.Timings(time_to_first_token_ms=t.time_to_first_token_ms, prompt_ms=t.prompt_ms,
                          decode_ms=t.decode_ms, tokens_per_second=t.tokens_per_second,
                          prompt_tokens_per_second=t.prompt_tokens_per_second, queue_ms=t.queue_ms)


def logprobs_to_pb(entries: tuple[TokenLogprob, ...]) -> list[gen_pb.TokenLogprob]:
    return [gen_pb.TokenLogprob(
        token_id=e.token_id, token=e.token.decode("utf-8", errors="replace"),
        bytes=e.token, logprob=e.logprob,
        top_logprobs=[gen_pb.TopLogprob(token_id=t.token_id,
                                        token=t.token.decode("utf-8", errors="replace"),
                                        bytes=t.token, logprob=t.logprob) for t in e.top])
        for e in entries]


def tool_calls_to_pb(calls: tuple[ToolCall, ...]) -> list[gen_pb.ToolCall]:
    return [gen_pb.ToolCall(id=c.id, name=c.name, arguments=c.arguments) for c in calls]


def delta_to_pb(delta: Delta, engine_id: str) -> svc_pb.GenerateResponse:
    pb = svc_pb.GenerateResponse(text=delta.text, token_ids=delta.token_ids, model=engine_id,
                                 index=delta.index, logprobs=logprobs_to_pb(delta.logprobs),
                                 tool_calls=tool_calls_to_pb(delta.tool_calls))
    if delta.finish is not None:
        f = delta.finish
        pb.finish_reason = _FINISH_TO_PB[f.reason]
        pb.usage.CopyFrom(usage_to_pb(f.usage, f.reused_prompt_tokens, f.truncated_messages))
        pb.timings.CopyFrom(timings_to_pb(f.timings))
        pb.seed = f.seed
    return pb


def completion_to_pb(deltas: list[Delta], engine_id: str) -> svc_pb.CompleteResponse:
    """Joins a whole stream into one response: by construction the same text as the stream.
    With n > 1 each choice is joined on its own; usage counts the prompt once and every choice's
    tokens, and timings are those of the choice that finished last."""
    by_choice: dict[int, list[Delta]] = {}
    for d in deltas:
        by_choice.setdefault(d.index, []).append(d)
    choices = []
    for index in sorted(by_choice):
        own = by_choice[index]
        finish = own[-1].finish
        choices.append(svc_pb.Choice(
            index=index, text="".join(d.text for d in own),
            token_ids=[t for d in own for t in d.token_ids],
            finish_reason=_FINISH_TO_PB[finish.reason],
            completion_tokens=finish.usage.completion_tokens,
            logprobs=logprobs_to_pb(tuple(e for d in own for e in d.logprobs)),
            tool_calls=tool_calls_to_pb(own[-1].tool_calls), seed=finish.seed))
    last = deltas[-1].finish
    usage = Usage(last.usage.prompt_tokens, sum(c.completion_tokens for c in choices))
    first = choices[0]
    return svc_pb.CompleteResponse(
        text=first.text, token_ids=first.token_ids, finish_reason=first.finish_reason,
        usage=usage_to_pb(usage, last.reused_prompt_tokens, last.truncated_messages),
        timings=timings_to_pb(last.timings), model=engine_id, seed=first.seed, choices=choices)


def embed_inputs_from_pb(pb: svc_pb.EmbedRequest) -> list[str]:
    violations = []
    if not pb.inputs:
        violations.append(FieldViolation("inputs", "give at least one input"))
    if len(pb.inputs) > MAX_EMBED_INPUTS:
        violations.append(FieldViolation("inputs", f"at most {MAX_EMBED_INPUTS} inputs (got {len(pb.inputs)})"))
    violations += [FieldViolation(f"inputs[{i}]", "must not be empty")
                   for i, text in enumerate(pb.inputs) if not text]
    if violations:
        raise InvalidArgument(violations)
    return list(pb.inputs)


def embeddings_to_pb(embeddings: list[Embedding], engine_id: str) -> svc_pb.EmbedResponse:
    return svc_pb.EmbedResponse(
        embeddings=[svc_pb.Embedding(values=e.values, tokens=e.tokens) for e in embeddings],
        model=engine_id, prompt_tokens=sum(e.tokens for e in embeddings))


_ENGINE_STATUS_TO_PB = {
    EngineState.LOADING: engine_pb.ENGINE_STATUS_LOADING,
    EngineState.LOADED: engine_pb.ENGINE_STATUS_LOADED,
    EngineState.FAILED: engine_pb.ENGINE_STATUS_FAILED,
    EngineState.UNLOADED: engine_pb.ENGINE_STATUS_UNLOADED,
    EngineState.UNLOADING: engine_pb.ENGINE_STATUS_UNLOADING,
}


def engine_to_pb(engine: Engine, *, is_default: bool) -> engine_pb.Engine:
    pb = engine_pb.Engine(engine_id=engine.id, status=_ENGINE_STATUS_TO_PB[engine.state],
                          is_default=is_default, created_unix=engine.created_unix,
                          error=engine.error, requests_total=engine.requests_total,
                          requests_in_flight=engine.in_flight,
                          last_tokens_per_second=engine.last_tokens_per_second,
                          loaded_unix=engine.loaded_unix, load_seconds=engine.load_seconds,
                          last_used_unix=engine.last_used_unix,
                          params=load_params_to_pb(engine.params))
    pb.backend, pb.model_path = engine.backend.name, engine.backend.model_path
    if engine.memory is not None:
        pb.memory.model_bytes = engine.memory.model_bytes
        pb.memory.context_bytes = engine.memory.context_bytes
    try:
        pb.model.CopyFrom(metadata_to_pb(gguf_info.read(engine.model_path)))
        pb.model_size_bytes = os.path.getsize(engine.model_path)
    except (OSError, gguf_info.NotGguf):
        pass  # a file that disappeared or is not GGUF: the engine's error says so when it loads
    if engine.state is EngineState.LOADED:
        pb.n_ctx = engine.backend.info().n_ctx
        plan = getattr(engine.backend, "context", None)  # backends that size a KV cache
        if plan is not None:
            pb.context.CopyFrom(engine_pb.ContextSizing(
                kv_cells=plan.n_ctx, n_ctx_per_sequence=plan.n_ctx_seq,
                trained_context_length=plan.trained, memory_cap_tokens=plan.memory_cap,
                source=plan.source, cache_type_k=engine.params.cache_type_k or "f16",
                cache_type_v=engine.params.cache_type_v or "f16"))
        status = engine.backend.scheduler_status()
        if status is not None:
            pb.scheduler.CopyFrom(engine_pb.SchedulerStatus(**status))
    return pb


# proto field -> LoadParams field, where the names differ
_LOAD_PARAM_NAMES = {"main_gpu_id": "main_gpu"}


def load_params_from_pb(pb: engine_pb.LoadParams, field: str = "params") -> LoadParams:
    """The request's load parameters, validated; unset ones stay None (the server's defaults)."""
    values = {_LOAD_PARAM_NAMES.get(f.name, f.name): value for f, value in pb.ListFields()}
    try:
        return LoadParams(**values)
    except ValidationError as exc:
        reverse = {v: k for k, v in _LOAD_PARAM_NAMES.items()}
        raise InvalidArgument([
            FieldViolation(f"{field}.{reverse.get(str(e['loc'][0]), e['loc'][0])}", e["msg"])
            for e in exc.errors()]) from None


def check_resolved_load_params(params: LoadParams, field: str = "params") -> LoadParams:
    """Rules between load parameters, once the server's defaults fill the unset ones."""
    if params.n_batch is not None and params.n_ctx and params.n_batch > params.n_ctx:
        # llama.cpp caps its batch at n_ctx, while the scheduler would allocate the larger one.
        raise InvalidArgument.single(f"{field}.n_batch", f"must be at most n_ctx ({params.n_ctx}), "
                                                         f"got {params.n_batch}")
    return params


def load_params_to_pb(params: LoadParams) -> engine_pb.LoadParams:
    pb = engine_pb.LoadParams()
    for f in pb.DESCRIPTOR.fields:
        value = getattr(params, _LOAD_PARAM_NAMES.get(f.name, f.name))
        if value is not None:
            setattr(pb, f.name, value)
    return pb


def metadata_to_pb(info: gguf_info.GgufInfo) -> model_pb2.ModelMetadata:
    return model_pb2.ModelMetadata(
        architecture=info.architecture, name=info.name, quantization=info.quantization,
        parameters=info.parameters, size_label=info.size_label,
        context_length=info.context_length, has_chat_template=info.has_chat_template)


def local_model_to_pb(state: LocalModelState) -> model_pb.LocalModel:
    m = state.model
    pb = model_pb.LocalModel(name=m.name, path=str(m.path), size_bytes=m.size_bytes,
                             downloaded_unix=m.modified_unix, problem=m.problem,
                             embedded=m.embedded, engine_ids=state.engine_ids, loaded=state.loaded)
    if m.info is not None:
        pb.metadata.CopyFrom(metadata_to_pb(m.info))
    if state.entry is not None:
        pb.catalog_name, pb.catalog_model_id = state.entry.name, state.entry.model_id
    return pb


def catalog_model_to_pb(state: CatalogModelState) -> model_pb.CatalogModel:
    e = state.entry
    return model_pb.CatalogModel(
        name=e.name, model_id=e.model_id, description=e.description, url=e.url,
        filename=e.filename, size_bytes=e.size_bytes, quantization=e.quantization,
        parameters=e.parameters, architecture=e.architecture, sha256=e.sha256 or "",
        recommended_memory_bytes=e.recommended_memory_mb << 20, tags=e.tags,
        categories=e.categories, is_downloaded=state.local is not None, is_loaded=state.loaded,
        local_name=state.local.name if state.local else "")
# -- downloads -----------------------------------------------------------------------------------

_DOWNLOAD_STATUS_TO_PB = {
    DownloadStatus.DOWNLOADING: download_pb.DOWNLOAD_STATUS_DOWNLOADING,
    DownloadStatus.CREATING_ENGINE: download_pb.DOWNLOAD_STATUS_CREATING_ENGINE,
    DownloadStatus.COMPLETED: download_pb.DOWNLOAD_STATUS_COMPLETED,
    DownloadStatus.FAILED: download_pb.DOWNLOAD_STATUS_FAILED,
    DownloadStatus.CANCELLED: download_pb.DOWNLOAD_STATUS_CANCELLED,
}
_DOWNLOAD_STATUS_FROM_PB = {v: k for k, v in _DOWNLOAD_STATUS_TO_PB.items()}
_DOWNLOAD_TYPE_TO_PB = {
    DownloadType.REGULAR: download_pb.DOWNLOAD_TYPE_REGULAR,
    DownloadType.STARTUP: download_pb.DOWNLOAD_TYPE_STARTUP,
}


def download_request_from_pb(pb: download_pb.StartDownloadRequest) -> DownloadRequest:
    source = pb.WhichOneof("source")
    return DownloadRequest(
        url=pb.url if source == "url" else None,
        catalog_name=pb.catalog_name if source == "catalog_name" else None,
        model_id=pb.model_id,
        filename=pb.filename if pb.HasField("filename") else None,
        expected_sha256=pb.expected_sha256 if pb.HasField("expected_sha256") else None,
        auto_load=pb.auto_load, force=pb.force)


def download_statuses_from_pb(values) -> list[DownloadStatus]:
    unknown = [v for v in values if v not in _DOWNLOAD_STATUS_FROM_PB]
    if unknown:
        raise InvalidArgument.single("statuses", f"unknown download status {unknown[0]}")
    return [_DOWNLOAD_STATUS_FROM_PB[v] for v in values]


def download_to_pb(d: DownloadSnapshot) -> download_pb.Download:
    pb = download_pb.Download(
        download_id=d.download_id, model_id=d.model_id, url=d.url, catalog_name=d.catalog_name,
        filename=d.filename, local_path=d.local_path, status=_DOWNLOAD_STATUS_TO_PB[d.status],
        download_type=_DOWNLOAD_TYPE_TO_PB[d.download_type], downloaded_bytes=d.downloaded_bytes,
        percent=d.percent, speed_bytes_per_second=d.speed_bytes_per_second,
        resumed_from_bytes=d.resumed_from_bytes, expected_sha256=d.expected_sha256,
        sha256=d.sha256, auto_load=d.auto_load, error=d.error, error_reason=d.error_reason,
        http_status=d.http_status, start_time_unix_ms=d.start_time_unix_ms,
        end_time_unix_ms=d.end_time_unix_ms, elapsed_seconds=d.elapsed_seconds())
    if d.total_bytes is not None:
        pb.total_bytes = d.total_bytes
    if d.eta_seconds is not None:
        pb.eta_seconds = d.eta_seconds
    return pb


def cancel_all_to_pb(outcome: CancelAllOutcome) -> download_pb.CancelAllDownloadsResponse:
    startup = sum(1 for d, _ in outcome.cancelled if d.download_type is DownloadType.STARTUP)
    return download_pb.CancelAllDownloadsResponse(
        summary=download_pb.CancelAllDownloadsSummary(
            total_downloads=outcome.total, successful_cancellations=len(outcome.cancelled),
            failed_cancellations=len(outcome.not_cancelled), startup_cancellations=startup,
            regular_cancellations=len(outcome.cancelled) - startup),
        cancelled_downloads=[download_pb.CancelledDownload(
            download_id=d.download_id, model_id=d.model_id,
            previous_status=_DOWNLOAD_STATUS_TO_PB[previous],
            download_type=_DOWNLOAD_TYPE_TO_PB[d.download_type])
            for d, previous in outcome.cancelled],
        failed_cancellations=[download_pb.UncancelledDownload(
            download_id=d.download_id, model_id=d.model_id,
            status=_DOWNLOAD_STATUS_TO_PB[d.status], reason=why)
            for d, why in outcome.not_cancelled])


def download_status_to_pb(status: DownloadStatus) -> int:
    return _DOWNLOAD_STATUS_TO_PB[status]
# -- sessions ------------------------------------------------------------------------------------

_SAMPLING_SCALARS = tuple(name for name, *_ in _SAMPLING_RULES) + ("seed",)


def sampling_overrides_from_pb(pb: gen_pb.SamplingParams, field_prefix: str,
                               violations: list[FieldViolation]) -> dict:
    """The fields a SamplingParams sets, validated, as a dict of core.types.Sampling fields."""
    found: list[FieldViolation] = []
    _sampling_from_pb(pb, found)
    violations += [FieldViolation(field_prefix + v.field.removeprefix("sampling"), v.description)
                   for v in found]
    values = {name: getattr(pb, name) for name in _SAMPLING_SCALARS if pb.HasField(name)}
    if pb.logit_bias:
        values["logit_bias"] = dict(pb.logit_bias)
    return values


def sampling_to_pb(values: dict) -> gen_pb.SamplingParams:
    pb = gen_pb.SamplingParams(**{k: v for k, v in values.items() if k != "logit_bias"})
    for token, bias in values.get("logit_bias", {}).items():
        pb.logit_bias[int(token)] = bias
    return pb


def session_to_pb(record: SessionRecord) -> session_pb.Session:
    pb = session_pb.Session(session_id=record.id, model=record.model,
                            sampling=sampling_to_pb(record.sampling),
                            message_count=record.message_count, created_unix=record.created_unix,
                            updated_unix=record.updated_unix)
    if record.system_prompt is not None:
        pb.system_prompt = record.system_prompt
    if record.max_tokens is not None:
        pb.max_tokens = record.max_tokens
    if record.truncation is not None:
        pb.truncation = _TRUNCATION_TO_PB[record.truncation]
    return pb


def _optional_session_id(pb, name: str, violations: list[FieldViolation]) -> str:
    if not pb.HasField(name):
        return ""
    value = getattr(pb, name)
    if not SESSION_ID.match(value):
        violations.append(FieldViolation(name, "must be 1 to 128 characters: letters, digits and "
                                               "._:- (starting with a letter or digit)"))
    return value


def _max_tokens(pb, violations: list[FieldViolation]) -> int | None:
    value = pb.max_tokens if pb.HasField("max_tokens") else None
    if value is not None and value < 1:
        violations.append(FieldViolation("max_tokens", f"must be >= 1 (got {value})"))
    return value


def session_record_from_pb(pb: session_pb.CreateSessionRequest) -> SessionRecord:
    violations: list[FieldViolation] = []
    session_id = _optional_session_id(pb, "session_id", violations)
    sampling = sampling_overrides_from_pb(pb.sampling, "sampling", violations)
    max_tokens = _max_tokens(pb, violations)
    truncation = _truncation_from_pb(pb.truncation, None, violations)
    if violations:
        raise InvalidArgument(violations)
    return SessionRecord(id=session_id, model=pb.model,
                         system_prompt=pb.system_prompt if pb.HasField("system_prompt") else None,
                         sampling=sampling, max_tokens=max_tokens, truncation=truncation)


def imported_messages_from_pb(pb: session_pb.CreateSessionRequest) -> tuple[ChatMessage, ...]:
    """The history a CreateSession imports (the system prompt is kept apart, as for turns)."""
    violations: list[FieldViolation] = []
    messages = chat_messages_from_pb(pb.messages, "messages", violations)
    violations += [FieldViolation(f"messages[{i}].role", "set the system prompt in system_prompt")
                   for i, m in enumerate(messages) if m.role == "system"]
    if violations:
        raise InvalidArgument(violations)
    return messages


def chat_message_to_pb(m: ChatMessage) -> gen_pb.ChatMessage:
    return gen_pb.ChatMessage(role=m.role, content=m.content,
                              tool_calls=tool_calls_to_pb(m.tool_calls),
                              tool_call_id=m.tool_call_id, name=m.name)


def branch_id_from_pb(pb: session_pb.BranchSessionRequest) -> str:
    violations: list[FieldViolation] = []
    new_id = _optional_session_id(pb, "new_session_id", violations)
    if violations:
        raise InvalidArgument(violations)
    return new_id


def chat_turn_from_pb(pb: session_pb.ChatRequest, *, request_id: str = "") -> ChatTurn:
    arrived_at = time.monotonic()
    violations: list[FieldViolation] = []
    if pb.session_id and not SESSION_ID.match(pb.session_id):
        violations.append(FieldViolation("session_id", "must be 1 to 128 characters: letters, "
                                                       "digits and ._:- (starting with a letter or digit)"))
    elif not pb.session_id and not pb.create_if_missing:
        violations.append(FieldViolation("session_id", "must be set (or set create_if_missing)"))
    if not pb.content:
        violations.append(FieldViolation("content", "must not be empty"))
    sampling = sampling_overrides_from_pb(pb.sampling, "sampling", violations)
    max_tokens = _max_tokens(pb, violations)
    if len(pb.stop) > MAX_STOP_SEQUENCES:
        violations.append(FieldViolation("stop", f"at most {MAX_STOP_SEQUENCES} sequences (got {len(pb.stop)})"))
    if any(not s for s in pb.stop):
        violations.append(FieldViolation("stop", "stop sequences must not be empty"))
    constraint = constraint_from_pb(pb, violations)
    top_logprobs = _top_logprobs(pb, violations)
    truncation = _truncation_from_pb(pb.truncation, None, violations)  # None: the session's
    if violations:
        raise InvalidArgument(violations)
    return ChatTurn(truncation=truncation, session_id=pb.session_id, content=pb.content, sampling=sampling,
                    constraint=constraint, top_logprobs=top_logprobs,
                    max_tokens=max_tokens, stop=tuple(pb.stop),
                    create_if_missing=pb.create_if_missing, model=pb.model,
                    system_prompt=pb.system_prompt if pb.HasField("system_prompt") else None,
                    reuse_cache=pb.reuse_cache if pb.HasField("reuse_cache") else True,
                    request_id=request_id, arrived_at=arrived_at)


def turn_delta_to_pb(item: TurnDelta) -> session_pb.ChatResponse:
    delta = item.delta
    pb = session_pb.ChatResponse(session_id=item.session_id, text=delta.text,
                                 token_ids=delta.token_ids, model=item.engine_id,
                                 logprobs=logprobs_to_pb(delta.logprobs),
                                 truncated_messages=delta.truncated_messages)
    if delta.finish is not None:
        f = delta.finish
        pb.finish_reason = _FINISH_TO_PB[f.reason]
        pb.truncated_messages = f.truncated_messages
        pb.usage.CopyFrom(usage_to_pb(f.usage, f.reused_prompt_tokens, f.truncated_messages))
        pb.timings.CopyFrom(timings_to_pb(f.timings))
        pb.seed = f.seed
        pb.reused_prompt_tokens = f.reused_prompt_tokens
        pb.message_count = item.message_count or 0
    return pb
