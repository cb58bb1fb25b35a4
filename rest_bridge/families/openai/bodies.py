"""The OpenAI family's bodies: requests that validate and convert themselves to protobuf
(`to_pb`), answers built from protobuf (`from_pb`); their schemas are the OpenAPI document's.

OpenAI's shapes plus what tokenwire adds: the sampling knobs `top_k`, `min_p`, `repeat_penalty`,
llama-server's `grammar` and `json_schema`, Impetus's `conversation_id` and `use_cache`, and
`performance_metrics` in the answers. This checks types and OpenAI's own ranges (temperature 0-2,
top_p 0-1, ...); the rest is the server's to check (its field paths are translated back to these
names by the routes). Structured output, tool calls, log probabilities and n choices are the
server's: these bodies only map OpenAI's shapes onto its fields and back.
"""

from __future__ import annotations

import base64
import json
import struct
import time
import uuid
from typing import Annotated, Any, Iterable, Literal, Union

from pydantic import (AfterValidator, BeforeValidator, ConfigDict, Field, PlainValidator,
                      ValidationInfo, WithJsonSchema, model_validator)

from rest_bridge.bodies import (Answer, Body, Unsupported, json_object_text, one_of, only,
                                unsupported)
from rest_bridge.errors import HttpError
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2 as svc_pb
from tokenwire.v1 import session_service_pb2 as session_pb

NAMESPACE = "openai"
FINISH_REASONS = {gen_pb.FINISH_REASON_STOP: "stop", gen_pb.FINISH_REASON_STOP_SEQUENCE: "stop",
                  gen_pb.FINISH_REASON_LENGTH: "length",
                  gen_pb.FINISH_REASON_TOOL_CALLS: "tool_calls"}
MAX_TOP_LOGPROBS = 20  # as OpenAI's chat completions (the server's limit too)
TOOL_CHOICE_MODES = {"auto": gen_pb.TOOL_CHOICE_MODE_AUTO, "none": gen_pb.TOOL_CHOICE_MODE_NONE,
                     "required": gen_pb.TOOL_CHOICE_MODE_REQUIRED}
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


class FunctionCallParam(Body):
    name: str
    """The function called."""
    arguments: Annotated[str, AfterValidator(json_object_text)]
    """Its arguments, a JSON object text, as the model produced them."""


class ToolCallParam(Body):
    """A tool call an earlier answer made, sent back with the assistant message."""

    id: str
    """The call's id, which the `tool` message with its result names in `tool_call_id`."""
    type: Literal["function"] = "function"
    function: FunctionCallParam


class ChatMessage(Body):
    role: str = Field(examples=["user"])
    """`system`, `developer` (treated as system), `user`, `assistant` or `tool`."""
    content: Annotated[str | list[TextContentPart] | None, BeforeValidator(_text_parts_only)] = None
    """The text, or an array of text parts (joined). Other part types are a 400. May be null for
    an assistant message that only calls tools."""
    name: str | None = None
    """The author's name. For a `tool` message: the function's (absent: the name of the call
    `tool_call_id` names)."""
    tool_calls: list[ToolCallParam] | None = None
    """An assistant message's tool calls, as an earlier answer gave them."""
    tool_call_id: str | None = None
    """A `tool` message: the id of the tool call this message holds the result of."""

    def role_and_text(self) -> tuple[str, str]:
        text = self.content if isinstance(self.content, str) else "".join(
            p.text for p in self.content or ())
        # OpenAI's newer "developer" role plays the part of "system" for chat templates.
        return ("system" if self.role == "developer" else self.role), text


def messages_to_pb(messages: Iterable[ChatMessage]) -> list[gen_pb.ChatMessage]:
    """The conversation as ChatMessages; a tool result without `name` gets its call's function."""
    out, functions = [], {}
    for message in messages:
        role, text = message.role_and_text()
        pb = gen_pb.ChatMessage(role=role, content=text, name=message.name or "",
                                tool_call_id=message.tool_call_id or "")
        for call in message.tool_calls or ():
            functions[call.id] = call.function.name
            pb.tool_calls.add(id=call.id, name=call.function.name,
                              arguments=call.function.arguments)
        if role == "tool" and not message.name:
            pb.name = functions.get(message.tool_call_id or "", "")
        out.append(pb)
    return out


