"""Structured output, tool calls, log probabilities and n choices through the official openai SDK
(the OpenAI family of the bridge over real HTTP, the embedded SmolLM2 model behind it).

Greedy and short throughout: the 135M model follows a grammar reliably, not instructions, so the
tests check what the server enforces (the schema, the call format), not what the model chose.
"""

from __future__ import annotations

import json
from typing import Literal

import jsonschema
import openai
import pydantic
import pytest

from tests.conftest import CAPITAL_QUESTION

PERSON = [{"role": "user", "content": "Give me a person as JSON."}]
WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
GREEDY = dict(model="default", temperature=0)

SCHEMAS = {
    "required_and_closed": {
        "type": "object", "additionalProperties": False, "required": ["name", "age"],
        "properties": {"name": {"type": "string", "maxLength": 20}, "age": {"type": "integer"}}},
    "nested_objects": {
        "type": "object", "additionalProperties": False, "required": ["person"],
        "properties": {"person": {
            "type": "object", "additionalProperties": False, "required": ["name", "address"],
            "properties": {"name": {"type": "string", "maxLength": 12}, "address": {
                "type": "object", "additionalProperties": False, "required": ["city", "zip"],
                "properties": {"city": {"type": "string", "maxLength": 12},
                               "zip": {"type": "integer"}}}}}}},
    "array_min_items": {
        "type": "object", "additionalProperties": False, "required": ["tags"],
        "properties": {"tags": {"type": "array", "minItems": 2, "maxItems": 3,
                                "items": {"type": "string", "maxLength": 8}}}},
    "enum": {
        "type": "object", "additionalProperties": False, "required": ["color", "ok"],
        "properties": {"color": {"enum": ["red", "green", "blue"]}, "ok": {"type": "boolean"}}},
    "defs_and_ref": {
        "$defs": {"point": {"type": "object", "additionalProperties": False,
                            "required": ["x", "y"],
                            "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}}},
        "type": "object", "additionalProperties": False, "required": ["a", "b"],
        "properties": {"a": {"$ref": "#/$defs/point"}, "b": {"$ref": "#/$defs/point"}}},
}

WEATHER_PARAMETERS = {
    "type": "object", "additionalProperties": False, "required": ["city", "unit"],
    "properties": {"city": {"type": "string", "maxLength": 20},
                   "unit": {"enum": ["celsius", "fahrenheit"]}}}
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                                      "parameters": WEATHER_PARAMETERS}},
    {"type": "function", "function": {"name": "get_time", "description": "Local time of a city",
                                      "parameters": {"type": "object",
                                                     "properties": {"city": {"type": "string",
                                                                             "maxLength": 20}},
                                                     "required": ["city"],
                                                     "additionalProperties": False}}},
]


@pytest.fixture
def sdk(bridge):
    return openai.OpenAI(base_url=bridge.base_url + "/v1", api_key="not-needed", max_retries=0,
                         timeout=240)


def _schema_format(name: str) -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": SCHEMAS[name],
                                                   "strict": True}}


def _bad_request(call) -> dict:
    with pytest.raises(openai.BadRequestError) as caught:
        call()
    body = caught.value.body
    assert body["type"] == "invalid_request_error"
    return body


# -- structured output ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", SCHEMAS)
def test_json_schema_answers_parse_and_validate(sdk, name):
    reply = sdk.chat.completions.create(messages=PERSON, max_tokens=80,
                                        response_format=_schema_format(name), **GREEDY)
    choice = reply.choices[0]
    assert choice.finish_reason == "stop", choice.message.content
    jsonschema.validate(json.loads(choice.message.content), SCHEMAS[name])


@pytest.mark.parametrize("name", SCHEMAS)
def test_streamed_json_schema_answers_parse_and_validate(sdk, name):
    chunks = list(sdk.chat.completions.create(messages=PERSON, max_tokens=80, stream=True,
                                              response_format=_schema_format(name), **GREEDY))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    jsonschema.validate(json.loads(text), SCHEMAS[name])


class City(pydantic.BaseModel):
    name: str = pydantic.Field(max_length=16)
    country: str = pydantic.Field(max_length=16)
    size: Literal["small", "big"]


def test_the_sdk_parse_helper_gets_its_pydantic_model(sdk):
    reply = sdk.chat.completions.parse(messages=[{"role": "user", "content": "Name a city."}],
                                       max_tokens=60, response_format=City, **GREEDY)
    parsed = reply.choices[0].message.parsed
    assert isinstance(parsed, City) and parsed.size in ("small", "big")


