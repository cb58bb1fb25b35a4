"""The generic tool format: what the backend is asked for, and how its JSON comes back."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest

from server.core import tool_calls
from server.core.types import (ChatMessage, ConstraintKind, Delta, Finish, FinishReason,
                               GenerationRequest, Timings, Tool, ToolCall, ToolChoice, Usage)

WEATHER = Tool("get_weather", "Weather now.", {"type": "object", "properties": {
    "city": {"type": "string"}}, "required": ["city"]})
CLOCK = Tool("get_time")
TIMINGS = Timings(0, 0, 0, 0, 0, 0)


def _request(choice: ToolChoice, **extra) -> GenerationRequest:
    return GenerationRequest(messages=(ChatMessage("user", "hi"),), tools=(WEATHER, CLOCK),
                             tool_choice=choice, **extra)


def _run(request: GenerationRequest, pieces: list[str], reason=FinishReason.STOP) -> list[Delta]:
    async def backend():
        for piece in pieces:
            yield Delta(piece)
        yield Delta("", finish=Finish(reason, Usage(1, len(pieces)), TIMINGS, 0))

    async def collect():
        return [d async for d in tool_calls.interpret(request, backend())]

    return asyncio.run(collect())


def test_the_schema_admits_exactly_the_formats_each_choice_allows():
    auto = tool_calls.output_schema(_request(ToolChoice.AUTO))
    forced = tool_calls.output_schema(_request(ToolChoice.FUNCTION, tool_name="get_weather"))
    call = {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo"}}]}
    jsonschema.validate({"response": "hello"}, auto)
    jsonschema.validate(call, auto)
    jsonschema.validate(call, forced)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"response": "hello"}, forced)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool_calls": [{"name": "get_time", "arguments": {}}]}, forced)
    with pytest.raises(jsonschema.ValidationError):  # arguments must follow the tool's schema
        jsonschema.validate({"tool_calls": [{"name": "get_weather", "arguments": {}}]}, auto)
    single = tool_calls.output_schema(_request(ToolChoice.REQUIRED, parallel_tool_calls=False))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"tool_calls": call["tool_calls"] * 2}, single)


def test_prepare_describes_the_tools_and_constrains_the_output():
    prepared = tool_calls.prepare(_request(ToolChoice.REQUIRED))
    assert prepared.messages[0].role == "system" and "get_weather" in prepared.messages[0].content
    assert prepared.constraint.kind is ConstraintKind.JSON_SCHEMA
    assert prepared.constraint.field == "tools"
    none = tool_calls.prepare(_request(ToolChoice.NONE))
    assert none.constraint is None and none.tools == ()


def test_earlier_tool_turns_are_written_as_the_model_made_them():
    plain = tool_calls.plain_messages((
        ChatMessage("assistant", "", (ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),)),
        ChatMessage("tool", "sunny", tool_call_id="call_1", name="get_weather")))
    assert json.loads(plain[0].content) == {"tool_calls": [
        {"name": "get_weather", "arguments": {"city": "Oslo"}}]}
    assert plain[1] == ChatMessage("tool", "[get_weather] sunny")


def test_a_response_is_streamed_as_text_with_escapes_decoded_whole():
    pieces = ['{"resp', 'onse":"Hel', 'lo \\', 'n wor', 'ld \\u00', 'e9 \\ud83d', '\\ude00"}']
    deltas = _run(_request(ToolChoice.AUTO), pieces)
    texts = [d.text for d in deltas]
    assert "".join(texts) == "Hello \n world é 😀"
    assert all("\\" not in t for t in texts)
    assert deltas[-1].finish.reason is FinishReason.STOP and deltas[-1].tool_calls == ()


def test_tool_calls_come_on_the_last_delta_with_ids():
    pieces = ['{"tool_calls":[{"name":"get_weather",', '"arguments":{"city":"Oslo"}}]}']
    deltas = _run(_request(ToolChoice.REQUIRED), pieces)
    assert "".join(d.text for d in deltas) == ""
    last = deltas[-1]
    assert last.finish.reason is FinishReason.TOOL_CALLS
    (call,) = last.tool_calls
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Oslo"}
    assert call.id.startswith("call_")


def test_output_cut_short_is_returned_as_written():
    deltas = _run(_request(ToolChoice.REQUIRED), ['{"tool_calls":[{"na'], FinishReason.LENGTH)
    assert "".join(d.text for d in deltas) == '{"tool_calls":[{"na'
    assert deltas[-1].finish.reason is FinishReason.LENGTH and deltas[-1].tool_calls == ()
    cut = _run(_request(ToolChoice.AUTO), ['{"response":"Hel', 'lo wo'], FinishReason.LENGTH)
    assert "".join(d.text for d in cut) == "Hello wo"


# -- the native (Hermes) format --------------------------------------------------------------------


def test_a_hermes_template_renders_the_tools_and_the_grammar_holds_the_calls():
    prepared = tool_calls.prepare(_request(ToolChoice.REQUIRED), "hermes")
    assert prepared.template_tools == (WEATHER, CLOCK)
    assert prepared.messages == _request(ToolChoice.REQUIRED).messages  # no system message added
    assert prepared.constraint.kind is ConstraintKind.LARK
    assert prepared.constraint.source.startswith("start: calls\n")
    auto = tool_calls.prepare(_request(ToolChoice.AUTO), "hermes").constraint.source
    assert auto.startswith("start: calls | TEXT")
    single = tool_calls.prepare(_request(ToolChoice.REQUIRED, parallel_tool_calls=False), "hermes")
    assert "calls: call\n" in single.constraint.source


def test_hermes_blocks_come_back_as_calls():
    request = tool_calls.prepare(_request(ToolChoice.REQUIRED), "hermes")
    out = _run(request, ['<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}',
                         '\n</tool_call>\n<tool_call>\n{"name": "get_time", "arguments": {}}\n',
                         "</tool_call>"])
    assert "".join(d.text for d in out) == ""
    assert out[-1].finish.reason is FinishReason.TOOL_CALLS
    assert [(c.name, json.loads(c.arguments)) for c in out[-1].tool_calls] == [
        ("get_weather", {"city": "Oslo"}), ("get_time", {})]


def test_hermes_text_in_auto_mode_streams_as_it_comes():
    request = tool_calls.prepare(_request(ToolChoice.AUTO), "hermes")
    out = _run(request, ["Hello", " there"])
    assert [d.text for d in out] == ["Hello", " there", ""]
    assert out[-1].finish.reason is FinishReason.STOP and not out[-1].tool_calls


def test_a_hermes_call_cut_short_is_returned_as_written():
    request = tool_calls.prepare(_request(ToolChoice.REQUIRED), "hermes")
    out = _run(request, ['<tool_call>\n{"name": "get_wea'], FinishReason.LENGTH)
    assert "".join(d.text for d in out) == '<tool_call>\n{"name": "get_wea'
    assert out[-1].finish.reason is FinishReason.LENGTH and not out[-1].tool_calls


def test_with_tool_choice_none_a_hermes_template_renders_the_history_itself():
    history = (ChatMessage("user", "hi"),
               ChatMessage("assistant", "", tool_calls=(ToolCall("c1", "get_time", "{}"),)),
               ChatMessage("tool", "noon", tool_call_id="c1"))
    request = GenerationRequest(messages=history, tools=(CLOCK,), tool_choice=ToolChoice.NONE)
    native = tool_calls.prepare(request, "hermes")
    assert native.messages == history and native.tools == () and native.constraint is None
    generic = tool_calls.prepare(request)
    assert generic.messages[1].tool_calls == () and "get_time" in generic.messages[1].content
