"""An OpenAI-compatible upstream as a backend: a local Ollama, a vLLM cluster, an external provider.

Kai's model mapping (`002_11c26303e9680c5d.txt`): an engine id that clients name is served by a
model of another server. The official `openai` SDK does the HTTP, SSE parsing and error typing.
Leaving the delta iterator early closes the upstream response, so a client that disconnects stops
the upstream's work too. tokenize/detokenize have no OpenAI API and answer UNIMPLEMENTED.

An upstream that cannot be reached when the engine loads (Ollama not started yet, no network) does
not fail the engine: the server starts, says so in its log and in the engine's health, and each
request tries the upstream again (UNAVAILABLE, HTTP 503, while it is down). An upstream that
answers but lacks the model, or refuses the credentials, does fail the load: that is a
configuration to fix, not a wait.
"""

from __future__ import annotations

import json
import logging
import os
import time
from typing import AsyncIterator

import openai

from server.config import UpstreamSettings
from server.core.backend import Backend, BackendHealth, BackendInfo, Embedding
from server.core.types import (ConstraintKind, Delta, Finish, FinishReason, GenerationRequest,
                               Timings, Usage)
from server.errors import (EngineFailure, EngineUnavailable, InvalidArgument, NotFound, QueueFull,
                           TokenwireError, Unimplemented)

log = logging.getLogger(__name__)

_FINISH = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH}
#: Longest wait for the upstream's model list when the engine loads.
PROBE_TIMEOUT_S = 10.0


def _domain_error(engine_id: str, exc: Exception, base_url: str = "") -> TokenwireError:
    """The upstream's failure in this server's terms (one table, by the SDK's error types)."""
    where = f"engine '{engine_id}' (upstream {base_url})" if base_url else f"engine '{engine_id}' (upstream)"
    if isinstance(exc, openai.NotFoundError):
        return NotFound(f"{where}: {exc.message}", reason="UPSTREAM_MODEL_NOT_FOUND")
    if isinstance(exc, (openai.BadRequestError, openai.UnprocessableEntityError)):
        return InvalidArgument.single("upstream", exc.message, reason="UPSTREAM_REJECTED")
    if isinstance(exc, openai.RateLimitError):
        return QueueFull(f"{where} is rate limited: {exc.message}", reason="UPSTREAM_RATE_LIMITED")
    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        return EngineFailure(f"{where} refused this server's credentials: {exc.message}",
                             reason="UPSTREAM_AUTH_FAILED")
    if isinstance(exc, openai.APITimeoutError):
        return EngineUnavailable(f"{where} did not answer in time", reason="UPSTREAM_TIMEOUT")
    if isinstance(exc, openai.APIConnectionError):
        return EngineUnavailable(f"{where} is unreachable: {exc}", reason="UPSTREAM_UNAVAILABLE")
    if isinstance(exc, openai.APIStatusError):
        return EngineUnavailable(f"{where} failed with HTTP {exc.status_code}: {exc.message}",
                                 reason="UPSTREAM_UNAVAILABLE")
    return EngineFailure(f"{where} failed: {exc}")


