"""The Responses API's bodies: the request validates itself and converts to a GenerateRequest or
CompleteRequest (`Turn.to_pb`); the answers (the response object, its output items, the stream
events) are built here from protobuf; their schemas are the OpenAPI document's.

Conversation state lives in the server's session store (`store.py`), as ChatMessages. Input items
become messages this way, and stored messages come back as the same items:

- a message item (`{role, content}`, with or without `type: "message"`) -> a message of that role,
  its text parts joined. The session store keeps no system messages in a history (its system
  prompt is apart), so `system` and `developer` items are kept as user messages *named*
  `system` / `developer` and turned back into system messages for the model;
- `function_call` items -> the `tool_calls` of an assistant message (consecutive calls, and an
  assistant message right before them, make one message, as in chat completions);
- `function_call_output` -> a `tool` message answering `call_id`, named after the function;
- this response's output -> one assistant message (text and/or tool calls) *named* after the
  response id, which is how a stored response finds its own output again.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union

from pydantic import (AfterValidator, BeforeValidator, ConfigDict, Field, RootModel)

from rest_bridge.bodies import (Answer, Body, Unsupported, json_object_text, one_of, only)
from rest_bridge.families.openai.bodies import TOOL_CHOICE_MODES, ErrorResponse, tool_choice_param
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2 as svc_pb
from tokenwire.v1 import session_service_pb2 as session_pb

NAMESPACE = "openai_responses"
RESPONSE_PREFIX = "resp_"
#: Names that mark a stored user message as an input item of role system / developer.
SYSTEM_NAMES = frozenset({"system", "developer"})


# -- validation helpers ---------------------------------------------------------------------------


# -- the request ----------------------------------------------------------------------------------


class TextPartParam(Body):
    type: Literal["input_text", "output_text"]
    """`input_text` (user, system, developer) or `output_text` (assistant); either is accepted."""
    text: str


def _string_is_one_part(content: Any) -> Any:
    return [{"type": "input_text", "text": content}] if isinstance(content, str) else content


TextPart = Annotated[TextPartParam, one_of(
    {"input_text": TextPartParam, "output_text": TextPartParam}, "content parts",
    code="unsupported_content")]
#: A string, or text parts (joined); images, files and audio are a 400.
Content = Annotated[list[TextPart], BeforeValidator(
    _string_is_one_part, json_schema_input_type=Union[str, list[TextPart]])]


def _text(parts: list[TextPartParam]) -> str:
    return "".join(p.text for p in parts)


class MessageParam(Body):
    """A message: `type` may be left out (OpenAI's "easy input message")."""

    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    """`system` and `developer` speak to the model as system messages."""
    content: Content
    """A string, or text parts (joined)."""


class FunctionCallParam(Body):
    """A function call an earlier response made (its output item, sent back)."""

    type: Literal["function_call"]
    call_id: str
    """The call's id, which the matching `function_call_output` names."""
    name: str
    arguments: Annotated[str, AfterValidator(json_object_text)]
    """The arguments, a JSON object text."""


class FunctionCallOutputParam(Body):
    """The result of running a function call."""

    type: Literal["function_call_output"]
    call_id: str
    """The `call_id` of the function call this answers."""
    output: Content
    """The result: a string, or text parts (joined)."""


InputItem = Annotated[Union[MessageParam, FunctionCallParam, FunctionCallOutputParam], one_of(
    {"message": MessageParam, "function_call": FunctionCallParam,
     "function_call_output": FunctionCallOutputParam}, "input items", default="message")]


def _string_is_user_message(value: Any) -> Any:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise ValueError("'input' must be a string or an array of input items")
    return value


class FunctionToolParam(Body):
    type: Literal["function"]
    name: str
    """Letters, digits, `_` and `-`, at most 64 characters."""
    description: str | None = None
    """What the function does, shown to the model."""
    parameters: dict[str, Any] | None = None
    """The JSON schema of the arguments. The server enforces it with a grammar whenever the
    model calls the function, whatever `strict` says."""
    strict: bool | None = None
    """Accepted and echoed; arguments always follow the schema."""


Tool = Annotated[FunctionToolParam, one_of({"function": FunctionToolParam}, "tools")]


class FunctionChoiceParam(Body):
    type: Literal["function"]
    name: str
    """The function the model must call, one of `tools`."""


ToolChoiceParam = tool_choice_param(
    FunctionChoiceParam, one_of({"function": FunctionChoiceParam}, "tool choices").func,
    "'tool_choice' must be 'auto', 'none', 'required' or an object naming a function")


class TextFormatParam(Body):
    type: Literal["text"]


class JsonObjectFormatParam(Body):
    type: Literal["json_object"]


class JsonSchemaFormatParam(Body):
    type: Literal["json_schema"]
    name: str
    """A name for the format."""
    schema_: dict[str, Any] = Field(alias="schema")
    """The JSON schema the output must validate against, enforced token by token; keywords the
    server cannot enforce are a 400 naming the keyword."""
    description: str | None = None
    strict: bool | None = None
    """Accepted and echoed; the schema is always enforced."""


TextFormat = Annotated[Union[TextFormatParam, JsonObjectFormatParam, JsonSchemaFormatParam],
                       one_of({"text": TextFormatParam, "json_object": JsonObjectFormatParam,
                                "json_schema": JsonSchemaFormatParam}, "text formats")]


class TextParam(Body):
    format: TextFormat | None = None
    """`text` (the default), `json_object` (any JSON object) or `json_schema`."""


def _metadata(value: dict[str, str]) -> dict[str, str]:
    if len(value) > 16:
        raise ValueError("'metadata' holds at most 16 pairs")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError(f"metadata key {key[:70]!r}... is longer than 64 characters")
        if len(item) > 512:
            raise ValueError(f"metadata value of {key!r} is longer than 512 characters")
    return value


class CreateResponseRequest(Body):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "model": "smollm2-135m", "instructions": "Answer in one word.",
        "input": "What is the capital of France?", "temperature": 0, "max_output_tokens": 16}]})

    PROTO = svc_pb.GenerateRequest
    PROTO_FIELDS = {"max_output_tokens": "max_tokens"}

    model: str | None = None
    """The model (engine) id. Empty or absent: the server's default model."""
    input: Annotated[list[InputItem], BeforeValidator(
        _string_is_user_message, json_schema_input_type=Union[str, list[InputItem]])]
    """A string (one user message), or input items: messages, `function_call` and
    `function_call_output` items."""
    instructions: str | None = None
    """A system message put first. Not carried over to a response that names this one in
    `previous_response_id`, as OpenAI documents."""
    max_output_tokens: int | None = None
    """Most tokens to generate. Absent: until the model stops or the context window is full."""
    temperature: float | None = None
    """Sampling temperature; 0 is greedy."""
    top_p: float | None = None
    """Nucleus sampling probability mass, in (0, 1]."""
    text: TextParam | None = None
    """The output format: plain text, a JSON object, or JSON valid for a schema."""
    tools: list[Tool] | None = None
    """Function tools (`type: "function"`, flat). Other tool types are a 400."""
    tool_choice: ToolChoiceParam | None = None
    """`auto` (the default with tools), `none`, `required`, or `{"type": "function", "name"}`."""
    parallel_tool_calls: bool | None = None
    """Let the model call several tools in one answer (default true)."""
    previous_response_id: str | None = None
    """Continue after a stored response: its whole history (but not its instructions) comes
    before this input. An unknown id is a 404."""
    store: bool | None = True
    """Keep the response (default true), so it can be retrieved and continued. Stored responses
    are sessions of the session store: `resp_<x>` is the session `response-<x>`."""
    stream: bool | None = False
    """Answer with server-sent events instead of one JSON object."""
    stream_options: dict[str, Any] | None = None
    """Accepted and ignored (this server sends no obfuscation padding)."""
    metadata: Annotated[dict[str, str] | None, AfterValidator(
        lambda v: v if v is None else _metadata(v))] = None
    """Up to 16 string pairs, echoed in the answer (not kept with the stored response)."""
    user: str | None = None
    """End-user id; accepted and echoed."""
    safety_identifier: str | None = None
    """Accepted and ignored."""
    prompt_cache_key: str | None = None
    """Accepted and ignored (prefix caching is automatic)."""
    service_tier: str | None = None
    """Accepted and ignored."""
    truncation: Literal["auto", "disabled"] | None = None
    """`disabled` (the default): input longer than the context window is a 400. `auto`: the
    oldest whole turns of the conversation are left out of the prompt until it fits (the
    instructions and the newest input are kept; `usage.truncated_messages` counts them)."""
    reasoning: Annotated[Any, only((None, {}))] = None
    """Not supported: only null or `{}`."""
    include: Annotated[Any, only((None, []))] = None
    """Not supported: only null or `[]`."""
    background: Unsupported = None
    conversation: Unsupported = None
    prompt: Unsupported = None
    top_logprobs: Unsupported = None
    max_tool_calls: Unsupported = None


