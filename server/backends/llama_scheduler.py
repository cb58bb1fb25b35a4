"""Continuous batching over one llama.cpp context, driven by one worker thread.

Each step builds a single batch: the next token of every sequence that is generating, plus
prompt tokens of sequences still prefilling, up to the batch size; then one `llama_decode`, then
each generating sequence picks its next token from its own output row with its own picker. Requests
join between steps and leave as soon as they finish or are cancelled, so a long prompt can stall
the others for at most one chunk, and a cancelled request frees its sequence within one step.

By default each sequence has its own KV stream of n_ctx / n_parallel cells (as llama-server with
an explicit -np). A sequence's cells then always stand in position order, and with flash
attention (which visits a query's own cells in cell order), a request decodes to the same tokens
alone or beside others (tests/integration/test_continuous_batching.py holds us to it). With `kv_unified` all
sequences share the n_ctx cells instead: one request may use them all, but cells freed by one
sequence get reused by others out of order, so results may differ in the last bits under load.
Idle caches are then evicted (least recently used first) when cells are needed, and if the
active sequences alone outgrow the cache the longest one is finished with LENGTH.

A free sequence keeps the KV of its last request; a new request takes the free sequence whose
cache shares the longest prefix with its prompt and prefills only the rest. A request that
continues a conversation names it (`cache_key`, a session id) and its sequence remembers the
owner: other requests take such a sequence only when no free sequence would cost less, so a
chat session's next turn finds its history still resident and prefills only the new message.
When such a sequence must be given up anyway (more conversations than sequences, an embedding,
a full unified cache), its KV is parked in host memory first (llama_kv_park: llama.cpp's
sequence-state API, LRU under a byte budget) and restored by the conversation's next turn.

A request for n > 1 choices takes n free sequences at once. The first prefills the prompt; in the
step where its prompt is done, its KV is copied to the other n - 1 (llama_memory_seq_cp) and every
choice picks its first token from the same logits row with its own picker and seed, so the prompt
is evaluated once whatever n is. Each choice then decodes, stops and reports on its own.

An embedding request borrows one free sequence and is worked through a chunk of one input at a
time between generation steps, with embeddings switched on for that chunk's decode only: running
streams go on beside it (each side gets about half the time) instead of waiting for all of its
inputs. One embedding runs at a time; the next waits in the FIFO.

Only this thread touches the context. The event loop hands work over through `submit()` (a
bounded FIFO: beyond it requests fail fast) and gets results through each job's `emit`.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from server.backends.llama_bindings import llama_cpp
from server.backends.llama_kv_park import KvParking
from server.backends.llama_model import LlamaModel
from server.backends.llama_sampling import make_picker
from server.core.backend import Embedding
from server.core.chat_template import ChatTemplate
from server.core.text import DeltaAssembler
from server.core.types import (Delta, Finish, FinishReason, GenerationRequest, Timings,
                               TokenLogprob, TopLogprob, Truncation, Usage)
from server.errors import (EngineFailure, EngineUnavailable, FieldViolation, InvalidArgument,
                           PromptTooLong, QueueFull)

log = logging.getLogger(__name__)

# Tokens of an embedding input decoded at once while streams run: one chunk is the longest
# a stream waits for its next token because of an embedding (~0.2 s for SmolLM2-135M on 2 cores).
EMBED_CHUNK_BESIDE_STREAMS = 64

# Window over which the aggregate decode rate is reported.
RATE_WINDOW_S = 5.0

#: How a user gets a longer window (appended to a too-long prompt's error).
CONTEXT_HINT = ("raise the window with --context-size (engine.n_ctx, the per-sequence window), "
                "fewer --parallel sequences, --kv-unified, or a quantized KV cache "
                "(--cache-type-k/--cache-type-v q8_0) for the same memory")
CONTEXT_HINT_UNIFIED = ("raise the window with --context-size (engine.n_ctx), or a quantized KV "
                        "cache (--cache-type-k/--cache-type-v q8_0) for the same memory")


class Job:
    """One unit of work, plus the channel back to the event loop that submitted it."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.events: asyncio.Queue = asyncio.Queue()
        self.cancelled = False  # set from the event loop; read by the worker before each step
        self.steps = 0  # decode steps this job took part in, written by the worker
        self.steps_at_cancel = 0
        # Set by Scheduler.submit: takes the job out of the queue if it is still waiting there.
        self.withdraw: Callable[[Job], None] | None = None

    def cancel(self) -> None:
        if not self.cancelled:
            self.steps_at_cancel = self.steps
            self.cancelled = True
            if self.withdraw is not None:
                self.withdraw(self)

    def emit(self, item: object) -> None:
        deliver([(self, item)])


