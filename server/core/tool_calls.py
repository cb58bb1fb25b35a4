"""Tool calling, for every backend and every model, in one of two formats.

**Native (Hermes)**, for a model whose chat template renders `tools` itself and writes calls as
`<tool_call>{"name": ..., "arguments": {...}}</tool_call>` (ChatTemplate.tool_format "hermes":
Hermes 2 Pro, Qwen 2.5 and later, and the templates that copied them). The template renders the
tools, the assistant's earlier calls and the tool results; the output is held by a Lark grammar
to one or more such blocks, each call's JSON valid for its tool's schema, or (tool_choice auto
only) to text that does not start with `<`.

**Generic**, llama.cpp's format for every other template (the embedded SmolLM2 among them): the
tools and the answer format go into a system message, the assistant's earlier tool calls are
written back in that same format, and the output is held by a JSON schema to

    {"tool_calls": [{"name": "<tool>", "arguments": {...}}, ...]}    (the call's arguments valid
                                                                     for the tool's schema)
    {"response": "<text for the user>"}                              (tool_choice auto only)

Llama 3's `<|python_tag|>` and Mistral's `[TOOL_CALLS]` syntaxes are not recognised: such models
get the generic format (README "Tool calling"). Either way the deltas coming back are turned into
what the caller expects: text is streamed as it is decoded, and tool calls come on the choice's
last delta, with ids and FinishReason.TOOL_CALLS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import uuid
from typing import AsyncIterator

from server.core.types import (ChatMessage, Constraint, ConstraintKind, Delta, FinishReason,
                               GenerationRequest, Tool, ToolCall, ToolChoice)

_RESPONSE_PREFIX = '{"response":"'
_CALLS_PREFIX = '{"tool_calls":'


def _call_schema(tool: Tool) -> dict:
    return {"type": "object", "properties": {
        "name": {"const": tool.name},
        "arguments": tool.parameters or {"type": "object", "properties": {},
                                         "additionalProperties": False}},
        "required": ["name", "arguments"], "additionalProperties": False}


def _callable(request: GenerationRequest) -> tuple[Tool, ...]:
    if request.tool_choice is ToolChoice.FUNCTION:
        return tuple(t for t in request.tools if t.name == request.tool_name)
    return request.tools


def output_schema(request: GenerationRequest) -> dict:
    """The JSON schema every answer to `request` satisfies (the generic format)."""
    calls: dict = {"type": "array", "items": {"anyOf": [_call_schema(t) for t in _callable(request)]},
                   "minItems": 1}
    if not request.parallel_tool_calls:
        calls["maxItems"] = 1
    with_calls = {"type": "object", "properties": {"tool_calls": calls},
                  "required": ["tool_calls"], "additionalProperties": False}
    if request.tool_choice is not ToolChoice.AUTO:
        return with_calls
    answer = {"type": "object", "properties": {"response": {"type": "string"}},
              "required": ["response"], "additionalProperties": False}
    return {"anyOf": [answer, with_calls]}


def instructions(request: GenerationRequest) -> str:
    listed = json.dumps([{"name": t.name, "description": t.description,
                          "parameters": t.parameters} for t in request.tools], indent=1)
    if request.tool_choice is ToolChoice.FUNCTION:
        how = (f'Call the tool "{request.tool_name}" now: answer with only '
               f'{{"tool_calls": [{{"name": "{request.tool_name}", "arguments": {{...}}}}]}}.')
    elif request.tool_choice is ToolChoice.REQUIRED:
        how = ('Call one or more tools now: answer with only {"tool_calls": [{"name": "<tool>", '
               '"arguments": {...}}]}.')
    else:
        how = ('Answer with only one JSON object: {"tool_calls": [{"name": "<tool>", '
               '"arguments": {...}}]} to call tools, or {"response": "<your answer>"} to answer '
               'the user directly.')
    return f"You can call these tools (their arguments are JSON schemas):\n{listed}\n{how}"


def _call_text(calls: tuple[ToolCall, ...]) -> str:
    return json.dumps({"tool_calls": [{"name": c.name, "arguments": json.loads(c.arguments)}
                                      for c in calls]}, separators=(",", ":"))


def plain_messages(messages: tuple[ChatMessage, ...]) -> tuple[ChatMessage, ...]:
    """Messages as any chat template renders them: an assistant's tool calls become the text the
    model wrote to make them, a tool result stays a "tool" turn naming its call."""
    out = []
    for m in messages:
        if m.tool_calls:
            content = _call_text(m.tool_calls)
            out.append(ChatMessage("assistant", f"{m.content}\n{content}" if m.content else content))
        elif m.role == "tool":
            label = m.name or m.tool_call_id
            out.append(ChatMessage("tool", f"[{label}] {m.content}" if label else m.content))
        else:
            out.append(ChatMessage(m.role, m.content))
    return tuple(out)


def hermes_grammar(request: GenerationRequest) -> str:
    """The Lark grammar every answer to `request` satisfies (the Hermes format)."""
    call = {"anyOf": [_call_schema(t) for t in _callable(request)]}
    rules = ['start: calls | TEXT', 'TEXT: /[^<](.|\\n)*/'] if request.tool_choice is ToolChoice.AUTO \
        else ['start: calls']
    rules += ['calls: call ("\\n" call)*' if request.parallel_tool_calls else 'calls: call',
              'call: "<tool_call>\\n" body "\\n</tool_call>"',
              f"body: %json {json.dumps(call)}"]
    return "\n".join(rules)


def prepare(request: GenerationRequest, tool_format: str = "generic") -> GenerationRequest:
    """The request the backend runs, for a model whose tool format is `tool_format`. Requests
    without tools in play come back unchanged, but for their earlier tool turns written as text
    when the template cannot render them."""
    messages = request.messages
    if messages is None:
        return request
    native = tool_format == "hermes"
    if request.tool_choice is ToolChoice.NONE:
        if request.tools or (not native and any(m.tool_calls or m.role == "tool" for m in messages)):
            # Nothing to interpret on the way back: `tools` goes.
            return dataclasses.replace(request, tools=(),
                                       messages=messages if native else plain_messages(messages))
        return request
    if native:
        return dataclasses.replace(request, template_tools=request.tools, constraint=Constraint(
            ConstraintKind.LARK, hermes_grammar(request), field="tools"))
    plain = plain_messages(messages)
    text = instructions(request)
    if plain and plain[0].role == "system":
        plain = (ChatMessage("system", f"{plain[0].content}\n\n{text}"),) + plain[1:]
    else:
        plain = (ChatMessage("system", text),) + plain
    return dataclasses.replace(
        request, messages=plain,
        constraint=Constraint(ConstraintKind.JSON_SCHEMA, json.dumps(output_schema(request)),
                              field="tools"))


def _new_call(name: str, arguments: dict) -> ToolCall:
    return ToolCall(f"call_{uuid.uuid4().hex[:24]}", name,
                    json.dumps(arguments, separators=(",", ":")))


class _GenericChoice:
    """Turns one choice's constrained JSON back into text or tool calls."""

    def __init__(self, streams_text: bool):
        self.raw = ""
        self.sent = 0  # characters of the response string already released
        self.streams_text = streams_text

    def text_so_far(self) -> str:
        """The decodable part of the `response` string written so far ("" until it is clear that
        the answer is a response)."""
        if not (self.streams_text and self.raw.startswith(_RESPONSE_PREFIX)):
            return ""
        body = self.raw[len(_RESPONSE_PREFIX):]
        end, i = len(body), 0
        while i < len(body):
            c = body[i]
            if c == '"':
                end = i
                break
            if c == "\\":
                size = 6 if body[i + 1:i + 2] == "u" else 2
                if i + size > len(body):
                    end = i
                    break
                if size == 6 and 0xD800 <= int(body[i + 2:i + 6], 16) <= 0xDBFF \
                        and i + 12 > len(body):
                    end = i  # half of a surrogate pair: wait for the other half
                    break
                i += size
                continue
            i += 1
        return json.loads('"' + body[:end] + '"')

    def finish(self) -> tuple[str, tuple[ToolCall, ...]] | None:
        """(text, calls) once the JSON is complete; None when it was cut short."""
        try:
            value = json.loads(self.raw)
        except ValueError:
            return None
        if "response" in value:
            return value["response"], ()
        return "", tuple(_new_call(c["name"], c["arguments"]) for c in value["tool_calls"])


