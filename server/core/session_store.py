"""Where sessions and their histories live: an interface, and the embedded SQLite store.

The interface is what the session manager needs and nothing more; SQLite (embedded, the default)
and PostgreSQL (shared by replicas, server/core/session_store_postgres.py) implement it, and
`open_session_store(**settings.sessions.store_args())` picks one. Every method is synchronous and
blocking; the manager calls them off the event loop. Each change is one transaction, so a turn's user message and answer land together or not at
all, and a crash never leaves half a turn behind.

SQLite runs in WAL mode (readers never wait for the writer, and a reader never sees a half-written
transaction). Each thread gets its own connection (sqlite3 connections must not be shared across
threads mid-transaction); writers take the lock up front (BEGIN IMMEDIATE) and wait up to
`busy_timeout` for it, so concurrent writers queue instead of failing.
"""

from __future__ import annotations

import abc
import json
import pathlib
import sqlite3
import threading
import time
from dataclasses import dataclass, field, replace

from server.core.types import ChatMessage, ToolCall, Truncation
from server.errors import SessionConflict, SessionExists, SessionNotFound, Unavailable


class SessionStoreUnavailable(Unavailable):
    """The session database cannot be reached; sessions fail, stateless generation works."""

    reason = "SESSION_STORE_UNAVAILABLE"


@dataclass(frozen=True)
class SessionRecord:
    id: str
    model: str = ""
    system_prompt: str | None = None
    #: Sampling defaults: only the fields that were set, named as in core.types.Sampling.
    sampling: dict = field(default_factory=dict)
    max_tokens: int | None = None
    message_count: int = 0
    created_unix: float = 0.0
    updated_unix: float = 0.0
    #: The policy for a history longer than the window (None: auto); a turn may override it.
    truncation: Truncation | None = None


class SessionStore(abc.ABC):
    @abc.abstractmethod
    def create(self, record: SessionRecord, messages: list[ChatMessage] = ()) -> SessionRecord:
        """Stores a new session (with an initial history); SessionExists if the id is taken."""

    @abc.abstractmethod
    def get(self, session_id: str) -> SessionRecord:
        """The session; SessionNotFound if there is none."""

    @abc.abstractmethod
    def messages(self, session_id: str) -> list[ChatMessage]:
        """The history, oldest first; SessionNotFound if there is no such session."""

    @abc.abstractmethod
    def list(self) -> list[SessionRecord]:
        """Every session, most recently updated first."""

    @abc.abstractmethod
    def delete(self, session_id: str) -> None:
        """Removes a session and its history; SessionNotFound if there is none."""

    @abc.abstractmethod
    def append(self, session_id: str, expected_count: int, messages: list[ChatMessage], *,
               system_prompt: str | None = None, set_system_prompt: bool = False) -> SessionRecord:
        """Appends messages (and optionally sets the system prompt) in one transaction. The history
        must still hold `expected_count` messages: the manager runs one turn per session at a
        time, so anything else is another writer (another replica) that stored first:
        SessionConflict (a ValueError), never a silent interleaving."""

    @abc.abstractmethod
    def truncate(self, session_id: str, keep: int) -> SessionRecord:
        """Keeps the first `keep` messages."""

    @abc.abstractmethod
    def close(self) -> None:
        """Releases connections."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id            TEXT PRIMARY KEY,
    model         TEXT NOT NULL,
    system_prompt TEXT,
    sampling      TEXT NOT NULL,
    max_tokens    INTEGER,
    message_count INTEGER NOT NULL,
    created_unix  REAL NOT NULL,
    updated_unix  REAL NOT NULL,
    truncation    TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);
CREATE INDEX IF NOT EXISTS sessions_by_update ON sessions(updated_unix DESC);
"""

# Columns added after the first release, with what adds them to an older file (idempotent: run
# only when the column is missing). `tool_json` holds a message's tool calls, tool_call_id and
# name (JSON; NULL for a plain message); `truncation` a session's truncation policy ("auto",
# "error"; NULL: auto).
_ADDED_COLUMNS = (("messages", "tool_json", "ALTER TABLE messages ADD COLUMN tool_json TEXT"),
                  ("sessions", "truncation", "ALTER TABLE sessions ADD COLUMN truncation TEXT"))


