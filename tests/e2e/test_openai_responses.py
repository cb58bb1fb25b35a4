"""The OpenAI Responses API (`client.responses`) with the official openai SDK against the bridge:
text, message items, both kinds of streams, JSON schema output, function calls and their outputs,
`previous_response_id` chains, retrieve and delete, errors; answers checked against the served
OpenAPI document, and the stored responses read back through the session API."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest
import requests
from openai._models import construct_type
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent
from openapi_schema_validator import OAS30Validator

from rest_bridge.families.openai_responses import store

INSTRUCTIONS = "Answer in one word."
QUESTION = "What is the capital of France?"
GREEDY = {"model": "default", "temperature": 0}
WEATHER_TOOL = {
    "type": "function", "name": "get_weather", "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string",
                                                             "enum": ["Paris", "London", "Rome"]}},
                   "required": ["city"], "additionalProperties": False},
    "strict": True}
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string",
                                                         "enum": ["Paris", "London", "Rome"]}},
               "required": ["city"], "additionalProperties": False}


@pytest.fixture
def sdk(bridge):
    return openai.OpenAI(base_url=bridge.base_url + "/v1", api_key="not-needed", max_retries=0,
                         timeout=240)


@pytest.fixture(scope="module")
def document(bridge):
    return requests.get(bridge.base_url + "/openapi.json", timeout=60).json()


def conforms(document: dict, name: str, instance) -> None:
    schema = {"$ref": f"#/components/schemas/openai_responses.{name}",
              "components": document["components"]}
    errors = sorted(OAS30Validator(schema).iter_errors(instance), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def stored_session(bridge, response_id: str) -> dict:
    """The session that stores a response, through the session API (transcoded GetSession)."""
    session_id = "response-" + response_id.removeprefix("resp_")
    answer = requests.get(f"{bridge.base_url}/v1/sessions/{session_id}", timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_string_input_is_answered_stored_retrieved_and_deleted(sdk, bridge, document):
    raw = sdk.responses.with_raw_response.create(input=QUESTION, instructions=INSTRUCTIONS,
                                                 max_output_tokens=16, **GREEDY)
    conforms(document, "Response", raw.http_response.json())
    response = raw.parse()
    assert "Paris" in response.output_text
    assert response.id.startswith("resp_") and response.object == "response"
    assert response.status == "completed" and response.error is None
    assert response.model == "default" and response.instructions == INSTRUCTIONS
    message = response.output[0]
    assert message.type == "message" and message.id.startswith("msg_")
    assert message.role == "assistant" and message.content[0].type == "output_text"
    usage = response.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens > 0

    raw = sdk.responses.with_raw_response.retrieve(response.id)
    conforms(document, "Response", raw.http_response.json())
    stored = raw.parse()
    assert stored.id == response.id and stored.output_text == response.output_text
    assert stored.output[0].id == message.id and stored.instructions == INSTRUCTIONS
    assert stored.usage is None and stored.temperature == 0 and stored.max_output_tokens == 16
    session = stored_session(bridge, response.id)
    assert session["session"]["systemPrompt"] == INSTRUCTIONS
    assert [(m["role"], m["content"]) for m in session["messages"]] == [
        ("user", QUESTION), ("assistant", response.output_text)]

    sdk.responses.delete(response.id)
    for again in (lambda: sdk.responses.retrieve(response.id),
                  lambda: sdk.responses.delete(response.id)):
        with pytest.raises(openai.NotFoundError):
            again()


def test_message_items_with_a_developer_message_and_store_false(sdk, bridge):
    response = sdk.responses.create(input=[
        {"type": "message", "role": "developer", "content": INSTRUCTIONS},
        {"role": "user", "content": [{"type": "input_text", "text": QUESTION}]},
    ], max_output_tokens=16, **GREEDY)
    assert "Paris" in response.output_text
    # The session store keeps no system messages in a history: the developer item is a user
    # message named "developer" there, and a system message again for the model.
    messages = stored_session(bridge, response.id)["messages"]
    assert (messages[0]["role"], messages[0]["name"]) == ("user", "developer")
    assert messages[0]["content"] == INSTRUCTIONS
    unstored = sdk.responses.create(input=QUESTION, instructions=INSTRUCTIONS,
                                    max_output_tokens=16, store=False, **GREEDY)
    assert unstored.store is False and unstored.output_text == response.output_text
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(unstored.id)


def test_the_stream_helper_accumulates_the_deltas_into_the_final_response(sdk):
    with sdk.responses.stream(input=QUESTION, instructions=INSTRUCTIONS, max_output_tokens=16,
                              **GREEDY) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == ["response.created", "response.in_progress",
                         "response.output_item.added", "response.content_part.added"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done",
                          "response.output_item.done", "response.completed"]
    numbers = [e.sequence_number for e in events]
    assert numbers == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "Paris" in deltas and deltas == final.output_text
    assert final.status == "completed" and final.usage.output_tokens > 0
    assert {e.response.id for e in events if hasattr(e, "response")} == {final.id}


def test_create_with_stream_true_sends_typed_sse_events(sdk, bridge, document):
    events = list(sdk.responses.create(input=QUESTION, instructions=INSTRUCTIONS, stream=True,
                                       max_output_tokens=16, **GREEDY))
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and text == events[-1].response.output_text
    # On the wire: `event: <type>` matches the data's type, and each data matches its schema.
    wire = requests.post(f"{bridge.base_url}/v1/responses", timeout=240, json={
        "input": QUESTION, "instructions": INSTRUCTIONS, "stream": True, "store": False,
        "max_output_tokens": 16, **GREEDY})
    assert wire.headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in wire.text.split("\n\n") if b.strip()]
    for block in blocks:
        event_line, data_line = block.split("\n")
        data = json.loads(data_line.removeprefix("data: "))
        assert event_line == f"event: {data['type']}"
        conforms(document, "ResponseStreamEvent", data)
    assert json.loads(blocks[-1].split("\n")[1][6:])["response"]["output"][0]["content"][0][
        "text"] == text


def test_json_schema_output_validates(sdk):
    response = sdk.responses.create(
        input="Which city is the capital of France?", max_output_tokens=48,
        text={"format": {"type": "json_schema", "name": "city", "schema": CITY_SCHEMA,
                         "strict": True}}, **GREEDY)
    assert response.status == "completed"
    jsonschema.validate(json.loads(response.output_text), CITY_SCHEMA)
    assert response.text.format.type == "json_schema" and response.text.format.name == "city"


def test_a_forced_function_call_and_its_output_continue_the_conversation(sdk, bridge):
    first = sdk.responses.create(input="What is the weather in Paris?", tools=[WEATHER_TOOL],
                                 tool_choice={"type": "function", "name": "get_weather"},
                                 max_output_tokens=48, **GREEDY)
    call = first.output[-1]
    assert call.type == "function_call" and call.name == "get_weather" and call.id.startswith("fc_")
    arguments = json.loads(call.arguments)
    jsonschema.validate(arguments, WEATHER_TOOL["parameters"])
    assert first.tools[0].name == "get_weather" and first.tool_choice.name == "get_weather"

    follow = sdk.responses.create(
        previous_response_id=first.id, max_output_tokens=24, input=[
            {"type": "function_call_output", "call_id": call.call_id,
             "output": json.dumps({"temperature_c": 21, "sky": "sunny"})}], **GREEDY)
    assert follow.output_text.strip() and follow.previous_response_id == first.id

    messages = stored_session(bridge, follow.id)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["toolCalls"] == [{"id": call.call_id, "name": "get_weather",
                                         "arguments": call.arguments}]
    assert messages[2]["toolCallId"] == call.call_id and messages[2]["name"] == "get_weather"
    again = sdk.responses.retrieve(first.id).output[-1]
    assert (again.type, again.id, again.call_id, again.arguments) == (
        "function_call", call.id, call.call_id, call.arguments)
    assert sdk.responses.retrieve(follow.id).previous_response_id == first.id


def test_a_streamed_function_call(sdk):
    with sdk.responses.stream(input="What is the weather in Rome?", tools=[WEATHER_TOOL],
                              tool_choice="required", max_output_tokens=48, store=False,
                              **GREEDY) as stream:
        kinds = [e.type for e in stream]
        final = stream.get_final_response()
    assert kinds[2:6] == ["response.output_item.added", "response.function_call_arguments.delta",
                          "response.function_call_arguments.done", "response.output_item.done"]
    call = final.output[0]
    assert call.type == "function_call" and call.parsed_arguments == json.loads(call.arguments)


def test_previous_response_id_carries_the_history_but_not_the_instructions(sdk, bridge):
    first = sdk.responses.create(input="My name is Ada.", instructions="Be brief.",
                                 max_output_tokens=12, **GREEDY)
    second = sdk.responses.create(input="What is my name?", previous_response_id=first.id,
                                  max_output_tokens=12, **GREEDY)
    session = stored_session(bridge, second.id)
    assert [(m["role"], m["content"]) for m in session["messages"]] == [
        ("user", "My name is Ada."), ("assistant", first.output_text),
        ("user", "What is my name?"), ("assistant", second.output_text)]
    assert "systemPrompt" not in session["session"]  # first's instructions stayed with first
    stored = sdk.responses.retrieve(second.id)
    assert stored.previous_response_id == first.id and stored.instructions is None
    assert stored.output_text == second.output_text
    assert sdk.responses.retrieve(first.id).previous_response_id is None


def test_errors_name_the_parameter(sdk):
    with pytest.raises(openai.NotFoundError) as missing:
        sdk.responses.create(input="hi", previous_response_id="resp_0123456789abcdef", **GREEDY)
    assert missing.value.param == "previous_response_id"
    assert missing.value.code == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(input="hi", previous_response_id="not-a-response-id", **GREEDY)
    with pytest.raises(openai.BadRequestError) as tool:
        sdk.responses.create(input="hi", tools=[{"type": "web_search"}], **GREEDY)
    assert tool.value.param == "tools[0].type" and tool.value.code == "unsupported_parameter"
    with pytest.raises(openai.BadRequestError) as background:
        sdk.responses.create(input="hi", background=True, **GREEDY)
    assert background.value.param == "background"
    with pytest.raises(openai.BadRequestError) as part:
        sdk.responses.create(input=[{"role": "user", "content": [
            {"type": "input_image", "image_url": "data:image/png;base64,AA=="}]}], **GREEDY)
    assert part.value.param == "input[0].content[0].type"
    assert part.value.code == "unsupported_content"
    # A stream's early error is a real HTTP status, with the server's field in API terms.
    with pytest.raises(openai.BadRequestError) as streamed:
        sdk.responses.create(input="hi", stream=True, temperature=-1, model="default")
    assert streamed.value.param == "temperature"
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve("nope")


def test_a_failure_after_the_stream_started_ends_it_with_error_and_response_failed(
        http, monkeypatch):
    # In-process, so that storing can be made to fail for real: the server refuses the session
    # id (spaces), after the whole answer was streamed.
    monkeypatch.setattr(store, "session_id", lambda response_id: "not a session id")
    answer = http.post("/v1/responses", json={"input": QUESTION, "instructions": INSTRUCTIONS,
                                              "stream": True, "max_output_tokens": 16, **GREEDY})
    assert answer.status_code == 200
    blocks = [b for b in answer.get_data(as_text=True).split("\n\n") if b]
    # Fed to the SDK's own stream accumulator, as client.responses.stream(...) would.
    state = ResponseStreamState(input_tools=[], text_format=omit)
    events = [event for block in blocks for event in state.handle_event(construct_type(
        type_=ResponseStreamEvent, value=json.loads(block.split("\n")[1][len("data: "):])))]
    assert [e.type for e in events[-3:]] == ["response.output_item.done", "error",
                                             "response.failed"]
    error, failed = events[-2], events[-1].response
    assert error.message and failed.status == "failed" and failed.error.message == error.message
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "Paris" in text and failed.output[0].content[0].text == text
    assert failed.output[0].status == "completed"
