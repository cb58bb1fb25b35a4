"""The OpenAI API: chat completions, completions, models and embeddings, JSON and SSE.

Shapes follow OpenAI's, plus the extras the reference documents add: Impetus's `conversation_id`
(continues a server-side session, echoed back), `use_cache` (reuse that session's KV cache) and
`performance_metrics`, and the local-server sampling knobs
`top_k`, `min_p`, `repeat_penalty`. This module checks the HTTP shape only; ranges are the
server's to check, and its field paths are translated back to OpenAI parameter names.
"""

from __future__ import annotations

import base64
import dataclasses
import struct
import time
import uuid
from typing import Any, Iterator

from flask import Blueprint, jsonify

from rest_bridge import errors
from rest_bridge.errors import HttpError
from rest_bridge.grpc_client import grpc_client
from rest_bridge.http_json import json_object
from rest_bridge.rpc_map import calls
from rest_bridge.streaming import PeekedCall, TextEvents, sse_event, stream_response
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2 as svc_pb
from tokenwire.v1 import session_service_pb2 as session_pb

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
FINISH_REASONS = {
    gen_pb.FINISH_REASON_STOP: "stop",
    gen_pb.FINISH_REASON_STOP_SEQUENCE: "stop",
    gen_pb.FINISH_REASON_LENGTH: "length",
}
# Float sampling parameters and where they go in SamplingParams (same names).
FLOAT_PARAMS = ("temperature", "top_p", "min_p", "repeat_penalty", "presence_penalty",
                "frequency_penalty")


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


# -- reading the HTTP shape -----------------------------------------------------------------------


def _number(body: dict, name: str, *, integer: bool = False) -> float | int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise HttpError(400, f"'{name}' must be {'an integer' if integer else 'a number'}", param=name)
    return value


def _boolean(body: dict, name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise HttpError(400, f"'{name}' must be true or false", param=name)
    return value


def _stop(body: dict) -> list[str]:
    stop = body.get("stop")
    if stop is None:
        return []
    if isinstance(stop, str):
        return [stop]
    if isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        return stop
    raise HttpError(400, "'stop' must be a string or an array of strings", param="stop")


def _unsupported(body: dict, name: str, allowed: Any = None) -> None:
    value = body.get(name)
    if value is not None and value != allowed and value is not False:
        raise HttpError(400, f"'{name}' is not supported by this server", param=name,
                        code="unsupported_parameter")


def _fill_generation(pb: svc_pb.GenerateRequest | svc_pb.CompleteRequest, body: dict) -> None:
    """Common OpenAI parameters -> the shared fields of GenerateRequest and CompleteRequest."""
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise HttpError(400, "'model' must be a string", param="model")
    pb.model = model or ""
    n = _number(body, "n", integer=True)
    if n is not None and n != 1:
        raise HttpError(400, "only n=1 is supported: one choice per request", param="n",
                        code="unsupported_parameter")
    for name in FLOAT_PARAMS:
        value = _number(body, name)
        if value is not None:
            setattr(pb.sampling, name, value)
    top_k = _number(body, "top_k", integer=True)
    if top_k is not None:
        pb.sampling.top_k = top_k
    seed = _number(body, "seed", integer=True)
    if seed is not None:
        if not 0 <= seed < 2**64:
            raise HttpError(400, "'seed' must be between 0 and 2^64-1", param="seed")
        pb.sampling.seed = seed
    max_tokens = _number(body, "max_completion_tokens", integer=True)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", integer=True)
    if max_tokens is not None:
        if not -2**31 <= max_tokens < 2**31:
            raise HttpError(400, "'max_tokens' is out of range", param="max_tokens")
        pb.max_tokens = max_tokens
    pb.stop.extend(_stop(body))
    _logit_bias(pb, body.get("logit_bias"))
    _unsupported(body, "logprobs")
    _unsupported(body, "top_logprobs")
    _unsupported(body, "best_of", allowed=1)
    for name in ("tools", "functions"):
        if body.get(name):
            raise HttpError(400, f"'{name}' (tool calling) is not supported by this server",
                            param=name, code="unsupported_parameter")
    if body.get("response_format") not in (None, {"type": "text"}):
        raise HttpError(400, "only response_format {\"type\": \"text\"} is supported",
                        param="response_format", code="unsupported_parameter")


def _logit_bias(pb, bias: Any) -> None:
    if bias is None:
        return
    if not isinstance(bias, dict):
        raise HttpError(400, "'logit_bias' must map token ids to numbers", param="logit_bias")
    for token, value in bias.items():
        token_id = int(token) if isinstance(token, str) and token.isdigit() else -1
        if not 0 <= token_id < 2**31:
            raise HttpError(400, f"logit_bias key {token!r} is not a token id", param="logit_bias")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise HttpError(400, f"logit_bias for token {token} must be a number", param="logit_bias")
        pb.sampling.logit_bias[token_id] = value


def _message_text(message: Any, index: int) -> tuple[str, str]:
    where = f"messages[{index}]"
    if not isinstance(message, dict):
        raise HttpError(400, f"{where} must be an object", param=where)
    role = message.get("role")
    if not isinstance(role, str):
        raise HttpError(400, f"{where}.role must be a string", param=f"{where}.role")
    content = message.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise HttpError(400, f"{where}.content: only text parts are supported",
                                param=f"{where}.content", code="unsupported_content")
            parts.append(part["text"])
        text = "".join(parts)
    else:
        raise HttpError(400, f"{where}.content must be a string or an array of parts",
                        param=f"{where}.content")
    # OpenAI's newer "developer" role plays the part of "system" for chat templates.
    return ("system" if role == "developer" else role), text


def _chat_request(pb, body: dict) -> None:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise HttpError(400, "'messages' must be a non-empty array", param="messages")
    pb.chat.SetInParent()
    for i, message in enumerate(messages):
        role, text = _message_text(message, i)
        pb.chat.messages.add(role=role, content=text)
    _fill_generation(pb, body)


def _completion_prompt(body: dict) -> str:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, list):
        raise HttpError(400, "'prompt' must be one string (arrays of prompts or of token ids are "
                             "not supported)", param="prompt", code="unsupported_parameter")
    if not isinstance(prompt, str):
        raise HttpError(400, "'prompt' must be a string", param="prompt")
    return prompt