# -- a turn: the request with its history, as protobuf -------------------------------------------


def new_response_id() -> str:
    return RESPONSE_PREFIX + uuid.uuid4().hex


def _suffix(response_id: str) -> str:
    return response_id.removeprefix(RESPONSE_PREFIX)


def message_id(response_id: str) -> str:
    return f"msg_{_suffix(response_id)}"


def function_call_id(response_id: str, index: int) -> str:
    return f"fc_{_suffix(response_id)}_{index}"


def for_model(messages: list[gen_pb.ChatMessage]) -> list[gen_pb.ChatMessage]:
    """Stored messages as the model sees them: marked system / developer items are system."""
    return [gen_pb.ChatMessage(role="system", content=m.content)
            if m.role == "user" and m.name in SYSTEM_NAMES else m for m in messages]


def _function_names(messages: list[gen_pb.ChatMessage]) -> dict[str, str]:
    return {call.id: call.name for m in messages for call in m.tool_calls}


def input_messages(items: list, history: list[gen_pb.ChatMessage]) -> list[gen_pb.ChatMessage]:
    """The input items as stored messages (see the module's docstring)."""
    out: list[gen_pb.ChatMessage] = []
    names = _function_names(history)
    for item in items:
        if isinstance(item, MessageParam):
            if item.role in SYSTEM_NAMES:
                out.append(gen_pb.ChatMessage(role="user", name=item.role,
                                              content=_text(item.content)))
            else:
                out.append(gen_pb.ChatMessage(role=item.role, content=_text(item.content)))
        elif isinstance(item, FunctionCallParam):
            names[item.call_id] = item.name
            if not out or out[-1].role != "assistant":
                out.append(gen_pb.ChatMessage(role="assistant"))
            out[-1].tool_calls.add(id=item.call_id, name=item.name, arguments=item.arguments)
        else:
            out.append(gen_pb.ChatMessage(role="tool", tool_call_id=item.call_id,
                                          name=names.get(item.call_id, ""),
                                          content=_text(item.output)))
    return out


