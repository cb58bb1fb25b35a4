"""llama.cpp backend over llama-cpp-python.

`Llama` loads the model and provides metadata and tokenization; decoding is driven here on the
low-level API (llama_batch, llama_decode, per-request llama_sampler chains) by one worker thread
that owns the llama context. The event loop never touches the context: requests are handed to the
worker through a bounded FIFO, and tokens come back through `loop.call_soon_threadsafe`.

The worker checks each request's cancel flag before every decode call (prompt chunks included),
so an aborted request releases the engine within one step.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import queue
import random
import threading
import time
from typing import AsyncIterator

import llama_cpp
import numpy as np

from server.backends.base import Backend, BackendHealth, BackendInfo, Embedding
from server.config import LoadParams
from server.core.chat_template import ChatTemplate
from server.core.text import DeltaAssembler
from server.core.types import (Delta, Finish, FinishReason, GenerationRequest, Sampling, Timings,
                               Usage)
from server.errors import (EngineFailure, EngineUnavailable, InvalidArgument, PromptTooLong,
                           QueueFull, TokenwireError)

log = logging.getLogger(__name__)

# Tokens of recent history that the repetition penalties look at (llama.cpp's default).
PENALTY_LAST_N = 64
# A bias at or below this bans the token outright, as OpenAI documents for -100.
BAN_BIAS = -100.0


class _Job:
    """One unit of work for the worker, plus the channel back to the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False  # set from the event loop; read by the worker before each step
        self.steps = 0  # decode calls made for this job, written by the worker
        self.steps_at_cancel = 0

    def cancel(self) -> None:
        if not self.cancelled:
            self.steps_at_cancel = self.steps
            self.cancelled = True

    def emit(self, item: object) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.cancelled = True


class _GenerateJob(_Job):
    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        self.request = request


