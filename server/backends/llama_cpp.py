"""llama.cpp backend: the asyncio face of a continuous-batching scheduler.

The model and context are created off the event loop; the scheduler's thread owns the context.
`generate` submits a job and relays its deltas; leaving the iterator early (client cancel,
deadline) cancels the job, and the scheduler frees its sequence at the next step.
"""

from __future__ import annotations

import asyncio
import logging

from server.backends.llama_bindings import llama_cpp
from typing import AsyncIterator

from server.backends.llama_grammar import GrammarCompiler
from server.backends.llama_model import LlamaModel
from server.backends.llama_scheduler import EmbedJob, GenerateJob, Job, Scheduler, SchedulerStats
from server.core.backend import Backend, BackendHealth, BackendInfo, Embedding
from server.core.chat_template import ChatTemplate
from server.core.engines import ContextPlan, context_plan
from server.core.gguf_info import read_chat_template
from server.core.types import Delta, GenerationRequest, LoadParams
from server.errors import EngineUnavailable, InvalidArgument

log = logging.getLogger(__name__)


class LlamaCppBackend(Backend):
    name = "llama_cpp"

    def __init__(self, engine_id: str, model_path: str, params: LoadParams, *, max_queue: int = 64):
        self.engine_id = engine_id
        self.model_path = model_path
        self.params = params
        self.max_queue = max_queue
        self._model: LlamaModel | None = None
        self._scheduler: Scheduler | None = None
        self._template: ChatTemplate | None = None
        self._by_id: dict[str, Job] = {}
        self._live: set[Job] = set()
        self._n_threads: int | None = None  # set by tune(); else the configured count
        self._closing = asyncio.Lock()
        self._grammars: GrammarCompiler | None = None  # made by the first constrained request
        self.context: ContextPlan | None = None  # the KV cache size and why, once loaded

    # -- lifecycle ---------------------------------------------------------------------------

    async def load(self) -> None:
        await asyncio.to_thread(self._load)
        self._scheduler.start()

    def _load(self) -> None:
        # The template is untrusted code from the file: check it before loading the weights.
        ChatTemplate(read_chat_template(self.model_path), bos_token="",
                     eos_token="").verify(self.model_path)
        n_parallel = self.params.n_parallel
        self.context = context_plan(self.model_path, self.params)
        params = self.params.model_copy(update={
            "n_ctx": self.context.n_ctx,
            "n_batch": min(self.params.n_batch or self.context.n_ctx, self.context.n_ctx)})
        model = LlamaModel(self.model_path, params, n_seq_max=n_parallel)
        log.info("engine %s: context %s; KV cache %s/%s", self.engine_id, self.context.describe(),
                 params.cache_type_k or "f16", params.cache_type_v or "f16")
        template = ChatTemplate(model.chat_template(), bos_token=model.token_text(model.bos),
                                eos_token=model.token_text(model.eos))
        if template.fallback_reason:
            log.warning("engine %s: %s; using ChatML", self.engine_id, template.fallback_reason)
        self._model, self._template = model, template
        self._scheduler = Scheduler(self.engine_id, model, template, n_parallel=n_parallel,
                                    n_batch=params.n_batch, max_queue=self.max_queue,
                                    kv_park_bytes=(self.params.kv_park_mb or 0) * 1024 * 1024)

    async def close(self) -> None:
        # Requests still running end with UNAVAILABLE rather than waiting on a queue nobody fills.
        for job in list(self._live):
            job.events.put_nowait(EngineUnavailable(f"engine '{self.engine_id}' was unloaded",
                                                    reason="ENGINE_UNLOADED"))
        # One close at a time: a second one (a drain, then a shutdown) waits for the first and
        # then finds nothing to stop, rather than freeing the model under a running decode or
        # freeing the same native objects twice.
        async with self._closing:
            if self._scheduler is not None:
                await asyncio.to_thread(self._scheduler.stop)
                self._scheduler = None
            if self._model is not None:
                self._model.close()
                self._model = None
                self._grammars = None

    def _running(self) -> Scheduler:
        if self._scheduler is None:
            raise EngineUnavailable(f"engine '{self.engine_id}' is not loaded")
        return self._scheduler

    # -- requests ----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        self._check_logit_bias(request)
        scheduler = self._running()
        if request.n > scheduler.n_parallel:
            raise InvalidArgument.single(
                "n", f"engine '{self.engine_id}' decodes at most {scheduler.n_parallel} sequences "
                     f"at once, so n must be at most that (got {request.n})")
        matchers = None
        if request.constraint is not None:
            # Compiling a schema can take milliseconds to seconds: off the event loop.
            matchers = await asyncio.to_thread(self._matchers, request)
        job = GenerateJob(request, asyncio.get_running_loop(), matchers)
        scheduler.submit(job)
        if request.request_id:
            self._by_id[request.request_id] = job
        self._live.add(job)
        finished = 0
        try:
            while True:
                item = await job.events.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish is not None:
                    finished += 1
                    if finished == request.n:
                        return
        finally:
            # Normal end, client cancel, deadline, or consumer error: the scheduler lets go of
            # the sequence at its next step (a no-op if the job already finished).
            job.cancel()
            self._by_id.pop(request.request_id, None)
            self._live.discard(job)

    async def embed(self, inputs: list[str], *, normalize: bool) -> list[Embedding]:
        job = EmbedJob(inputs, normalize, asyncio.get_running_loop())
        self._running().submit(job)
        self._live.add(job)
        try:
            result = await job.events.get()
        finally:
            job.cancel()
            self._live.discard(job)
        if isinstance(result, BaseException):
            raise result
        return result

    async def abort(self, request_id: str) -> None:
        job = self._by_id.get(request_id)
        if job is not None:
            job.cancel()

    async def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        model = self._loaded_model()
        return await asyncio.to_thread(model.tokenize, text, add_special=add_special,
                                       parse_special=parse_special)

    async def detokenize(self, token_ids: list[int], *, render_special: bool) -> str:
        model = self._loaded_model()
        bad = [t for t in token_ids if not 0 <= t < model.n_vocab]
        if bad:
            raise InvalidArgument.single(
                "token_ids", f"{bad[0]} is outside the vocabulary (ids 0 to {model.n_vocab - 1})")
        data = await asyncio.to_thread(model.detokenize, token_ids, render_special=render_special)
        return data.decode("utf-8", errors="replace")

    def _matchers(self, request: GenerationRequest) -> list:
        if self._grammars is None:
            self._grammars = GrammarCompiler(self._loaded_model())
        first = self._grammars.matcher(request.constraint)
        return [first] + [first.deep_copy() for _ in range(request.n - 1)]

    def _check_logit_bias(self, request: GenerationRequest) -> None:
        """A bias for a token the model does not have is a mistake (llama.cpp would silently
        ignore it): the caller hears which id, and the vocabulary's range."""
        model = self._model
        if model is None:
            return  # not loaded: submitting says so
        outside = sorted(t for t in request.sampling.logit_bias if not 0 <= t < model.n_vocab)
        if outside:
            raise InvalidArgument.single(
                "sampling.logit_bias", f"token id {outside[0]} is outside the vocabulary (ids 0 "
                                       f"to {model.n_vocab - 1})")

    def _loaded_model(self) -> LlamaModel:
        if self._model is None:
            raise EngineUnavailable(f"engine '{self.engine_id}' is not loaded")
        return self._model

    # -- status ------------------------------------------------------------------------------

    def stats(self) -> SchedulerStats:
        return self._running().stats()

    def generating(self) -> bool:
        scheduler = self._scheduler
        return scheduler is not None and scheduler.generating

    def scheduler_status(self) -> dict[str, float] | None:
        if self._scheduler is None:
            return None
        s = self._scheduler.stats()
        return dict(parallel_sequences=s.n_parallel, active_sequences=s.active,
                    queued_requests=s.queued, max_queued_requests=self.max_queue,
                    tokens_per_second=s.tokens_per_second, kv_cells_used=s.kv_cells_used,
                    kv_cells_total=s.kv_cells_total, tokens_generated_total=s.tokens_generated_total,
                    prompt_tokens_reused_total=s.prompt_tokens_reused_total)

    def health(self) -> BackendHealth:
        scheduler = self._scheduler
        if scheduler is None or not scheduler.alive:
            return BackendHealth(healthy=False, active_requests=0, queued_requests=0,
                                 detail="scheduler not running")
        s = scheduler.stats()
        return BackendHealth(healthy=True, active_requests=s.active, queued_requests=s.queued,
                             tokens_generated_total=s.tokens_generated_total,
                             cancelled_total=s.cancelled_total,
                             max_steps_after_cancel=s.max_steps_after_cancel)

    def tuning(self) -> tuple[int, int] | None:
        if self._scheduler is None:
            return None
        return self._n_threads or self.params.n_threads or 0, self._scheduler.n_batch

    def tune(self, *, n_threads: int, n_batch: int) -> None:
        scheduler, model = self._scheduler, self._model
        if scheduler is None or model is None:
            return
        # llama_set_n_threads only stores the counts that the next llama_decode reads, and the
        # scheduler reads n_batch when it fills the next batch; the batch buffer and the context
        # were sized for the configured n_batch, so that is the ceiling.
        llama_cpp.llama_set_n_threads(model.ctx, n_threads, n_threads)
        self._n_threads = n_threads
        scheduler.n_batch = max(1, min(n_batch, self.params.n_batch or n_batch,
                                       self.context.n_ctx if self.context else n_batch))

    def info(self) -> BackendInfo:
        model = self._loaded_model()
        return BackendInfo(backend=self.name, model_path=self.model_path, n_ctx=model.n_ctx_seq,
                           n_vocab=model.n_vocab, n_threads=self.params.n_threads or 0,
                           chat_template_source=self._template.fallback_reason or "model",
                           tool_format=self._template.tool_format)