@dataclass
class Turn:
    """One create request: its id, the stored history it continues, and its input as messages."""

    body: CreateResponseRequest
    history: list[gen_pb.ChatMessage] = field(default_factory=list)
    id: str = field(default_factory=new_response_id)
    created_at: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        self.input = input_messages(self.body.input, self.history)

    def to_pb(self, pb: svc_pb.GenerateRequest | svc_pb.CompleteRequest):
        body = self.body
        pb.model = body.model or ""
        pb.chat.SetInParent()
        if body.instructions:
            pb.chat.messages.add(role="system", content=body.instructions)
        pb.chat.messages.extend(for_model(self.history + self.input))
        if body.temperature is not None:
            pb.sampling.temperature = body.temperature
        if body.top_p is not None:
            pb.sampling.top_p = body.top_p
        if body.max_output_tokens is not None:
            pb.max_tokens = body.max_output_tokens
        text_format = body.text.format if body.text is not None else None
        if isinstance(text_format, JsonObjectFormatParam):
            pb.constraint.json_object = True
        elif isinstance(text_format, JsonSchemaFormatParam):
            pb.constraint.json_schema = json.dumps(text_format.schema_)
        for tool in body.tools or ():
            pb.tools.add(name=tool.name, description=tool.description or "",
                         parameters_json="" if tool.parameters is None
                         else json.dumps(tool.parameters))
        if isinstance(body.tool_choice, str):
            pb.tool_choice.mode = TOOL_CHOICE_MODES[body.tool_choice]
        elif body.tool_choice is not None:
            pb.tool_choice.mode = gen_pb.TOOL_CHOICE_MODE_FUNCTION
            pb.tool_choice.function_name = body.tool_choice.name
        if body.parallel_tool_calls is not None:
            pb.parallel_tool_calls = body.parallel_tool_calls
        pb.truncation = (gen_pb.TRUNCATION_AUTO if body.truncation == "auto"
                         else gen_pb.TRUNCATION_ERROR)
        return pb

    def output_message(self, text: str, calls) -> gen_pb.ChatMessage:
        """This response's output as the stored assistant message, named after the response."""
        return gen_pb.ChatMessage(role="assistant", content=text, name=self.id,
                                  tool_calls=[gen_pb.ToolCall(id=c.id, name=c.name,
                                                              arguments=c.arguments)
                                              for c in calls])

    def session_pb(self, model: str, text: str, calls) -> session_pb.CreateSessionRequest:
        """The stored response: a session holding the whole history (previous history, this
        input, this output), its instructions as the system prompt (so that retrieving it
        shows them; they are not carried over) and its sampling settings as the defaults."""
        body = self.body
        pb = session_pb.CreateSessionRequest(
            model=model, messages=self.history + self.input + [self.output_message(text, calls)])
        if body.instructions is not None:
            pb.system_prompt = body.instructions
        if body.temperature is not None:
            pb.sampling.temperature = body.temperature
        if body.top_p is not None:
            pb.sampling.top_p = body.top_p
        if body.max_output_tokens is not None:
            pb.max_tokens = body.max_output_tokens
        return pb

    def response(self, model: str, *, status: str = "in_progress", output: list | None = None,
                 usage: gen_pb.Usage | None = None, error: dict | None = None) -> Response:
        body = self.body
        tools = [FunctionTool(name=t.name, description=t.description, parameters=t.parameters,
                              strict=True if t.strict is None else t.strict)
                 for t in body.tools or ()]
        choice = body.tool_choice
        if choice is None:
            choice = "auto"
        elif not isinstance(choice, str):
            choice = FunctionChoice(name=choice.name)
        return Response(
            id=self.id, created_at=self.created_at, status=status,
            completed_at=int(time.time()) if status == "completed" else None,
            error=ResponseError(**error) if error else None,
            incomplete_details=IncompleteDetails() if status == "incomplete" else None,
            instructions=body.instructions, max_output_tokens=body.max_output_tokens, model=model,
            output=output or [], parallel_tool_calls=body.parallel_tool_calls is not False,
            previous_response_id=body.previous_response_id, store=body.store is not False,
            temperature=body.temperature, top_p=body.top_p,
            text=TextConfig(format=_format_of(body.text)), tools=tools, tool_choice=choice,
            usage=None if usage is None else Usage.from_pb(usage), user=body.user,
            metadata=body.metadata or {}, truncation=body.truncation or "disabled")