_HERMES_CALL = re.compile(r"<tool_call>\n(.*?)\n</tool_call>", re.S)


class _HermesChoice:
    """Turns one choice's `<tool_call>` blocks, or its text, back into tool calls or text."""

    def __init__(self, streams_text: bool):
        self.raw = ""
        self.sent = 0
        self.streams_text = streams_text

    def text_so_far(self) -> str:
        # The grammar decides on the first character: `<` begins the calls, anything else text.
        return self.raw if self.streams_text and self.raw[:1] not in ("", "<") else ""

    def finish(self) -> tuple[str, tuple[ToolCall, ...]] | None:
        if self.raw[:1] not in ("", "<"):
            return self.raw, ()
        try:
            calls = [json.loads(body) for body in _HERMES_CALL.findall(self.raw)]
        except ValueError:
            return None
        if not calls or _HERMES_CALL.sub("", self.raw).strip():
            return None  # cut short
        return "", tuple(_new_call(c["name"], c["arguments"]) for c in calls)


async def interpret(request: GenerationRequest, deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    """The backend's deltas for a prepared tool request, as text and tool calls."""
    choices: dict[int, _GenericChoice | _HermesChoice] = {}
    async with contextlib.aclosing(deltas) as stream:  # a caller that leaves stops the backend
        async for delta in stream:
            for out in _interpret_one(request, choices, delta):
                yield out


def _interpret_one(request: GenerationRequest, choices: dict, delta: Delta):
    if delta.index not in choices:
        kind = _HermesChoice if request.template_tools else _GenericChoice
        choices[delta.index] = kind(request.tool_choice is ToolChoice.AUTO)
    choice = choices[delta.index]
    choice.raw += delta.text
    if delta.finish is None:
        text = choice.text_so_far()
        new, choice.sent = text[choice.sent:], len(text)
        if new or delta.logprobs:
            yield dataclasses.replace(delta, text=new)
        return
    parsed = choice.finish()
    if parsed is None:  # cut short (max_tokens, the window): what was written, as is
        rest = choice.raw if not choice.sent else choice.text_so_far()[choice.sent:]
        yield dataclasses.replace(delta, text=rest)
        return
    text, calls = parsed
    finish = delta.finish
    if calls:
        finish = dataclasses.replace(finish, reason=FinishReason.TOOL_CALLS)
    yield dataclasses.replace(delta, text=text[choice.sent:], tool_calls=calls, finish=finish)
