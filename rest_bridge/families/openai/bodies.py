"""The OpenAI family's bodies: requests that validate and convert themselves to protobuf
(`to_pb`), answers built from protobuf (`from_pb`); their schemas are the OpenAPI document's.

OpenAI's shapes plus what tokenwire adds: the sampling knobs `top_k`, `min_p`, `repeat_penalty`,
Impetus's `conversation_id` and `use_cache`, and `performance_metrics` in the answers. Ranges are
the server's to check (its field paths are translated back to these names); this checks types.
"""

from __future__ import annotations

import base64
import struct
import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import (BeforeValidator, ConfigDict, Field, WithJsonSchema)

from rest_bridge.bodies import Answer, Body, Unsupported, only, unsupported
from rest_bridge.errors import HttpError
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2 as svc_pb
from tokenwire.v1 import session_service_pb2 as session_pb

NAMESPACE = "openai"
FINISH_REASONS = {gen_pb.FINISH_REASON_STOP: "stop", gen_pb.FINISH_REASON_STOP_SEQUENCE: "stop",
                  gen_pb.FINISH_REASON_LENGTH: "length"}
_FLOATS = ("temperature", "top_p", "min_p", "repeat_penalty", "presence_penalty",
           "frequency_penalty")


def _token_ids(bias: Any) -> Any:
    if not isinstance(bias, dict):
        raise ValueError("'logit_bias' must map token ids to numbers")
    for token, value in bias.items():
        if not (token.isdigit() and int(token) < 2**31):
            raise ValueError(f"logit_bias key {token!r} is not a token id")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"logit_bias for token {token} must be a number")
    return {int(token): float(value) for token, value in bias.items()}


class TextContentPart(Body):
    type: Literal["text"]
    text: str


def _text_parts_only(content: Any) -> Any:
    if isinstance(content, list) and not all(
            isinstance(p, dict) and p.get("type") == "text" for p in content):
        raise unsupported("only text content parts are supported", "unsupported_content")
    return content


class ChatMessage(Body):
    role: str = Field(examples=["user"])
    """`system`, `developer` (treated as system), `user`, `assistant` or `tool`."""
    content: Annotated[str | list[TextContentPart] | None, BeforeValidator(_text_parts_only)] = None
    """The text, or an array of text parts (joined). Other part types are a 400."""

    def role_and_text(self) -> tuple[str, str]:
        text = self.content if isinstance(self.content, str) else "".join(
            p.text for p in self.content or ())
        # OpenAI's newer "developer" role plays the part of "system" for chat templates.
        return ("system" if self.role == "developer" else self.role), text


class StreamOptions(Body):
    include_usage: bool = False
    """Send one more chunk before `[DONE]` with empty `choices` and the usage; every other chunk
    then carries `usage: null`."""


class GenerationParams(Body):
    """The parameters chat completions and completions share."""

    PROTO = svc_pb.GenerateRequest
    PROTO_FIELDS = {"top_k": "sampling.top_k", "seed": "sampling.seed", "n": None,
                    "logit_bias": "sampling.logit_bias",
                    "best_of": None, "max_completion_tokens": "max_tokens"}

    model: str | None = None
    """The model (engine) id. Empty or absent: the server's default model."""
    max_tokens: int | None = None
    """Most tokens to generate. Absent: until the model stops or the context window is full."""
    temperature: float | None = None
    """Sampling temperature; 0 is greedy."""
    top_p: float | None = None
    """Nucleus sampling probability mass, in (0, 1]."""
    stop: str | list[str] | None = None
    """Generation stops before any of these strings (not returned)."""
    seed: int | None = None
    """Random seed: the same seed, request and model give the same output."""
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Annotated[dict[int, float] | None, BeforeValidator(_token_ids)] = None
    """Token id (as a string key) -> bias added to its logit, in [-100, 100]; -100 bans it."""
    stream: bool | None = False
    """Answer with server-sent events instead of one JSON object."""
    stream_options: StreamOptions | None = None
    n: Annotated[int | None, only((None, 1), "only n=1 is supported: one choice per request")] = 1
    """Choices per request: only 1 is supported (anything else is a 400)."""
    user: str | None = None
    """End-user id; accepted and ignored."""
    top_k: int | None = None
    """tokenwire extra: keep only the k most likely tokens; 0 disables."""
    min_p: float | None = None
    """tokenwire extra: drop tokens less likely than min_p times the most likely one."""
    repeat_penalty: float | None = None
    """tokenwire extra: multiplicative penalty for recently seen tokens; 1 disables it."""
    logprobs: Unsupported = None
    top_logprobs: Unsupported = None
    best_of: Annotated[int | None, only((None, 1))] = None
    tools: Annotated[Any, only((None, []), "'tools' (tool calling) is not supported by this "
                                            "server")] = None
    functions: Annotated[Any, only((None, []), "'functions' (tool calling) is not supported by "
                                                "this server")] = None

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def fill(self, pb, max_tokens: int | None = None) -> None:
        """Set the fields GenerateRequest, CompleteRequest and session ChatRequest share."""
        pb.model = self.model or ""
        for name in _FLOATS:
            if getattr(self, name) is not None:
                setattr(pb.sampling, name, getattr(self, name))
        if self.top_k is not None:
            pb.sampling.top_k = self.top_k
        if self.seed is not None:
            pb.sampling.seed = self.seed
        max_tokens = self.max_tokens if max_tokens is None else max_tokens
        if max_tokens is not None:
            pb.max_tokens = max_tokens
        pb.stop.extend([self.stop] if isinstance(self.stop, str) else self.stop or ())
        for token, bias in (self.logit_bias or {}).items():
            pb.sampling.logit_bias[token] = bias


