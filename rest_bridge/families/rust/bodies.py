"""The Rust LLM Inference Service's (doc 003) request and response bodies: what its routes read,
convert to protobuf (`to_pb`) and answer (`.body()`); the same models document them."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field

from rest_bridge.bodies import Answer, Given, NullIsAbsent
from tokenwire.v1 import engine_service_pb2 as engine_pb
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import generation_service_pb2 as gen_svc_pb
from tokenwire.v1 import session_service_pb2 as session_pb

NAMESPACE = "rust"


def _strings(value):
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return value
    raise ValueError("'stop' must be an array of strings")


Stop = Annotated[list[str], BeforeValidator(_strings)]


class _Body(NullIsAbsent):
    # Members are read by their documented names only (`max-token`, not `max_token`).
    model_config = ConfigDict(populate_by_name=False)


class CompletionRequest(_Body):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"model": "Qwen/Qwen2.5-0.5B-Instruct", "prompt": "Once upon a time", "max_tokens": 100,
         "temperature": 0.7, "top_p": 0.95, "stop": ["\n\n"], "stream": False}]})

    PROTO = gen_svc_pb.GenerateRequest

    model: Given
    """Engine id."""
    prompt: Given
    max_tokens: int = 128
    temperature: float = 0.7
    top_p: float = 0.95
    stop: Stop = []
    stream: bool = False

    def to_pb(self) -> gen_svc_pb.GenerateRequest | gen_svc_pb.CompleteRequest:
        return (gen_svc_pb.GenerateRequest if self.stream else gen_svc_pb.CompleteRequest)(
            model=self.model, prompt=self.prompt, max_tokens=self.max_tokens, stop=self.stop,
            sampling=gen_pb.SamplingParams(temperature=self.temperature, top_p=self.top_p))


_TRUNCATION = {None: gen_pb.TRUNCATION_UNSPECIFIED, "auto": gen_pb.TRUNCATION_AUTO,
               "error": gen_pb.TRUNCATION_ERROR}


class ChatRequest(_Body):
    """The kebab-case /chat/completions body, also the /chat/ws message."""

    PROTO = session_pb.ChatRequest
    PROTO_FIELDS = {"max_token": "max_tokens", "top_k": "sampling.top_k"}

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"model-name": "Qwen/Qwen2.5-0.5B-Instruct", "prompt": "What is Rust?", "max-token": 256,
         "session-id": "my-session-id", "temperature": 0.7, "top-p": 0.95, "top-k": 40,
         "repeat-penalty": 1.1, "system-prompt": "You are helpful", "stop": [], "device": "cuda"}]})

    model_name: Given = Field(alias="model-name")
    """Engine id of a session this call creates (an existing session keeps its model)."""
    prompt: Given
    """The user message."""
    session_id: str = Field("", alias="session-id")
    """Session to continue; created when it does not exist. Absent: a new session (its id is in
    the `X-Session-Id` header)."""
    max_token: int = Field(512, alias="max-token")
    """Most tokens to generate."""
    temperature: float = 0.7
    top_p: float = Field(0.95, alias="top-p")
    top_k: int = Field(40, alias="top-k")
    repeat_penalty: float = Field(1.1, alias="repeat-penalty")
    system_prompt: str | None = Field(None, alias="system-prompt")
    """System prompt; replaces the session's when it differs."""
    stop: Stop = []
    device: Literal["cpu", "cuda", "metal"] | None = None
    """Accepted for compatibility; the engine runs where it was loaded."""
    truncation: Literal["auto", "error"] | None = None
    """History longer than the context window: `auto` leaves the oldest whole turns out of the
    prompt (the stored history stays whole; the count is in the `X-Truncated-Messages` header),
    `error` refuses the turn with a 400. Absent: the session's policy, which the turn that
    creates the session sets (`auto` unless it says otherwise)."""

    def to_pb(self) -> session_pb.ChatRequest:
        return session_pb.ChatRequest(
            truncation=_TRUNCATION[self.truncation],
            content=self.prompt, model=self.model_name, create_if_missing=True,
            session_id=self.session_id, max_tokens=self.max_token, stop=self.stop,
            system_prompt=self.system_prompt, sampling=gen_pb.SamplingParams(
                temperature=self.temperature, top_p=self.top_p, top_k=self.top_k,
                repeat_penalty=self.repeat_penalty))


class Rollback(_Body):
    PROTO = session_pb.RollbackSessionRequest
    PROTO_FIELDS = {"amount": "message_count"}

    amount: int = Field(json_schema_extra={"minimum": 0})
    """Messages to remove from the end."""

    def to_pb(self, session_id: str) -> session_pb.RollbackSessionRequest:
        return session_pb.RollbackSessionRequest(session_id=session_id, message_count=self.amount)


class Error(Answer):
    error: str


class Completion(Answer):
    text: str
    model: str
    tokens: int
    """Tokens generated."""

    @classmethod
    def from_pb(cls, result: gen_svc_pb.CompleteResponse) -> Completion:
        return cls(text=result.text, model=result.model, tokens=result.usage.completion_tokens)


class Message(Answer):
    role: str
    content: str

    @classmethod
    def history(cls, result: session_pb.GetSessionResponse) -> list[dict]:
        """The conversation, oldest first, the system prompt (if any) as the first message."""
        session = result.session
        turns = [("system", session.system_prompt)] if session.HasField("system_prompt") else []
        turns += [(m.role, m.content) for m in result.messages]
        return [cls(role=role, content=content).body() for role, content in turns]


class Status(Answer):
    status: Literal["ok"] = "ok"


class ModelList(Answer):
    models: list[str]


class Model(Answer):
    id: str
    name: str
    context_length: int | None
    quantization: str | None

    @classmethod
    def from_pb(cls, engine: engine_pb.Engine) -> Model:
        return cls(id=engine.engine_id, context_length=engine.n_ctx or None,
                   name=engine.model_path.rsplit("/", 1)[-1].removesuffix(".gguf"),
                   quantization=engine.model.quantization or None)
