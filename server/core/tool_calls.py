"""Tool calling in the generic format, for every backend and every model.

A request with tools is rewritten before it reaches the backend: the tools and the answer format
go into a system message, the assistant's earlier tool calls are written back in that same
format, and the output is constrained by a JSON schema (an `OutputConstraint`), so the model can
only produce

    {"tool_calls": [{"name": "<tool>", "arguments": {...}}, ...]}    (the call's arguments valid
                                                                     for the tool's schema)
    {"response": "<text for the user>"}                              (tool_choice auto only)

This is llama.cpp's "generic" tool format: it works with models whose chat template knows nothing
of tools (the embedded SmolLM2 among them), at the price of ignoring the native call syntax of
models trained for one (Hermes' `<tool_call>` tags, Llama 3's `<|python_tag|>`); README
"Tool calling" says so. The deltas coming back are turned into what the caller expects: the
`response` string is streamed as plain text as it is decoded, and tool calls come on the choice's
last delta, with ids and FinishReason.TOOL_CALLS.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
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


def output_schema(request: GenerationRequest) -> dict:
    """The JSON schema every answer to `request` satisfies."""
    tools = request.tools
    if request.tool_choice is ToolChoice.FUNCTION:
        tools = tuple(t for t in tools if t.name == request.tool_name)
    calls: dict = {"type": "array", "items": {"anyOf": [_call_schema(t) for t in tools]},
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


def prepare(request: GenerationRequest) -> GenerationRequest:
    """The request the backend runs: tools described in the system message, the output
    constrained to the format above. Requests without tools in play come back unchanged, but
    for their earlier tool turns written as text."""
    messages = request.messages
    if messages is None:
        return request
    if request.tool_choice is ToolChoice.NONE:
        if request.tools or any(m.tool_calls or m.role == "tool" for m in messages):
            # Nothing to interpret on the way back: `tools` goes.
            return dataclasses.replace(request, messages=plain_messages(messages), tools=())
        return request
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


class _Choice:
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
        return "", tuple(ToolCall(f"call_{uuid.uuid4().hex[:24]}", c["name"],
                                  json.dumps(c["arguments"], separators=(",", ":")))
                         for c in value["tool_calls"])


async def interpret(request: GenerationRequest, deltas: AsyncIterator[Delta]) -> AsyncIterator[Delta]:
    """The backend's deltas for a prepared tool request, as text and tool calls."""
    choices: dict[int, _Choice] = {}
    async with contextlib.aclosing(deltas) as stream:  # a caller that leaves stops the backend
        async for delta in stream:
            for out in _interpret_one(request, choices, delta):
                yield out


def _interpret_one(request: GenerationRequest, choices: dict[int, _Choice], delta: Delta):
    choice = choices.setdefault(delta.index, _Choice(request.tool_choice is ToolChoice.AUTO))
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