def test_json_object_mode_answers_an_object(sdk):
    reply = sdk.chat.completions.create(messages=PERSON, max_tokens=60,
                                        response_format={"type": "json_object"}, **GREEDY)
    assert reply.choices[0].finish_reason == "stop"
    assert isinstance(json.loads(reply.choices[0].message.content), dict)


def test_completions_take_a_response_format_and_a_grammar(sdk):
    whole = sdk.completions.create(prompt="Is the sky blue? Answer:", max_tokens=5,
                                   extra_body={"grammar": 'root ::= " yes" | " no"'}, **GREEDY)
    assert whole.choices[0].text in (" yes", " no")
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"],
              "additionalProperties": False}
    shaped = sdk.completions.create(prompt="A number as JSON:", max_tokens=20, **GREEDY,
                                    extra_body={"response_format": {
                                        "type": "json_schema",
                                        "json_schema": {"name": "n", "schema": schema}}})
    jsonschema.validate(json.loads(shaped.choices[0].text), schema)


def test_a_llama_server_json_schema_field_constrains_chat(sdk):
    schema = SCHEMAS["enum"]
    reply = sdk.chat.completions.create(messages=PERSON, max_tokens=40, **GREEDY,
                                        extra_body={"json_schema": schema})
    jsonschema.validate(json.loads(reply.choices[0].message.content), schema)


def test_an_unenforceable_keyword_is_a_400_naming_it(sdk):
    schema = {"type": "object", "not": {"required": ["a"]}}
    for stream in (False, True):
        body = _bad_request(lambda: sdk.chat.completions.create(
            messages=PERSON, max_tokens=5, stream=stream, **GREEDY,
            response_format={"type": "json_schema", "json_schema": {"name": "x",
                                                                    "schema": schema}}))
        assert body["param"] == "response_format" and '"not"' in body["message"]
    # The same schema sent as llama-server's `json_schema` is named as that.
    body = _bad_request(lambda: sdk.chat.completions.create(
        messages=PERSON, max_tokens=5, extra_body={"json_schema": schema}, **GREEDY))
    assert body["param"] == "json_schema"


def test_two_constraints_at_once_are_a_400(sdk):
    body = _bad_request(lambda: sdk.chat.completions.create(
        messages=PERSON, response_format={"type": "json_object"}, **GREEDY,
        extra_body={"grammar": 'root ::= "a"'}))
    assert body["param"] == "grammar"
    body = _bad_request(lambda: sdk.chat.completions.create(
        messages=PERSON, response_format={"type": "xml"}, **GREEDY))
    assert body["param"] == "response_format.type" and body["code"] == "unsupported_parameter"


# -- tool calls -----------------------------------------------------------------------------------


def _one_weather_call(message) -> dict:
    assert message.content is None
    assert len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.type == "function" and call.id
    assert call.function.name == "get_weather"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, WEATHER_PARAMETERS)
    return arguments