def _migrate(db: sqlite3.Connection) -> None:
    for table, column, statement in _ADDED_COLUMNS:
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in columns:
            db.execute(statement)


def _dump_truncation(value: Truncation | None) -> str | None:
    return value.value if value is not None else None


def _load_truncation(value: str | None) -> Truncation | None:
    return Truncation(value) if value else None


def _dump_tool_fields(m: ChatMessage) -> str | None:
    if not (m.tool_calls or m.tool_call_id or m.name):
        return None
    return json.dumps({"tool_calls": [[c.id, c.name, c.arguments] for c in m.tool_calls],
                       "tool_call_id": m.tool_call_id, "name": m.name})


def _load_message(role: str, content: str, tool_json: str | None) -> ChatMessage:
    if not tool_json:
        return ChatMessage(role, content)
    fields = json.loads(tool_json)
    return ChatMessage(role, content, tuple(ToolCall(*c) for c in fields["tool_calls"]),
                       fields["tool_call_id"], fields["name"])


def _dump_sampling(sampling: dict) -> str:
    encoded = dict(sampling)
    if "logit_bias" in encoded:  # JSON object keys are strings
        encoded["logit_bias"] = {str(k): v for k, v in encoded["logit_bias"].items()}
    return json.dumps(encoded, sort_keys=True)


def _load_sampling(text: str) -> dict:
    sampling = json.loads(text)
    if "logit_bias" in sampling:
        sampling["logit_bias"] = {int(k): float(v) for k, v in sampling["logit_bias"].items()}
    return sampling