class CreateChatCompletionRequest(GenerationParams):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": "smollm2-135m", "temperature": 0, "max_tokens": 16, "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What is the capital of France?"}]}]})

    messages: list[ChatMessage] = Field(min_length=1)
    """The conversation, oldest message first; rendered with the model's chat template."""
    max_completion_tokens: int | None = None
    """Takes precedence over max_tokens."""
    response_format: Annotated[Any, only((None, {"type": "text"}), "only response_format "
                                          "{\"type\": \"text\"} is supported")] = None
    conversation_id: str | None = None
    """tokenwire extra (Impetus): continue the server-side session with this id (created if
    missing). The server keeps the history, so the last message (the user's) is the new turn and
    a system message sets the system prompt. Echoed back."""
    use_cache: bool | None = None
    """tokenwire extra (Impetus): with `conversation_id`, false prefills the session's whole
    history instead of reusing its resident KV cache. Accepted and unused otherwise."""

    def fill(self, pb, max_tokens: int | None = None) -> None:
        super().fill(pb, self.max_completion_tokens if max_tokens is None else max_tokens)

    def to_pb(self, pb: svc_pb.GenerateRequest | svc_pb.CompleteRequest):
        pb.chat.SetInParent()
        for message in self.messages:
            role, text = message.role_and_text()
            pb.chat.messages.add(role=role, content=text)
        self.fill(pb)
        return pb

    def to_session_pb(self) -> session_pb.ChatRequest:
        """A turn of the session `conversation_id`: the server keeps the conversation, so the last
        message (the user's) is the new turn and a system message sets the system prompt; earlier
        messages are in the server's history already."""
        parsed = [m.role_and_text() for m in self.messages]
        role, content = parsed[-1]
        if role != "user":
            raise unsupported_turn(len(parsed) - 1)
        pb = session_pb.ChatRequest(session_id=self.conversation_id, content=content,
                                    create_if_missing=True)
        systems = [text for role, text in parsed if role == "system"]
        if systems:
            pb.system_prompt = systems[-1]
        if self.use_cache is not None:
            pb.reuse_cache = self.use_cache
        self.fill(pb)  # ChatRequest shares model, sampling, max_tokens and stop
        return pb


def unsupported_turn(index: int) -> HttpError:
    return HttpError(400, "with conversation_id the last message must be the user's new turn",
                     param=f"messages[{index}].role")


def _one_prompt(prompt: Any) -> Any:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        return prompt[0]
    if isinstance(prompt, list):
        raise unsupported("'prompt' must be one string (arrays of prompts or of token ids are not "
                          "supported)")
    return prompt


class CreateCompletionRequest(GenerationParams):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"prompt": "The capital of France is", "max_tokens": 8, "temperature": 0}]})

    prompt: Annotated[str, BeforeValidator(_one_prompt), WithJsonSchema({"oneOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1,
                             "maxItems": 1}]})]
    """The text to continue, passed to the model as is. An array must hold exactly one string."""
    echo: bool | None = False
    """Prepend the prompt to the returned text."""
    suffix: Unsupported = None

    def to_pb(self, pb: svc_pb.GenerateRequest | svc_pb.CompleteRequest):
        pb.prompt = self.prompt
        self.fill(pb)
        return pb


def _texts(inputs: Any) -> Any:
    inputs = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
        raise ValueError("'input' must be a string or a non-empty array of strings (token-id "
                         "inputs are not supported)")
    return inputs


class CreateEmbeddingRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"input": ["hello world"], "model": "smollm2-135m"}]})

    input: Annotated[list[str], BeforeValidator(_texts), WithJsonSchema({"oneOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]})]
    """A text or texts to embed, none empty (token-id inputs are not supported)."""
    model: str | None = None
    """The model (engine) id. Empty or absent: the server's default model."""
    encoding_format: Literal["float", "base64"] | None = "float"
    """`base64`: little-endian float32 bytes."""
    dimensions: Unsupported = None
    user: str | None = None

    def to_pb(self) -> svc_pb.EmbedRequest:
        return svc_pb.EmbedRequest(model=self.model or "", inputs=self.input)

    def encode(self, values) -> list[float] | str:
        if self.encoding_format == "base64":
            return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode("ascii")
        return list(values)


# -- answers --------------------------------------------------------------------------------------


class ErrorDetail(Answer):
    message: str
    """What went wrong."""
    type: str
    """e.g. invalid_request_error, authentication_error, not_found_error, rate_limit_error,
    server_error, timeout_error."""
    param: str | None
    """The request parameter at fault, if any."""
    code: str | None
    """A machine-readable code, e.g. unsupported_parameter."""


class ErrorResponse(Answer):
    error: ErrorDetail


class PromptTokensDetails(Answer):
    cached_tokens: int
    """Prompt tokens whose KV cache was reused (a shared prompt prefix, or the conversation's
    earlier turns) instead of computed."""


class Usage(Answer):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails

    @classmethod
    def from_pb(cls, usage: gen_pb.Usage) -> Usage:
        return cls(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens,
                   total_tokens=usage.total_tokens, prompt_tokens_details=PromptTokensDetails(
                       cached_tokens=usage.cached_prompt_tokens))


class PerformanceMetrics(Answer):
    """tokenwire extra: how fast the answer was produced. In a stream, on the chunk that carries
    the finish reason."""

    inference_time_ms: float
    """Time to first token plus decoding time."""
    tokens_per_second: float
    """Generated tokens per second while decoding."""
    time_to_first_token_ms: float
    """From the request's arrival to the first token."""

    @classmethod
    def from_pb(cls, t: gen_pb.Timings) -> PerformanceMetrics:
        return cls(inference_time_ms=round(t.time_to_first_token_ms + t.decode_ms, 3),
                   tokens_per_second=round(t.tokens_per_second, 3),
                   time_to_first_token_ms=round(t.time_to_first_token_ms, 3))


FinishReason = Literal["stop", "length"]


class _Extras(Answer):
    performance_metrics: PerformanceMetrics | None = None
    conversation_id: str | None = None
    """tokenwire extra: the request's `conversation_id`, when it had one."""

    def body(self) -> dict:
        out = super().body()
        for extra in ("performance_metrics", "conversation_id"):
            if out[extra] is None:  # absent, not null: OpenAI's clients never see them
                del out[extra]
        return out


def extras(body: GenerationParams, timings: gen_pb.Timings | None) -> dict:
    """`performance_metrics` and the echoed `conversation_id`, for JSON answers and last chunks."""
    out: dict = {}
    if timings is not None:
        out["performance_metrics"] = PerformanceMetrics.from_pb(timings).body()
    if getattr(body, "conversation_id", None) is not None:
        out["conversation_id"] = body.conversation_id
    return out


class AssistantMessage(Answer):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(Answer):
    index: int = 0
    message: AssistantMessage
    logprobs: dict | None = None
    """Always null (not supported)."""
    finish_reason: FinishReason
    """`stop`: the model stopped or a stop sequence matched; `length`: max_tokens or the context
    window was reached."""


class ChatCompletion(_Extras):
    id: str = Field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}",
                    examples=["chatcmpl-0123abcd"])
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    """Unix time in seconds."""
    model: str
    """The model that answered."""
    choices: list[ChatChoice]
    usage: Usage


class Delta(Answer):
    role: Literal["assistant"] | None = None
    content: str | None = None
    """Text added since the previous chunk."""


class ChunkChoice(Answer):
    index: int
    delta: Delta
    logprobs: dict | None = None
    finish_reason: FinishReason | None
    """null until the chunk that ends the choice; then as in a JSON answer."""


class ChatCompletionChunk(_Extras):
    """One `data:` event of a chat completion stream. The first chunk's delta holds the role; the
    last one with a choice holds the finish reason."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    """Only with `stream_options.include_usage`: null on every chunk but the last, which has
    empty `choices`."""


class CompletionChoice(Answer):
    text: str
    index: int = 0
    logprobs: dict | None = None
    finish_reason: FinishReason | None
    """Always set in a JSON answer; null on stream chunks but the last."""


class TextCompletion(_Extras):
    """A completion; in a stream, each `data:` event is one of these with the text added since the
    previous event, and `usage` follows `stream_options.include_usage` as for chat."""

    id: str = Field(default_factory=lambda: f"cmpl-{uuid.uuid4().hex}", examples=["cmpl-0123abcd"])
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    """Always set in a JSON answer; in a stream, as for chat."""


class Model(Answer):
    id: str
    """The id requests use in `model`."""
    object: Literal["model"] = "model"
    created: int
    """Unix time in seconds."""
    owned_by: str = Field("tokenwire", examples=["tokenwire"])
    permission: list[dict] = []
    """Always empty."""
    root: str
    parent: str | None = None

    @classmethod
    def from_pb(cls, engine: engine_pb.Engine) -> Model:
        return cls(id=engine.engine_id, created=engine.created_unix, root=engine.engine_id)


class ModelList(Answer):
    object: Literal["list"] = "list"
    data: list[Model]
    """Every model, the default first."""


class Embedding(Answer):
    object: Literal["embedding"] = "embedding"
    index: int
    """The input's position."""
    embedding: list[float] | Annotated[str, Field(json_schema_extra={"format": "byte"})]
    """Numbers, or base64 of float32 values with `encoding_format: base64`."""


class EmbeddingUsage(Answer):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(Answer):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


DOCUMENTED = (ErrorResponse, CreateChatCompletionRequest, ChatCompletion, ChatCompletionChunk,
              CreateCompletionRequest, TextCompletion, ModelList, CreateEmbeddingRequest,
              EmbeddingList)
