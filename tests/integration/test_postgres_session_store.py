"""The session stores' shared behaviour, run on SQLite and on a real PostgreSQL (Debian's server,
started here in a temporary folder), and what only the shared store has: versioned idempotent
migrations, replicas racing on one session, and a database that goes away and comes back."""

from __future__ import annotations

import itertools
import threading

import psycopg
import pytest

import server.app  # noqa: F401  (registers SessionConflict's status code)
from server.config import ConfigError
from server.core.session_store import (SessionConflict, SessionRecord, SessionStoreUnavailable,
                                       SqliteSessionStore, open_session_store)
from server.core.session_store_postgres import MIGRATIONS, SCHEMA_VERSION, PostgresSessionStore, migrate
from server.core.types import ChatMessage, ToolCall
from server.errors import SessionExists, SessionNotFound, Unavailable, status_code_for
from tests.helpers import make_settings, wait_for
from tests.postgres_server import PostgresServer

_names = itertools.count()


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server
    server.destroy()


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request, tmp_path):
    """Opens stores on one fresh database (a new one per test): call it again to reopen."""
    if request.param == "sqlite":
        path = str(tmp_path / "sessions.db")
        target = lambda: SqliteSessionStore(path, busy_timeout_s=60)  # noqa: E731
    else:
        dsn = request.getfixturevalue("postgres").create_database(f"store_{next(_names)}")
        target = lambda: PostgresSessionStore(dsn, pool_size=10)  # noqa: E731
    opened = []

    def opener():
        opened.append(target())
        return opened[-1]

    yield opener
    for store in opened:
        store.close()


def test_a_session_survives_reopening_with_its_sampling_and_tool_calls(open_store):
    store = open_store()
    store.create(SessionRecord(id="a", system_prompt="Be kind.", model="m",
                               sampling={"temperature": 0.5, "logit_bias": {7: -100.0}}, max_tokens=9))
    call = ChatMessage("assistant", "", (ToolCall("c1", "weather", '{"city": "Paris"}'),))
    store.append("a", 0, [ChatMessage("user", "hi"), call,
                          ChatMessage("tool", "sunny", tool_call_id="c1", name="weather")])
    store.close()
    again = open_store()
    record = again.get("a")
    assert (record.system_prompt, record.model, record.max_tokens, record.message_count) == \
        ("Be kind.", "m", 9, 3)
    assert record.sampling == {"temperature": 0.5, "logit_bias": {7: -100.0}}
    assert again.messages("a") == [ChatMessage("user", "hi"), call,
                                   ChatMessage("tool", "sunny", tool_call_id="c1", name="weather")]
    updated = again.append("a", 3, [ChatMessage("user", "x")], system_prompt="New.",
                           set_system_prompt=True)
    assert updated.system_prompt == again.get("a").system_prompt == "New."
    assert updated.message_count == again.get("a").message_count == 4


def test_errors_name_the_session_and_a_stale_append_changes_nothing(open_store):
    store = open_store()
    store.create(SessionRecord(id="a"))
    with pytest.raises(SessionExists):
        store.create(SessionRecord(id="a"))
    for call in (lambda: store.get("b"), lambda: store.messages("b"), lambda: store.delete("b"),
                 lambda: store.append("b", 0, []), lambda: store.truncate("b", 0)):
        with pytest.raises(SessionNotFound):
            call()
    with pytest.raises(SessionConflict, match="holds 0 messages, expected 3") as err:
        store.append("a", 3, [ChatMessage("user", "x")])
    assert isinstance(err.value, ValueError)  # what the interface has always promised
    assert status_code_for(err.value).name == "ABORTED"
    with pytest.raises(ValueError):
        store.truncate("a", 1)
    assert store.messages("a") == [] and store.get("a").message_count == 0