def _put_all(items: list[tuple[Job, object]]) -> None:
    for job, item in items:
        job.events.put_nowait(item)


def deliver(items: list[tuple[Job, object]]) -> None:
    """Hands items to their jobs' event loops: one wake-up per loop, however many items."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Job, object]]] = {}
    for job, item in items:
        by_loop.setdefault(job.loop, []).append((job, item))
    for loop, batch in by_loop.items():
        try:
            loop.call_soon_threadsafe(_put_all, batch)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            for job, _ in batch:
                job.cancelled = True


class GenerateJob(Job):
    def __init__(self, request: GenerationRequest, loop: asyncio.AbstractEventLoop,
                 matchers: list | None = None):
        super().__init__(loop)
        self.request = request
        self.prompt: list[int] | None = None  # tokenized once, when first considered for a slot
        self.truncated = 0  # messages left out of the prompt to fit the window
        #: One grammar matcher per choice, when the request is constrained.
        self.matchers = matchers


class EmbedJob(Job):
    def __init__(self, inputs: list[str], normalize: bool, loop: asyncio.AbstractEventLoop):
        super().__init__(loop)
        self.inputs = inputs
        self.normalize = normalize


@dataclass
class _Embedding:
    """An embedding request in progress on one sequence, decoded a chunk at a time between
    generation steps: a request with many inputs shares the engine with running streams (half the
    time each, in chunks of EMBED_CHUNK_BESIDE_STREAMS tokens) instead of stalling them for its
    whole length; alone it runs in chunks of n_batch."""

    job: EmbedJob
    slot: _Slot
    results: list[Embedding] = field(default_factory=list)
    tokens: list[int] | None = None  # the current input's tokens (None between inputs)
    done: int = 0  # of the current input's tokens, decoded so far
    total: object = None  # the current input's running sum of hidden states (numpy float64)
    #: Seconds of generation steps since it began, less the seconds its own chunks took: beside
    #: running streams a chunk runs only when this is >= 0, so each side gets half the time.
    credit: float = 0.0


@dataclass
class _Slot:
    """One llama.cpp sequence and the request it is serving, if any."""

    seq_id: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV this sequence holds
    owner: str = ""  # cache_key of the conversation the cache belongs to ("" for none)
    last_used: float = 0.0
    job: GenerateJob | None = None
    pending: list[int] = field(default_factory=list)  # prompt tokens not yet decoded
    next_token: int | None = None  # sampled, to be decoded in the next step
    output_index: int = -1  # batch position of the token whose logits this slot samples from
    picker: object = None  # the request's ArgmaxPicker or ChainPicker
    assembler: DeltaAssembler | None = None
    choice: int = 0  # which of the request's n choices this sequence generates
    #: For choices 1..n-1: the sequence that prefills the shared prompt (None once copied).
    prompt_from: _Slot | None = None
    #: Log probabilities of generated tokens not yet released by the assembler, oldest first.
    logprobs: collections.deque = field(default_factory=collections.deque)
    prompt_len: int = 0
    reused: int = 0
    truncated: int = 0  # messages left out of the prompt (reported on the first delta, finish)
    announced: bool = False  # the first delta (which reports `truncated`) has been sent
    generated: int = 0
    seed: int = 0
    started: float = 0.0
    prefilled: float = 0.0
    first_at: float = 0.0
    last_at: float = 0.0
    embedding: bool = False  # lent to the embedding in progress (see _Embedding)

    @property
    def busy(self) -> bool:
        return self.job is not None or self.embedding


@dataclass(frozen=True)
class SchedulerStats:
    active: int
    queued: int
    n_parallel: int
    kv_cells_used: int
    kv_cells_total: int
    tokens_per_second: float
    tokens_generated_total: int
    prompt_tokens_reused_total: int
    kv_restored_total: int
    cancelled_total: int
    max_steps_after_cancel: int


class Scheduler:
    def __init__(self, engine_id: str, model: LlamaModel, template: ChatTemplate, *,
                 n_parallel: int, n_batch: int, max_queue: int, kv_park_bytes: int = 0):
        self.engine_id = engine_id
        self.model = model
        self.template = template
        self.n_batch = n_batch
        self.max_queue = max_queue
        self._slots = [_Slot(seq_id) for seq_id in range(n_parallel)]
        # Cells one sequence may hold: its own stream, or (unified) the whole cache.
        self.n_ctx_seq = model.n_ctx_seq
        self._batch = llama_cpp.llama_batch_init(n_batch, 0, 1)
        self._parking = KvParking(model.ctx, model.memory, kv_park_bytes)
        self._waiting: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=f"llama-{engine_id}", daemon=True)
        self._recent: collections.deque[tuple[float, int]] = collections.deque()
        # What a step produced, delivered together when the step ends (one wake-up per step).
        self._outbox: list[tuple[Job, object]] = []
        self._embedding: _Embedding | None = None
        self._tokens_total = 0
        self._reused_total = 0
        self._cancelled_total = 0
        self._max_steps_after_cancel = 0

    # -- the event loop's side ---------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job) -> None:
        with self._cond:
            if self._stopping:
                raise EngineUnavailable(f"engine '{self.engine_id}' is shutting down")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"engine '{self.engine_id}' has {len(self._waiting)} requests "
                                f"waiting (the limit); retry later")
            job.withdraw = self._withdraw
            self._waiting.append(job)
            self._cond.notify()

    def _withdraw(self, job: Job) -> None:
        """A job cancelled while still queued leaves the queue at once: it no longer counts as
        queued nor against max_queue, and never reaches a sequence. (A running job's sequence is
        freed at the next step instead.) While stopping, waiting jobs stay for _abandon_all."""
        with self._cond:
            if self._stopping:
                return
            try:
                self._waiting.remove(job)
            except ValueError:  # not waiting: running, finished, or taken by the worker
                return
            self._note_cancelled(job)

    def stop(self) -> None:
        """Cancels everything and joins the thread (call off the event loop)."""
        with self._cond:
            self._stopping = True
            for job in self._waiting:
                job.cancel()
            for slot in self._slots:
                if slot.job is not None:
                    slot.job.cancel()
            if self._embedding is not None:
                self._embedding.job.cancel()
            self._cond.notify()
        if self._thread.ident is not None:  # started
            self._thread.join()
        with self._cond:  # idempotent: the batch is freed once, by whichever stop gets here first
            batch, self._batch = self._batch, None
        if batch is not None:
            llama_cpp.llama_batch_free(batch)

    @property
    def n_parallel(self) -> int:
        return len(self._slots)

    @property
    def generating(self) -> bool:
        """Some sequence is generating (read off the worker thread: a hint, not a promise)."""
        return any(slot.job is not None for slot in self._slots)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stats(self) -> SchedulerStats:
        now = time.monotonic()
        recent = [n for t, n in list(self._recent) if now - t <= RATE_WINDOW_S]
        return SchedulerStats(
            active=sum(slot.busy for slot in self._slots),
            queued=len(self._waiting),
            n_parallel=len(self._slots),
            kv_cells_used=sum(len(slot.cached) for slot in self._slots),
            kv_cells_total=self.model.n_ctx,
            tokens_per_second=sum(recent) / RATE_WINDOW_S,
            tokens_generated_total=self._tokens_total,
            prompt_tokens_reused_total=self._reused_total,
            kv_restored_total=self._parking.restored_total,
            cancelled_total=self._cancelled_total,
            max_steps_after_cancel=self._max_steps_after_cancel,
        )

    # -- the worker --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                if not self._admit():
                    return
                generating = any(slot.job is not None for slot in self._slots)
                if generating:
                    started = time.monotonic()
                    try:
                        self._step()
                    finally:
                        outbox, self._outbox = self._outbox, []
                        deliver(outbox)
                    if self._embedding is not None:
                        self._embedding.credit += time.monotonic() - started
                work = self._embedding
                # Beside running streams an embedding gets at most the time they get.
                if work is not None and (not generating or work.credit >= 0):
                    started = time.monotonic()
                    self._embed_chunk(work, EMBED_CHUNK_BESIDE_STREAMS if generating else self.n_batch)
                    work.credit -= time.monotonic() - started
            except Exception:  # a bug or a native failure: fail the active requests, keep serving
                log.exception("engine %s: scheduler step failed", self.engine_id)
                for slot in self._slots:
                    if slot.job is not None:
                        slot.job.emit(EngineFailure(f"engine '{self.engine_id}' failed while decoding"))
                        self._release(slot, forget_cache=True)

    def _admit(self) -> bool:
        """Moves waiting jobs into free sequences; blocks while there is nothing to do.
        False once the scheduler is stopping."""
        while True:
            with self._cond:
                busy = any(slot.busy for slot in self._slots)
                while not self._waiting and not busy and not self._stopping:
                    self._cond.wait()
                if self._stopping:
                    self._abandon_all()
                    return False
                if not self._waiting:
                    return True
                job = self._waiting[0]
                if job.cancelled:
                    self._waiting.popleft()
                    self._note_cancelled(job)
                    continue
                free = [slot for slot in self._slots if not slot.busy]
                if not free or (isinstance(job, GenerateJob) and len(free) < job.request.n):
                    return True  # FIFO: a request for n choices waits for n free sequences
                if isinstance(job, EmbedJob):
                    if self._embedding is not None:
                        return True  # one embedding at a time; FIFO behind it
                    self._waiting.popleft()
            if isinstance(job, EmbedJob):
                self._begin_embedding(job, min(free, key=lambda slot: slot.last_used))
                continue
            try:
                if job.prompt is None:
                    job.prompt, job.truncated = self._prompt_tokens(job.request)
                prompt = job.prompt
            except Exception as exc:
                if not self._take(job):
                    continue  # cancelled meanwhile: nobody waits for the error
                job.emit(exc if isinstance(exc, InvalidArgument) else
                         EngineFailure(f"engine '{self.engine_id}' could not prepare the prompt: {exc}"))
                continue
            if self.model.kv_unified and self._committed() + len(prompt) > self.model.n_ctx:
                return True  # wait until running requests free cells; FIFO order is kept
            slot, reuse = self._pick_slot(free, prompt, job.request.cache_key,
                                          job.request.warm_from)
            if not job.request.reuse_cache:
                reuse = 0
            else:
                reuse = self._unpark(slot, job.request.cache_key, prompt, reuse)
            if not self._take(job):
                continue  # cancelled while its prompt was prepared
            self._start(slot, job, prompt, reuse)
            others = sorted((s for s in free if s is not slot), key=lambda s: s.last_used)
            for choice, sibling in enumerate(others[:job.request.n - 1], start=1):
                self._start(sibling, job, prompt, 0, choice=choice, prompt_from=slot)

    def _take(self, job: Job) -> bool:
        """Takes `job`, which stood first in the queue when the lock was last held, out of it;
        False if it was withdrawn (cancelled) in between."""
        with self._cond:
            if self._waiting and self._waiting[0] is job:
                self._waiting.popleft()
                return True
            return False

    def _abandon_all(self) -> None:
        for job in self._waiting:
            job.emit(EngineUnavailable(f"engine '{self.engine_id}' is shutting down"))
        self._waiting.clear()
        for slot in self._slots:
            if slot.job is not None:
                self._release(slot)
        if self._embedding is not None:
            self._end_embedding(self._embedding,
                                EngineUnavailable(f"engine '{self.engine_id}' is shutting down"))

    def _prompt_tokens(self, request: GenerationRequest) -> tuple[list[int], int]:
        """The prompt's tokens, and how many messages were left out to fit the window."""
        if request.messages is not None and request.truncation is Truncation.AUTO:
            return self._fitted_prompt(request)
        text = self.template.render(request.messages) if request.messages is not None else (
            request.prompt or "")
        tokens = self._tokenize(request, text)
        if len(tokens) >= self.n_ctx_seq:
            raise self._too_long(request, len(tokens))
        return tokens, 0

    def _tokenize(self, request: GenerationRequest, text: str) -> list[int]:
        # Tokenizing megabytes costs seconds of this thread and memory for good; a text longer
        # than the window could hold even in the longest tokens is refused unread.
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.n_ctx_seq * self.model.max_token_bytes:
            raise self._too_long(request, -(-size // self.model.max_token_bytes), at_least=True)
        if request.messages is not None:
            # A template that writes the BOS text itself must not get a second BOS token.
            bos_text = self.template.bos_token
            tokens = self.model.tokenize(text, add_special=not (bos_text and text.startswith(bos_text)),
                                         parse_special=True)
        else:
            tokens = self.model.tokenize(text, add_special=True, parse_special=True)
        if not tokens:
            raise InvalidArgument.single(request.input_field, "the prompt is empty")
        return tokens

    def _too_long(self, request: GenerationRequest, n_tokens: int, *,
                  at_least: bool = False) -> PromptTooLong:
        error = PromptTooLong(request.input_field, n_tokens, self.n_ctx_seq, self.engine_id,
                              at_least=at_least)
        violation = error.violations[0]
        hint = CONTEXT_HINT_UNIFIED if self.model.kv_unified else CONTEXT_HINT
        metadata = dict(error.metadata, hint=hint)
        # The same error, its description extended with the hint (message and violations).
        InvalidArgument.__init__(error, [FieldViolation(violation.field,
                                                        f"{violation.description}; {hint}")],
                                 reason=error.reason)
        error.metadata = metadata
        return error

    def _fitted_prompt(self, request: GenerationRequest) -> tuple[list[int], int]:
        """Truncation.AUTO: the chat messages with the oldest whole turns left out until the
        prompt leaves room for the answer. The leading system messages and the last message are
        always kept. The cut starts at `truncation_floor` (where the conversation's previous turn
        cut, so its cached prefix is reused); when that is not enough it moves on to leave a
        quarter of the room free, so that the next few turns keep the same cut (and their cached
        prefix) instead of re-prefilling after every turn."""
        messages = list(request.messages)
        head = 0
        while head < len(messages) - 1 and messages[head].role == "system":
            head += 1
        last = len(messages) - 1
        # Cuts at turn boundaries: drop messages[head:head + d], d = 0 or up to a user message.
        cuts = [0] + [i - head for i in range(head + 1, last) if messages[i].role == "user"]
        cuts.append(last - head)
        cuts = sorted(set(cuts))
        reserve = min(request.max_tokens or self.n_ctx_seq // 4, self.n_ctx_seq // 2)
        room = max(self.n_ctx_seq - reserve, 1)
        low = max(room * 3 // 4, 1)
        floor = min(request.truncation_floor, last - head)
        candidates = [d for d in cuts if d >= floor] or [cuts[-1]]

        def tokens_for(d: int) -> list[int]:
            kept = messages[:head] + messages[head + d:]
            return self._tokenize(request, self.template.render(tuple(kept)))

        first = tokens_for(candidates[0])
        if len(first) <= room:
            return first, candidates[0]
        best: tuple[list[int], int] | None = None
        for d in candidates[1:]:
            try:
                tokens = tokens_for(d)
            except PromptTooLong:
                continue  # even the unread text is too long: drop more
            if len(tokens) <= room and best is None:
                best = tokens, d
            if len(tokens) <= low:
                return tokens, d
        if best is not None:
            return best
        # Only the system prompt and the new message are left and they do not leave the room
        # reserved for the answer: serve them if they fit at all.
        tokens = tokens_for(cuts[-1])
        if len(tokens) >= self.n_ctx_seq:
            raise self._too_long(request, len(tokens))
        return tokens, cuts[-1]

    @staticmethod
    def _pick_slot(free: list[_Slot], prompt: list[int], cache_key: str = "",
                   warm_from: str = "") -> tuple[_Slot, int]:
        """The free sequence whose cache shares the longest prefix with the prompt (least
        recently used among equals), and how many prompt tokens it can reuse. A sequence holding
        another conversation's cache is taken only when every free sequence does: overwriting it
        would cost that conversation a full prefill on its next turn (or a restore). The
        exception is the conversation this one branched from (`warm_from`): its history is this
        prompt's start, and _start parks its cache before cutting it to the shared prefix."""
        def score(slot: _Slot) -> tuple:
            prefix = Scheduler._common_prefix(slot.cached, prompt)
            spares_others = (not slot.owner or slot.owner in (cache_key, warm_from)
                             or prefix >= len(slot.cached))
            return spares_others, prefix, -slot.last_used

        best = max(free, key=score)
        # At least the last prompt token is decoded again: its logits pick the first new token.
        return best, min(Scheduler._common_prefix(best.cached, prompt), len(prompt) - 1)

    @staticmethod
    def _common_prefix(a: list[int], b: list[int]) -> int:
        n = 0
        for x, y in zip(a, b):
            if x != y:
                break
            n += 1
        return n

    def _unpark(self, slot: _Slot, key: str, prompt: list[int], reuse: int) -> int:
        """Restores `key`'s parked KV into `slot` when it covers more of the prompt than what the
        slot holds; the number of prompt tokens that can be reused."""
        parked = self._parking.tokens(key) if key else None
        if parked is None:
            return reuse
        prefix = min(self._common_prefix(parked, prompt), len(prompt) - 1)
        if prefix <= reuse:
            return reuse
        # Taken first: evicting the slot's previous owner parks it, which may make room by
        # evicting the oldest copies, this one included.
        entry = self._parking.take(key)
        if slot.owner == key:
            self._forget(slot)
        else:
            self._evict(slot)
        restored = self._parking.load(entry, slot.seq_id)
        if restored is None:
            return 0
        slot.cached, slot.owner = restored, key
        return prefix

    def _evict(self, slot: _Slot, keep: int = 0) -> None:
        """Drops the slot's KV from `keep` on, parking it first if a conversation owns it."""
        if slot.owner and keep < len(slot.cached):
            self._parking.park(slot.owner, slot.seq_id, slot.cached)
        self._forget(slot, keep)

    def _cells_used(self) -> int:
        embedding = self._embedding.done if self._embedding is not None else 0
        return sum(len(slot.cached) for slot in self._slots) + embedding

    def _committed(self) -> int:
        """Cells the active requests hold or will hold once their prompts are in."""
        return sum(len(s.cached) + len(s.pending) for s in self._slots if s.job is not None)

    def _make_room(self, cells: int) -> bool:
        """Unified cache: evicts idle caches, least recently used first, until `cells` more cells
        are free; False if even that is not enough. (Separate streams never compete.)"""
        if not self.model.kv_unified:
            return True
        idle = sorted((slot for slot in self._slots if not slot.busy and slot.cached),
                      key=lambda slot: slot.last_used)
        while self._cells_used() + cells > self.model.n_ctx and idle:
            self._evict(idle.pop(0))
        return self._cells_used() + cells <= self.model.n_ctx

    def _forget(self, slot: _Slot, keep: int = 0) -> None:
        """Drops the slot's KV from position `keep` on."""
        llama_cpp.llama_memory_seq_rm(self.model.memory, slot.seq_id, keep, -1)
        del slot.cached[keep:]
        if not slot.cached:
            slot.owner = ""

    def _start(self, slot: _Slot, job: GenerateJob, prompt: list[int], reuse: int, *,
               choice: int = 0, prompt_from: _Slot | None = None) -> None:
        request = job.request
        if prompt_from is not None or slot.owner != request.cache_key:
            self._evict(slot, keep=reuse)
        else:
            self._forget(slot, keep=reuse)
        if request.cache_key and prompt_from is None:
            self._parking.drop(request.cache_key)  # this turn supersedes any parked copy
        slot.job = job
        slot.owner = request.cache_key if prompt_from is None else ""
        slot.choice, slot.prompt_from = choice, prompt_from
        slot.pending = prompt[reuse:] if prompt_from is None else []
        slot.next_token = None
        slot.prompt_len = len(prompt)
        slot.reused = reuse
        slot.truncated, slot.announced = job.truncated, choice != 0
        slot.generated = 0
        if prompt_from is not None:
            slot.seed = (prompt_from.seed + choice) & 0xFFFFFFFFFFFFFFFF
        else:
            slot.seed = (request.sampling.seed if request.sampling.seed is not None
                         else random.getrandbits(32))
        slot.picker = make_picker(request.sampling, seed=slot.seed, n_vocab=self.model.n_vocab,
                                  prompt=prompt,
                                  matcher=job.matchers[choice] if job.matchers else None,
                                  top_logprobs=request.top_logprobs)
        slot.assembler = DeltaAssembler(request.stop)
        slot.logprobs.clear()
        slot.started = time.monotonic()
        self._reused_total += reuse

    def _release(self, slot: _Slot, *, forget_cache: bool = False) -> None:
        if slot.picker is not None:
            slot.picker.close()
        slot.picker = slot.assembler = slot.job = slot.next_token = slot.prompt_from = None
        slot.pending = []
        slot.logprobs.clear()
        slot.last_used = time.monotonic()
        if forget_cache:
            self._forget(slot)

    def _note_cancelled(self, job: Job) -> None:
        with self._cond:  # the worker and (for queued jobs) the event loop both count
            self._cancelled_total += 1
            self._max_steps_after_cancel = max(self._max_steps_after_cancel,
                                               job.steps - job.steps_at_cancel)

    def _step(self) -> None:
        for slot in self._slots:
            if slot.job is not None and slot.job.cancelled:
                self._note_cancelled(slot.job)
                self._release(slot)
        active = [slot for slot in self._slots if slot.job is not None]
        if not active:
            return
        decoding = [slot for slot in active if slot.next_token is not None]
        prefilling = sorted((slot for slot in active if slot.pending), key=lambda s: s.started)
        wanted_prefill = min(self.n_batch - len(decoding), sum(len(s.pending) for s in prefilling))
        if not self._make_room(len(decoding) + wanted_prefill) and not self._make_room(len(decoding)):
            # The active sequences alone outgrew the cache: end the longest one.
            self._finish(max(active, key=lambda slot: len(slot.cached)), FinishReason.LENGTH)
            return
        # Prompt chunks get what is left of the batch (and of a unified cache) after the decodes.
        budget = self.n_batch - len(decoding)
        if self.model.kv_unified:
            budget = min(budget, self.model.n_ctx - self._cells_used() - len(decoding))
        plan: list[tuple[_Slot, list[int], bool]] = [(slot, [slot.next_token], True) for slot in decoding]
        for slot in prefilling:
            if budget <= 0:
                break
            chunk = slot.pending[:budget]
            plan.append((slot, chunk, len(chunk) == len(slot.pending)))
            budget -= len(chunk)
        self._decode(plan)
        now = time.monotonic()
        for slot, tokens, _ in plan:
            slot.job.steps += 1
            slot.cached.extend(tokens)
            if slot.pending:
                del slot.pending[:len(tokens)]
                if not slot.pending:
                    slot.prefilled = now
        generated_before = self._tokens_total
        for slot, _, wants_output in plan:
            if wants_output:
                # Choices waiting for this prompt share its KV and pick from its row, before
                # this slot's own token can end it (and release it).
                for sibling in self._waiting_for(slot):
                    self._share_prompt(slot, sibling)
                    self._on_token(sibling, sibling.picker.pick(self.model.ctx, slot.output_index),
                                   now)
                token = slot.picker.pick(self.model.ctx, slot.output_index)
                self._on_token(slot, token, now)
        self._recent.append((now, self._tokens_total - generated_before))
        while now - self._recent[0][0] > RATE_WINDOW_S:
            self._recent.popleft()

    def _waiting_for(self, slot: _Slot) -> list[_Slot]:
        if slot.job is None or slot.job.request.n == 1:
            return []
        return [s for s in self._slots if s.prompt_from is slot and s.job is slot.job]

    def _share_prompt(self, source: _Slot, sibling: _Slot) -> None:
        """Gives `sibling` the KV of `source`'s prompt (source holds the prompt and nothing more:
        its first generated token is not decoded yet)."""
        llama_cpp.llama_memory_seq_cp(self.model.memory, source.seq_id, sibling.seq_id, -1, -1)
        sibling.cached = list(source.cached)
        sibling.prompt_from = None
        sibling.prefilled = source.prefilled
        sibling.started = source.started

    def _decode(self, plan: list[tuple[_Slot, list[int], bool]]) -> None:
        rows = []
        for slot, tokens, wants_output in plan:
            start = len(slot.cached)
            rows.extend((token, start + i, slot.seq_id, False) for i, token in enumerate(tokens))
            if wants_output:
                rows[-1] = rows[-1][:3] + (True,)
                slot.output_index = len(rows) - 1  # pickers read the logits by batch position
        self._run_batch(rows)

    def _run_batch(self, rows: list[tuple[int, int, int, bool]]) -> None:
        """Decodes one batch of (token, position, sequence, wants output) rows."""
        batch = self._batch
        for n, (token, pos, seq, output) in enumerate(rows):
            batch.token[n] = token
            batch.pos[n] = pos
            batch.n_seq_id[n] = 1
            batch.seq_id[n][0] = seq
            batch.logits[n] = output
        batch.n_tokens = len(rows)
        rc = llama_cpp.llama_decode(self.model.ctx, batch)
        if rc != 0:
            raise EngineFailure(f"llama_decode returned {rc} for a batch of {len(rows)} tokens")

    def _on_token(self, slot: _Slot, token: int, now: float) -> None:
        request = slot.job.request
        if slot.generated == 0:
            slot.first_at = now
        slot.last_at = now
        if self.model.is_end_of_generation(token):
            self._finish(slot, FinishReason.STOP)
            return
        slot.generated += 1
        self._tokens_total += 1
        piece = self.model.piece(token)
        if request.top_logprobs is not None:
            slot.logprobs.append(self._logprob(slot.picker.last_logprobs, token, piece))
        released = slot.assembler.push(token, piece)
        if slot.assembler.stopped:
            self._finish(slot, FinishReason.STOP_SEQUENCE, tail=released)
            return
        if released is not None:
            self._outbox.append((slot.job, Delta(released.text, released.token_ids,
                                                 index=slot.choice,
                                                 truncated_messages=self._announce(slot),
                                                 logprobs=self._released(slot, released))))
        at_limit = request.max_tokens is not None and slot.generated >= request.max_tokens
        if at_limit or len(slot.cached) + 1 >= self.n_ctx_seq:
            self._finish(slot, FinishReason.LENGTH)
            return
        slot.next_token = token

    @staticmethod
    def _announce(slot: _Slot) -> int:
        """The truncation count for the choice's first delta (0 on the later ones)."""
        if slot.announced:
            return 0
        slot.announced = True
        return slot.truncated

    def _logprob(self, figures, token: int, piece: bytes) -> TokenLogprob:
        chosen, best = figures
        return TokenLogprob(token, piece, chosen,
                            tuple(TopLogprob(t, self.model.piece(t), lp) for t, lp in best))

    @staticmethod
    def _released(slot: _Slot, released) -> tuple[TokenLogprob, ...]:
        """The log probabilities of the tokens a delta releases (the assembler releases tokens
        in order, holding back those that may start a stop sequence)."""
        if not slot.logprobs or released is None:
            return ()
        return tuple(slot.logprobs.popleft() for _ in range(min(len(released.token_ids),
                                                                 len(slot.logprobs))))

    def _finish(self, slot: _Slot, reason: FinishReason, tail=None) -> None:
        if reason is not FinishReason.STOP_SEQUENCE:
            tail = slot.assembler.flush()
        request = slot.job.request
        arrived = request.arrived_at or slot.started
        prefilled = slot.prefilled or slot.first_at or time.monotonic()
        first_at = slot.first_at or prefilled
        decode_s = max(slot.last_at - first_at, 1e-9)
        prompt_s = max(prefilled - slot.started, 1e-9)
        timings = Timings(
            queue_ms=(slot.started - arrived) * 1000,
            prompt_ms=prompt_s * 1000,
            time_to_first_token_ms=(first_at - arrived) * 1000,
            decode_ms=decode_s * 1000,
            tokens_per_second=(slot.generated - 1) / decode_s if slot.generated > 1 else 0.0,
            prompt_tokens_per_second=(slot.prompt_len - slot.reused) / prompt_s,
        )
        finish = Finish(reason, Usage(slot.prompt_len, slot.generated), timings, slot.seed,
                        reused_prompt_tokens=slot.reused, truncated_messages=slot.truncated)
        self._outbox.append((slot.job, Delta(tail.text if tail else "", tail.token_ids if tail else (),
                                             finish, index=slot.choice,
                                             truncated_messages=self._announce(slot),
                                             logprobs=self._released(slot, tail))))
        siblings = self._waiting_for(slot)
        self._release(slot)
        for sibling in siblings:  # the prompt ended before their turn: they end the same way
            self._finish(sibling, reason)

    # -- embeddings --------------------------------------------------------------------------

    def _begin_embedding(self, job: EmbedJob, slot: _Slot) -> None:
        """Lends a free sequence (its idle cache is dropped, parked if a conversation owns it) to
        an embedding request; _embed_chunk then works through it between generation steps."""
        self._evict(slot)
        slot.embedding = True
        self._embedding = _Embedding(job, slot)

    def _embed_chunk(self, work: _Embedding, chunk_tokens: int) -> None:
        """One chunk of the embedding in progress: the mean of the final hidden states over each
        input's tokens, with embeddings switched on for this chunk's decode only."""
        import numpy as np  # ~10 MiB resident: loaded by the first embedding, not by every server

        job, model, seq = work.job, self.model, work.slot.seq_id
        if job.cancelled:
            self._note_cancelled(job)
            self._end_embedding(work, None)
            return
        job.steps += 1
        try:
            if work.tokens is None:
                index = len(work.results)
                tokens = model.tokenize(job.inputs[index], add_special=True, parse_special=False)
                if not tokens:
                    raise InvalidArgument.single(f"inputs[{index}]", "the input has no tokens")
                if len(tokens) > self.n_ctx_seq:
                    raise InvalidArgument.single(
                        f"inputs[{index}]", f"the input is {len(tokens)} tokens but the context "
                                            f"window of engine '{self.engine_id}' holds {self.n_ctx_seq}")
                if not self._make_room(len(tokens)):
                    raise EngineUnavailable(f"engine '{self.engine_id}' has no free context for "
                                            f"a {len(tokens)}-token input now; retry shortly")
                work.tokens, work.done = tokens, 0
                work.total = np.zeros(model.n_embd, dtype=np.float64)
            chunk = work.tokens[work.done:work.done + chunk_tokens]
            llama_cpp.llama_set_embeddings(model.ctx, True)
            try:
                self._run_batch([(token, work.done + i, seq, True) for i, token in enumerate(chunk)])
                for i in range(len(chunk)):
                    row = llama_cpp.llama_get_embeddings_ith(model.ctx, i)
                    work.total += np.ctypeslib.as_array(row, shape=(model.n_embd,))
            finally:
                llama_cpp.llama_set_embeddings(model.ctx, False)
            work.done += len(chunk)
            if work.done < len(work.tokens):
                return
            llama_cpp.llama_memory_seq_rm(model.memory, seq, -1, -1)
            vector = work.total / len(work.tokens)
            if job.normalize:
                vector /= max(float(np.linalg.norm(vector)), 1e-12)
            work.results.append(Embedding(vector.astype(np.float32).tolist(), len(work.tokens)))
            work.tokens, work.done = None, 0
            if len(work.results) == len(job.inputs):
                self._end_embedding(work, work.results)
        except Exception as exc:
            self._end_embedding(work, exc if isinstance(exc, (InvalidArgument, EngineUnavailable))
                                else EngineFailure(f"engine '{self.engine_id}' failed to embed: {exc}"))

    def _end_embedding(self, work: _Embedding, outcome: object) -> None:
        """Frees the embedding's sequence and, unless it was cancelled (outcome None), answers."""
        llama_cpp.llama_memory_seq_rm(self.model.memory, work.slot.seq_id, -1, -1)
        work.slot.embedding = False
        work.slot.last_used = time.monotonic()
        self._embedding = None
        if outcome is not None:
            work.job.emit(outcome)
