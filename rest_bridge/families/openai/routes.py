"""The OpenAI API: chat completions, completions, models and embeddings, JSON and SSE.

Shapes follow OpenAI's, structured output (`response_format`), tool calls, log probabilities and
`n` choices included, plus the extras the reference documents add: Impetus's `conversation_id`
(continues a server-side session, echoed back), `use_cache` (reuse that session's KV cache) and
`performance_metrics`, llama-server's `grammar` and `json_schema`, and the local-server sampling
knobs `top_k`, `min_p`, `repeat_penalty`. The bodies check the HTTP shape and OpenAI's ranges and
do the shaping; the server checks the rest, and its field paths are translated back to OpenAI
parameter names here.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from typing import Iterator

from flask import Blueprint, g, has_app_context, jsonify

from rest_bridge import errors
from rest_bridge.bodies import parse
from rest_bridge.families.openai import bodies
from rest_bridge.families.openai.bodies import FINISH_REASONS
from rest_bridge.grpc_client import grpc_client
from rest_bridge.rpc_map import calls
from rest_bridge.streaming import PeekedCall, TextEvents, sse_event, stream_response
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import generation_service_pb2 as svc_pb

blueprint = Blueprint("openai", __name__)

# Server field path -> the OpenAI parameter a client sent it as. A path under a key keeps its tail
# ("chat.messages[0].role" -> "messages[0].role"); `[]` stands for any index, which the
# parameter's own `[]` takes over. Paths whose name depends on the request (the constraint came
# as `response_format`, `grammar` or `json_schema`) are the body's `param_names()`.
PARAM_NAMES = {
    "sampling.temperature": "temperature",
    "sampling.top_p": "top_p",
    "sampling.top_k": "top_k",
    "sampling.min_p": "min_p",
    "sampling.repeat_penalty": "repeat_penalty",
    "sampling.presence_penalty": "presence_penalty",
    "sampling.frequency_penalty": "frequency_penalty",
    "sampling.logit_bias": "logit_bias",
    "sampling.seed": "seed",
    "chat.messages[].tool_calls[].arguments": "messages[].tool_calls[].function.arguments",
    "chat.messages[].tool_calls[].name": "messages[].tool_calls[].function.name",
    "chat.messages": "messages",
    "constraint": "response_format",
    "tools[].parameters_json": "tools[].function.parameters",
    "tools[].name": "tools[].function.name",
    "tools[].description": "tools[].function.description",
    "tools": "tools",
    "tool_choice.function_name": "tool_choice.function.name",
    "tool_choice": "tool_choice",
    "parallel_tool_calls": "parallel_tool_calls",
    "top_logprobs": "top_logprobs",
    "n": "n",
    "inputs": "input",
}
#: Paths that become their parameter whole: the server's tail ("constraint.json_schema") names
#: no part of what the client sent.
WHOLE = frozenset({"constraint"})


def _pattern(path: str) -> re.Pattern:
    return re.compile(re.escape(path).replace(r"\[\]", r"\[(\d+)\]") + r"(?=$|[.\[])")


_PATTERNS = [(path, _pattern(path)) for path in PARAM_NAMES]


# gRPC errors raised by the stubs propagate to this family's handler (rest_bridge.errors), which
# turns them into OpenAI error bodies; views never catch them.
def _param_name(field: str) -> str:
    """"chat.messages[0].role" -> "messages[0].role": the server's path in the client's terms."""
    overrides = g.get("openai_param_names", {}) if has_app_context() else {}
    for path, pattern in _PATTERNS:
        match = pattern.match(field)
        if match is None:
            continue
        param = overrides.get(path, PARAM_NAMES[path])
        for index in match.groups():
            param = param.replace("[]", f"[{index}]", 1)
        return param if path in WHOLE else param + field[match.end():]
    return field


def _error_body(failure: errors.Failure) -> dict:
    param = failure.param
    if param is None and failure.fields:
        param = _param_name(failure.fields[0])
    return errors.openai_body(dataclasses.replace(failure, param=param))


errors.register_family(blueprint, _error_body)


def _parse(model):
    """The request's body; the server's field paths it may hear back are named as it sent them."""
    body = parse(model)
    g.openai_param_names = body.param_names()
    return body


def _complete(body) -> svc_pb.CompleteResponse:
    return grpc_client().generation.Complete(body.to_pb(svc_pb.CompleteRequest()))


def _open_stream(body) -> PeekedCall:
    return PeekedCall(grpc_client().generation.Generate(body.to_pb(svc_pb.GenerateRequest())))


def _stream_error(exc: BaseException) -> bytes:
    return sse_event(_error_body(errors.failure_of(exc)))


def _sse(call: PeekedCall, events: Iterator[bytes]):
    return stream_response(call, lambda _: events, _stream_error, "text/event-stream")


def _session_chat(body: bodies.CreateChatCompletionRequest) -> PeekedCall:
    return PeekedCall(grpc_client().sessions.Chat(body.to_session_pb()))


@blueprint.post("/v1/chat/completions")
@calls("tokenwire.v1.GenerationService/Generate", "tokenwire.v1.GenerationService/Complete",
       "tokenwire.v1.SessionService/Chat")
def chat_completions():
    """Chat completion (OpenAI); `stream: true` answers with SSE chunks ending in [DONE]. With
    `conversation_id` the turn continues a server-side session."""
    body = _parse(bodies.CreateChatCompletionRequest)
    in_session = body.conversation_id is not None
    if body.stream:
        call = _session_chat(body) if in_session else _open_stream(body)
        return _sse(call, _chat_chunks(call, body))
    if in_session:
        call = _session_chat(body)
        try:
            messages = list(call)  # the first arrived already (PeekedCall): errors were raised
        finally:
            call.cancel()  # no-op after the last message; stops the turn if reading failed
        result = bodies.turn_result(messages)
    else:
        result = _complete(body)
    return jsonify(bodies.ChatCompletion.from_pb(result, body).body())


def _served_model(call: PeekedCall, body) -> str:
    """The engine serving the stream, which every stream message names."""
    return call.first.model if call.first is not None else (body.model or "")


def _field(message, name: str, default):
    """A GenerateResponse field that a session's ChatResponse lacks (`index`, `tool_calls`)."""
    return getattr(message, name) if name in message.DESCRIPTOR.fields_by_name else default