def _include_usage(body: dict) -> bool:
    options = body.get("stream_options")
    if options is None:
        return False
    if not isinstance(options, dict):
        raise HttpError(400, "'stream_options' must be an object", param="stream_options")
    return _boolean(options, "include_usage")


# -- shaping answers ------------------------------------------------------------------------------


def _usage(usage: gen_pb.Usage) -> dict:
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_prompt_tokens}}


def _performance(timings: gen_pb.Timings) -> dict:
    return {"inference_time_ms": round(timings.time_to_first_token_ms + timings.decode_ms, 3),
            "tokens_per_second": round(timings.tokens_per_second, 3),
            "time_to_first_token_ms": round(timings.time_to_first_token_ms, 3)}


def _extras(body: dict, timings: gen_pb.Timings | None) -> dict:
    extras: dict = {}
    if timings is not None:
        extras["performance_metrics"] = _performance(timings)
    if body.get("conversation_id") is not None:
        extras["conversation_id"] = body["conversation_id"]
    return extras


def _complete(body: dict, fill) -> svc_pb.CompleteResponse:
    pb = svc_pb.CompleteRequest()
    fill(pb, body)
    return grpc_client().generation.Complete(pb)


def _open_stream(body: dict, fill) -> PeekedCall:
    pb = svc_pb.GenerateRequest()
    fill(pb, body)
    return PeekedCall(grpc_client().generation.Generate(pb))


def _stream_error(exc: BaseException) -> bytes:
    return sse_event(_error_body(errors.failure_of(exc)))


def _sse(call: PeekedCall, events: Iterator[bytes]):
    return stream_response(call, lambda _: events, _stream_error, "text/event-stream")


def _session_turn(pb: session_pb.ChatRequest, body: dict) -> None:
    """Impetus's `conversation_id`: the server keeps the conversation, so the request's last
    message (a user message) is the new turn and a system message sets the system prompt;
    earlier messages are already in the server's history. `use_cache: false` prefills the
    whole history instead of reusing the session's KV cache."""
    conversation = body["conversation_id"]
    if not isinstance(conversation, str):
        raise HttpError(400, "'conversation_id' must be a string", param="conversation_id")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise HttpError(400, "'messages' must be a non-empty array", param="messages")
    parsed = [_message_text(m, i) for i, m in enumerate(messages)]
    role, content = parsed[-1]
    if role != "user":
        raise HttpError(400, "with conversation_id the last message must be the user's new turn",
                        param=f"messages[{len(parsed) - 1}].role")
    pb.session_id, pb.content, pb.create_if_missing = conversation, content, True
    systems = [text for role, text in parsed if role == "system"]
    if systems:
        pb.system_prompt = systems[-1]
    use_cache = body.get("use_cache")
    if use_cache is not None:
        pb.reuse_cache = _boolean(body, "use_cache")
    _fill_generation(pb, body)  # ChatRequest shares model, sampling, max_tokens and stop


def _session_chat(body: dict) -> PeekedCall:
    pb = session_pb.ChatRequest()
    _session_turn(pb, body)
    return PeekedCall(grpc_client().sessions.Chat(pb))


@blueprint.post("/v1/chat/completions")
@calls("tokenwire.v1.GenerationService/Generate", "tokenwire.v1.GenerationService/Complete",
       "tokenwire.v1.SessionService/Chat")