def test_a_named_function_is_called_with_valid_arguments(sdk):
    reply = sdk.chat.completions.create(
        messages=WEATHER, max_tokens=60, tools=TOOLS, **GREEDY,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert reply.choices[0].finish_reason == "tool_calls"
    _one_weather_call(reply.choices[0].message)


def test_required_without_parallel_calls_makes_exactly_one_call(sdk):
    reply = sdk.chat.completions.create(messages=WEATHER, max_tokens=60, tools=TOOLS[:1],
                                        tool_choice="required", parallel_tool_calls=False,
                                        **GREEDY)
    assert reply.choices[0].finish_reason == "tool_calls"
    _one_weather_call(reply.choices[0].message)


class GetWeather(pydantic.BaseModel):
    city: str = pydantic.Field(max_length=20)
    unit: Literal["celsius", "fahrenheit"]


def test_a_streamed_tool_call_is_assembled_by_the_sdk_stream_helper(sdk):
    tool = openai.pydantic_function_tool(GetWeather, name="get_weather")
    request = dict(messages=WEATHER, max_tokens=60, tools=[tool], tool_choice="required",
                   parallel_tool_calls=False, **GREEDY)
    with sdk.chat.completions.stream(**request) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_completion()
    assert "tool_calls.function.arguments.done" in events
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert isinstance(call.function.parsed_arguments, GetWeather)
    # The same call as the JSON answer's (greedy), but for its id.
    whole = sdk.chat.completions.create(**request).choices[0].message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == \
        (whole.function.name, whole.function.arguments)


def test_raw_tool_call_chunks(sdk):
    chunks = list(sdk.chat.completions.create(
        messages=WEATHER, max_tokens=60, tools=TOOLS, stream=True, logprobs=True, **GREEDY,
        tool_choice={"type": "function", "function": {"name": "get_weather"}}))
    assert chunks[0].choices[0].delta.role == "assistant"
    # The call's JSON is held back as text: its tokens' logprobs come with no content.
    assert all(not c.choices[0].delta.content for c in chunks)
    assert sum(len(c.choices[0].logprobs.content) for c in chunks if c.choices[0].logprobs) > 5
    calls = [c.choices[0].delta.tool_calls for c in chunks if c.choices[0].delta.tool_calls]
    assert len(calls) == 1 and calls[0][0].index == 0 and calls[0][0].id.startswith("call_")
    jsonschema.validate(json.loads(calls[0][0].function.arguments), WEATHER_PARAMETERS)
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_tool_result_round_trip_gets_an_answer(sdk):
    first = sdk.chat.completions.create(
        messages=WEATHER, max_tokens=60, tools=TOOLS, **GREEDY,
        tool_choice={"type": "function", "function": {"name": "get_weather"}})
    call = first.choices[0].message.tool_calls[0]
    history = WEATHER + [
        first.choices[0].message.model_dump(exclude_none=True),  # as the SDK's users send it back
        {"role": "tool", "tool_call_id": call.id,
         "content": json.dumps({"temperature": 21, "sky": "sunny"})}]
    assert history[1]["tool_calls"][0]["id"] == call.id and "content" not in history[1]
    answer = sdk.chat.completions.create(messages=history, max_tokens=24, tools=TOOLS,
                                         tool_choice="none", **GREEDY)
    choice = answer.choices[0]
    assert choice.finish_reason in ("stop", "length") and choice.message.tool_calls is None
    assert choice.message.content
    # A wrong call sent back is named in the client's terms.
    history[1]["tool_calls"][0]["function"]["arguments"] = "[1]"
    body = _bad_request(lambda: sdk.chat.completions.create(messages=history, **GREEDY))
    assert body["param"] == "messages[1].tool_calls[0].function.arguments"


def test_tool_errors_name_the_openai_parameter(sdk):
    body = _bad_request(lambda: sdk.chat.completions.create(
        messages=WEATHER, tools=TOOLS, tool_choice={"type": "function",
                                                    "function": {"name": "nope"}}, **GREEDY))
    assert body["param"] == "tool_choice.function.name"
    body = _bad_request(lambda: sdk.chat.completions.create(
        messages=WEATHER, **GREEDY, tools=[{"type": "function", "function": {"name": "a b"}}]))
    assert body["param"] == "tools[0].function.name"
    body = _bad_request(lambda: sdk.chat.completions.create(
        messages=WEATHER, tools=TOOLS, response_format={"type": "json_object"}, **GREEDY))
    assert body["param"] == "response_format"


# -- log probabilities ----------------------------------------------------------------------------


def _check_greedy_logprobs(entries, top: int) -> None:
    assert entries
    for entry in entries:
        assert entry.logprob <= 0
        assert len(entry.top_logprobs) == top
        assert [t.logprob for t in entry.top_logprobs] == sorted(
            (t.logprob for t in entry.top_logprobs), reverse=True)
        # Greedy: the chosen token is the most likely one.
        assert (entry.token, entry.logprob) == (entry.top_logprobs[0].token,
                                                entry.top_logprobs[0].logprob)
        assert entry.bytes == list(entry.token.encode())  # SmolLM2's tokens here are whole UTF-8


def test_chat_logprobs(sdk):
    reply = sdk.chat.completions.create(messages=CAPITAL_QUESTION, max_tokens=8, logprobs=True,
                                        top_logprobs=3, **GREEDY)
    choice = reply.choices[0]
    _check_greedy_logprobs(choice.logprobs.content, 3)
    assert "".join(e.token for e in choice.logprobs.content) == choice.message.content
    assert len(choice.logprobs.content) == reply.usage.completion_tokens or \
        choice.finish_reason == "stop"
    plain = sdk.chat.completions.create(messages=CAPITAL_QUESTION, max_tokens=8, **GREEDY)
    assert plain.choices[0].logprobs is None
    assert plain.choices[0].message.content == choice.message.content
    no_top = sdk.chat.completions.create(messages=CAPITAL_QUESTION, max_tokens=8, logprobs=True,
                                         **GREEDY)
    assert all(e.top_logprobs == [] for e in no_top.choices[0].logprobs.content)


def test_streamed_chunks_carry_their_tokens_logprobs(sdk):
    request = dict(messages=CAPITAL_QUESTION, max_tokens=8, logprobs=True, top_logprobs=2,
                   **GREEDY)
    whole = sdk.chat.completions.create(**request).choices[0].logprobs.content
    chunks = list(sdk.chat.completions.create(stream=True, **request))
    streamed = [e for c in chunks if c.choices and c.choices[0].logprobs
                for e in c.choices[0].logprobs.content]
    _check_greedy_logprobs(streamed, 2)
    for chunk in chunks:
        if chunk.choices[0].logprobs:
            tokens = "".join(e.token for e in chunk.choices[0].logprobs.content)
            assert tokens == chunk.choices[0].delta.content
    assert [(e.token, e.logprob) for e in streamed] == [(e.token, e.logprob) for e in whole]


def test_completions_logprobs_with_and_without_echo(sdk):
    prompt = "The capital of France is"
    plain = sdk.completions.create(prompt=prompt, max_tokens=4, logprobs=2, **GREEDY)
    choice = plain.choices[0]
    logprobs = choice.logprobs
    assert "".join(logprobs.tokens) == choice.text and len(logprobs.tokens) == 4
    assert all(lp <= 0 for lp in logprobs.token_logprobs)
    for token, logprob, top in zip(logprobs.tokens, logprobs.token_logprobs,
                                   logprobs.top_logprobs):
        assert len(top) == 2 and max(top.values()) == logprob and top[token] == logprob
    assert logprobs.text_offset[0] == 0
    echoed = sdk.completions.create(prompt=prompt, max_tokens=4, logprobs=2, echo=True,
                                    **GREEDY).choices[0]
    assert echoed.text == prompt + choice.text
    assert echoed.logprobs.tokens == logprobs.tokens  # the prompt's tokens have none
    assert echoed.logprobs.text_offset == [o + len(prompt) for o in logprobs.text_offset]
    chunks = list(sdk.completions.create(prompt=prompt, max_tokens=4, logprobs=2, stream=True,
                                         **GREEDY))
    offsets = [offset for c in chunks if c.choices[0].logprobs
               for offset in c.choices[0].logprobs.text_offset]
    assert offsets == logprobs.text_offset
    assert _bad_request(lambda: sdk.completions.create(prompt=prompt, logprobs=21,
                                                       **GREEDY))["param"] == "logprobs"


# -- n choices ------------------------------------------------------------------------------------


def test_n_choices_greedy_equal_the_single_answer(sdk):
    one = sdk.chat.completions.create(messages=PERSON, max_tokens=10, **GREEDY)
    three = sdk.chat.completions.create(messages=PERSON, max_tokens=10, n=3, **GREEDY)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert [c.message.content for c in three.choices] == [one.choices[0].message.content] * 3
    assert three.usage.prompt_tokens == one.usage.prompt_tokens
    assert three.usage.completion_tokens == 3 * one.usage.completion_tokens


def test_streamed_n_choices_each_have_a_role_and_a_finish_chunk(sdk):
    one = sdk.chat.completions.create(messages=PERSON, max_tokens=10, **GREEDY)
    chunks = list(sdk.chat.completions.create(messages=PERSON, max_tokens=10, n=3, stream=True,
                                              stream_options={"include_usage": True}, **GREEDY))
    texts, roles, finishes = {}, {}, {}
    for chunk in chunks[:-1]:
        (choice,) = chunk.choices
        texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
        roles[choice.index] = roles.get(choice.index, 0) + (choice.delta.role == "assistant")
        finishes[choice.index] = finishes.get(choice.index, 0) + bool(choice.finish_reason)
    assert texts == dict.fromkeys(range(3), one.choices[0].message.content)
    assert roles == finishes == dict.fromkeys(range(3), 1)
    usage = chunks[-1].usage
    assert chunks[-1].choices == [] and usage.completion_tokens == 3 * one.usage.completion_tokens


def test_sampled_n_choices_and_completions_n(sdk):
    sampled = sdk.chat.completions.create(messages=PERSON, max_tokens=8, n=3, temperature=1,
                                          seed=11, model="default")
    assert len({c.message.content for c in sampled.choices}) > 1  # seeds seed, seed+1, seed+2
    two = sdk.completions.create(prompt="Once upon a time", max_tokens=4, n=2, echo=True,
                                 **GREEDY)
    assert [c.index for c in two.choices] == [0, 1]
    assert two.choices[0].text == two.choices[1].text and two.choices[0].text.startswith("Once")
    chunks = list(sdk.completions.create(prompt="Once upon a time", max_tokens=4, n=2,
                                         stream=True, **GREEDY))
    assert {c.choices[0].index for c in chunks} == {0, 1}


def test_more_choices_than_the_engine_decodes_at_once_is_a_400(sdk):
    body = _bad_request(lambda: sdk.chat.completions.create(messages=PERSON, n=64, **GREEDY))
    assert body["param"] == "n"


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, param", [
    (dict(temperature=3), "temperature"),
    (dict(top_p=1.5), "top_p"),
    (dict(logprobs=True, top_logprobs=21), "top_logprobs"),
    (dict(top_logprobs=2), "top_logprobs"),  # without logprobs: true
    (dict(max_tokens=0), "max_tokens"),
    (dict(max_completion_tokens=0), "max_completion_tokens"),
    (dict(n=0), "n"),
    (dict(presence_penalty=2.5), "presence_penalty"),
    (dict(frequency_penalty=-3), "frequency_penalty"),
    (dict(tool_choice="sometimes", tools=TOOLS), "tool_choice"),
])
def test_openai_ranges_are_400s_with_the_param(sdk, extra, param):
    for stream in (False, True):
        body = _bad_request(lambda: sdk.chat.completions.create(
            model="default", messages=PERSON, stream=stream, **extra))
        assert body["param"] == param