# Stream chunks are dicts, not models: they are built per token (their schemas are the models').
def _chat_chunks(call: PeekedCall, body: bodies.CreateChatCompletionRequest) -> Iterator[bytes]:
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": _served_model(call, body)}
    usage_field = {"usage": None} if body.include_usage else {}

    def chunk(index: int, delta: dict, finish_reason: str | None = None, logprobs=None,
              **extra) -> dict:
        return {**base, "choices": [{"index": index, "delta": delta, "logprobs": logprobs,
                                     "finish_reason": finish_reason}], **usage_field, **extra}

    texts: dict[int, TextEvents] = {}  # per choice: its chunks differ only in their text

    def text(index: int, content: str) -> bytes:
        if index not in texts:
            texts[index] = TextEvents(chunk(index, {"content": ""}), lambda shape, marker: {
                **shape, "choices": [{**shape["choices"][0], "delta": {"content": marker}}]})
        return texts[index](content)

    for index in range(body.choices):
        yield sse_event(chunk(index, {"role": "assistant", "content": ""}))
    usages = []
    for message in call:
        index = _field(message, "index", 0)
        if body.logprobs and message.logprobs:
            # Tokens whose text is held back (a tool call's JSON) come with no content at all.
            yield sse_event(chunk(index, {"content": message.text} if message.text else {},
                                  logprobs=bodies.ChoiceLogprobs.from_pb(message.logprobs).body()))
        elif message.text:
            yield text(index, message.text)
        calls = _field(message, "tool_calls", ())
        if calls:
            yield sse_event(chunk(index, {"tool_calls": bodies.tool_call_deltas(calls)}))
        if message.finish_reason:
            usages.append(message.usage)
            yield sse_event(chunk(index, {}, FINISH_REASONS[message.finish_reason],
                                  **bodies.extras(body, message.timings)))
    if body.include_usage and usages:
        yield sse_event({**base, "choices": [],
                         "usage": bodies.Usage.from_pb(bodies.total_usage(usages)).body()})
    yield sse_event("[DONE]")


