"""The OpenAI Responses API: create (JSON or SSE), retrieve and delete responses.

Generation is GenerationService's (Complete, or Generate for a stream), with chat input; the
server makes the tool calls (grammar-enforced) and enforces `text.format`. Storage is the session
store's (`store.py`). This module checks nothing itself: it calls the stubs and shapes answers.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Iterator

import grpc
from flask import Blueprint, jsonify

from rest_bridge import errors
from rest_bridge.bodies import parse
from rest_bridge.families.openai_responses import bodies, store
from rest_bridge.grpc_client import grpc_client
from rest_bridge.rpc_map import calls
from rest_bridge.streaming import PeekedCall, stream_response
from tokenwire.errors import TokenwireError
from tokenwire.v1 import generation_service_pb2 as svc_pb

blueprint = Blueprint("openai_responses", __name__)

GENERATE = "tokenwire.v1.GenerationService/Generate"
COMPLETE = "tokenwire.v1.GenerationService/Complete"

# Server field path -> the Responses parameter a client sent it as. Chat message indices are not
# input indices (instructions and the previous history come first), so they all read "input".
PARAM_NAMES = {
    "sampling.temperature": "temperature",
    "sampling.top_p": "top_p",
    "max_tokens": "max_output_tokens",
    "chat.messages": "input",
    "messages": "input",
    "chat": "input",
    "input": "input",
    "constraint.json_schema": "text.format.schema",
    "constraint": "text.format",
    "tool_choice.function_name": "tool_choice.name",
    "tool_choice.mode": "tool_choice",
}


def _param_name(field: str) -> str:
    """"sampling.top_p" -> "top_p", "tools[0].parameters_json" -> "tools[0].parameters"."""
    if field.startswith("tools[") and field.endswith(".parameters_json"):
        return field.removesuffix("_json")
    for server_path, param in PARAM_NAMES.items():
        if field == server_path:
            return param
        if field.startswith((server_path + "[", server_path + ".")):
            return param if param == "input" else param + field[len(server_path):]
    return field


def _error_body(failure: errors.Failure) -> dict:
    param = failure.param
    if param is None and failure.fields:
        param = _param_name(failure.fields[0])
    return errors.openai_body(dataclasses.replace(failure, param=param))


errors.register_family(blueprint, _error_body)


def _finish(turn: bodies.Turn, model: str, text: str, tool_calls, finish_reason: int,
            usage) -> bodies.Response:
    """The finished response, stored first when the request asks for it (so a client that has
    the answer can continue it at once)."""
    status = bodies.status_of(finish_reason)
    if turn.body.store is not False:
        store.save(turn.id, turn.session_pb(model, text, tool_calls))
    output = bodies.output_items(turn.id, text, tool_calls, complete=status == "completed")
    return turn.response(model, status=status, output=output, usage=usage)


@blueprint.post("/v1/responses")
@calls(GENERATE, COMPLETE, store.GET_SESSION, store.CREATE_SESSION)
def create_response():
    """Create a model response (OpenAI Responses); `stream: true` answers with SSE events."""
    body = parse(bodies.CreateResponseRequest)
    turn = bodies.Turn(body, store.history(body.previous_response_id))
    if body.stream:
        call = PeekedCall(grpc_client().generation.Generate(turn.to_pb(svc_pb.GenerateRequest())))
        events = _Events(turn, call.first.model if call.first is not None else body.model or "")
        return stream_response(call, events.render, events.failure, "text/event-stream")
    result = grpc_client().generation.Complete(turn.to_pb(svc_pb.CompleteRequest()))
    tool_calls = result.choices[0].tool_calls if result.choices else ()
    return jsonify(_finish(turn, result.model, result.text, tool_calls, result.finish_reason,
                           result.usage).body())


@blueprint.get("/v1/responses/<response_id>")
@calls(store.GET_SESSION)
def retrieve_response(response_id: str):
    """A stored response, rebuilt from its session; 404 for an unknown id."""
    return jsonify(bodies.stored_response(response_id, store.load(response_id)).body())


@blueprint.delete("/v1/responses/<response_id>")
@calls(store.DELETE_SESSION)
def delete_response(response_id: str):
    """Deletes a stored response (its session); 404 for an unknown id."""
    store.delete(response_id)
    return jsonify(bodies.DeletedResponse(id=response_id).body())


# -- streaming ------------------------------------------------------------------------------------

#: ResponseError codes (OpenAI's list) by HTTP status of the failure.
_FAILED_CODES = {429: "rate_limit_exceeded", 400: "invalid_prompt", 404: "invalid_prompt",
                 413: "invalid_prompt"}


def _json(data: dict) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


class _Events:
    """One response's SSE events: `event: <type>` and `data: <JSON with type and
    sequence_number>`, numbered in the order sent. Stream chunks are dicts, not models: they
    are built per token (their schemas are the models' in bodies)."""

    def __init__(self, turn: bodies.Turn, model: str):
        self.turn, self.model = turn, model
        self.sequence = 0
        self.text: list[str] = []
        self.message_open = False
        self.done: list[dict] = []  # the output items sent with output_item.done

    def event(self, kind: str, **fields) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return f"event: {kind}\ndata: {_json(data)}\n\n".encode()

    def lifecycle(self, kind: str, response: bodies.Response) -> bytes:
        return self.event(kind, response=response.body())

    def _message(self, status: str) -> dict:
        return bodies.OutputMessage(id=bodies.message_id(self.turn.id), status=status, content=[
            bodies.OutputText(text="".join(self.text))] if status != "in_progress" else []).body()

    def _part(self) -> dict:
        return bodies.OutputText(text="".join(self.text)).body()

    def _open_message(self) -> Iterator[bytes]:
        self.message_open = True
        yield self.event("response.output_item.added", output_index=0,
                         item=self._message("in_progress"))
        yield self.event("response.content_part.added", item_id=bodies.message_id(self.turn.id),
                         output_index=0, content_index=0, part=self._part())

    def _close_message(self, status: str) -> Iterator[bytes]:
        item_id = bodies.message_id(self.turn.id)
        yield self.event("response.output_text.done", item_id=item_id, output_index=0,
                         content_index=0, text="".join(self.text), logprobs=[])
        yield self.event("response.content_part.done", item_id=item_id, output_index=0,
                         content_index=0, part=self._part())
        self.done.append(self._message(status))
        yield self.event("response.output_item.done", output_index=0, item=self.done[-1])

    def _function_calls(self, tool_calls, first_index: int) -> Iterator[bytes]:
        for j, call in enumerate(tool_calls):
            item = bodies.FunctionCall(id=bodies.function_call_id(self.turn.id, j),
                                       call_id=call.id, name=call.name, arguments="",
                                       status="in_progress")
            index = first_index + j
            yield self.event("response.output_item.added", output_index=index, item=item.body())
            yield self.event("response.function_call_arguments.delta", item_id=item.id,
                             output_index=index, delta=call.arguments)
            yield self.event("response.function_call_arguments.done", item_id=item.id,
                             output_index=index, arguments=call.arguments)
            item.arguments, item.status = call.arguments, "completed"
            self.done.append(item.body())
            yield self.event("response.output_item.done", output_index=index, item=self.done[-1])

    def render(self, call: PeekedCall) -> Iterator[bytes]:
        """created, in_progress, the output items' events, then completed (or incomplete)."""
        yield self.lifecycle("response.created", self.turn.response(self.model))
        yield self.lifecycle("response.in_progress", self.turn.response(self.model))
        try:
            last = None
            for message in call:
                if message.text:
                    if not self.message_open:
                        yield from self._open_message()
                    self.text.append(message.text)
                    yield self.event("response.output_text.delta",
                                     item_id=bodies.message_id(self.turn.id), output_index=0,
                                     content_index=0, delta=message.text, logprobs=[])
                if message.finish_reason:
                    last = message
            if last is None:
                raise errors.HttpError(500, "the generation ended without a result")
            status = bodies.status_of(last.finish_reason)
            if not self.message_open and not last.tool_calls:
                yield from self._open_message()  # an empty answer is still a message
            if self.message_open:
                yield from self._close_message("completed" if status == "completed"
                                               else "incomplete")
            yield from self._function_calls(last.tool_calls, 1 if self.message_open else 0)
            response = _finish(self.turn, self.model, "".join(self.text), last.tool_calls,
                               last.finish_reason, last.usage)
            yield self.lifecycle(f"response.{status}", response)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.CANCELLED:
                raise  # the client left: stream_response ends the stream quietly
            yield self.failure(error)
        except (TokenwireError, errors.HttpError) as error:
            yield self.failure(error)

    def failure(self, exc: BaseException) -> bytes:
        """An `error` event, then `response.failed` with what was generated so far: the items
        finished, and the message cut short if it was."""
        failure = errors.failure_of(exc)
        error = _error_body(failure)["error"]
        output = list(self.done)
        if self.message_open and not self.done:
            output.append(self._message("incomplete"))
        failed = self.turn.response(self.model, status="failed", error={
            "code": _FAILED_CODES.get(failure.status, "server_error"),
            "message": failure.message})
        failed_body = failed.body()
        failed_body["output"] = output
        return (self.event("error", code=error["code"], message=error["message"],
                           param=error["param"])
                + self.event("response.failed", response=failed_body))