def chat_completions():
    """Chat completion (OpenAI); `stream: true` answers with SSE chunks ending in [DONE]. With
    `conversation_id` the turn continues a server-side session."""
    body = json_object()
    in_session = body.get("conversation_id") is not None
    if _boolean(body, "stream"):
        include_usage = _include_usage(body)
        call = _session_chat(body) if in_session else _open_stream(body, _chat_request)
        return _sse(call, _chat_chunks(call, body, include_usage))
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
        result = _complete(body, _chat_request)
    return jsonify({
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                     "logprobs": None, "finish_reason": FINISH_REASONS[result.finish_reason]}],
        "usage": _usage(result.usage),
        **_extras(body, result.timings),
    })


def _served_model(call: PeekedCall, body: dict) -> str:
    """The engine serving the stream, which every stream message names."""
    return call.first.model if call.first is not None else (body.get("model") or "")


def _chat_chunks(call: PeekedCall, body: dict, include_usage: bool) -> Iterator[bytes]:
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": _served_model(call, body)}
    usage_field = {"usage": None} if include_usage else {}

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
                                  **_extras(body, message.timings)))
            if include_usage:
                yield sse_event({**base, "choices": [], "usage": _usage(message.usage)})
    yield sse_event("[DONE]")


@blueprint.post("/v1/completions")
@calls("tokenwire.v1.GenerationService/Generate", "tokenwire.v1.GenerationService/Complete")
def completions():
    """Text completion (OpenAI, legacy); `stream: true` answers with SSE chunks ending in [DONE]."""
    body = json_object()
    _unsupported(body, "suffix")
    echo = _boolean(body, "echo")

    def fill(pb, body):
        pb.prompt = _completion_prompt(body)
        _fill_generation(pb, body)

    if _boolean(body, "stream"):
        include_usage = _include_usage(body)
        call = _open_stream(body, fill)
        return _sse(call, _completion_chunks(call, body, echo, include_usage))
    result = _complete(body, fill)
    text = (_completion_prompt(body) if echo else "") + result.text
    return jsonify({
        "id": f"cmpl-{uuid.uuid4().hex}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [{"text": text, "index": 0, "logprobs": None,
                     "finish_reason": FINISH_REASONS[result.finish_reason]}],
        "usage": _usage(result.usage),
        **_extras(body, result.timings),
    })


def _completion_chunks(call: PeekedCall, body: dict, echo: bool, include_usage: bool) -> Iterator[bytes]:
    base = {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
            "created": int(time.time()), "model": _served_model(call, body)}
    usage_field = {"usage": None} if include_usage else {}

    def chunk(text: str, finish_reason: str | None = None, **extra) -> dict:
        return {**base, "choices": [{"text": text, "index": 0, "logprobs": None,
                                     "finish_reason": finish_reason}], **usage_field, **extra}

    text = TextEvents(chunk(""), lambda shape, marker: {**shape, "choices": [{**shape["choices"][0],
                                                                              "text": marker}]})
    if echo:
        yield text(_completion_prompt(body))
    for message in call:
        if message.text:
            yield text(message.text)
        if message.finish_reason:
            yield sse_event(chunk("", FINISH_REASONS[message.finish_reason],
                                  **_extras(body, message.timings)))
            if include_usage:
                yield sse_event({**base, "choices": [], "usage": _usage(message.usage)})
    yield sse_event("[DONE]")


def _model_object(engine: engine_pb.Engine) -> dict:
    return {"id": engine.engine_id, "object": "model", "created": engine.created_unix,
            "owned_by": "tokenwire", "permission": [], "root": engine.engine_id, "parent": None}


@blueprint.get("/v1/models")
@calls("tokenwire.v1.EngineService/ListEngines")
def list_models():
    """The loaded engines, as OpenAI model objects (the default engine first)."""
    engines = grpc_client().engines.ListEngines(engine_pb.ListEnginesRequest()).engines
    return jsonify({"object": "list", "data": [_model_object(e) for e in engines
                                               if e.status == engine_pb.ENGINE_STATUS_LOADED]})


@blueprint.get("/v1/models/<path:model_id>")
@calls("tokenwire.v1.EngineService/GetEngine")
def get_model(model_id: str):
    """One engine as an OpenAI model object; 404 if there is none with this id."""
    engine = grpc_client().engines.GetEngine(engine_pb.GetEngineRequest(engine_id=model_id)).engine
    return jsonify(_model_object(engine))


@blueprint.post("/v1/embeddings")
@calls("tokenwire.v1.GenerationService/Embed")
def embeddings():
    """Embeddings (OpenAI): `encoding_format` float or base64 (little-endian float32)."""
    body = json_object()
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise HttpError(400, "'input' must be a string or a non-empty array of strings (token-id "
                             "inputs are not supported)", param="input")
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise HttpError(400, "'encoding_format' must be 'float' or 'base64'", param="encoding_format")
    _unsupported(body, "dimensions")
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise HttpError(400, "'model' must be a string", param="model")
    result = grpc_client().generation.Embed(svc_pb.EmbedRequest(model=model or "", inputs=inputs))

    def encode(values) -> list[float] | str:
        if encoding == "float":
            return list(values)
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")

    return jsonify({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": encode(e.values)}
                 for i, e in enumerate(result.embeddings)],
        "model": result.model,
        "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
    })
