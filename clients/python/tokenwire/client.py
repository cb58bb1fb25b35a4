"""A typed, synchronous Python client for tokenwire's gRPC API.

    with Client("127.0.0.1:50051") as client:
        for delta in client.generate(messages=[{"role": "user", "content": "Hi"}], temperature=0):
            print(delta.text, end="", flush=True)

Failed calls raise subclasses of tokenwire.errors.TokenwireError.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tokenwire.downloads import (STATUS_VALUES, CancelAllResult, CancelResult, Download,
                                 status_name)
from tokenwire.errors import from_rpc_error
from tokenwire.v1 import (download_service_pb2, download_service_pb2_grpc, generation_pb2,
                          generation_service_pb2, generation_service_pb2_grpc, hardware_service_pb2,
                          hardware_service_pb2_grpc, metrics_service_pb2, metrics_service_pb2_grpc,
                          session_service_pb2, session_service_pb2_grpc, status_service_pb2,
                          status_service_pb2_grpc)

#: The header a load balancer hashes on to keep a session on one replica (nginx: hash
#: $http_x_session_id consistent). Sent on every call that names a session.
SESSION_HEADER = "x-session-id"


def affinity_value(session_id: str) -> str:
    """The session id as the header carries it: percent-encoded (UTF-8), as gRPC metadata must be
    printable ASCII; the REST bridge encodes it the same way, so both hash alike."""
    return urllib.parse.quote(session_id, safe="")

_FINISH_NAMES = {
    generation_pb2.FINISH_REASON_STOP: "stop",
    generation_pb2.FINISH_REASON_STOP_SEQUENCE: "stop_sequence",
    generation_pb2.FINISH_REASON_LENGTH: "length",
    generation_pb2.FINISH_REASON_TOOL_CALLS: "tool_calls",
}
_TOOL_CHOICE_MODES = {"auto": generation_pb2.TOOL_CHOICE_MODE_AUTO,
                      "none": generation_pb2.TOOL_CHOICE_MODE_NONE,
                      "required": generation_pb2.TOOL_CHOICE_MODE_REQUIRED}
_SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty",
                    "presence_penalty", "frequency_penalty", "seed")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    #: Of prompt_tokens, those whose KV cache was reused instead of computed.
    cached_prompt_tokens: int = 0
    #: Chat messages left out to fit the context window (truncation "auto").
    truncated_messages: int = 0


@dataclass(frozen=True)
class Timings:
    time_to_first_token_ms: float
    prompt_ms: float
    decode_ms: float
    tokens_per_second: float
    prompt_tokens_per_second: float
    queue_ms: float


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON object text


@dataclass(frozen=True)
class TopLogprob:
    token_id: int
    token: str
    token_bytes: bytes
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    token_id: int
    token: str
    token_bytes: bytes
    logprob: float
    top_logprobs: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True)
class Delta:
    """One streamed piece of choice `index`. The last one of each choice has `finish_reason`,
    `usage`, `timings`, `seed` (and any `tool_calls`) set."""

    text: str
    token_ids: tuple[int, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    model: str = ""
    seed: int | None = None
    index: int = 0
    logprobs: tuple[TokenLogprob, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True)
class Choice:
    index: int
    text: str
    token_ids: tuple[int, ...]
    finish_reason: str
    completion_tokens: int
    logprobs: tuple[TokenLogprob, ...]
    tool_calls: tuple[ToolCall, ...]
    seed: int


@dataclass(frozen=True)
class Completion:
    """The first choice's fields, and every choice (n > 1) in `choices`."""

    text: str
    token_ids: tuple[int, ...]
    finish_reason: str
    usage: Usage
    timings: Timings
    model: str
    seed: int
    choices: tuple[Choice, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()


def _logprobs(entries) -> tuple[TokenLogprob, ...]:
    return tuple(TokenLogprob(e.token_id, e.token, e.bytes, e.logprob,
                              tuple(TopLogprob(t.token_id, t.token, t.bytes, t.logprob)
                                    for t in e.top_logprobs)) for e in entries)


def _tool_calls(calls) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(c.id, c.name, c.arguments) for c in calls)


def _usage(pb) -> Usage:
    return Usage(pb.prompt_tokens, pb.completion_tokens, pb.total_tokens,
                 pb.cached_prompt_tokens, pb.truncated_messages)