class OpenAIUpstreamBackend(Backend):
    name = "openai_upstream"

    def __init__(self, engine_id: str, upstream: UpstreamSettings):
        self.engine_id = engine_id
        self.upstream = upstream
        self.model_path = ""  # nothing on this server's disk (and no share of its memory budget)
        self.upstream_model = upstream.model or engine_id
        self._client: openai.AsyncOpenAI | None = None
        self._active = 0
        self._generated = 0
        self._cancelled = 0
        #: Why the upstream could not be reached at the last try; "" once it answered.
        self.unreachable = ""

    # -- lifecycle -------------------------------------------------------------------------------

    async def load(self) -> None:
        api_key = os.environ.get(self.upstream.api_key_env, "") if self.upstream.api_key_env else ""
        client = openai.AsyncOpenAI(base_url=self.upstream.base_url, api_key=api_key or "none",
                                    timeout=self.upstream.timeout_seconds, max_retries=0)
        probe = client.with_options(timeout=min(self.upstream.timeout_seconds, PROBE_TIMEOUT_S))
        try:
            models = [m.id async for m in probe.models.list()]
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            # Not a reason to stop the server: requests try again, and get UNAVAILABLE meanwhile.
            self.unreachable = _domain_error(self.engine_id, exc, self.upstream.base_url).message
            log.warning("%s; the engine serves once it answers (requests get UNAVAILABLE until "
                        "then)", self.unreachable.rstrip("."))
            self._client = client
            return
        except openai.OpenAIError as exc:
            await client.close()
            raise _domain_error(self.engine_id, exc, self.upstream.base_url) from None
        if models and self.upstream_model not in models:
            await client.close()
            raise EngineFailure(f"upstream {self.upstream.base_url} has no model "
                                f"'{self.upstream_model}' (it has: {', '.join(models[:20])})",
                                reason="UPSTREAM_MODEL_NOT_FOUND")
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.close()

    def _running(self) -> openai.AsyncOpenAI:
        if self._client is None:
            raise EngineUnavailable(f"engine '{self.engine_id}' is not loaded")
        return self._client

    # -- requests --------------------------------------------------------------------------------

    def _sampling(self, request: GenerationRequest) -> dict:
        s = request.sampling
        args: dict = {"temperature": s.temperature, "top_p": s.top_p,
                      "presence_penalty": s.presence_penalty,
                      "frequency_penalty": s.frequency_penalty}
        if s.seed is not None:
            args["seed"] = s.seed
        if s.logit_bias:
            args["logit_bias"] = {str(k): v for k, v in s.logit_bias.items()}
        if request.max_tokens is not None:
            args["max_tokens"] = request.max_tokens
        if request.stop:
            args["stop"] = list(request.stop)
        # Not in OpenAI's API, understood by llama.cpp, Ollama's OpenAI layer and vLLM.
        args["extra_body"] = {"top_k": s.top_k, "min_p": s.min_p, "repeat_penalty": s.repeat_penalty}
        return args

    def _features(self, request: GenerationRequest) -> dict:
        """What the upstream is asked to enforce for us: JSON output as OpenAI's response_format
        (Ollama, vLLM and llama-server implement it). Other constraints, log probabilities and
        n > 1 are refused rather than silently dropped."""
        c = request.constraint
        if request.top_logprobs is not None:
            raise InvalidArgument.single("top_logprobs", f"engine '{self.engine_id}' (an "
                                         "OpenAI-compatible upstream) does not relay logprobs")
        if request.n > 1:
            raise InvalidArgument.single("n", f"engine '{self.engine_id}' (an OpenAI-compatible "
                                         "upstream) serves one choice per request")
        if c is None:
            return {}
        if c.kind is ConstraintKind.JSON_OBJECT:
            return {"response_format": {"type": "json_object"}}
        if c.kind is ConstraintKind.JSON_SCHEMA:
            return {"response_format": {"type": "json_schema", "json_schema": {
                "name": "output", "schema": json.loads(c.source), "strict": True}}}
        raise InvalidArgument.single(c.field, f"engine '{self.engine_id}' (an OpenAI-compatible "
                                     "upstream) enforces only JSON schemas and JSON mode")

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        client = self._running()
        features = self._features(request)
        started = request.arrived_at or time.monotonic()
        first_at = None
        usage, finish, pieces = None, FinishReason.STOP, 0
        self._active += 1
        stream = None
        try:
            try:
                if request.messages is not None:
                    stream = await client.chat.completions.create(
                        model=self.upstream_model, stream=True,
                        stream_options={"include_usage": True},
                        messages=[{"role": m.role, "content": m.content} for m in request.messages],
                        **self._sampling(request), **features)
                else:
                    stream = await client.completions.create(
                        model=self.upstream_model, prompt=request.prompt, stream=True,
                        stream_options={"include_usage": True}, **self._sampling(request),
                        **features)
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = chunk.usage
                    for choice in chunk.choices or ():
                        text = (choice.delta.content if hasattr(choice, "delta")
                                else choice.text) or ""
                        if choice.finish_reason:
                            finish = _FINISH.get(choice.finish_reason, FinishReason.STOP)
                        if text:
                            first_at = first_at or time.monotonic()
                            pieces += 1
                            yield Delta(text=text)
            except openai.OpenAIError as exc:
                raise self._failed(exc) from None
            self.unreachable = ""
            done = time.monotonic()
            completion = usage.completion_tokens if usage else pieces
            self._generated += completion
            first = first_at or done
            decode_s = max(done - first, 1e-9)
            yield Delta(text="", finish=Finish(
                reason=finish,
                usage=Usage(prompt_tokens=usage.prompt_tokens if usage else 0,
                            completion_tokens=completion),
                timings=Timings(queue_ms=0.0, prompt_ms=(first - started) * 1000,
                                time_to_first_token_ms=(first - started) * 1000,
                                decode_ms=decode_s * 1000,
                                tokens_per_second=(completion - 1) / decode_s if completion > 1 else 0.0,
                                prompt_tokens_per_second=0.0),
                seed=request.sampling.seed if request.sampling.seed is not None else 0))
        except GeneratorExit:
            self._cancelled += 1
            raise
        finally:
            self._active -= 1
            if stream is not None:
                await stream.close()  # stops the upstream's work when the client left early

    def _failed(self, exc: Exception) -> TokenwireError:
        error = _domain_error(self.engine_id, exc, self.upstream.base_url)
        if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError)):
            self.unreachable = error.message
        return error

    async def embed(self, inputs: list[str], *, normalize: bool) -> list[Embedding]:
        try:
            answer = await self._running().embeddings.create(model=self.upstream_model, input=inputs)
        except openai.OpenAIError as exc:
            raise self._failed(exc) from None
        self.unreachable = ""
        per_input = (answer.usage.prompt_tokens // max(len(inputs), 1)) if answer.usage else 0
        return [Embedding(values=list(d.embedding), tokens=per_input)
                for d in sorted(answer.data, key=lambda d: d.index)]

    async def abort(self, request_id: str) -> None:
        """Requests end when their iterator closes; there is nothing else to stop upstream."""

    async def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        raise Unimplemented(f"engine '{self.engine_id}' is an OpenAI-compatible upstream, which "
                            "has no tokenizer API")

    async def detokenize(self, token_ids: list[int], *, render_special: bool) -> str:
        raise Unimplemented(f"engine '{self.engine_id}' is an OpenAI-compatible upstream, which "
                            "has no tokenizer API")

    def health(self) -> BackendHealth:
        return BackendHealth(healthy=self._client is not None and not self.unreachable,
                             active_requests=self._active, queued_requests=0,
                             tokens_generated_total=self._generated,
                             cancelled_total=self._cancelled, detail=self.unreachable)

    def info(self) -> BackendInfo:
        return BackendInfo(backend=self.name, model_path=self.upstream.base_url, n_ctx=0,
                           n_vocab=0, n_threads=0, chat_template_source="upstream")