class StreamOptions(Body):
    include_usage: bool = False
    """Send one more chunk before `[DONE]` with empty `choices` and the usage (of all choices);
    every other chunk then carries `usage: null`."""


class TextFormat(Body):
    type: Literal["text"]
    """Plain text: no constraint."""


class JsonObjectFormat(Body):
    type: Literal["json_object"]
    """JSON mode: the output is one JSON object (enforced token by token)."""


class JsonSchemaSpec(Body):
    name: str | None = None
    """A name for the format (accepted and unused)."""
    description: str | None = None
    """Accepted and unused."""
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    """The JSON schema the output must validate against, enforced token by token. A keyword the
    server cannot enforce (e.g. `not`) is a 400 naming it, with `param: response_format`. Absent:
    any JSON object."""
    strict: bool | None = None
    """Accepted; the schema is always enforced, whatever this says."""


class JsonSchemaFormat(Body):
    type: Literal["json_schema"]
    json_schema: JsonSchemaSpec


ResponseFormat = Annotated[Union[TextFormat, JsonObjectFormat, JsonSchemaFormat], one_of(
    {"text": TextFormat, "json_object": JsonObjectFormat, "json_schema": JsonSchemaFormat},
    "response formats")]

_CONSTRAINTS = ("response_format", "grammar", "json_schema")


def _range(low: float, high: float) -> Any:
    return Field(ge=low, le=high)


class GenerationParams(Body):
    """The parameters chat completions and completions share."""

    PROTO = svc_pb.GenerateRequest
    PROTO_FIELDS = {"top_k": "sampling.top_k", "seed": "sampling.seed",
                    "logit_bias": "sampling.logit_bias",
                    "best_of": None, "max_completion_tokens": "max_tokens"}

    model: str | None = None
    """The model (engine) id. Empty or absent: the server's default model."""
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    """Most tokens to generate (per choice), >= 1. Absent: until the model stops or the context
    window is full."""
    temperature: Annotated[float | None, _range(0, 2)] = None
    """Sampling temperature, 0 to 2; 0 is greedy."""
    top_p: Annotated[float | None, _range(0, 1)] = None
    """Nucleus sampling probability mass, in (0, 1]."""
    stop: str | list[str] | None = None
    """Generation stops before any of these strings (not returned)."""
    seed: int | None = None
    """Random seed: the same seed, request and model give the same output. Choice i of n samples
    with seed + i."""
    presence_penalty: Annotated[float | None, _range(-2, 2)] = None
    """-2 to 2."""
    frequency_penalty: Annotated[float | None, _range(-2, 2)] = None
    """-2 to 2."""
    logit_bias: Annotated[dict[int, float] | None, BeforeValidator(_token_ids)] = None
    """Token id (as a string key) -> bias added to its logit, in [-100, 100]; -100 bans it."""
    stream: bool | None = False
    """Answer with server-sent events instead of one JSON object."""
    stream_options: StreamOptions | None = None
    n: Annotated[int | None, Field(ge=1)] = 1
    """Choices to generate from the one prompt, >= 1 and at most the engine's parallel sequences
    (more is a 400, `param: n`). Greedy choices are all the same."""
    user: str | None = None
    """End-user id; accepted and ignored."""
    top_k: int | None = None
    """tokenwire extra: keep only the k most likely tokens; 0 disables."""
    min_p: float | None = None
    """tokenwire extra: drop tokens less likely than min_p times the most likely one."""
    repeat_penalty: float | None = None
    """tokenwire extra: multiplicative penalty for recently seen tokens; 1 disables it."""
    response_format: ResponseFormat | None = None
    """`{"type": "text"}` (the default), `{"type": "json_object"}` (any JSON object) or
    `{"type": "json_schema", "json_schema": {"name", "schema", "strict"}}`: the output is
    enforced token by token, so it always parses (and validates) unless cut by max_tokens."""
    grammar: str | None = None
    """llama-server extra: a GBNF grammar (rule `root`) the output must follow. Empty: none. At
    most one of `response_format` (other than text), `grammar` and `json_schema`."""
    json_schema: dict[str, Any] | None = None
    """llama-server extra: a JSON schema the output must validate against, as
    `response_format` json_schema's `schema`."""

    @model_validator(mode="after")
    def _one_constraint(self):
        given = self.constraint_params
        if len(given) > 1:
            # Not a ValueError: pydantic lets it through, and it names the second parameter.
            raise HttpError(400, f"'{given[0]}' and '{given[1]}' both constrain the output; "
                                 f"send only one of them", param=given[1])
        return self

    @property
    def constraint_params(self) -> list[str]:
        """The parameters that constrain the output (at most one passes validation)."""
        sent = {"response_format": self.response_format is not None
                and not isinstance(self.response_format, TextFormat),
                "grammar": bool(self.grammar), "json_schema": self.json_schema is not None}
        return [name for name in _CONSTRAINTS if sent[name]]

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def choices(self) -> int:
        return self.n or 1

    def top_logprobs_pb(self) -> int | None:
        """How many alternatives per token the server is asked for; None: no logprobs."""
        return None

    def param_names(self) -> dict[str, str]:
        """Server field paths whose OpenAI name depends on the request (see routes.PARAM_NAMES)."""
        return {"constraint": (self.constraint_params or ["response_format"])[0]}

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
        self._fill_constraint(pb.constraint)
        if self.top_logprobs_pb() is not None:
            pb.top_logprobs = self.top_logprobs_pb()

    def fill_choices(self, pb: svc_pb.GenerateRequest | svc_pb.CompleteRequest) -> None:
        if self.n is not None:
            pb.n = self.n

    def _fill_constraint(self, constraint: gen_pb.OutputConstraint) -> None:
        given = self.response_format
        if isinstance(given, JsonObjectFormat):
            constraint.json_object = True
        elif isinstance(given, JsonSchemaFormat):
            if given.json_schema.schema_ is None:
                constraint.json_object = True
            else:
                constraint.json_schema = json.dumps(given.json_schema.schema_)
        elif self.grammar:
            constraint.gbnf = self.grammar
        elif self.json_schema is not None:
            constraint.json_schema = json.dumps(self.json_schema)