def test_a_session_turn_refuses_tools_and_n_but_takes_the_rest(sdk):
    session = {"conversation_id": "features-session"}
    for extra, param in ((dict(tools=TOOLS), "tools"), (dict(n=2), "n")):
        body = _bad_request(lambda: sdk.chat.completions.create(
            messages=PERSON, extra_body=session, **extra, **GREEDY))
        assert body["param"] == param and body["code"] == "unsupported_parameter"
    reply = sdk.chat.completions.create(messages=PERSON, max_tokens=40, logprobs=True,
                                        top_logprobs=1, response_format=_schema_format("enum"),
                                        extra_body=session, **GREEDY)
    choice = reply.choices[0]
    jsonschema.validate(json.loads(choice.message.content), SCHEMAS["enum"])
    assert "".join(e.token for e in choice.logprobs.content) == choice.message.content


# -- the OpenAPI document describes the new shapes -------------------------------------------------


def test_the_document_matches_the_new_answers(http):
    from openapi_schema_validator import OAS30Validator

    document = http.get("/openapi.json").get_json()

    def conforms(name: str, instance) -> None:
        root = {"$ref": f"#/components/schemas/openai.{name}", "components": document["components"]}
        errors = sorted(OAS30Validator(root).iter_errors(instance), key=str)
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])

    def events(response) -> list[dict]:
        data = [line[len("data: "):] for line in response.get_data(as_text=True).split("\n\n")
                if line]
        assert data[-1] == "[DONE]"
        return [json.loads(d) for d in data[:-1]]

    calls = {"messages": WEATHER, "max_tokens": 60, "temperature": 0, "tools": TOOLS,
             "tool_choice": "required", "parallel_tool_calls": False, "logprobs": True,
             "top_logprobs": 2, "n": 2}
    answer = http.post("/v1/chat/completions", json=calls)
    assert answer.status_code == 200, answer.get_json()
    conforms("ChatCompletion", answer.get_json())
    assert "tool_calls" in answer.get_json()["choices"][1]["message"]
    for chunk in events(http.post("/v1/chat/completions", json={**calls, "stream": True,
                                                                 "stream_options": {
                                                                     "include_usage": True}})):
        conforms("ChatCompletionChunk", chunk)
    text = {"prompt": "Hello", "max_tokens": 3, "temperature": 0, "logprobs": 2, "n": 2,
            "echo": True}
    conforms("TextCompletion", http.post("/v1/completions", json=text).get_json())
    for chunk in events(http.post("/v1/completions", json={**text, "stream": True})):
        conforms("TextCompletion", chunk)
    plain = http.post("/v1/chat/completions", json={"messages": PERSON, "max_tokens": 3})
    assert "tool_calls" not in plain.get_json()["choices"][0]["message"]
