"""The shared session store: PostgreSQL through psycopg 3 and a psycopg_pool connection pool.

Several replicas share one database; the store is what makes that safe:

- **One transaction per change**, as in the SQLite store: a turn's user message and answer land
  together or not at all.
- **Optimistic appends**: `append(expected_count=N)` updates the session row only while it still
  holds N messages (`UPDATE ... WHERE message_count = N`). Two replicas that answered the same
  session at once both expect N; the row lock lets the first commit and the second re-checks the
  condition, finds N+2 and fails with SessionConflict (gRPC ABORTED, HTTP 409). The (session,
  position) primary key is a second guard: positions can never be taken twice.
- **Versioned, idempotent migrations** run at start under a transaction-scoped advisory lock (so
  replicas starting together apply each version once) and are recorded in
  `tokenwire_schema_migrations`. A database that is down at start does not stop the server: the
  migrations run on the first call that reaches the database.
- **A database that is down** makes every session call fail with SessionStoreUnavailable (gRPC
  UNAVAILABLE, naming the database but never its password) after `connect_timeout_s`; the pool
  checks each connection before lending it, so calls work again as soon as the database is back.
  Nothing else in the server needs the database: stateless generation keeps working.

Parked KV caches are not stored here: they stay in the memory of the replica that made them. A
turn that lands on another replica rebuilds its prompt from the history stored here (prefilled in
full: correct, just slower).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import replace
from typing import Iterator

import psycopg
import psycopg.errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from server.core.session_store import (SessionConflict, SessionRecord, SessionStore,
                                       SessionStoreUnavailable, _dump_sampling, _dump_tool_fields,
                                       _dump_truncation, _load_message, _load_sampling,
                                       _load_truncation)
from server.core.types import ChatMessage
from server.errors import SessionExists, SessionNotFound

log = logging.getLogger(__name__)

#: (version, statements). Append new versions; never edit one that has shipped.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, """
CREATE TABLE IF NOT EXISTS tokenwire_sessions (
    id            TEXT PRIMARY KEY,
    model         TEXT NOT NULL,
    system_prompt TEXT,
    sampling      JSONB NOT NULL,
    max_tokens    INTEGER,
    message_count INTEGER NOT NULL CHECK (message_count >= 0),
    created_unix  DOUBLE PRECISION NOT NULL,
    updated_unix  DOUBLE PRECISION NOT NULL
);
CREATE TABLE IF NOT EXISTS tokenwire_messages (
    session_id TEXT NOT NULL REFERENCES tokenwire_sessions(id) ON DELETE CASCADE,
    position   INTEGER NOT NULL,
    role       TEXT NOT NULL,
    content    TEXT NOT NULL,
    PRIMARY KEY (session_id, position)
);
CREATE INDEX IF NOT EXISTS tokenwire_sessions_by_update
    ON tokenwire_sessions (updated_unix DESC, id);
"""),
    # Tool calls, tool_call_id and name of a message (JSON; NULL for a plain message), as the
    # SQLite store's tool_json column.
    (2, "ALTER TABLE tokenwire_messages ADD COLUMN IF NOT EXISTS tool_json JSONB"),
    # A session's truncation policy ("auto", "error"; NULL: auto), as the SQLite store's.
    (3, "ALTER TABLE tokenwire_sessions ADD COLUMN IF NOT EXISTS truncation TEXT"),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]
# pg_advisory_xact_lock key: "tokenwire" folded into a bigint; any constant shared by replicas.
_MIGRATION_LOCK = 0x746F6B656E77


def _describe(dsn: str) -> str:
    """Where the database is, for messages: host, port and database, never the password."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "the configured database"
    host = parts.get("host") or "local socket"
    where = f"{host}:{parts['port']}" if parts.get("port") else host
    return f"postgresql://{where}/{parts.get('dbname') or parts.get('user') or ''}"