class FunctionDefinition(Body):
    name: str
    """Letters, digits, `_` and `-`, at most 64 characters."""
    description: str | None = None
    """What the function does, shown to the model."""
    parameters: dict[str, Any] | None = None
    """The JSON schema of the arguments (absent: none). A call's arguments are enforced to
    follow it whenever the call is forced (`tool_choice` required or naming the function), and
    in auto mode too once the model chooses to call."""
    strict: bool | None = None
    """Accepted; the schema is always enforced, whatever this says."""


class ChatTool(Body):
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(Body):
    name: str
    """The function the model must call, one of `tools`."""


class NamedToolChoice(Body):
    type: Literal["function"]
    function: FunctionName


def tool_choice_param(named: type[Body], validate_named, message: str) -> Any:
    """`tool_choice`: a mode of TOOL_CHOICE_MODES or the object `named` (validated by
    `validate_named`); anything else is a 400 with `message`. Chat completions and the Responses
    API differ only in the named object's shape."""
    def validate(value: Any) -> Any:
        if isinstance(value, str):
            if value in TOOL_CHOICE_MODES:
                return value
            raise ValueError(message)
        return validate_named(value)

    choice = Union[Literal["auto", "none", "required"], named]
    return Annotated[choice, PlainValidator(validate, json_schema_input_type=choice)]


ToolChoiceParam = tool_choice_param(
    NamedToolChoice, one_of({"function": NamedToolChoice}, "tool choices").func,
    "'tool_choice' must be \"auto\", \"none\", \"required\" or "
    "{\"type\": \"function\", \"function\": {\"name\": ...}}")


def _needs_logprobs(value: int | None, info: ValidationInfo) -> int | None:
    if value is not None and info.data.get("logprobs") is not True:
        raise ValueError("'top_logprobs' needs 'logprobs': true")
    return value