class SqliteSessionStore(SessionStore):
    def __init__(self, path: str, *, busy_timeout_s: float = 30.0):
        self.path = str(pathlib.Path(path).expanduser())
        self._busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        try:
            pathlib.Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._connection().executescript(_SCHEMA)
            _migrate(self._connection())
        except (OSError, sqlite3.Error) as exc:
            raise OSError(f"cannot open the session store {self.path}: {exc}") from None

    # -- connections -------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE below).
            db = sqlite3.connect(self.path, timeout=self._busy_timeout_s, isolation_level=None,
                                 check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # durable across crashes of the process
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
            with self._lock:
                self._connections.append(db)
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection):
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type:
                self._roll_back()
                return
            try:
                self.db.execute("COMMIT")
            except BaseException:
                # This thread's connection is reused: never leave it inside a transaction.
                self._roll_back()
                raise

        def _roll_back(self) -> None:
            # SQLite may have rolled back already (SQLITE_FULL, IOERR): a second ROLLBACK would
            # raise "no transaction is active" and hide the error that matters.
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")

    def _transaction(self) -> "_Tx":
        return self._Tx(self._connection())

    def close(self) -> None:
        with self._lock:
            for db in self._connections:
                db.close()
            self._connections.clear()
        self._local = threading.local()

    # -- reads -------------------------------------------------------------------------------

    @staticmethod
    def _record(row: sqlite3.Row) -> SessionRecord:
        return SessionRecord(id=row["id"], model=row["model"], system_prompt=row["system_prompt"],
                             sampling=_load_sampling(row["sampling"]), max_tokens=row["max_tokens"],
                             message_count=row["message_count"], created_unix=row["created_unix"],
                             updated_unix=row["updated_unix"],
                             truncation=_load_truncation(row["truncation"]))

    def _get(self, db: sqlite3.Connection, session_id: str) -> SessionRecord:
        row = db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise SessionNotFound(session_id)
        return self._record(row)

    def get(self, session_id: str) -> SessionRecord:
        return self._get(self._connection(), session_id)

    def messages(self, session_id: str) -> list[ChatMessage]:
        # One read transaction: the count and the rows come from the same snapshot.
        db = self._connection()
        db.execute("BEGIN")
        try:
            self._get(db, session_id)
            rows = db.execute("SELECT role, content, tool_json FROM messages WHERE session_id = ? "
                              "ORDER BY position", (session_id,)).fetchall()
        finally:
            db.execute("COMMIT")
        return [_load_message(row["role"], row["content"], row["tool_json"]) for row in rows]

    def list(self) -> list[SessionRecord]:
        rows = self._connection().execute(
            "SELECT * FROM sessions ORDER BY updated_unix DESC, id").fetchall()
        return [self._record(row) for row in rows]

    # -- writes ------------------------------------------------------------------------------

    @staticmethod
    def _insert_messages(db: sqlite3.Connection, session_id: str, start: int,
                         messages: list[ChatMessage]) -> None:
        db.executemany("INSERT INTO messages (session_id, position, role, content, tool_json) "
                       "VALUES (?, ?, ?, ?, ?)",
                       [(session_id, start + i, m.role, m.content, _dump_tool_fields(m))
                        for i, m in enumerate(messages)])

    def create(self, record: SessionRecord, messages: list[ChatMessage] = ()) -> SessionRecord:
        now = time.time()
        record = replace(record, message_count=len(messages), created_unix=now, updated_unix=now)
        with self._transaction() as db:
            try:
                db.execute("INSERT INTO sessions (id, model, system_prompt, sampling, max_tokens, "
                           "message_count, created_unix, updated_unix, truncation) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (record.id, record.model, record.system_prompt,
                            _dump_sampling(record.sampling), record.max_tokens,
                            record.message_count, now, now, _dump_truncation(record.truncation)))
            except sqlite3.IntegrityError:
                raise SessionExists(record.id) from None
            self._insert_messages(db, record.id, 0, list(messages))
        return record

    def delete(self, session_id: str) -> None:
        with self._transaction() as db:
            if db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 0:
                raise SessionNotFound(session_id)

    def append(self, session_id: str, expected_count: int, messages: list[ChatMessage], *,
               system_prompt: str | None = None, set_system_prompt: bool = False) -> SessionRecord:
        with self._transaction() as db:
            record = self._get(db, session_id)
            if record.message_count != expected_count:
                raise SessionConflict(session_id, record.message_count, expected_count)
            self._insert_messages(db, session_id, expected_count, messages)
            now = time.time()
            count = expected_count + len(messages)
            prompt = system_prompt if set_system_prompt else record.system_prompt
            db.execute("UPDATE sessions SET message_count = ?, updated_unix = ?, system_prompt = ? "
                       "WHERE id = ?", (count, now, prompt, session_id))
        return replace(record, message_count=count, updated_unix=now, system_prompt=prompt)

    def truncate(self, session_id: str, keep: int) -> SessionRecord:
        with self._transaction() as db:
            record = self._get(db, session_id)
            if not 0 <= keep <= record.message_count:
                raise ValueError(f"cannot keep {keep} of {record.message_count} messages")
            db.execute("DELETE FROM messages WHERE session_id = ? AND position >= ?", (session_id, keep))
            now = time.time()
            db.execute("UPDATE sessions SET message_count = ?, updated_unix = ? WHERE id = ?",
                       (keep, now, session_id))
        return replace(record, message_count=keep, updated_unix=now)


def open_session_store(kind: str, *, path: str, dsn: str = "", pool_size: int = 8,
                       connect_timeout_s: float = 5.0) -> SessionStore:
    """The store of that kind (config.SessionSettings.store_args() gives the keywords): the SQLite
    file at `path`, or the PostgreSQL database at `dsn`."""
    if kind == "sqlite":
        return SqliteSessionStore(path)
    if kind != "postgres" or not dsn:
        raise ValueError(f"no session store {kind!r} with dsn {'set' if dsn else 'unset'}")
    from server.core.session_store_postgres import PostgresSessionStore

    return PostgresSessionStore(dsn, pool_size=pool_size, connect_timeout_s=connect_timeout_s)
