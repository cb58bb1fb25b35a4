"""A typed, synchronous Python client for tokenwire's gRPC API.

    with Client("127.0.0.1:50051") as client:
        for delta in client.generate(messages=[{"role": "user", "content": "Hi"}], temperature=0):
            print(delta.text, end="", flush=True)

Failed calls raise subclasses of tokenwire.errors.TokenwireError.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tokenwire.errors import from_rpc_error
from tokenwire.v1 import generation_pb2, generation_service_pb2, generation_service_pb2_grpc

_FINISH_NAMES = {
    generation_pb2.FINISH_REASON_STOP: "stop",
    generation_pb2.FINISH_REASON_STOP_SEQUENCE: "stop_sequence",
    generation_pb2.FINISH_REASON_LENGTH: "length",
}
_SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty",
                    "presence_penalty", "frequency_penalty", "seed")


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True)
class Timings:
    time_to_first_token_ms: float
    prompt_ms: float
    decode_ms: float
    tokens_per_second: float
    prompt_tokens_per_second: float
    queue_ms: float


@dataclass(frozen=True)
class Delta:
    """One streamed piece. The last one has `finish_reason`, `usage`, `timings`, `seed` set."""

    text: str
    token_ids: tuple[int, ...] = ()
    finish_reason: str | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    model: str = ""
    seed: int | None = None


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: tuple[int, ...]
    finish_reason: str
    usage: Usage
    timings: Timings
    model: str
    seed: int


def _usage(pb) -> Usage:
    return Usage(pb.prompt_tokens, pb.completion_tokens, pb.total_tokens)


def _timings(pb) -> Timings:
    return Timings(pb.time_to_first_token_ms, pb.prompt_ms, pb.decode_ms, pb.tokens_per_second,
                   pb.prompt_tokens_per_second, pb.queue_ms)


def _delta(pb: generation_service_pb2.GenerateResponse) -> Delta:
    if pb.finish_reason == generation_pb2.FINISH_REASON_UNSPECIFIED:
        return Delta(pb.text, tuple(pb.token_ids), model=pb.model)
    return Delta(pb.text, tuple(pb.token_ids), _FINISH_NAMES[pb.finish_reason], _usage(pb.usage),
                 _timings(pb.timings), pb.model, pb.seed)


@dataclass
class _Request:
    prompt: str | None = None
    messages: Sequence[Mapping[str, str]] | None = None
    model: str = ""
    max_tokens: int | None = None
    stop: Sequence[str] = ()
    logit_bias: Mapping[int, float] = field(default_factory=dict)
    sampling: dict = field(default_factory=dict)

    def fill(self, pb) -> None:
        pb.model = self.model
        if self.prompt is not None:
            pb.prompt = self.prompt
        if self.messages is not None:
            pb.chat.SetInParent()
            for m in self.messages:
                pb.chat.messages.add(role=m["role"], content=m["content"])
        if self.max_tokens is not None:
            pb.max_tokens = self.max_tokens
        pb.stop.extend(self.stop)
        for name, value in self.sampling.items():
            if value is not None:
                setattr(pb.sampling, name, value)
        for token, bias in self.logit_bias.items():
            pb.sampling.logit_bias[int(token)] = bias


class Client:
    """Wraps one channel. Keyword arguments of generate/complete: see GenerateRequest."""

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

    def close(self) -> None:
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _call_options(self, timeout: float | None) -> dict:
        return {"timeout": timeout if timeout is not None else self._timeout,
                "metadata": self._metadata}

    @staticmethod
    def _request(prompt, messages, model, max_tokens, stop, logit_bias, sampling) -> _Request:
        unknown = set(sampling) - set(_SAMPLING_FIELDS)
        if unknown:
            raise TypeError(f"unknown sampling arguments: {', '.join(sorted(unknown))}")
        return _Request(prompt, messages, model or "", max_tokens, tuple(stop or ()),
                        dict(logit_bias or {}), sampling)

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
        return Completion(r.text, tuple(r.token_ids), _FINISH_NAMES[r.finish_reason],
                          _usage(r.usage), _timings(r.timings), r.model, r.seed)

    def tokenize(self, text: str, *, model: str = "", add_special_tokens: bool = False,
                 parse_special_tokens: bool = False) -> list[int]:
        pb = generation_service_pb2.TokenizeRequest(model=model, text=text,
                                                     add_special_tokens=add_special_tokens,
                                                     parse_special_tokens=parse_special_tokens)
        try:
            return list(self._generation.Tokenize(pb, **self._call_options(None)).token_ids)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

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