class CreateChatCompletionRequest(GenerationParams):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": "smollm2-135m", "temperature": 0, "max_tokens": 16, "messages": [
            {"role": "system", "content": "Answer in one word."},
            {"role": "user", "content": "What is the capital of France?"}]}]})

    messages: list[ChatMessage] = Field(min_length=1)
    """The conversation, oldest message first; rendered with the model's chat template."""
    max_completion_tokens: Annotated[int | None, Field(ge=1)] = None
    """Takes precedence over max_tokens."""
    logprobs: bool | None = None
    """Return the log probability of each generated token in `choices[].logprobs.content` (in a
    stream: on the chunk that carries the token's text)."""
    top_logprobs: Annotated[int | None, _range(0, MAX_TOP_LOGPROBS),
                            AfterValidator(_needs_logprobs)] = None
    """With `logprobs: true`: this many most likely tokens per position (0 to 20), most likely
    first."""
    tools: list[Annotated[ChatTool, one_of({"function": ChatTool}, "tools")]] | None = None
    """Functions the model may call (`type: "function"`; other tool types are a 400). Calls come
    back in `message.tool_calls` with `finish_reason: "tool_calls"`. The server writes the tools
    into the prompt and enforces its generic call format with a grammar, for any model."""
    tool_choice: ToolChoiceParam | None = None
    """`auto` (the default with tools), `none`, `required` (at least one call, enforced) or
    `{"type": "function", "function": {"name"}}` (that call, enforced)."""
    parallel_tool_calls: bool | None = None
    """Let the model make several calls in one answer (default true); false: at most one."""
    functions: Annotated[Any, only((None, []), "'functions' is deprecated and not supported by "
                                                "this server: use 'tools'")] = None
    """Deprecated by OpenAI and not supported: use `tools`. Anything but null or [] is a 400."""
    function_call: Annotated[Any, only((None,), "'function_call' is deprecated and not "
                                                 "supported by this server: use "
                                                 "'tool_choice'")] = None
    """Deprecated by OpenAI and not supported: use `tool_choice`."""
    conversation_id: str | None = None
    """tokenwire extra (Impetus): continue the server-side session with this id (created if
    missing). The server keeps the history, so the last message (the user's) is the new turn and
    a system message sets the system prompt. Echoed back. Not with `tools` or n > 1 (400)."""
    use_cache: bool | None = None
    """tokenwire extra (Impetus): with `conversation_id`, false prefills the session's whole
    history instead of reusing its resident KV cache. Accepted and unused otherwise."""

    def top_logprobs_pb(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None

    def fill(self, pb, max_tokens: int | None = None) -> None:
        super().fill(pb, self.max_completion_tokens if max_tokens is None else max_tokens)

    def to_pb(self, pb: svc_pb.GenerateRequest | svc_pb.CompleteRequest):
        pb.chat.SetInParent()
        pb.chat.messages.extend(messages_to_pb(self.messages))
        self.fill(pb)
        self.fill_choices(pb)
        for tool in self.tools or ():
            function = tool.function
            pb.tools.add(name=function.name, description=function.description or "",
                         parameters_json="" if function.parameters is None
                         else json.dumps(function.parameters))
        if isinstance(self.tool_choice, str):
            pb.tool_choice.mode = TOOL_CHOICE_MODES[self.tool_choice]
        elif self.tool_choice is not None:
            pb.tool_choice.mode = gen_pb.TOOL_CHOICE_MODE_FUNCTION
            pb.tool_choice.function_name = self.tool_choice.function.name
        if self.parallel_tool_calls is not None:
            pb.parallel_tool_calls = self.parallel_tool_calls
        return pb

    def to_session_pb(self) -> session_pb.ChatRequest:
        """A turn of the session `conversation_id`: the server keeps the conversation, so the last
        message (the user's) is the new turn and a system message sets the system prompt; earlier
        messages are in the server's history already. Sessions have no tools and one choice."""
        for name, sent in (("tools", bool(self.tools)),
                           ("tool_choice", self.tool_choice not in (None, "none", "auto")),
                           ("n", self.choices > 1)):
            if sent:
                raise HttpError(400, f"'{name}' cannot be used with conversation_id (a session "
                                     f"turn has no tools and one choice)", param=name,
                                code="unsupported_parameter")
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
        self.fill(pb)  # ChatRequest shares model, sampling, max_tokens, stop, constraint, logprobs
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

    PROTO_FIELDS = {**GenerationParams.PROTO_FIELDS, "logprobs": "top_logprobs"}

    prompt: Annotated[str, BeforeValidator(_one_prompt), WithJsonSchema({"oneOf": [
        {"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1,
                             "maxItems": 1}]})]
    """The text to continue, passed to the model as is. An array must hold exactly one string."""
    echo: bool | None = False
    """Prepend the prompt to the returned text (of every choice)."""
    logprobs: Annotated[int | None, _range(0, MAX_TOP_LOGPROBS)] = None
    """Return the log probability of each generated token with this many most likely
    alternatives per position, 0 to 20 (OpenAI allows 5): `choices[].logprobs` holds `tokens`,
    `token_logprobs`, `top_logprobs` and `text_offset`. With `echo` the prompt's tokens get no
    log probabilities: the lists cover the generated tokens only, and `text_offset` counts from
    the start of the returned text (the prompt included)."""
    best_of: Annotated[int | None, only((None, 1))] = None
    """Only 1 (or absent): use `n` for several choices."""
    suffix: Unsupported = None

    def top_logprobs_pb(self) -> int | None:
        return self.logprobs

    def param_names(self) -> dict[str, str]:
        return {**super().param_names(), "top_logprobs": "logprobs"}

    def to_pb(self, pb: svc_pb.GenerateRequest | svc_pb.CompleteRequest):
        pb.prompt = self.prompt
        self.fill(pb)
        self.fill_choices(pb)
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


FinishReason = Literal["stop", "length", "tool_calls"]

#: What a log probability too small for JSON (-inf) is sent as, as OpenAI does.
MIN_LOGPROB = -9999.0


def _logprob(value: float) -> float:
    return value if value > MIN_LOGPROB else MIN_LOGPROB  # -inf (and NaN) are not JSON


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


def choices_of(result: svc_pb.CompleteResponse) -> list[svc_pb.Choice]:
    """The answer's choices, in index order (an answer without `choices` is its one choice)."""
    return list(result.choices) or [svc_pb.Choice(
        text=result.text, token_ids=result.token_ids, finish_reason=result.finish_reason,
        completion_tokens=result.usage.completion_tokens, seed=result.seed)]


def turn_result(messages: list[session_pb.ChatResponse]) -> svc_pb.CompleteResponse:
    """A session turn's stream joined into one answer of one choice."""
    last = messages[-1]
    text = "".join(m.text for m in messages)
    choice = svc_pb.Choice(text=text, token_ids=[t for m in messages for t in m.token_ids],
                           finish_reason=last.finish_reason,
                           completion_tokens=last.usage.completion_tokens,
                           logprobs=[e for m in messages for e in m.logprobs], seed=last.seed)
    return svc_pb.CompleteResponse(text=text, model=last.model, finish_reason=last.finish_reason,
                                   usage=last.usage, timings=last.timings, seed=last.seed,
                                   choices=[choice])


def total_usage(finished: list[gen_pb.Usage]) -> gen_pb.Usage:
    """The usage of a stream's choices together: the prompt once, every choice's tokens."""
    first = finished[0]
    completion = sum(u.completion_tokens for u in finished)
    return gen_pb.Usage(prompt_tokens=first.prompt_tokens, completion_tokens=completion,
                        total_tokens=first.prompt_tokens + completion,
                        cached_prompt_tokens=first.cached_prompt_tokens)


class TopLogprob(Answer):
    token: str
    """The token's text (invalid UTF-8 replaced with U+FFFD)."""
    logprob: float
    """Natural log of its probability (<= 0) under the logits the sampler saw (after
    `logit_bias`, before temperature and any grammar); -9999.0 for a token that could not be
    picked at all."""
    bytes: list[int]
    """The token's bytes, exactly (a token may hold part of a UTF-8 character)."""

    @classmethod
    def from_pb(cls, entry: gen_pb.TopLogprob) -> TopLogprob:
        return cls(token=entry.token, logprob=_logprob(entry.logprob),
                   bytes=list(entry.bytes))


class ChatTokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob]
    """The most likely tokens at this position, most likely first: `top_logprobs` of them."""

    @classmethod
    def from_pb(cls, entry: gen_pb.TokenLogprob) -> ChatTokenLogprob:
        return cls(token=entry.token, logprob=_logprob(entry.logprob),
                   bytes=list(entry.bytes),
                   top_logprobs=[TopLogprob.from_pb(t) for t in entry.top_logprobs])