def _timings(pb) -> Timings:
    return Timings(pb.time_to_first_token_ms, pb.prompt_ms, pb.decode_ms, pb.tokens_per_second,
                   pb.prompt_tokens_per_second, pb.queue_ms)


def _delta(pb: generation_service_pb2.GenerateResponse) -> Delta:
    if pb.finish_reason == generation_pb2.FINISH_REASON_UNSPECIFIED:
        return Delta(pb.text, tuple(pb.token_ids), model=pb.model, index=pb.index,
                     logprobs=_logprobs(pb.logprobs))
    return Delta(pb.text, tuple(pb.token_ids), _FINISH_NAMES[pb.finish_reason], _usage(pb.usage),
                 _timings(pb.timings), pb.model, pb.seed, pb.index, _logprobs(pb.logprobs),
                 _tool_calls(pb.tool_calls))


@dataclass(frozen=True)
class Session:
    """A server-side chat session (without its messages; see Client.history)."""

    session_id: str
    model: str
    system_prompt: str | None
    sampling: dict
    max_tokens: int | None
    message_count: int
    created_unix: float
    updated_unix: float
    #: The session's policy for a history longer than the window ("auto" or "error").
    truncation: str = "auto"


@dataclass(frozen=True)
class ChatDelta(Delta):
    """One piece of a session turn. The last one also says how many prompt tokens the server's
    KV cache spared (`reused_prompt_tokens`) and the history's size with this turn in it."""

    session_id: str = ""
    reused_prompt_tokens: int = 0
    message_count: int = 0
    #: Messages of the history left out of this turn's prompt to fit the window.
    truncated_messages: int = 0


def _session(pb) -> Session:
    sampling = {name: getattr(pb.sampling, name) for name in _SAMPLING_FIELDS
                if pb.sampling.HasField(name)}
    if pb.sampling.logit_bias:
        sampling["logit_bias"] = dict(pb.sampling.logit_bias)
    return Session(pb.session_id, pb.model,
                   pb.system_prompt if pb.HasField("system_prompt") else None, sampling,
                   pb.max_tokens if pb.HasField("max_tokens") else None, pb.message_count,
                   pb.created_unix, pb.updated_unix,
                   "error" if pb.truncation == generation_pb2.TRUNCATION_ERROR else "auto")


def _chat_delta(pb: session_service_pb2.ChatResponse) -> ChatDelta:
    if pb.finish_reason == generation_pb2.FINISH_REASON_UNSPECIFIED:
        return ChatDelta(pb.text, tuple(pb.token_ids), model=pb.model, session_id=pb.session_id,
                         logprobs=_logprobs(pb.logprobs), truncated_messages=pb.truncated_messages)
    return ChatDelta(pb.text, tuple(pb.token_ids), _FINISH_NAMES[pb.finish_reason], _usage(pb.usage),
                     _timings(pb.timings), pb.model, pb.seed, logprobs=_logprobs(pb.logprobs),
                     session_id=pb.session_id,
                     reused_prompt_tokens=pb.reused_prompt_tokens, message_count=pb.message_count,
                     truncated_messages=pb.truncated_messages)


def _fill_sampling(pb, sampling: Mapping, logit_bias: Mapping[int, float] | None) -> None:
    unknown = set(sampling) - set(_SAMPLING_FIELDS)
    if unknown:
        raise TypeError(f"unknown sampling arguments: {', '.join(sorted(unknown))}")
    for name, value in sampling.items():
        if value is not None:
            setattr(pb, name, value)
    for token, bias in (logit_bias or {}).items():
        pb.logit_bias[int(token)] = bias


@dataclass
class _Request:
    prompt: str | None = None
    messages: Sequence[Mapping[str, str]] | None = None
    model: str = ""
    max_tokens: int | None = None
    stop: Sequence[str] = ()
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    sampling: dict = field(default_factory=dict)

    features: dict = field(default_factory=dict)

    def fill(self, pb) -> None:
        pb.model = self.model
        if self.prompt is not None:
            pb.prompt = self.prompt
        if self.messages is not None:
            pb.chat.SetInParent()
            for m in self.messages:
                pb.chat.messages.append(_message(m))
        fill_features(pb, **self.features)
        if self.max_tokens is not None:
            pb.max_tokens = self.max_tokens
        pb.stop.extend(self.stop)
        for name, value in self.sampling.items():
            if value is not None:
                setattr(pb.sampling, name, value)
        for token, bias in self.logit_bias.items():
            pb.sampling.logit_bias[int(token)] = bias