def _format_of(text: TextParam | None):
    given = text.format if text is not None else None
    if isinstance(given, JsonSchemaFormatParam):
        return JsonSchemaFormat(name=given.name, schema_=given.schema_,
                                description=given.description, strict=given.strict)
    if isinstance(given, JsonObjectFormatParam):
        return JsonObjectFormat()
    return TextFormatOut()


def output_items(response_id: str, text: str, calls, *, complete: bool = True) -> list:
    """The output items of an answer: a message when there is text or no tool call, then one
    `function_call` item per call."""
    items: list = []
    if text or not calls:
        items.append(OutputMessage(id=message_id(response_id),
                                   status="completed" if complete else "incomplete",
                                   content=[OutputText(text=text)]))
    items.extend(FunctionCall(id=function_call_id(response_id, j), call_id=c.id, name=c.name,
                              arguments=c.arguments) for j, c in enumerate(calls))
    return items


def stored_response(response_id: str, got: session_pb.GetSessionResponse) -> Response:
    """A stored response rebuilt from its session: the output is the assistant message named
    after it; the previous response is the one whose output comes last before its input."""
    session, messages = got.session, list(got.messages)
    own = [i for i, m in enumerate(messages) if m.role == "assistant" and m.name == response_id]
    output: list = []
    for i in own:
        items = output_items(response_id, messages[i].content, messages[i].tool_calls)
        offset = sum(isinstance(item, FunctionCall) for item in output)
        for item in items:  # several own messages (not made here): keep the call ids unique
            if isinstance(item, FunctionCall):
                item.id = function_call_id(response_id, offset)
                offset += 1
        output.extend(items)
    before = messages[:own[0]] if own else messages
    previous = next((m.name for m in reversed(before) if m.role == "assistant"
                     and m.name.startswith(RESPONSE_PREFIX) and m.name != response_id), None)
    sampling = session.sampling
    return Response(
        id=response_id, created_at=int(session.created_unix), status="completed",
        completed_at=int(session.updated_unix),
        instructions=session.system_prompt if session.HasField("system_prompt") else None,
        max_output_tokens=session.max_tokens if session.HasField("max_tokens") else None,
        model=session.model, output=output, parallel_tool_calls=True,
        previous_response_id=previous, store=True,
        temperature=round(sampling.temperature, 6) if sampling.HasField("temperature") else None,
        top_p=round(sampling.top_p, 6) if sampling.HasField("top_p") else None,  # float32
        text=TextConfig(format=TextFormatOut()), tool_choice="auto", tools=[], usage=None,
        metadata={})