class ChoiceLogprobs(Answer):
    content: list[ChatTokenLogprob] | None
    """One entry per generated token, in order. With tool calls, the tokens are those of the
    server's call format (the JSON the calls were read from)."""
    refusal: list[ChatTokenLogprob] | None = None
    """Always null."""

    @classmethod
    def from_pb(cls, entries: Iterable[gen_pb.TokenLogprob]) -> ChoiceLogprobs:
        return cls(content=[ChatTokenLogprob.from_pb(e) for e in entries])


class FunctionCall(Answer):
    name: str
    """The function called, one of the request's `tools`."""
    arguments: str
    """Its arguments, a JSON object text. When the call was forced (`tool_choice` required or
    naming the function) or the model chose to call, they follow the function's `parameters`
    schema (enforced with a grammar)."""


class ToolCall(Answer):
    id: str = Field(examples=["call_0123abcd"])
    """Name it in the `tool_call_id` of the `tool` message that carries the result."""
    type: Literal["function"] = "function"
    function: FunctionCall

    @classmethod
    def from_pb(cls, call: gen_pb.ToolCall) -> ToolCall:
        return cls(id=call.id, function=FunctionCall(name=call.name, arguments=call.arguments))


class AssistantMessage(Answer):
    role: Literal["assistant"] = "assistant"
    content: str | None
    """The answer's text; null when the answer is tool calls only."""
    tool_calls: list[ToolCall] | None = None
    """The tool calls the model made, with `finish_reason: "tool_calls"`; absent otherwise."""