def _message(m: Mapping) -> generation_pb2.ChatMessage:
    """{"role", "content"} plus, for an assistant, "tool_calls" ([{"id", "name", "arguments"}])
    and, for a tool result, "tool_call_id" and "name"."""
    return generation_pb2.ChatMessage(
        role=m["role"], content=m.get("content") or "",
        tool_calls=[generation_pb2.ToolCall(id=c.get("id", ""), name=c["name"],
                                            arguments=c["arguments"] if isinstance(c["arguments"], str)
                                            else json.dumps(c["arguments"]))
                    for c in m.get("tool_calls") or ()],
        tool_call_id=m.get("tool_call_id", ""), name=m.get("name", ""))


def fill_features(pb, *, json_schema: Mapping | None = None, json_object: bool = False,
                  grammar: str | None = None, lark: str | None = None, regex: str | None = None,
                  tools: Sequence[Mapping] = (), tool_choice: str | None = None,
                  parallel_tool_calls: bool | None = None, top_logprobs: int | None = None,
                  n: int | None = None, truncation: str | None = None) -> None:
    """Structured output (one of json_schema, json_object, grammar (GBNF), lark, regex), tools
    ([{"name", "description", "parameters"}], tool_choice "auto" / "none" / "required" / a tool
    name), log probabilities (top_logprobs alternatives per token), n choices, and what to do
    with chat input longer than the window (truncation "auto": leave out the oldest turns, as
    usage.truncated_messages reports; "error": INVALID_ARGUMENT)."""
    if json_schema is not None:
        pb.constraint.json_schema = json.dumps(json_schema)
    if json_object:
        pb.constraint.json_object = True
    for name, value in (("gbnf", grammar), ("lark", lark), ("regex", regex)):
        if value is not None:
            setattr(pb.constraint, name, value)
    for t in tools:
        pb.tools.add(name=t["name"], description=t.get("description", ""),
                     parameters_json=json.dumps(t["parameters"]) if t.get("parameters") else "")
    if tool_choice is not None:
        if tool_choice in _TOOL_CHOICE_MODES:
            pb.tool_choice.mode = _TOOL_CHOICE_MODES[tool_choice]
        else:
            pb.tool_choice.mode = generation_pb2.TOOL_CHOICE_MODE_FUNCTION
            pb.tool_choice.function_name = tool_choice
    if parallel_tool_calls is not None:
        pb.parallel_tool_calls = parallel_tool_calls
    if top_logprobs is not None:
        pb.top_logprobs = top_logprobs
    if n is not None:
        pb.n = n
    if truncation is not None:
        if truncation not in _TRUNCATIONS:
            raise ValueError(f"truncation must be one of {', '.join(_TRUNCATIONS)}")
        pb.truncation = _TRUNCATIONS[truncation]


_TRUNCATIONS = {"auto": generation_pb2.TRUNCATION_AUTO, "error": generation_pb2.TRUNCATION_ERROR}


_FEATURES = frozenset(("json_schema", "json_object", "grammar", "lark", "regex", "tools",
                       "tool_choice", "parallel_tool_calls", "top_logprobs", "n", "truncation"))
# A session turn takes structured output, log probabilities and truncation (no tools, one choice).
_TURN_FEATURES = frozenset(("json_schema", "json_object", "grammar", "lark", "regex",
                            "top_logprobs", "truncation"))


