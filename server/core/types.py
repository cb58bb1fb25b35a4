"""Domain types shared by servicers, the engine manager and backends (no protobuf here, and no
server.config: the settings build on these types, not the other way round)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class FinishReason(enum.Enum):
    STOP = "stop"  # end-of-generation token
    STOP_SEQUENCE = "stop_sequence"
    LENGTH = "length"  # max_tokens or the context window
    TOOL_CALLS = "tool_calls"


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # a JSON object text


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str = ""
    name: str = ""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    #: The JSON schema of the arguments, parsed; {} for a function without parameters.
    parameters: dict = field(default_factory=dict)


class ToolChoice(enum.Enum):
    AUTO = "auto"
    NONE = "none"
    REQUIRED = "required"
    FUNCTION = "function"  # the one named in GenerationRequest.tool_name


class ConstraintKind(enum.Enum):
    JSON_OBJECT = "json_object"
    JSON_SCHEMA = "json_schema"
    GBNF = "gbnf"
    LARK = "lark"
    REGEX = "regex"


@dataclass(frozen=True)
class Constraint:
    """The formal language the output must stay in; `source` is the schema (JSON text) or the
    grammar or regex text, and `field` the request field it came from, for error messages."""

    kind: ConstraintKind
    source: str = ""
    field: str = "constraint"


@dataclass(frozen=True)
class TopLogprob:
    token_id: int
    token: bytes
    logprob: float


@dataclass(frozen=True)
class TokenLogprob:
    token_id: int
    token: bytes
    logprob: float
    top: tuple[TopLogprob, ...] = ()


@dataclass(frozen=True)
class Sampling:
    """Sampling settings with every default resolved; temperature 0 means greedy."""

    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    logit_bias: dict[int, float] = field(default_factory=dict)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    @property
    def penalized(self) -> bool:
        return (self.repeat_penalty != 1.0 or self.presence_penalty != 0.0
                or self.frequency_penalty != 0.0)


class Truncation(enum.Enum):
    """The policy for chat input longer than the context window."""

    ERROR = "error"  # refuse it (INVALID_ARGUMENT, reason CONTEXT_LENGTH_EXCEEDED)
    AUTO = "auto"  # drop the oldest whole turns until it fits


@dataclass(frozen=True)
class GenerationRequest:
    """A validated request: exactly one of prompt and messages is set."""

    prompt: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    sampling: Sampling = field(default_factory=Sampling)
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    request_id: str = ""
    #: time.monotonic() when the request reached the server, for time-to-first-token.
    arrived_at: float = 0.0
    #: Whose conversation this continues (a session id); the scheduler keeps such a KV cache
    #: from being overwritten by unrelated requests while it can. Empty: nobody's.
    cache_key: str = ""
    #: The conversation this one was branched from (a session id), for its first turn: a cache
    #: that conversation owns may be taken over, as its history is this prompt's start.
    warm_from: str = ""
    #: False: prefill the whole prompt even when a cached prefix could be reused.
    reuse_cache: bool = True
    #: The language the output must stay in (None: free text).
    constraint: Constraint | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = ToolChoice.NONE
    #: With ToolChoice.FUNCTION: the function to call.
    tool_name: str = ""
    parallel_tool_calls: bool = True
    #: Alternatives per token to report with log probabilities; None: no log probabilities.
    top_logprobs: int | None = None
    #: Independent choices from one prompt evaluation.
    n: int = 1
    #: What happens when the chat messages do not fit the window: Truncation.ERROR refuses the
    #: request (PromptTooLong); Truncation.AUTO drops the oldest whole turns (a user message and
    #: what follows it), always keeping leading system messages and the last message.
    truncation: Truncation = Truncation.ERROR
    #: With AUTO: at least this many messages after the leading system messages are dropped (the
    #: cut the conversation's previous turn used, so that its cached prefix stays reusable).
    truncation_floor: int = 0
    #: Tools the model's chat template renders itself (its native tool format); empty when the
    #: tools, if any, were described in the messages (server/core/tool_calls.py).
    template_tools: tuple[Tool, ...] = ()

    @property
    def input_field(self) -> str:
        """The request field that holds the input, for error messages."""
        return "prompt" if self.prompt is not None else "chat.messages"


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Timings:
    queue_ms: float
    prompt_ms: float
    time_to_first_token_ms: float
    decode_ms: float
    tokens_per_second: float
    prompt_tokens_per_second: float


@dataclass(frozen=True)
class Finish:
    reason: FinishReason
    usage: Usage
    timings: Timings
    seed: int
    #: Prompt tokens whose KV was reused from a cache instead of computed.
    reused_prompt_tokens: int = 0
    #: Messages left out of the prompt to fit the window (Truncation.AUTO).
    truncated_messages: int = 0


@dataclass(frozen=True)
class Delta:
    """A piece of output of choice `index`; the last delta of each choice carries `finish`."""

    text: str
    token_ids: tuple[int, ...] = ()
    finish: Finish | None = None
    index: int = 0
    #: One entry per token of `token_ids`, when the request asked for log probabilities.
    logprobs: tuple[TokenLogprob, ...] = ()
    #: The calls the choice made (on its last delta, with FinishReason.TOOL_CALLS).
    tool_calls: tuple[ToolCall, ...] = ()
    #: Messages left out of the prompt to fit the window; on the first delta of choice 0 (so a
    #: caller knows before the answer streams) and in the finish.
    truncated_messages: int = 0


KvCacheType = Literal["f16", "q8_0", "q4_0"]

#: Bytes per element of each KV cache type (ggml block sizes: q8_0 34 bytes per 32, q4_0 18).
KV_CACHE_TYPE_BYTES: dict[str, float] = {"f16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32}

#: llama.cpp's ceiling (GGML_MAX_N_THREADS); a larger count is never useful.
MAX_THREADS = 512


class LoadParams(BaseModel):
    """How an engine is loaded. Unset fields take the values from the `engine` settings section
    (server.config.Settings.resolve_load_params fills them in)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    n_ctx: int | None = Field(default=None, ge=0, description="KV cache cells in tokens, shared by "
                              "the parallel sequences; 0: sized from the model (its trained "
                              "context per sequence, capped by memory).")
    n_gpu_layers: int | None = Field(default=None, ge=-1, description="Layers to offload to the "
                                     "GPU (-1 or a large value: all).")
    main_gpu: int | None = Field(default=None, ge=0,
                                 description="GPU that holds the model when it is not split.")
    n_threads: int | None = Field(default=None, ge=1, le=MAX_THREADS, description="Decode threads.")
    n_batch: int | None = Field(default=None, ge=1, description="Prompt tokens evaluated per step "
                                "(at most n_ctx).")
    n_parallel: int | None = Field(default=None, ge=1, le=256, description="Sequences decoded "
                                   "together (continuous batching).")
    flash_attn: bool | None = Field(default=None, description="Use flash attention.")
    kv_unified: bool | None = Field(default=None,
                                    description="One KV cache shared by all sequences.")
    kv_park_mb: int | None = Field(default=None, ge=0, description="Host memory for parked "
                                   "conversation KV caches, in MiB.")
    use_mmap: bool | None = Field(default=None, description="Memory-map the model file.")
    use_mlock: bool | None = Field(default=None, description="Lock the model in RAM.")
    cache_type_k: KvCacheType | None = Field(default=None, description="KV cache element type of "
                                             "K: f16, q8_0 or q4_0 (a quantized cache holds "
                                             "about 2x or 3.5x the tokens in the same memory).")
    cache_type_v: KvCacheType | None = Field(default=None, description="KV cache element type of "
                                             "V (quantized V needs flash attention).")

    @field_validator("n_ctx")
    @classmethod
    def _auto_or_at_least_16(cls, value: int | None) -> int | None:
        if value is not None and 0 < value < 16:
            raise ValueError("must be 0 (sized from the model) or at least 16")
        return value