class ChatChoice(Answer):
    index: int = 0
    """The choice's position, 0 to n - 1."""
    message: AssistantMessage
    logprobs: ChoiceLogprobs | None = None
    """With `logprobs: true`, the generated tokens' log probabilities; null otherwise."""
    finish_reason: FinishReason
    """`stop`: the model stopped or a stop sequence matched; `length`: max_tokens or the context
    window was reached; `tool_calls`: the model called tools (`message.tool_calls`)."""

    @classmethod
    def from_pb(cls, choice: svc_pb.Choice, logprobs: bool) -> ChatChoice:
        calls = [ToolCall.from_pb(c) for c in choice.tool_calls]
        return cls(index=choice.index, message=AssistantMessage(
            content=None if calls and not choice.text else choice.text, tool_calls=calls or None),
            logprobs=ChoiceLogprobs.from_pb(choice.logprobs) if logprobs else None,
            finish_reason=FINISH_REASONS[choice.finish_reason])


class ChatCompletion(_Extras):
    id: str = Field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex}",
                    examples=["chatcmpl-0123abcd"])
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    """Unix time in seconds."""
    model: str
    """The model that answered."""
    choices: list[ChatChoice]
    """`n` choices, in index order."""
    usage: Usage
    """The prompt once, and the tokens of every choice."""

    @classmethod
    def from_pb(cls, result: svc_pb.CompleteResponse,
                body: CreateChatCompletionRequest) -> ChatCompletion:
        return cls(model=result.model, usage=Usage.from_pb(result.usage),
                   choices=[ChatChoice.from_pb(c, bool(body.logprobs)) for c in choices_of(result)],
                   **extras(body, result.timings))

    def body(self) -> dict:
        out = super().body()
        for choice in out["choices"]:
            if choice["message"]["tool_calls"] is None:  # absent, as OpenAI sends it
                del choice["message"]["tool_calls"]
        return out


class FunctionCallDelta(Answer):
    name: str | None = None
    arguments: str | None = None
    """The arguments' text (here always whole: the call arrives in one chunk)."""


class ToolCallDelta(Answer):
    index: int
    """The call's position among the choice's calls."""
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta


def tool_call_deltas(calls: Iterable[gen_pb.ToolCall]) -> list[dict]:
    """A choice's tool calls as `delta.tool_calls`, each call whole (id, name and arguments)."""
    return [{"index": j, **ToolCall.from_pb(call).body()} for j, call in enumerate(calls)]