class PostgresSessionStore(SessionStore):
    def __init__(self, dsn: str, *, pool_size: int = 8, connect_timeout_s: float = 5.0):
        self._where = _describe(dsn)
        self._timeout_s = connect_timeout_s
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._pool = ConnectionPool(
            dsn, min_size=1, max_size=max(pool_size, 1), open=False, name="tokenwire-sessions",
            timeout=connect_timeout_s, check=ConnectionPool.check_connection,
            kwargs={"connect_timeout": max(int(connect_timeout_s), 1),
                    "application_name": "tokenwire"})
        self._pool.open(wait=False)  # a database that is down must not stop the server
        try:
            self._ensure_schema()
        except SessionStoreUnavailable as exc:
            log.warning("%s; sessions answer UNAVAILABLE until it is reachable", exc.message)

    # -- connections and schema ------------------------------------------------------------------

    @contextlib.contextmanager
    def _unavailable_as_error(self) -> Iterator[None]:
        try:
            yield
        except PoolTimeout:
            raise SessionStoreUnavailable(
                f"the session database ({self._where}) cannot be reached: no connection within "
                f"{self._timeout_s:g}s") from None
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SessionStoreUnavailable(
                f"the session database ({self._where}) failed: {reason}") from None

    @contextlib.contextmanager
    def _tx(self, *, schema: bool = True) -> Iterator[psycopg.Connection]:
        """A connection inside one transaction (committed when the block ends, rolled back if it
        raises); database failures become SessionStoreUnavailable."""
        with self._unavailable_as_error():
            if schema:
                self._ensure_schema()
            with self._pool.connection() as conn:
                conn.row_factory = dict_row
                yield conn

    def _ensure_schema(self) -> None:
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            with self._unavailable_as_error(), self._pool.connection() as conn:
                migrate(conn)
            self._schema_ready = True

    def close(self) -> None:
        self._pool.close()

    # -- reads -------------------------------------------------------------------------------

    @staticmethod
    def _record(row: dict) -> SessionRecord:
        return SessionRecord(id=row["id"], model=row["model"], system_prompt=row["system_prompt"],
                             sampling=_load_sampling(row["sampling"]), max_tokens=row["max_tokens"],
                             message_count=row["message_count"], created_unix=row["created_unix"],
                             updated_unix=row["updated_unix"],
                             truncation=_load_truncation(row["truncation"]))

    _COLUMNS = ("id, model, system_prompt, sampling::text AS sampling, max_tokens, message_count, "
                "created_unix, updated_unix, truncation")

    def _get(self, conn: psycopg.Connection, session_id: str, *, lock: bool = False) -> SessionRecord:
        row = conn.execute(f"SELECT {self._COLUMNS} FROM tokenwire_sessions WHERE id = %s"
                           + (" FOR UPDATE" if lock else ""), (session_id,)).fetchone()
        if row is None:
            raise SessionNotFound(session_id)
        return self._record(row)

    def get(self, session_id: str) -> SessionRecord:
        with self._tx() as conn:
            return self._get(conn, session_id)

    def messages(self, session_id: str) -> list[ChatMessage]:
        with self._tx() as conn:
            # One snapshot: the session row and its messages agree.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            self._get(conn, session_id)
            rows = conn.execute(
                "SELECT role, content, tool_json::text AS tool_json FROM tokenwire_messages "
                "WHERE session_id = %s ORDER BY position", (session_id,)).fetchall()
        return [_load_message(row["role"], row["content"], row["tool_json"]) for row in rows]

    def list(self) -> list[SessionRecord]:
        with self._tx() as conn:
            rows = conn.execute(f"SELECT {self._COLUMNS} FROM tokenwire_sessions "
                                "ORDER BY updated_unix DESC, id").fetchall()
        return [self._record(row) for row in rows]

    # -- writes ------------------------------------------------------------------------------

    @staticmethod
    def _insert_messages(conn: psycopg.Connection, session_id: str, start: int,
                         messages: list[ChatMessage]) -> None:
        if not messages:
            return
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO tokenwire_messages (session_id, position, role, content, tool_json) "
                "VALUES (%s, %s, %s, %s, %s::jsonb)",
                [(session_id, start + i, m.role, m.content, _dump_tool_fields(m))
                 for i, m in enumerate(messages)])

    def create(self, record: SessionRecord, messages: list[ChatMessage] = ()) -> SessionRecord:
        now = time.time()
        record = replace(record, message_count=len(messages), created_unix=now, updated_unix=now)
        with self._tx() as conn:
            inserted = conn.execute(
                "INSERT INTO tokenwire_sessions (id, model, system_prompt, sampling, max_tokens, "
                "message_count, created_unix, updated_unix, truncation) "
                "VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING",
                (record.id, record.model, record.system_prompt, _dump_sampling(record.sampling),
                 record.max_tokens, record.message_count, now, now,
                 _dump_truncation(record.truncation))).rowcount
            if inserted == 0:
                raise SessionExists(record.id)
            self._insert_messages(conn, record.id, 0, list(messages))
        return record

    def delete(self, session_id: str) -> None:
        with self._tx() as conn:
            if conn.execute("DELETE FROM tokenwire_sessions WHERE id = %s",
                            (session_id,)).rowcount == 0:
                raise SessionNotFound(session_id)

    def append(self, session_id: str, expected_count: int, messages: list[ChatMessage], *,
               system_prompt: str | None = None, set_system_prompt: bool = False) -> SessionRecord:
        now = time.time()
        count = expected_count + len(messages)
        with self._tx() as conn:
            # The compare-and-set: the row lock queues a racing replica behind this transaction,
            # and it re-checks message_count once this one commits.
            row = conn.execute(
                "UPDATE tokenwire_sessions SET message_count = %s, updated_unix = %s, "
                "system_prompt = CASE WHEN %s THEN %s ELSE system_prompt END "
                f"WHERE id = %s AND message_count = %s RETURNING {self._COLUMNS}",
                (count, now, set_system_prompt, system_prompt, session_id,
                 expected_count)).fetchone()
            if row is None:
                held = self._get(conn, session_id).message_count  # SessionNotFound if gone
                raise SessionConflict(session_id, held, expected_count)
            self._insert_messages(conn, session_id, expected_count, messages)
        return self._record(row)

    def truncate(self, session_id: str, keep: int) -> SessionRecord:
        with self._tx() as conn:
            record = self._get(conn, session_id, lock=True)
            if not 0 <= keep <= record.message_count:
                raise ValueError(f"cannot keep {keep} of {record.message_count} messages")
            conn.execute("DELETE FROM tokenwire_messages WHERE session_id = %s AND position >= %s",
                         (session_id, keep))
            now = time.time()
            conn.execute("UPDATE tokenwire_sessions SET message_count = %s, updated_unix = %s "
                         "WHERE id = %s", (keep, now, session_id))
        return replace(record, message_count=keep, updated_unix=now)


def migrate(conn: psycopg.Connection) -> list[int]:
    """Applies the migrations the database has not recorded yet, each in its own transaction
    under the migration lock; the versions it applied (none when the schema is current)."""
    applied: list[int] = []
    with conn.transaction():
        # Under the lock too: replicas starting together would race on the table's creation.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS tokenwire_schema_migrations ("
                     "version INTEGER PRIMARY KEY, applied_unix DOUBLE PRECISION NOT NULL)")
    for version, statements in MIGRATIONS:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            done = conn.execute("SELECT 1 FROM tokenwire_schema_migrations WHERE version = %s",
                                (version,)).fetchone()
            if done:
                continue
            conn.execute(statements)
            conn.execute("INSERT INTO tokenwire_schema_migrations VALUES (%s, %s)",
                         (version, time.time()))
            applied.append(version)
    if applied:
        log.info("session database: applied schema migrations %s", applied)
    return applied
