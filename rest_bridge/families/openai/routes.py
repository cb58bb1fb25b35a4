"""The OpenAI API: chat completions, completions, models and embeddings, JSON and SSE.

Shapes follow OpenAI's, plus the extras the reference documents add: Impetus's `conversation_id`
(continues a server-side session, echoed back), `use_cache` (reuse that session's KV cache) and
`performance_metrics`, and the local-server sampling knobs
`top_k`, `min_p`, `repeat_penalty`. This module checks the HTTP shape only; ranges are the
server's to check, and its field paths are translated back to OpenAI parameter names.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Iterator

from flask import Blueprint, jsonify

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

# Server field path -> the OpenAI parameter a client sent it as.
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
    "chat.messages": "messages",
    "inputs": "input",
}


# gRPC errors raised by the stubs propagate to this family's handler (rest_bridge.errors), which
# turns them into OpenAI error bodies; views never catch them.
def _param_name(field: str) -> str:
    """"chat.messages[0].role" -> "messages[0].role": the server's path in the client's terms."""
    for server_path, param in PARAM_NAMES.items():
        if field == server_path or field.startswith((server_path + "[", server_path + ".")):
            return param + field[len(server_path):]
    return field


def _error_body(failure: errors.Failure) -> dict:
    param = failure.param
    if param is None and failure.fields:
        param = _param_name(failure.fields[0])
    return errors.openai_body(dataclasses.replace(failure, param=param))


errors.register_family(blueprint, _error_body)


def _complete(body, pb: svc_pb.CompleteRequest) -> svc_pb.CompleteResponse:
    return grpc_client().generation.Complete(body.to_pb(pb))


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
    body = parse(bodies.CreateChatCompletionRequest)
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
        last = messages[-1]
        result = svc_pb.CompleteResponse(text="".join(m.text for m in messages), model=last.model,
                                         finish_reason=last.finish_reason, usage=last.usage,
                                         timings=last.timings)
    else:
        result = _complete(body, svc_pb.CompleteRequest())
    return jsonify(bodies.ChatCompletion(
        model=result.model, usage=bodies.Usage.from_pb(result.usage),
        choices=[bodies.ChatChoice(message=bodies.AssistantMessage(content=result.text),
                                   finish_reason=FINISH_REASONS[result.finish_reason])],
        **bodies.extras(body, result.timings)).body())


def _served_model(call: PeekedCall, body) -> str:
    """The engine serving the stream, which every stream message names."""
    return call.first.model if call.first is not None else (body.model or "")


# Stream chunks are dicts, not models: they are built per token (their schemas are the models').
def _chat_chunks(call: PeekedCall, body: bodies.CreateChatCompletionRequest) -> Iterator[bytes]:
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": _served_model(call, body)}
    usage_field = {"usage": None} if body.include_usage else {}

    def chunk(delta: dict, finish_reason: str | None = None, **extra) -> dict:
        return {**base, "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                     "finish_reason": finish_reason}], **usage_field, **extra}

    content = TextEvents(chunk({"content": ""}),
                         lambda shape, marker: {**shape, "choices": [{**shape["choices"][0],
                                                                      "delta": {"content": marker}}]})
    yield sse_event(chunk({"role": "assistant", "content": ""}))
    for message in call:
        if message.text:
            yield content(message.text)
        if message.finish_reason:
            yield sse_event(chunk({}, FINISH_REASONS[message.finish_reason],
                                  **bodies.extras(body, message.timings)))
            if body.include_usage:
                yield sse_event({**base, "choices": [],
                                 "usage": bodies.Usage.from_pb(message.usage).body()})
    yield sse_event("[DONE]")


@blueprint.post("/v1/completions")
@calls("tokenwire.v1.GenerationService/Generate", "tokenwire.v1.GenerationService/Complete")
def completions():
    """Text completion (OpenAI, legacy); `stream: true` answers with SSE chunks ending in [DONE]."""
    body = parse(bodies.CreateCompletionRequest)
    if body.stream:
        call = _open_stream(body)
        return _sse(call, _completion_chunks(call, body))
    result = _complete(body, svc_pb.CompleteRequest())
    return jsonify(bodies.TextCompletion(
        model=result.model, usage=bodies.Usage.from_pb(result.usage),
        choices=[bodies.CompletionChoice(text=(body.prompt if body.echo else "") + result.text,
                                         finish_reason=FINISH_REASONS[result.finish_reason])],
        **bodies.extras(body, result.timings)).body())


def _completion_chunks(call: PeekedCall, body: bodies.CreateCompletionRequest) -> Iterator[bytes]:
    base = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": _served_model(call, body)}
    usage_field = {"usage": None} if body.include_usage else {}

    def chunk(text: str, finish_reason: str | None = None, **extra) -> dict:
        return {**base, "choices": [{"text": text, "index": 0, "logprobs": None,
                                     "finish_reason": finish_reason}], **usage_field, **extra}

    text = TextEvents(chunk(""), lambda shape, marker: {**shape, "choices": [{**shape["choices"][0],
                                                                              "text": marker}]})
    if body.echo:
        yield text(body.prompt)
    for message in call:
        if message.text:
            yield text(message.text)
        if message.finish_reason:
            yield sse_event(chunk("", FINISH_REASONS[message.finish_reason],
                                  **bodies.extras(body, message.timings)))
            if body.include_usage:
                yield sse_event({**base, "choices": [],
                                 "usage": bodies.Usage.from_pb(message.usage).body()})
    yield sse_event("[DONE]")


@blueprint.get("/v1/models")
@calls("tokenwire.v1.EngineService/ListEngines")
def list_models():
    """The loaded engines, as OpenAI model objects (the default engine first)."""
    engines = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest()).engines
    return jsonify(bodies.ModelList(data=[bodies.Model.from_pb(e) for e in engines
                                          if e.status == engine_pb.ENGINE_STATUS_LOADED]).body())


@blueprint.get("/v1/models/<path:model_id>")
@calls("tokenwire.v1.EngineService/GetEngine")
def get_model(model_id: str):
    """One engine as an OpenAI model object; 404 if there is none with this id."""
    engine = grpc_client().engines.GetEngine(engine_pb.GetEngineRequest(engine_id=model_id)).engine
    return jsonify(bodies.Model.from_pb(engine).body())


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