def status_of(finish_reason: int) -> str:
    return "incomplete" if finish_reason == gen_pb.FINISH_REASON_LENGTH else "completed"


# -- answers --------------------------------------------------------------------------------------


class _Answer(Answer):
    model_config = ConfigDict(populate_by_name=True)  # `schema_` is sent as `schema`

    def body(self) -> dict:
        return self.model_dump(mode="json", by_alias=True)


class OutputText(_Answer):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[dict] = []
    """Always empty."""
    logprobs: list[dict] = []
    """Always empty (log probabilities are not supported here)."""


class OutputMessage(_Answer):
    type: Literal["message"] = "message"
    id: str = Field(examples=["msg_0123abcd"])
    status: Literal["in_progress", "completed", "incomplete"]
    """`incomplete` when `max_output_tokens` (or the context window) cut it short."""
    role: Literal["assistant"] = "assistant"
    content: list[OutputText]


class FunctionCall(_Answer):
    type: Literal["function_call"] = "function_call"
    id: str = Field(examples=["fc_0123abcd_0"])
    call_id: str
    """Name it in the `function_call_output` item that answers this call."""
    name: str
    arguments: str
    """A JSON object text, valid for the function's parameter schema (grammar-enforced)."""
    status: Literal["in_progress", "completed", "incomplete"] = "completed"


OutputItem = Annotated[Union[OutputMessage, FunctionCall], Field(discriminator="type")]


class InputTokensDetails(_Answer):
    cached_tokens: int
    """Input tokens whose KV cache was reused (a shared prefix) instead of computed."""
    cache_write_tokens: int = 0
    """Always 0: there are no explicit cache writes here (the SDK's model requires the field)."""


class OutputTokensDetails(_Answer):
    reasoning_tokens: int = 0
    """Always 0."""


class Usage(_Answer):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int
    truncated_messages: int = 0
    """tokenwire: input messages left out of the prompt by `truncation: auto` (oldest first)."""

    @classmethod
    def from_pb(cls, usage: gen_pb.Usage) -> Usage:
        return cls(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens,
                   total_tokens=usage.total_tokens, truncated_messages=usage.truncated_messages,
                   input_tokens_details=InputTokensDetails(cached_tokens=usage.cached_prompt_tokens),
                   output_tokens_details=OutputTokensDetails())


class ResponseError(_Answer):
    code: str
    """`server_error`, `rate_limit_exceeded` or `invalid_prompt`."""
    message: str


class IncompleteDetails(_Answer):
    reason: Literal["max_output_tokens"] = "max_output_tokens"


class FunctionTool(_Answer):
    type: Literal["function"] = "function"
    name: str
    description: str | None
    parameters: dict[str, Any] | None
    strict: bool


class FunctionChoice(_Answer):
    type: Literal["function"] = "function"
    name: str


class TextFormatOut(_Answer):
    type: Literal["text"] = "text"


class JsonObjectFormat(_Answer):
    type: Literal["json_object"] = "json_object"


class JsonSchemaFormat(_Answer):
    type: Literal["json_schema"] = "json_schema"
    name: str
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None
    strict: bool | None


class TextConfig(_Answer):
    format: Annotated[Union[TextFormatOut, JsonObjectFormat, JsonSchemaFormat],
                      Field(discriminator="type")]


