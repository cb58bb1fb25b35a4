"""Structured output, tool calls, log probabilities and n choices over gRPC, with the Python
client against the real engine and the embedded SmolLM2 model."""

from __future__ import annotations

import json
import math

import jsonschema
import pytest

from tokenwire import InvalidArgumentError

PERSON = {"type": "object", "properties": {"name": {"type": "string"},
                                           "age": {"type": "integer", "minimum": 0}},
          "required": ["name", "age"], "additionalProperties": False}
ORDER = {
    "$defs": {"item": {"type": "object", "properties": {
        "sku": {"type": "string", "maxLength": 12}, "qty": {"type": "integer", "minimum": 1}},
        "required": ["sku", "qty"], "additionalProperties": False}},
    "type": "object",
    "properties": {"status": {"enum": ["new", "paid", "shipped"]},
                   "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1,
                             "maxItems": 3}},
    "required": ["status", "items"], "additionalProperties": False}
WEATHER = {"name": "get_weather", "description": "The current weather in a city.",
           "parameters": {"type": "object", "properties": {
               "city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
               "required": ["city", "unit"], "additionalProperties": False}}
ASK_PERSON = [{"role": "user", "content": "Describe a person as JSON."}]
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.mark.parametrize("schema", [PERSON, ORDER], ids=["flat", "defs-ref-enum-array"])
def test_a_json_schema_answer_validates_against_it(client, schema):
    answer = client.complete(messages=ASK_PERSON, json_schema=schema, temperature=0,
                             max_tokens=120)
    assert answer.finish_reason == "stop"
    jsonschema.validate(json.loads(answer.text), schema)


def test_sampled_constrained_streams_stay_valid(client):
    for seed in (1, 2, 3):
        text = "".join(d.text for d in client.generate(messages=ASK_PERSON, json_schema=PERSON,
                                                        temperature=1.0, seed=seed,
                                                        max_tokens=120))
        jsonschema.validate(json.loads(text), PERSON)


def test_json_mode_gives_an_object_and_regex_and_grammar_are_followed(client):
    assert isinstance(json.loads(client.complete(messages=ASK_PERSON, json_object=True,
                                                 temperature=0, max_tokens=80).text), dict)
    date = client.complete(messages=[{"role": "user", "content": "When?"}],
                           regex=r"20[0-9]{2}-[01][0-9]-[0-3][0-9]", temperature=0)
    assert len(date.text) == 10 and date.text.startswith("20")
    yes_no = client.complete(prompt="Is the sky blue? Answer:", grammar='root ::= " yes" | " no"',
                             temperature=0)
    assert yes_no.text in (" yes", " no")


def test_a_schema_keyword_that_cannot_be_enforced_is_refused_by_name(client):
    with pytest.raises(InvalidArgumentError) as caught:
        client.complete(messages=ASK_PERSON, json_schema={"type": "object", "not": {}})
    assert caught.value.violations[0].field == "constraint.json_schema"
    assert '"not"' in caught.value.violations[0].description


def test_a_forced_tool_call_has_valid_arguments_and_round_trips(client):
    answer = client.complete(messages=ASK_WEATHER, tools=[WEATHER], tool_choice="get_weather",
                             temperature=0, max_tokens=80)
    assert answer.finish_reason == "tool_calls" and answer.text == ""
    (call,) = answer.tool_calls
    assert call.name == "get_weather" and call.id.startswith("call_")
    jsonschema.validate(json.loads(call.arguments), WEATHER["parameters"])
    follow_up = ASK_WEATHER + [
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": call.id, "name": call.name, "arguments": call.arguments}]},
        {"role": "tool", "tool_call_id": call.id, "name": call.name,
         "content": '{"temperature": 21, "sky": "clear"}'}]
    final = client.complete(messages=follow_up, tools=[WEATHER], tool_choice="none",
                            temperature=0, max_tokens=40)
    assert final.finish_reason in ("stop", "length") and final.text and not final.tool_calls


def test_required_tool_choice_streams_the_calls_on_the_last_delta(client):
    deltas = list(client.generate(messages=ASK_WEATHER, tools=[WEATHER], tool_choice="required",
                                  parallel_tool_calls=False, temperature=0, max_tokens=80))
    assert all(not d.tool_calls for d in deltas[:-1])
    assert deltas[-1].finish_reason == "tool_calls" and len(deltas[-1].tool_calls) == 1
    assert "".join(d.text for d in deltas) == ""


def test_auto_tool_choice_may_answer_in_text_streamed_as_decoded(client):
    deltas = list(client.generate(messages=[{"role": "user", "content": "Say hello."}],
                                  tools=[WEATHER], temperature=0, max_tokens=60))
    last = deltas[-1]
    if last.finish_reason == "tool_calls":
        jsonschema.validate(json.loads(last.tool_calls[0].arguments), WEATHER["parameters"])
    else:  # the text of {"response": ...}, never the JSON around it
        text = "".join(d.text for d in deltas)
        assert text and not text.startswith("{")


def test_logprobs_are_log_probabilities_and_greedy_picks_the_top_one(client):
    answer = client.complete(messages=ASK_PERSON, temperature=0, max_tokens=8, top_logprobs=5)
    entries = answer.choices[0].logprobs
    assert len(entries) == len(answer.token_ids) == answer.usage.completion_tokens
    for entry, token in zip(entries, answer.token_ids):
        assert entry.token_id == token and entry.logprob <= 0
        assert len(entry.top_logprobs) == 5
        assert entry.top_logprobs[0].token_id == token
        assert math.isclose(entry.top_logprobs[0].logprob, entry.logprob, abs_tol=1e-5)
        assert [t.logprob for t in entry.top_logprobs] == sorted(
            (t.logprob for t in entry.top_logprobs), reverse=True)
        assert entry.token_bytes.decode("utf-8", "replace") == entry.token
    streamed = [e for d in client.generate(messages=ASK_PERSON, temperature=0, max_tokens=8,
                                           top_logprobs=0) for e in d.logprobs]
    assert [e.token_id for e in streamed] == list(answer.token_ids)
    assert all(e.top_logprobs == () for e in streamed)


def test_n_choices_share_one_prompt_and_greedy_ones_agree(client):
    one = client.complete(messages=ASK_PERSON, temperature=0, max_tokens=12)
    three = client.complete(messages=ASK_PERSON, temperature=0, max_tokens=12, n=3)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert all(c.text == one.text for c in three.choices)
    assert three.usage.prompt_tokens == one.usage.prompt_tokens
    assert three.usage.completion_tokens == 3 * one.usage.completion_tokens
    sampled = list(client.generate(messages=ASK_PERSON, temperature=1.0, seed=7, max_tokens=12,
                                   n=3))
    finals = [d for d in sampled if d.finish_reason]
    assert sorted(d.index for d in finals) == [0, 1, 2]
    assert sorted(d.seed for d in finals) == [7, 8, 9]


def test_n_beyond_the_engines_sequences_is_refused(client):
    with pytest.raises(InvalidArgumentError) as caught:
        client.complete(messages=ASK_PERSON, n=64, max_tokens=4)
    assert caught.value.violations[0].field == "n"


@pytest.mark.parametrize("features, field", [
    (dict(top_logprobs=21), "top_logprobs"),
    (dict(n=0), "n"),
    (dict(tool_choice="required"), "tool_choice"),
    (dict(tools=[WEATHER], tool_choice="get_time"), "tool_choice.function_name"),
    (dict(tools=[WEATHER], json_object=True), "constraint"),
    (dict(json_schema="not a schema"), "constraint.json_schema"),
])
def test_bad_feature_requests_name_the_field(client, features, field):
    with pytest.raises(InvalidArgumentError) as caught:
        client.complete(messages=ASK_PERSON, max_tokens=4, **features)
    assert field in [v.field for v in caught.value.violations]


def test_session_turns_take_a_schema_and_keep_tool_calls_in_imported_history(client):
    session = client.create_session(messages=[
        {"role": "user", "content": "Weather in Rome?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "name": "get_weather", "arguments": '{"city": "Rome"}'}]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "sunny"}])
    assert session.message_count == 3
    history = client.history(session.session_id)
    assert history[1]["tool_calls"] == [{"id": "call_1", "name": "get_weather",
                                         "arguments": '{"city": "Rome"}'}]
    assert history[2]["tool_call_id"] == "call_1"
    deltas = list(client.chat(session.session_id, "Describe a person as JSON.",
                              json_schema=PERSON, temperature=0, max_tokens=120, top_logprobs=1))
    jsonschema.validate(json.loads("".join(d.text for d in deltas)), PERSON)
    assert sum(len(d.logprobs) for d in deltas) == deltas[-1].usage.completion_tokens
    client.delete_session(session.session_id)


def test_the_grammar_outranks_a_bias_that_bans_everything_it_allows(client):
    from tests.conftest import BAN_END_OF_GENERATION

    answer = client.complete(messages=ASK_PERSON, json_schema=PERSON, temperature=0,
                             max_tokens=120, logit_bias=BAN_END_OF_GENERATION)
    jsonschema.validate(json.loads(answer.text), PERSON)
    sampled = client.complete(messages=ASK_PERSON, json_schema=PERSON, temperature=0.7, seed=1,
                              max_tokens=120, logit_bias=BAN_END_OF_GENERATION)
    jsonschema.validate(json.loads(sampled.text), PERSON)
