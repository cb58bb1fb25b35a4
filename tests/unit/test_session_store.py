"""The SQLite session store on its own: transactions, WAL, concurrent writers, reopening."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from server.core.session_store import SessionRecord, SqliteSessionStore
from server.core.types import ChatMessage
from server.errors import SessionExists, SessionNotFound


@pytest.fixture
def path(tmp_path):
    return str(tmp_path / "nested" / "sessions.db")


def test_the_database_is_created_in_wal_mode_and_survives_reopening(path):
    store = SqliteSessionStore(path)
    store.create(SessionRecord(id="a", system_prompt="Be kind.", sampling={"temperature": 0.5,
                                                                            "logit_bias": {7: -100.0}},
                               max_tokens=9))
    store.append("a", 0, [ChatMessage("user", "hi"), ChatMessage("assistant", "hello")])
    store.close()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    again = SqliteSessionStore(path)
    record = again.get("a")
    assert (record.system_prompt, record.max_tokens, record.message_count) == ("Be kind.", 9, 2)
    assert record.sampling == {"temperature": 0.5, "logit_bias": {7: -100.0}}
    assert again.messages("a") == [ChatMessage("user", "hi"), ChatMessage("assistant", "hello")]
    again.close()


def test_errors_name_the_session_and_a_stale_append_changes_nothing(path):
    store = SqliteSessionStore(path)
    store.create(SessionRecord(id="a"))
    with pytest.raises(SessionExists):
        store.create(SessionRecord(id="a"))
    for call in (lambda: store.get("b"), lambda: store.messages("b"), lambda: store.delete("b"),
                 lambda: store.append("b", 0, []), lambda: store.truncate("b", 0)):
        with pytest.raises(SessionNotFound):
            call()
    with pytest.raises(ValueError):
        store.append("a", 3, [ChatMessage("user", "x")])
    assert store.messages("a") == [] and store.get("a").message_count == 0
    store.close()


def test_concurrent_writers_and_readers_never_lose_or_interleave_turns(path):
    store = SqliteSessionStore(path, busy_timeout_s=60)
    sessions, turns = 6, 20
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
                    messages = store.messages(f"s{s}")
                    assert len(messages) % 2 == 0  # a turn is never half visible
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=writer, args=(s,)) for s in range(sessions)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for s in range(sessions):
        assert [m.content for m in store.messages(f"s{s}")[::2]] == [f"{s}/{t}" for t in range(turns)]
    store.truncate("s0", 4)
    assert store.get("s0").message_count == 4 and len(store.messages("s0")) == 4
    store.delete("s1")
    assert [r.id for r in store.list()].count("s1") == 0
    store.close()


def test_an_unusable_path_is_an_os_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match="cannot open the session store"):
        SqliteSessionStore(str(blocker / "sessions.db"))