class _EmbedJob(_Job):
    def __init__(self, inputs: list[str], normalize: bool, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        self.inputs = inputs
        self.normalize = normalize


class LlamaCppBackend(Backend):
    name = "llama_cpp"

    def __init__(self, engine_id: str, model_path: str, params: LoadParams, *, max_queue: int = 64):
        self.engine_id = engine_id
        self.model_path = model_path
        self.params = params
        self._jobs: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._by_id: dict[str, _Job] = {}
        self._active: _Job | None = None
        self._worker: threading.Thread | None = None
        self._llm: llama_cpp.Llama | None = None
        self._pieces: dict[int, bytes] = {}
        self._tokens_total = 0
        self._cancelled_total = 0
        self._max_steps_after_cancel = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def load(self) -> None:
        await asyncio.to_thread(self._load)
        self._worker = threading.Thread(target=self._run, name=f"llama-{self.engine_id}", daemon=True)
        self._worker.start()

    def _load(self) -> None:
        p = self.params
        try:
            llm = llama_cpp.Llama(
                model_path=self.model_path,
                n_ctx=p.n_ctx,
                n_batch=p.n_batch,
                n_ubatch=p.n_batch,
                n_threads=p.n_threads,
                n_threads_batch=p.n_threads,
                n_gpu_layers=p.n_gpu_layers,
                main_gpu=p.main_gpu,
                use_mmap=p.use_mmap,
                use_mlock=p.use_mlock,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise EngineFailure(f"cannot load model '{self.engine_id}' from {self.model_path}: {exc}") from None
        self._llm = llm
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)
        self._n_vocab = llm.n_vocab()
        self._n_ctx = llm.n_ctx()
        self._n_embd = llm.n_embd()
        self._n_batch = p.n_batch
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        bos, eos = llm.token_bos(), llm.token_eos()
        self._bos_text = llm.detokenize([bos], special=True).decode("utf-8", "replace") if bos >= 0 else ""
        eos_text = llm.detokenize([eos], special=True).decode("utf-8", "replace") if eos >= 0 else ""
        self._template = ChatTemplate(llm.metadata.get("tokenizer.chat_template"),
                                      bos_token=self._bos_text, eos_token=eos_text)
        if self._template.fallback_reason:
            log.warning("engine %s: %s; using ChatML", self.engine_id, self._template.fallback_reason)

    async def close(self) -> None:
        for job in list(self._by_id.values()):
            job.cancel()
        if self._worker is not None:
            await asyncio.to_thread(self._jobs.put, None)
            await asyncio.to_thread(self._worker.join)
            self._worker = None
        if self._llm is not None:
            llama_cpp.llama_batch_free(self._batch)
            self._llm.close()
            self._llm = None

    # -- requests ----------------------------------------------------------------------------

    async def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        if self._worker is None:
            raise EngineUnavailable(f"engine '{self.engine_id}' is not loaded")
        job = _GenerateJob(request, asyncio.get_running_loop())
        self._submit(job)
        if request.request_id:
            self._by_id[request.request_id] = job
        try:
            while True:
                item = await job.events.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if item.finish is not None:
                    return
        finally:
            # Normal end, client cancel, deadline, or consumer error: the worker stops at its next step.
            job.cancel()
            self._by_id.pop(request.request_id, None)

    async def embed(self, inputs: list[str], *, normalize: bool) -> list[Embedding]:
        if self._worker is None:
            raise EngineUnavailable(f"engine '{self.engine_id}' is not loaded")
        job = _EmbedJob(inputs, normalize, asyncio.get_running_loop())
        self._submit(job)
        try:
            result = await job.events.get()
        finally:
            job.cancel()
        if isinstance(result, BaseException):
            raise result
        return result

    def _submit(self, job: _Job) -> None:
        try:
            self._jobs.put_nowait(job)
        except queue.Full:
            raise QueueFull(f"engine '{self.engine_id}' has {self._jobs.maxsize} requests waiting; "
                            f"retry later") from None

    async def abort(self, request_id: str) -> None:
        job = self._by_id.get(request_id)
        if job is not None:
            job.cancel()

    def health(self) -> BackendHealth:
        alive = self._worker is not None and self._worker.is_alive()
        return BackendHealth(healthy=alive, active_requests=int(self._active is not None),
                             queued_requests=self._jobs.qsize(),
                             tokens_generated_total=self._tokens_total,
                             cancelled_total=self._cancelled_total,
                             max_steps_after_cancel=self._max_steps_after_cancel,
                             detail="" if alive else "worker not running")

    def info(self) -> BackendInfo:
        return BackendInfo(backend=self.name, model_path=self.model_path, n_ctx=self._n_ctx,
                           n_vocab=self._n_vocab, n_threads=self.params.n_threads or 0,
                           chat_template_source=self._template.fallback_reason or "model")

    async def tokenize(self, text: str, *, add_special: bool, parse_special: bool) -> list[int]:
        return await asyncio.to_thread(self._tokenize, text, add_special, parse_special)

    async def detokenize(self, token_ids: list[int], *, render_special: bool) -> str:
        bad = [t for t in token_ids if not 0 <= t < self._n_vocab]
        if bad:
            raise InvalidArgument.single(
                "token_ids", f"{bad[0]} is outside the vocabulary (ids 0 to {self._n_vocab - 1})")
        data = await asyncio.to_thread(self._llm.detokenize, token_ids, special=render_special)
        return data.decode("utf-8", errors="replace")

    def _tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        # llama.cpp's tokenizer only reads the vocabulary, so it is safe beside the decoding worker.
        return self._llm.tokenize(text.encode("utf-8"), add_bos=add_special, special=parse_special)

    def _prompt_tokens(self, request: GenerationRequest) -> list[int]:
        if request.messages is not None:
            rendered = self._template.render(request.messages)
            # A template that writes the BOS text itself must not get a second BOS token.
            add_bos = not (self._bos_text and rendered.startswith(self._bos_text))
            tokens = self._tokenize(rendered, add_bos, True)
        else:
            tokens = self._tokenize(request.prompt or "", True, True)
        if not tokens:
            raise InvalidArgument.single(request.input_field, "the prompt is empty")
        if len(tokens) >= self._n_ctx:
            raise PromptTooLong(request.input_field, len(tokens), self._n_ctx, self.engine_id)
        return tokens

    # -- the worker --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            if job.cancelled:
                self._note_cancelled(job)
                continue
            self._active = job
            try:
                if isinstance(job, _EmbedJob):
                    self._embed(job)
                else:
                    self._generate(job)
            except TokenwireError as exc:
                job.emit(exc)
            except Exception as exc:  # a bug or a native failure: report it, keep the worker alive
                log.exception("engine %s: generation failed", self.engine_id)
                job.emit(EngineFailure(f"engine '{self.engine_id}' failed: {exc}"))
            finally:
                self._active = None

    def _note_cancelled(self, job: _Job) -> None:
        self._cancelled_total += 1
        self._max_steps_after_cancel = max(self._max_steps_after_cancel, job.steps - job.steps_at_cancel)

    def _decode(self, tokens: list[int], start_pos: int, *, all_outputs: bool = False) -> None:
        batch = self._batch
        n = len(tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = start_pos + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = all_outputs
        batch.logits[n - 1] = 1
        batch.n_tokens = n
        rc = llama_cpp.llama_decode(self._llm.ctx, batch)
        if rc != 0:
            raise EngineFailure(f"llama_decode returned {rc} at position {start_pos}")

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, len(buf), 0, False)
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    def _embed(self, job: _EmbedJob) -> None:
        """Mean of the final hidden states over each input's tokens, computed on the generation
        context with embeddings switched on for the duration (no second context in memory)."""
        ctx = self._llm.ctx
        results: list[Embedding] = []
        llama_cpp.llama_set_embeddings(ctx, True)
        try:
            for index, text in enumerate(job.inputs):
                tokens = self._tokenize(text, True, False)
                if not tokens:
                    raise InvalidArgument.single(f"inputs[{index}]", "the input has no tokens")
                if len(tokens) > self._n_ctx:
                    raise InvalidArgument.single(
                        f"inputs[{index}]", f"the input is {len(tokens)} tokens but the context window "
                                            f"of engine '{self.engine_id}' holds {self._n_ctx} tokens")
                llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
                total = np.zeros(self._n_embd, dtype=np.float64)
                for begin in range(0, len(tokens), self._n_batch):
                    if job.cancelled:
                        self._note_cancelled(job)
                        return
                    chunk = tokens[begin:begin + self._n_batch]
                    self._decode(chunk, begin, all_outputs=True)
                    for i in range(len(chunk)):
                        row = llama_cpp.llama_get_embeddings_ith(ctx, i)
                        total += np.ctypeslib.as_array(row, shape=(self._n_embd,))
                vector = total / len(tokens)
                if job.normalize:
                    vector /= max(float(np.linalg.norm(vector)), 1e-12)
                results.append(Embedding(vector.astype(np.float32).tolist(), len(tokens)))
        finally:
            llama_cpp.llama_set_embeddings(ctx, False)
        job.emit(results)

    def _generate(self, job: _GenerateJob) -> None:
        request = job.request
        started = time.monotonic()
        arrived = request.arrived_at or started
        prompt = self._prompt_tokens(request)
        seed = request.sampling.seed if request.sampling.seed is not None else random.getrandbits(32)

        # Each request starts from an empty KV cache, so identical requests decode identically.
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(self._llm.ctx), True)
        for begin in range(0, len(prompt), self._n_batch):
            if job.cancelled:
                self._note_cancelled(job)
                return
            self._decode(prompt[begin:begin + self._n_batch], begin)
            job.steps += 1
        prefilled = time.monotonic()

        sampler = self._sampler(request.sampling, seed, prompt)
        try:
            self._decode_loop(job, sampler, prompt, seed, arrived, started, prefilled)
        finally:
            llama_cpp.llama_sampler_free(sampler)

    def _decode_loop(self, job: _GenerateJob, sampler, prompt: list[int], seed: int,
                     arrived: float, started: float, prefilled: float) -> None:
        request = job.request
        assembler = DeltaAssembler(request.stop)
        ctx = self._llm.ctx
        limit = request.max_tokens
        pos = len(prompt)
        generated = 0
        first_at = last_at = prefilled
        reason = FinishReason.LENGTH
        while True:
            if job.cancelled:
                self._note_cancelled(job)
                return
            token = llama_cpp.llama_sampler_sample(sampler, ctx, -1)
            last_at = time.monotonic()
            if generated == 0:
                first_at = last_at
            if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                reason = FinishReason.STOP
                break
            generated += 1
            self._tokens_total += 1
            released = assembler.push(token, self._piece(token))
            if released is not None and not assembler.stopped:
                job.emit(Delta(released.text, released.token_ids))
            if assembler.stopped:
                reason = FinishReason.STOP_SEQUENCE
                tail = released
                break
            if (limit is not None and generated >= limit) or pos + 1 >= self._n_ctx:
                break
            self._decode([token], pos)
            job.steps += 1
            pos += 1
        if reason is not FinishReason.STOP_SEQUENCE:
            tail = assembler.flush()
        decode_s = max(last_at - first_at, 1e-9)
        prompt_s = max(prefilled - started, 1e-9)
        timings = Timings(
            queue_ms=(started - arrived) * 1000,
            prompt_ms=prompt_s * 1000,
            time_to_first_token_ms=(first_at - arrived) * 1000,
            decode_ms=decode_s * 1000,
            tokens_per_second=(generated - 1) / decode_s if generated > 1 else 0.0,
            prompt_tokens_per_second=len(prompt) / prompt_s,
        )
        finish = Finish(reason, Usage(len(prompt), generated), timings, seed)
        job.emit(Delta(tail.text if tail else "", tail.token_ids if tail else (), finish))

    def _sampler(self, s: Sampling, seed: int, prompt: list[int]):
        chain = llama_cpp.llama_sampler_chain_init(llama_cpp.llama_sampler_chain_default_params())
        add = lambda smpl: llama_cpp.llama_sampler_chain_add(chain, smpl)  # noqa: E731
        if s.logit_bias:
            items = [llama_cpp.llama_logit_bias(token, float("-inf") if bias <= BAN_BIAS else bias)
                     for token, bias in s.logit_bias.items()]
            array = (llama_cpp.llama_logit_bias * len(items))(*items)
            add(llama_cpp.llama_sampler_init_logit_bias(self._n_vocab, len(items), array))
        if s.penalized:
            add(llama_cpp.llama_sampler_init_penalties(PENALTY_LAST_N, s.repeat_penalty,
                                                       s.frequency_penalty, s.presence_penalty))
        if s.greedy:
            add(llama_cpp.llama_sampler_init_greedy())
        else:
            if s.top_k > 0:
                add(llama_cpp.llama_sampler_init_top_k(s.top_k))
            if s.top_p < 1.0:
                add(llama_cpp.llama_sampler_init_top_p(s.top_p, 1))
            if s.min_p > 0.0:
                add(llama_cpp.llama_sampler_init_min_p(s.min_p, 1))
            add(llama_cpp.llama_sampler_init_temp(s.temperature))
            add(llama_cpp.llama_sampler_init_dist(_seed32(seed)))
        if s.penalized:
            # Penalties look back over recent history, prompt included, as llama.cpp's server does.
            for token in prompt[-PENALTY_LAST_N:]:
                llama_cpp.llama_sampler_accept(chain, token)
        return chain


def _seed32(seed: int) -> int:
    """Folds a 64-bit seed into llama.cpp's 32 bits, avoiding its 'pick a random seed' value."""
    folded = (seed ^ (seed >> 32)) & 0xFFFFFFFF
    return 0 if folded == llama_cpp.LLAMA_DEFAULT_SEED else folded