class Response(_Answer):
    """A model response. Retrieved from the store (GET), it holds what the session store keeps:
    id, created_at, model, instructions, temperature, top_p, max_output_tokens, output and
    previous_response_id; `usage` is null and `status` is `completed` there, and `tools`,
    `tool_choice`, `text` and `metadata` read as their defaults."""

    id: str = Field(examples=["resp_0123abcd"])
    object: Literal["response"] = "response"
    created_at: int
    """Unix time in seconds."""
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    """`incomplete`: `max_output_tokens` or the context window cut the output short."""
    completed_at: int | None = None
    """Unix time in seconds, once `completed`."""
    error: ResponseError | None = None
    """Set when `failed` (a stream that broke off)."""
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None
    max_output_tokens: int | None
    model: str
    """The model that answered."""
    output: list[OutputItem]
    parallel_tool_calls: bool
    previous_response_id: str | None
    store: bool
    temperature: float | None
    top_p: float | None
    text: TextConfig
    tool_choice: Union[Literal["auto", "none", "required"], FunctionChoice]
    tools: list[FunctionTool]
    truncation: Literal["auto", "disabled"] = "disabled"
    usage: Usage | None
    """Absent (null) while in progress and on a retrieved response."""
    user: str | None = None
    metadata: dict[str, str]
    background: bool = False


class DeletedResponse(_Answer):
    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: bool = True


# -- stream events (built as dicts per token; these are their schemas) ----------------------------


class _Event(_Answer):
    sequence_number: int
    """0, 1, 2, ... in the order sent."""


class ResponseCreatedEvent(_Event):
    type: Literal["response.created"]
    response: Response


class ResponseInProgressEvent(_Event):
    type: Literal["response.in_progress"]
    response: Response


class ResponseCompletedEvent(_Event):
    """The last event of a stream that finished: the whole response, with its usage."""

    type: Literal["response.completed"]
    response: Response


class ResponseIncompleteEvent(_Event):
    """The last event when `max_output_tokens` or the context window cut the output short."""

    type: Literal["response.incomplete"]
    response: Response


class ResponseFailedEvent(_Event):
    """The last event of a stream that broke off (after an `error` event)."""

    type: Literal["response.failed"]
    response: Response


class OutputItemAddedEvent(_Event):
    type: Literal["response.output_item.added"]
    output_index: int
    item: OutputItem


class OutputItemDoneEvent(_Event):
    type: Literal["response.output_item.done"]
    output_index: int
    item: OutputItem


class ContentPartAddedEvent(_Event):
    type: Literal["response.content_part.added"]
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class ContentPartDoneEvent(_Event):
    type: Literal["response.content_part.done"]
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class OutputTextDeltaEvent(_Event):
    type: Literal["response.output_text.delta"]
    item_id: str
    output_index: int
    content_index: int
    delta: str
    """Text added since the previous delta."""
    logprobs: list[dict] = []


class OutputTextDoneEvent(_Event):
    type: Literal["response.output_text.done"]
    item_id: str
    output_index: int
    content_index: int
    text: str
    """The whole text: the deltas joined."""
    logprobs: list[dict] = []


class FunctionCallArgumentsDeltaEvent(_Event):
    type: Literal["response.function_call_arguments.delta"]
    item_id: str
    output_index: int
    delta: str


class FunctionCallArgumentsDoneEvent(_Event):
    type: Literal["response.function_call_arguments.done"]
    item_id: str
    output_index: int
    arguments: str


class ErrorEvent(_Event):
    """An error after the stream started; a `response.failed` event follows."""

    type: Literal["error"]
    code: str | None
    message: str
    param: str | None


class ResponseStreamEvent(RootModel):
    """One event of a response stream (`event: <type>` and `data: <this JSON>`)."""

    root: Annotated[Union[
        ResponseCreatedEvent, ResponseInProgressEvent, OutputItemAddedEvent,
        ContentPartAddedEvent, OutputTextDeltaEvent, OutputTextDoneEvent, ContentPartDoneEvent,
        FunctionCallArgumentsDeltaEvent, FunctionCallArgumentsDoneEvent, OutputItemDoneEvent,
        ResponseCompletedEvent, ResponseIncompleteEvent, ResponseFailedEvent, ErrorEvent],
        Field(discriminator="type")]


DOCUMENTED = (ErrorResponse, CreateResponseRequest, Response, DeletedResponse, ResponseStreamEvent)
