"""Chat sessions: history kept by the server, one turn at a time per session.

A turn renders the session's system prompt, history and the new user message with the model's
chat template and generates on the session's engine. The request names the session as its
`cache_key`, so the scheduler keeps the session's KV cache for it: the next turn's prompt starts
with the tokens that cache holds, and only the new message is prefilled.

The user message and the answer are appended in one store transaction, after the engine's last
delta and before it is handed on: a caller that saw the end of the stream finds the turn in the
history, and a turn that is cancelled or fails appends nothing. A session that a turn creates
(`create_if_missing`) is stored in that same transaction, so a first turn that fails leaves no
empty session behind; until then its id is held like a running turn's.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from dataclasses import dataclass, field, replace
from typing import AsyncIterator, Iterator

from server.core.engines import EngineManager
from server.core.session_store import SessionRecord, SessionStore
from server.core.types import (ChatMessage, Constraint, Delta, GenerationRequest, Sampling,
                               Truncation)
from server.errors import InvalidArgument, SessionBusy, SessionExists, SessionNotFound

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def new_session_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class ChatTurn:
    """A validated Chat request."""

    session_id: str  # "" only with create_if_missing
    content: str
    sampling: dict = field(default_factory=dict)  # overrides of the session's defaults
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    create_if_missing: bool = False
    model: str = ""
    system_prompt: str | None = None
    reuse_cache: bool = True
    request_id: str = ""
    arrived_at: float = 0.0
    constraint: Constraint | None = None
    top_logprobs: int | None = None
    #: What happens when the history and the new message do not fit the window: AUTO leaves the
    #: oldest whole turns out of the prompt (never out of the store), ERROR refuses. None: the
    #: session's policy (AUTO unless it has one); a turn that creates its session sets it.
    truncation: Truncation | None = None


@dataclass(frozen=True)
class TurnDelta:
    session_id: str
    engine_id: str
    delta: Delta
    #: Messages in the history once the turn is stored; set with the last delta only.
    message_count: int | None = None


class SessionManager:
    def __init__(self, store: SessionStore, engines: EngineManager, *, kv_reuse: bool = True):
        self.store = store
        self._engines = engines
        self._kv_reuse = kv_reuse
        self._busy: set[str] = set()  # sessions with a turn running; touched on the loop only
        # Branches that have not had a turn yet -> the session they were branched from.
        self._branched_from: dict[str, str] = {}
        # Session -> history messages its last turn left out of the prompt (Truncation.AUTO):
        # the next turn starts from the same cut, so the prefix cached by this one is reused.
        self._cut: dict[str, int] = {}

    async def _run(self, fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    @contextlib.contextmanager
    def _turn(self, session_id: str) -> Iterator[None]:
        if session_id in self._busy:
            raise SessionBusy(session_id)
        self._busy.add(session_id)
        try:
            yield
        finally:
            self._busy.discard(session_id)

    @contextlib.contextmanager
    def _new(self, session_id: str) -> Iterator[None]:
        """Guards an explicit creation (CreateSession, a branch) like a turn. A turn that creates
        its session stores it only with its answer, so the id is taken while such a turn runs
        (SessionExists, as once it is stored), and a turn on an id being created is refused
        (SessionBusy): the two never both store the id."""
        if session_id in self._busy:
            raise SessionExists(session_id)
        with self._turn(session_id):
            yield

    # -- management ----------------------------------------------------------------------------

    async def create(self, record: SessionRecord,
                     messages: tuple[ChatMessage, ...] = ()) -> SessionRecord:
        """A new session, optionally starting from an imported history."""
        if not record.id:
            record = replace(record, id=new_session_id())
        with self._new(record.id):
            return await self._run(self.store.create, record, list(messages))

    async def get(self, session_id: str) -> tuple[SessionRecord, list[ChatMessage]]:
        record = await self._run(self.store.get, session_id)
        return record, await self._run(self.store.messages, session_id)

    async def list(self) -> list[SessionRecord]:
        return await self._run(self.store.list)

    async def delete(self, session_id: str) -> None:
        with self._turn(session_id):
            await self._run(self.store.delete, session_id)
        self._branched_from.pop(session_id, None)
        self._cut.pop(session_id, None)

    async def rollback(self, session_id: str, count: int) -> SessionRecord:
        with self._turn(session_id):
            record = await self._run(self.store.get, session_id)
            if not 0 <= count <= record.message_count:
                raise InvalidArgument.single(
                    "message_count", f"must be between 0 and the {record.message_count} messages "
                                     f"the history holds (got {count})")
            return await self._run(self.store.truncate, session_id, record.message_count - count)

    async def branch(self, session_id: str, count: int, new_id: str | None) -> SessionRecord:
        record, messages = await self.get(session_id)
        if not 0 <= count <= len(messages):
            raise InvalidArgument.single(
                "message_count", f"must be between 0 and the {len(messages)} messages the history "
                                 f"holds (got {count})")
        branch = replace(record, id=new_id or new_session_id())
        with self._new(branch.id):
            created = await self._run(self.store.create, branch, messages[:count])
        # Its first turn may take over the KV cache the parent left resident (kept in memory,
        # as the cache is: after a restart there is nothing to take over).
        self._branched_from[branch.id] = session_id
        return created

    # -- turns ---------------------------------------------------------------------------------

    async def _open(self, turn: ChatTurn, session_id: str) -> tuple[SessionRecord, bool]:
        """The session, and whether the turn is to create it: a session that does not exist yet
        is stored with its first answer, so a first turn that fails leaves nothing behind."""
        try:
            return await self._run(self.store.get, session_id), False
        except SessionNotFound:
            if not turn.create_if_missing:
                raise
        return SessionRecord(id=session_id, model=turn.model, system_prompt=turn.system_prompt,
                             truncation=turn.truncation), True

    async def _store(self, session: SessionRecord, new: bool, history: list[ChatMessage],
                     exchange: list[ChatMessage], system_prompt: str | None,
                     change_prompt: bool) -> SessionRecord:
        """One transaction either way: the new session with its first exchange, or the exchange
        appended to the history the turn was answered from."""
        if new:
            return await self._run(self.store.create, session, exchange)
        return await self._run(self.store.append, session.id, len(history), exchange,
                               system_prompt=system_prompt, set_system_prompt=change_prompt)

    async def chat(self, turn: ChatTurn) -> AsyncIterator[TurnDelta]:
        session_id = turn.session_id or new_session_id()
        with self._turn(session_id):
            session, new = await self._open(turn, session_id)
            history = [] if new else await self._run(self.store.messages, session_id)
            change_prompt = turn.system_prompt is not None and turn.system_prompt != session.system_prompt
            system_prompt = turn.system_prompt if change_prompt else session.system_prompt
            user = ChatMessage("user", turn.content)
            messages = ([ChatMessage("system", system_prompt)] if system_prompt is not None else [])
            messages += [*history, user]
            request = GenerationRequest(
                messages=tuple(messages),
                sampling=Sampling(**{**session.sampling, **turn.sampling,
                                     "logit_bias": {**session.sampling.get("logit_bias", {}),
                                                    **turn.sampling.get("logit_bias", {})}}),
                max_tokens=turn.max_tokens if turn.max_tokens is not None else session.max_tokens,
                stop=turn.stop, request_id=turn.request_id, arrived_at=turn.arrived_at,
                cache_key=session_id, warm_from=self._branched_from.get(session_id, ""),
                reuse_cache=self._kv_reuse and turn.reuse_cache, constraint=turn.constraint,
                top_logprobs=turn.top_logprobs,
                truncation=turn.truncation or session.truncation or Truncation.AUTO,
                truncation_floor=min(self._cut.get(session_id, 0), len(history)))
            async with self._engines.lease(session.model) as engine:
                answer: list[str] = []
                async for delta in self._engines.generate(engine, request):
                    answer.append(delta.text)
                    if delta.finish is None:
                        yield TurnDelta(session_id, engine.id, delta)
                        continue
                    stored = await self._store(
                        session, new, history, [user, ChatMessage("assistant", "".join(answer))],
                        system_prompt, change_prompt)
                    self._branched_from.pop(session_id, None)  # its cache is its own now
                    self._cut[session_id] = delta.finish.truncated_messages
                    yield TurnDelta(session_id, engine.id, delta, stored.message_count)