@blueprint.post("/v1/completions")
@calls("tokenwire.v1.GenerationService/Generate", "tokenwire.v1.GenerationService/Complete")
def completions():
    """Text completion (OpenAI, legacy); `stream: true` answers with SSE chunks ending in [DONE]."""
    body = _parse(bodies.CreateCompletionRequest)
    if body.stream:
        call = _open_stream(body)
        return _sse(call, _completion_chunks(call, body))
    return jsonify(bodies.TextCompletion.from_pb(_complete(body), body).body())


def _completion_chunks(call: PeekedCall, body: bodies.CreateCompletionRequest) -> Iterator[bytes]:
    base = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": _served_model(call, body)}
    usage_field = {"usage": None} if body.include_usage else {}

    def chunk(index: int, text: str, finish_reason: str | None = None, logprobs=None,
              **extra) -> dict:
        return {**base, "choices": [{"text": text, "index": index, "logprobs": logprobs,
                                     "finish_reason": finish_reason}], **usage_field, **extra}

    texts: dict[int, TextEvents] = {}

    def text(index: int, content: str) -> bytes:
        if index not in texts:
            texts[index] = TextEvents(chunk(index, ""), lambda shape, marker: {
                **shape, "choices": [{**shape["choices"][0], "text": marker}]})
        return texts[index](content)

    echoed = body.prompt if body.echo else ""
    offsets = dict.fromkeys(range(body.choices), len(echoed))  # where the next token starts
    if echoed:
        for index in range(body.choices):
            yield text(index, echoed)
    usages = []
    for message in call:
        index = message.index
        if body.logprobs is not None and message.logprobs:
            logprobs = bodies.CompletionLogprobs.from_pb(message.logprobs, offsets.get(index, 0))
            offsets[index] = offsets.get(index, 0) + sum(len(t) for t in logprobs.tokens)
            yield sse_event(chunk(index, message.text, logprobs=logprobs.body()))
        elif message.text:
            yield text(index, message.text)
        if message.finish_reason:
            usages.append(message.usage)
            yield sse_event(chunk(index, "", FINISH_REASONS[message.finish_reason],
                                  **bodies.extras(body, message.timings)))
    if body.include_usage and usages:
        yield sse_event({**base, "choices": [],
                         "usage": bodies.Usage.from_pb(bodies.total_usage(usages)).body()})
    yield sse_event("[DONE]")


@blueprint.get("/v1/models")
@calls("tokenwire.v1.EngineService/ListEngines")
def list_models():
    """The loaded engines, as OpenAI model objects (the default engine first), each followed by
    its aliases (their `root` is the engine's id): every name a request may use."""
    engines = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest()).engines
    return jsonify(bodies.ModelList(data=[model for e in engines
                                          if e.status == engine_pb.ENGINE_STATUS_LOADED
                                          for model in bodies.Model.all_from_pb(e)]).body())


@blueprint.get("/v1/models/<path:model_id>")
@calls("tokenwire.v1.EngineService/GetEngine")
def get_model(model_id: str):
    """One engine as an OpenAI model object; 404 if there is none with this id."""
    engine = grpc_client().engines.GetEngine(engine_pb.GetEngineRequest(engine_id=model_id)).engine
    named = [m for m in bodies.Model.all_from_pb(engine) if m.id == model_id]
    return jsonify((named[0] if named else bodies.Model.from_pb(engine)).body())


@blueprint.post("/v1/embeddings")
@calls("tokenwire.v1.GenerationService/Embed")
def embeddings():
    """Embeddings (OpenAI): `encoding_format` float or base64 (little-endian float32)."""
    body = parse(bodies.CreateEmbeddingRequest)
    result = grpc_client().generation.Embed(body.to_pb())
    return jsonify(bodies.EmbeddingList(
        data=[bodies.Embedding(index=i, embedding=body.encode(e.values))
              for i, e in enumerate(result.embeddings)],
        model=result.model,
        usage=bodies.EmbeddingUsage(prompt_tokens=result.prompt_tokens,
                                    total_tokens=result.prompt_tokens)).body())