def test_list_truncate_and_delete(open_store):
    store = open_store()
    for sid in ("x", "y", "z"):
        store.create(SessionRecord(id=sid), [ChatMessage("user", sid), ChatMessage("assistant", "!")])
    store.append("x", 2, [ChatMessage("user", "again"), ChatMessage("assistant", "ok")])
    assert [r.id for r in store.list()][0] == "x"  # most recently updated first
    assert store.truncate("x", 1).message_count == 1
    assert store.messages("x") == [ChatMessage("user", "x")]
    store.delete("y")
    assert sorted(r.id for r in store.list()) == ["x", "z"]
    with pytest.raises(SessionNotFound):
        store.messages("y")
    store.create(SessionRecord(id="y"))  # a deleted id is free again, with no old messages
    assert store.messages("y") == []


def test_concurrent_writers_and_readers_never_lose_or_interleave_turns(open_store):
    store = open_store()
    sessions, turns = 6, 15
    for s in range(sessions):
        store.create(SessionRecord(id=f"s{s}"))
    failures: list[BaseException] = []

    def writer(s: int) -> None:
        try:
            for t in range(turns):
                store.append(f"s{s}", 2 * t, [ChatMessage("user", f"{s}/{t}"),
                                              ChatMessage("assistant", f"answer {s}/{t}")])
        except BaseException as exc:  # reported below, with the thread's own error
            failures.append(exc)

    def reader() -> None:
        try:
            for _ in range(turns):
                for s in range(sessions):
                    assert len(store.messages(f"s{s}")) % 2 == 0  # a turn is never half visible
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(sessions)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    for s in range(sessions):
        assert [m.content for m in store.messages(f"s{s}")[::2]] == [f"{s}/{t}" for t in range(turns)]


def test_replicas_racing_on_one_session_store_exactly_one_turn(open_store):
    """Each store object stands for a replica: all answered the same 2-message history at once
    and append on it; one wins, every other one gets SessionConflict, and nothing interleaves."""
    replicas = [open_store() for _ in range(4)]
    replicas[0].create(SessionRecord(id="shared"), [ChatMessage("user", "q"), ChatMessage("assistant", "a")])
    start = threading.Barrier(len(replicas))
    results: dict[int, object] = {}

    def race(i: int) -> None:
        start.wait()
        try:
            results[i] = replicas[i].append("shared", 2, [ChatMessage("user", f"from {i}"),
                                                          ChatMessage("assistant", f"answer {i}")])
        except Exception as exc:  # collected: the assertion below names each one
            results[i] = exc

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(replicas))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    winners = [i for i, r in results.items() if isinstance(r, SessionRecord)]
    losers = [r for r in results.values() if not isinstance(r, SessionRecord)]
    assert len(winners) == 1, results
    assert len(losers) == len(replicas) - 1 and all(isinstance(r, SessionConflict) for r in losers)
    assert all("expected 2" in r.message for r in losers)
    history = replicas[1].messages("shared")
    assert [m.content for m in history] == ["q", "a", f"from {winners[0]}", f"answer {winners[0]}"]


# -- PostgreSQL only ------------------------------------------------------------------------