class Delta(Answer):
    role: Literal["assistant"] | None = None
    """On each choice's first chunk."""
    content: str | None = None
    """Text added since the previous chunk."""
    tool_calls: list[ToolCallDelta] | None = None
    """The choice's tool calls, on a chunk of their own after its text and before its finish
    chunk; each call arrives whole."""


class ChunkChoice(Answer):
    index: int
    """The choice this chunk belongs to; with n > 1 the choices' chunks interleave."""
    delta: Delta
    logprobs: ChoiceLogprobs | None = None
    """With `logprobs: true`, the log probabilities of the tokens whose text this chunk adds."""
    finish_reason: FinishReason | None
    """null until the chunk that ends the choice; then as in a JSON answer."""


class ChatCompletionChunk(_Extras):
    """One `data:` event of a chat completion stream. Each choice's first chunk's delta holds the
    role; its last one holds its finish reason."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    """Only with `stream_options.include_usage`: null on every chunk but the last, which has
    empty `choices` and counts every choice."""


class CompletionLogprobs(Answer):
    tokens: list[str]
    """The generated tokens' texts (the prompt's are not included, `echo` or not)."""
    token_logprobs: list[float]
    """Their log probabilities, as in chat's `logprobs`."""
    top_logprobs: list[dict[str, float]]
    """Per token: the most likely tokens' texts -> their log probabilities, `logprobs` of them
    (tokens whose texts are alike share one entry)."""
    text_offset: list[int]
    """Per token: where its text starts in the choice's text, in characters (the echoed prompt
    included; in a stream, counted over the whole text so far)."""

    @classmethod
    def from_pb(cls, entries: Iterable[gen_pb.TokenLogprob], offset: int = 0) -> CompletionLogprobs:
        entries = list(entries)
        offsets = []
        for entry in entries:
            offsets.append(offset)
            offset += len(entry.token)
        return cls(tokens=[e.token for e in entries],
                   token_logprobs=[_logprob(e.logprob) for e in entries],
                   top_logprobs=[{t.token: _logprob(t.logprob) for t in e.top_logprobs}
                                 for e in entries], text_offset=offsets)


class CompletionChoice(Answer):
    text: str
    index: int = 0
    """The choice's position, 0 to n - 1."""
    logprobs: CompletionLogprobs | None = None
    """With `logprobs` set: the generated tokens' log probabilities; null otherwise."""
    finish_reason: FinishReason | None
    """Always set in a JSON answer; null on stream chunks but each choice's last."""

    @classmethod
    def from_pb(cls, choice: svc_pb.Choice, body: CreateCompletionRequest) -> CompletionChoice:
        echoed = body.prompt if body.echo else ""
        return cls(text=echoed + choice.text, index=choice.index,
                   logprobs=None if body.logprobs is None
                   else CompletionLogprobs.from_pb(choice.logprobs, len(echoed)),
                   finish_reason=FINISH_REASONS[choice.finish_reason])


class TextCompletion(_Extras):
    """A completion; in a stream, each `data:` event is one of these with the text added since the
    previous event (of one choice), and `usage` follows `stream_options.include_usage` as for
    chat."""

    id: str = Field(default_factory=lambda: f"cmpl-{uuid.uuid4().hex}", examples=["cmpl-0123abcd"])
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    """Always set in a JSON answer (every choice counted); in a stream, as for chat."""

    @classmethod
    def from_pb(cls, result: svc_pb.CompleteResponse,
                body: CreateCompletionRequest) -> TextCompletion:
        return cls(model=result.model, usage=Usage.from_pb(result.usage),
                   choices=[CompletionChoice.from_pb(c, body) for c in choices_of(result)],
                   **extras(body, result.timings))


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
    """The engine's id; for an alias, the engine it names."""
    parent: str | None = None

    @classmethod
    def from_pb(cls, engine: engine_pb.Engine) -> Model:
        return cls(id=engine.engine_id, created=engine.created_unix, root=engine.engine_id)

    @classmethod
    def all_from_pb(cls, engine: engine_pb.Engine) -> list[Model]:
        """The engine, then one object per alias (id: the alias; root: the engine id)."""
        return [cls.from_pb(engine)] + [cls(id=alias, created=engine.created_unix,
                                            root=engine.engine_id) for alias in engine.aliases]


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
