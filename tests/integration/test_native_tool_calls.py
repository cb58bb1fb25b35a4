"""A model whose chat template renders tools itself (the Hermes format: Hermes 2 Pro, Qwen 2.5 and
their descendants) gets the tools through its own template and calls them in its own syntax,
`<tool_call>{"name", "arguments"}</tool_call>`, held to it by a grammar. The embedded SmolLM2 has
no such template, so these tests give a copy of it one: the weights are the same, only the
prompt format and the call syntax change."""

from __future__ import annotations

import json
import subprocess
import sys

import jsonschema
import pytest

from server.config import embedded_model_path, load_settings
from server.core.chat_template import ChatTemplate
from server.core.types import ChatMessage, Tool, ToolCall
from tests.helpers import ServerThread
from tokenwire import Client

# Written for these tests in the shape such templates have: ChatML, the tools listed as JSON in
# <tools> tags in the system turn, calls and results in <tool_call> / <tool_response> tags.
HERMES_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n"
    "{%- if messages[0].role == 'system' %}{{ messages[0].content }}\n\n{% endif %}"
    "You may call functions. Their signatures are in <tools></tools> tags:\n<tools>"
    "{%- for tool in tools %}\n{{ tool | tojson }}{%- endfor %}\n</tools>\n"
    "To call one, answer with <tool_call>\n{\"name\": <name>, \"arguments\": <object>}\n"
    "</tool_call><|im_end|>\n"
    "{%- elif messages[0].role == 'system' %}<|im_start|>system\n{{ messages[0].content }}"
    "<|im_end|>\n{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'tool' %}<|im_start|>user\n<tool_response>\n{{ message.content }}"
    "\n</tool_response><|im_end|>\n"
    "{%- elif message.role == 'assistant' and message.tool_calls is defined %}"
    "<|im_start|>assistant{% if message.content %}\n{{ message.content }}{% endif %}"
    "{%- for call in message.tool_calls %}\n<tool_call>\n"
    "{\"name\": \"{{ call.function.name }}\", \"arguments\": {{ call.function.arguments | tojson }}}"
    "\n</tool_call>{%- endfor %}<|im_end|>\n"
    "{%- elif message.role != 'system' %}<|im_start|>{{ message.role }}\n{{ message.content }}"
    "<|im_end|>\n{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

WEATHER = {"name": "get_weather", "description": "The weather in a city now.",
           "parameters": {"type": "object", "properties": {
               "city": {"type": "string", "maxLength": 40},
               "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
               "required": ["city", "unit"], "additionalProperties": False}}
CLOCK = {"name": "get_time", "description": "The time in a time zone.",
         "parameters": {"type": "object", "properties": {"zone": {"type": "string", "maxLength": 30}},
                        "required": ["zone"], "additionalProperties": False}}
QUESTION = [{"role": "user", "content": "What is the weather in Paris, in celsius?"}]
GREEDY = dict(temperature=0, max_tokens=96)


@pytest.fixture(scope="module")
def hermes_model(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("hermes") / "smollm2-hermes.gguf"
    subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", "--force",
                    "--chat-template", HERMES_TEMPLATE, str(embedded_model_path()), str(path)],
                   check=True, capture_output=True)
    return str(path)


@pytest.fixture(scope="module")
def hermes_client(hermes_model):
    settings = load_settings(environ={}, overrides={
        "server": {"host": "127.0.0.1", "grpc_port": 0},
        "models": [{"id": "default", "path": hermes_model}]})
    running = ServerThread(settings).start()
    try:
        with Client(running.target, timeout=240) as client:
            yield client
    finally:
        running.stop()


def _valid(call, tool: dict) -> dict:
    assert call.id.startswith("call_") and call.name == tool["name"]
    arguments = json.loads(call.arguments)
    jsonschema.validate(arguments, tool["parameters"])
    return arguments


def test_the_template_renders_the_tools_the_calls_and_the_results():
    template = ChatTemplate(HERMES_TEMPLATE, bos_token="", eos_token="<|im_end|>")
    assert template.tool_format == "hermes"
    assert ChatTemplate(None, bos_token="", eos_token="").tool_format == "generic"
    prompt = template.render((
        ChatMessage("user", "Weather in Oslo?"),
        ChatMessage("assistant", "", tool_calls=(ToolCall("call_1", "get_weather",
                                                          '{"city":"Oslo","unit":"celsius"}'),)),
        ChatMessage("tool", "-3 degrees", tool_call_id="call_1", name="get_weather"),
    ), tools=(Tool(WEATHER["name"], WEATHER["description"], WEATHER["parameters"]),))
    assert '"name": "get_weather"' in prompt and "<tools>" in prompt
    assert '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "unit": "celsius"}}' \
           in prompt
    assert "<tool_response>\n-3 degrees\n</tool_response>" in prompt


def test_a_forced_call_comes_in_the_native_syntax_with_valid_arguments(hermes_client):
    answer = hermes_client.complete(messages=QUESTION, tools=[WEATHER, CLOCK],
                                    tool_choice="get_weather", **GREEDY)
    assert answer.finish_reason == "tool_calls" and answer.text == ""
    assert len(answer.tool_calls) >= 1
    for call in answer.tool_calls:
        _valid(call, WEATHER)


def test_required_without_parallel_calls_is_exactly_one_call_of_a_listed_tool(hermes_client):
    answer = hermes_client.complete(messages=QUESTION, tools=[WEATHER, CLOCK],
                                    tool_choice="required", parallel_tool_calls=False, **GREEDY)
    assert answer.finish_reason == "tool_calls" and len(answer.tool_calls) == 1
    (call,) = answer.tool_calls
    _valid(call, {"get_weather": WEATHER, "get_time": CLOCK}[call.name])


def test_auto_answers_in_text_or_in_valid_calls_and_streams_the_text(hermes_client):
    for content in ("Say hello to me.", QUESTION[0]["content"]):
        deltas = list(hermes_client.generate(messages=[{"role": "user", "content": content}],
                                             tools=[WEATHER], tool_choice="auto", **GREEDY))
        last = deltas[-1]
        text = "".join(d.text for d in deltas)
        if last.tool_calls:
            assert last.finish_reason == "tool_calls" and text == ""
            for call in last.tool_calls:
                _valid(call, WEATHER)
        else:
            assert text and not text.startswith("<") and "<tool_call>" not in text[:1]


def test_a_tool_result_goes_back_through_the_template_and_is_answered(hermes_client):
    forced = hermes_client.complete(messages=QUESTION, tools=[WEATHER], tool_choice="get_weather",
                                    **GREEDY)
    (call,) = forced.tool_calls[:1]
    history = QUESTION + [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": call.id, "name": call.name, "arguments": call.arguments}]},
        {"role": "tool", "tool_call_id": call.id, "name": call.name, "content": "18 degrees, sunny"}]
    answer = hermes_client.complete(messages=history, tools=[WEATHER], tool_choice="none", **GREEDY)
    assert answer.finish_reason in ("stop", "length") and answer.text and not answer.tool_calls