def _versions(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [row[0] for row in conn.execute(
            "SELECT version FROM tokenwire_schema_migrations ORDER BY version")]


def test_migrations_are_versioned_and_idempotent_and_upgrade_an_old_schema(postgres):
    dsn = postgres.create_database(f"migrate_{next(_names)}")
    with psycopg.connect(dsn) as conn:  # a database left at version 1 by an older release
        conn.execute("CREATE TABLE tokenwire_schema_migrations (version INTEGER PRIMARY KEY, "
                     "applied_unix DOUBLE PRECISION NOT NULL)")
        conn.execute(MIGRATIONS[0][1])
        conn.execute("INSERT INTO tokenwire_schema_migrations VALUES (1, 0)")
        conn.execute("INSERT INTO tokenwire_sessions VALUES ('old', '', NULL, '{}', NULL, 1, 0, 0)")
        conn.execute("INSERT INTO tokenwire_messages VALUES ('old', 0, 'user', 'from v1')")
    store = PostgresSessionStore(dsn)
    try:
        assert _versions(dsn) == [v for v, _ in MIGRATIONS] and SCHEMA_VERSION >= 2
        assert store.messages("old") == [ChatMessage("user", "from v1")]  # data kept
        store.append("old", 1, [ChatMessage("assistant", "", (ToolCall("c", "f", "{}"),))])
        with psycopg.connect(dsn) as conn:
            assert migrate(conn) == []  # nothing left to apply, nothing applied twice
    finally:
        store.close()
    assert _versions(dsn) == [v for v, _ in MIGRATIONS]


def test_replicas_starting_together_apply_each_migration_once(postgres):
    dsn = postgres.create_database(f"together_{next(_names)}")
    stores: list[PostgresSessionStore] = []
    failures: list[BaseException] = []
    start = threading.Barrier(5)

    def open_one() -> None:
        start.wait()
        try:
            stores.append(PostgresSessionStore(dsn, pool_size=1))
            stores[-1].list()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for store in stores:
        store.close()
    assert failures == [] and len(stores) == 5
    assert _versions(dsn) == [v for v, _ in MIGRATIONS]


def test_a_database_that_goes_away_makes_sessions_unavailable_until_it_is_back(postgres):
    dsn = postgres.create_database(f"down_{next(_names)}") + " password=hunter2"
    store = PostgresSessionStore(dsn, connect_timeout_s=1)
    try:
        store.create(SessionRecord(id="kept"), [ChatMessage("user", "hi")])
        postgres.stop()
        try:
            for call in (lambda: store.get("kept"), store.list,
                         lambda: store.append("kept", 1, [ChatMessage("assistant", "x")])):
                with pytest.raises(SessionStoreUnavailable) as err:
                    call()
                assert isinstance(err.value, Unavailable)
                assert status_code_for(err.value).name == "UNAVAILABLE"
                assert "session database" in err.value.message
                assert f"127.0.0.1:{postgres.port}" in err.value.message
                assert "hunter2" not in err.value.message
        finally:
            postgres.start()
        # The pool drops the dead connections and opens new ones: nothing to restart.
        assert store.messages("kept") == [ChatMessage("user", "hi")]
        assert store.append("kept", 1, [ChatMessage("assistant", "back")]).message_count == 2
    finally:
        store.close()


def test_a_store_opened_while_the_database_is_down_migrates_when_it_comes_up(postgres):
    dsn = postgres.create_database(f"late_{next(_names)}")
    postgres.stop()
    try:
        store = PostgresSessionStore(dsn, connect_timeout_s=1)  # starts anyway
        with pytest.raises(SessionStoreUnavailable):
            store.list()
    finally:
        postgres.start()
    try:
        # The pool reconnects in the background, backing off after the failures: the store
        # serves once it has (a connect timeout of 1 s may end before that first reconnect).
        assert wait_for(lambda: _listed(store), timeout=60, interval=0.2) == [[]]
        assert _versions(dsn) == [v for v, _ in MIGRATIONS]
    finally:
        store.close()


def _listed(store) -> list | None:
    """[the store's sessions], or None while it cannot reach its database."""
    try:
        return [store.list()]
    except SessionStoreUnavailable:
        return None


def test_settings_select_the_store(postgres, monkeypatch):
    sqlite = open_session_store(**make_settings().sessions.store_args())
    assert isinstance(sqlite, SqliteSessionStore)
    sqlite.close()
    dsn = postgres.create_database(f"settings_{next(_names)}")
    from server.config import load_settings

    for settings in (load_settings(environ={"TOKENWIRE_SESSION_DSN": dsn}).sessions,
                     load_settings(environ={}, overrides={"sessions": {"store": "postgres",
                                                                       "dsn": dsn}}).sessions):
        store = open_session_store(**settings.store_args())
        assert isinstance(store, PostgresSessionStore)
        store.close()
    with pytest.raises(ConfigError, match="store is postgres but no dsn is set"):
        load_settings(environ={}, overrides={"sessions": {"store": "postgres"}})
    with pytest.raises(ConfigError) as err:  # a bad setting never echoes a DSN
        load_settings(environ={}, overrides={"sessions": {"store": "mysql", "dsn": "password=hunter2"}})
    assert "hunter2" not in str(err.value)