class Client:
    """Wraps one channel. Keyword arguments of generate/complete: see GenerateRequest; the
    features beyond sampling are those of `fill_features`."""

    def __init__(self, target: str, *, timeout: float | None = None,
                 metadata: Iterable[tuple[str, str]] = (), channel: grpc.Channel | None = None,
                 api_key: str | None = None):
        """`api_key` is sent as `authorization: Bearer <key>` on every call."""
        self._channel = channel or grpc.insecure_channel(target)
        self._owns_channel = channel is None
        self._timeout = timeout
        self._metadata = tuple(metadata)
        if api_key:
            self._metadata += (("authorization", f"Bearer {api_key}"),)
        self._generation = generation_service_pb2_grpc.GenerationServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)
        self._downloads = download_service_pb2_grpc.DownloadServiceStub(self._channel)
        self._sessions = session_service_pb2_grpc.SessionServiceStub(self._channel)

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call_options(self, timeout: float | None, session_id: str | None = None) -> dict:
        # x-session-id on session calls: a load balancer in front of several replicas hashes on
        # it, so a conversation keeps landing where its KV cache is (issue 20).
        affinity = ((SESSION_HEADER, affinity_value(session_id)),) if session_id else ()
        return {"timeout": timeout if timeout is not None else self._timeout,
                "metadata": self._metadata + affinity}

    @staticmethod
    def _request(prompt, messages, model, max_tokens, stop, logit_bias, sampling) -> _Request:
        features = {k: sampling.pop(k) for k in list(sampling) if k in _FEATURES}
        unknown = set(sampling) - set(_SAMPLING_FIELDS)
        if unknown:
            raise TypeError(f"unknown sampling arguments: {', '.join(sorted(unknown))}")
        return _Request(prompt, messages, model or "", max_tokens, tuple(stop or ()),
                        dict(logit_bias or {}), sampling, features)

    def generate(self, prompt: str | None = None, *, messages: Sequence[Mapping[str, str]] | None = None,
                 model: str = "", max_tokens: int | None = None, stop: Sequence[str] = (),
                 logit_bias: Mapping[int, float] | None = None, timeout: float | None = None,
                 **sampling) -> Iterator[Delta]:
        """Streams deltas. Closing the iterator early cancels the call and frees the engine."""
        pb = generation_service_pb2.GenerateRequest()
        self._request(prompt, messages, model, max_tokens, stop, logit_bias, sampling).fill(pb)
        call = self._generation.Generate(pb, **self._call_options(timeout))
        try:
            for response in call:
                yield _delta(response)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    def complete(self, prompt: str | None = None, *, messages: Sequence[Mapping[str, str]] | None = None,
                 model: str = "", max_tokens: int | None = None, stop: Sequence[str] = (),
                 logit_bias: Mapping[int, float] | None = None, timeout: float | None = None,
                 **sampling) -> Completion:
        pb = generation_service_pb2.CompleteRequest()
        self._request(prompt, messages, model, max_tokens, stop, logit_bias, sampling).fill(pb)
        try:
            r = self._generation.Complete(pb, **self._call_options(timeout))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        choices = tuple(Choice(c.index, c.text, tuple(c.token_ids), _FINISH_NAMES[c.finish_reason],
                               c.completion_tokens, _logprobs(c.logprobs), _tool_calls(c.tool_calls),
                               c.seed) for c in r.choices)
        return Completion(r.text, tuple(r.token_ids), _FINISH_NAMES[r.finish_reason],
                          _usage(r.usage), _timings(r.timings), r.model, r.seed, choices,
                          choices[0].tool_calls if choices else ())

    def tokenize(self, text: str, *, model: str = "", add_special_tokens: bool = False,
                 parse_special_tokens: bool = False) -> list[int]:
        pb = generation_service_pb2.TokenizeRequest(model=model, text=text,
                                                     add_special_tokens=add_special_tokens,
                                                     parse_special_tokens=parse_special_tokens)
        try:
            return list(self._generation.Tokenize(pb, **self._call_options(None)).token_ids)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def embed(self, inputs: Sequence[str], *, model: str = "",
              normalize: bool = True) -> list[tuple[float, ...]]:
        """One mean-pooled vector per input, in input order (unit length unless normalize is
        False); at most 256 inputs per call."""
        pb = generation_service_pb2.EmbedRequest(model=model, inputs=list(inputs),
                                                 skip_normalize=not normalize)
        try:
            response = self._generation.Embed(pb, **self._call_options(None))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return [tuple(e.values) for e in response.embeddings]

    def detokenize(self, token_ids: Sequence[int], *, model: str = "",
                   render_special_tokens: bool = False) -> str:
        pb = generation_service_pb2.DetokenizeRequest(model=model, token_ids=list(token_ids),
                                                       render_special_tokens=render_special_tokens)
        try:
            return self._generation.Detokenize(pb, **self._call_options(None)).text
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def health(self, service: str = "") -> str:
        """"SERVING", "NOT_SERVING" or "SERVICE_UNKNOWN" as grpc.health.v1 reports it."""
        try:
            response = self._health.Check(health_pb2.HealthCheckRequest(service=service),
                                          **self._call_options(None))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)

    # -- downloads -------------------------------------------------------------------------------

    def _unary(self, method, request, timeout: float | None = None, session_id: str | None = None):
        try:
            return method(request, **self._call_options(timeout, session_id))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def start_download(self, url: str | None = None, *, catalog_name: str | None = None,
                       model_id: str = "", filename: str | None = None,
                       expected_sha256: str | None = None, auto_load: bool = False,
                       force: bool = False) -> Download:
        """Starts fetching a model file (a URL or a catalog name) on the server; returns at once."""
        pb = download_service_pb2.StartDownloadRequest(model_id=model_id, auto_load=auto_load,
                                                       force=force)
        if url is not None:
            pb.url = url
        if catalog_name is not None:
            pb.catalog_name = catalog_name
        if filename is not None:
            pb.filename = filename
        if expected_sha256 is not None:
            pb.expected_sha256 = expected_sha256
        return Download.from_pb(self._unary(self._downloads.StartDownload, pb).download)

    def watch_download(self, download_id: str = "", *, model_id: str = "",
                       timeout: float | None = None) -> Iterator[Download]:
        """Progress events of one download, ending with its terminal state."""
        pb = download_service_pb2.WatchDownloadRequest(download_id=download_id, model_id=model_id)
        call = self._downloads.WatchDownload(pb, **self._call_options(timeout))
        try:
            for response in call:
                yield Download.from_pb(response.download)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    def watch_downloads(self, *, timeout: float | None = None) -> Iterator[Download]:
        """Progress events of every download, until the iterator is closed."""
        call = self._downloads.WatchDownloads(download_service_pb2.WatchDownloadsRequest(),
                                              **self._call_options(timeout))
        try:
            for response in call:
                yield Download.from_pb(response.download)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.CANCELLED:
                return
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    def list_downloads(self, model_id: str = "", statuses: Sequence[str] = ()) -> list[Download]:
        unknown = [s for s in statuses if s not in STATUS_VALUES]
        if unknown:
            raise ValueError(f"unknown download status {unknown[0]!r}; one of {sorted(STATUS_VALUES)}")
        pb = download_service_pb2.ListDownloadsRequest(
            model_id=model_id, statuses=[STATUS_VALUES[s] for s in statuses])
        return [Download.from_pb(d) for d in self._unary(self._downloads.ListDownloads, pb).downloads]

    def get_download(self, download_id: str = "", *, model_id: str = "") -> Download:
        pb = download_service_pb2.GetDownloadRequest(download_id=download_id, model_id=model_id)
        return Download.from_pb(self._unary(self._downloads.GetDownload, pb).download)

    def cancel_download(self, download_id: str = "", *, model_id: str = "") -> CancelResult:
        pb = download_service_pb2.CancelDownloadRequest(download_id=download_id, model_id=model_id)
        r = self._unary(self._downloads.CancelDownload, pb)
        return CancelResult(r.cancelled, status_name(r.previous_status), Download.from_pb(r.download))

    def cancel_all_downloads(self) -> CancelAllResult:
        r = self._unary(self._downloads.CancelAllDownloads,
                        download_service_pb2.CancelAllDownloadsRequest())
        return CancelAllResult.from_pb(r)

    # -- sessions ----------------------------------------------------------------------------

    def create_session(self, session_id: str | None = None, *, model: str = "",
                       system_prompt: str | None = None, max_tokens: int | None = None,
                       logit_bias: Mapping[int, float] | None = None,
                       messages: Sequence[Mapping] = (), truncation: str | None = None,
                       **sampling) -> Session:
        """A new session; `sampling`, `max_tokens` and `truncation` ("auto", the default, or
        "error") become the defaults of its turns, and `messages` (as for generate, without
        system messages) its starting history."""
        pb = session_service_pb2.CreateSessionRequest(model=model,
                                                      messages=[_message(m) for m in messages])
        if truncation is not None:
            fill_features(pb, truncation=truncation)
        if session_id is not None:
            pb.session_id = session_id
        if system_prompt is not None:
            pb.system_prompt = system_prompt
        if max_tokens is not None:
            pb.max_tokens = max_tokens
        _fill_sampling(pb.sampling, sampling, logit_bias)
        return _session(self._unary(self._sessions.CreateSession, pb, session_id=session_id).session)

    def list_sessions(self) -> list[Session]:
        response = self._unary(self._sessions.ListSessions, session_service_pb2.ListSessionsRequest())
        return [_session(s) for s in response.sessions]

    def get_session(self, session_id: str) -> Session:
        return _session(self._unary(self._sessions.GetSession,
                                    session_service_pb2.GetSessionRequest(session_id=session_id),
                                    session_id=session_id).session)

    def history(self, session_id: str) -> list[dict[str, str]]:
        """The session's messages, oldest first, as {"role", "content"} plus any "tool_calls",
        "tool_call_id" and "name" (system prompt not included)."""
        response = self._unary(self._sessions.GetSession,
                               session_service_pb2.GetSessionRequest(session_id=session_id),
                               session_id=session_id)
        out = []
        for m in response.messages:
            message = {"role": m.role, "content": m.content}
            if m.tool_calls:
                message["tool_calls"] = [{"id": c.id, "name": c.name, "arguments": c.arguments}
                                         for c in m.tool_calls]
            if m.tool_call_id:
                message["tool_call_id"] = m.tool_call_id
            if m.name:
                message["name"] = m.name
            out.append(message)
        return out

    def delete_session(self, session_id: str) -> None:
        self._unary(self._sessions.DeleteSession,
                    session_service_pb2.DeleteSessionRequest(session_id=session_id),
                    session_id=session_id)

    def rollback_session(self, session_id: str, message_count: int) -> Session:
        """Removes the last `message_count` messages."""
        return _session(self._unary(self._sessions.RollbackSession, session_service_pb2.RollbackSessionRequest(
            session_id=session_id, message_count=message_count), session_id=session_id).session)

    def branch_session(self, session_id: str, message_count: int, *,
                       new_session_id: str | None = None) -> Session:
        """A new session with the first `message_count` messages of `session_id`."""
        pb = session_service_pb2.BranchSessionRequest(session_id=session_id, message_count=message_count)
        if new_session_id is not None:
            pb.new_session_id = new_session_id
        return _session(self._unary(self._sessions.BranchSession, pb, session_id=session_id).session)

    def chat(self, session_id: str, content: str, *, max_tokens: int | None = None,
             stop: Sequence[str] = (), logit_bias: Mapping[int, float] | None = None,
             create_if_missing: bool = False, model: str = "", system_prompt: str | None = None,
             reuse_cache: bool | None = None, timeout: float | None = None,
             **sampling) -> Iterator[ChatDelta]:
        """One turn: streams the answer; the turn is in the history once the last delta arrived.
        Closing the iterator early cancels the turn and leaves the history unchanged."""
        pb = session_service_pb2.ChatRequest(session_id=session_id, content=content, stop=list(stop),
                                             create_if_missing=create_if_missing, model=model)
        if max_tokens is not None:
            pb.max_tokens = max_tokens
        if system_prompt is not None:
            pb.system_prompt = system_prompt
        if reuse_cache is not None:
            pb.reuse_cache = reuse_cache
        features = {k: sampling.pop(k) for k in list(sampling) if k in _TURN_FEATURES}
        fill_features(pb, **features)
        _fill_sampling(pb.sampling, sampling, logit_bias)
        call = self._sessions.Chat(pb, **self._call_options(timeout, session_id))
        try:
            for response in call:
                yield _chat_delta(response)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    # -- monitoring --------------------------------------------------------------------------

    def _call(self, stub_type, method: str, request):
        try:
            return getattr(stub_type(self._channel), method)(request, **self._call_options(None))
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def status(self) -> "status_service_pb2.GetStatusResponse":
        """Liveness, readiness (as grpc.health.v1), engine counts and each component's check."""
        return self._call(status_service_pb2_grpc.StatusServiceStub, "GetStatus",
                          status_service_pb2.GetStatusRequest())

    def prometheus_metrics(self, *, openmetrics: bool = False) -> str:
        """Every server metric as Prometheus text (or OpenMetrics)."""
        fmt = (metrics_service_pb2.EXPOSITION_FORMAT_OPENMETRICS if openmetrics
               else metrics_service_pb2.EXPOSITION_FORMAT_PROMETHEUS_TEXT)
        return self._call(metrics_service_pb2_grpc.MetricsServiceStub, "GetPrometheusMetrics",
                          metrics_service_pb2.GetPrometheusMetricsRequest(format=fmt)).text

    def hardware_metrics(self) -> "hardware_service_pb2.HardwareMetrics":
        """One snapshot of the machine and the server process."""
        return self._call(hardware_service_pb2_grpc.HardwareServiceStub, "GetHardwareMetrics",
                          hardware_service_pb2.GetHardwareMetricsRequest()).metrics
