"""Chat sessions over gRPC: history, restart, rollback, branch, cancel, one turn at a time, KV reuse."""

from __future__ import annotations

import tempfile

import pytest

from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import Client
from tokenwire.errors import (AlreadyExistsError, FailedPreconditionError, InvalidArgumentError,
                              NotFoundError)

GREEDY = {"temperature": 0.0}


def turn(client: Client, session_id: str, content: str, **kw) -> list:
    return list(client.chat(session_id, content, max_tokens=kw.pop("max_tokens", 6), **GREEDY, **kw))


@pytest.fixture(scope="module")
def store_path():
    return f"{tempfile.mkdtemp(prefix='tokenwire-sessions-test-')}/sessions.db"


@pytest.fixture(scope="module")
def session_server(store_path):
    running = ServerThread(make_settings(sessions={"store_path": store_path})).start()
    yield running
    running.stop()


@pytest.fixture
def sc(session_server):
    with Client(session_server.target, timeout=240) as c:
        yield c


def test_ten_turns_keep_their_order_and_survive_a_restart():
    store_path = f"{tempfile.mkdtemp(prefix='tokenwire-restart-')}/sessions.db"
    first = ServerThread(make_settings(sessions={"store_path": store_path})).start()
    try:
        with Client(first.target, timeout=240) as sc:
            session = sc.create_session("ten-turns", system_prompt="You are terse.")
            finals = []
            for i in range(10):
                deltas = turn(sc, session.session_id, f"Say the number {i}.")
                final = deltas[-1]
                assert final.finish_reason is not None and final.message_count == 2 * (i + 1)
                finals.append(final)
            history = sc.history("ten-turns")
    finally:
        first.stop()  # the server is gone before the next one opens the database
    assert [m["role"] for m in history] == ["user", "assistant"] * 10
    assert [m["content"] for m in history[::2]] == [f"Say the number {i}." for i in range(10)]
    # Every follow-up turn found the session's KV resident and reused the whole earlier prompt.
    assert all(f.reused_prompt_tokens > 0.8 * finals[i - 1].usage.total_tokens
               for i, f in enumerate(finals) if i > 0)

    restarted = ServerThread(make_settings(sessions={"store_path": store_path})).start()
    try:
        with Client(restarted.target, timeout=240) as again:
            assert again.history("ten-turns") == history
            assert again.get_session("ten-turns").system_prompt == "You are terse."
            assert "ten-turns" in [s.session_id for s in again.list_sessions()]
    finally:
        restarted.stop()


def test_rollback_removes_the_last_messages_and_refuses_impossible_counts(sc):
    session = sc.create_session()
    for i in range(2):
        turn(sc, session.session_id, f"Hello {i}")
    before = sc.history(session.session_id)
    assert sc.rollback_session(session.session_id, 2).message_count == 2
    assert sc.history(session.session_id) == before[:2]
    for bad in (-1, 3):
        with pytest.raises(InvalidArgumentError) as err:
            sc.rollback_session(session.session_id, bad)
        assert err.value.violations[0].field == "message_count"
    assert sc.history(session.session_id) == before[:2]


def test_delete_then_every_call_is_not_found(sc):
    session = sc.create_session()
    turn(sc, session.session_id, "Hi")
    sc.delete_session(session.session_id)
    for call in (lambda: sc.history(session.session_id),
                 lambda: sc.delete_session(session.session_id),
                 lambda: sc.rollback_session(session.session_id, 0),
                 lambda: turn(sc, session.session_id, "again")):
        with pytest.raises(NotFoundError) as err:
            call()
        assert err.value.reason == "SESSION_NOT_FOUND"
    assert session.session_id not in [s.session_id for s in sc.list_sessions()]


def test_branch_copies_a_prefix_and_leaves_the_original_alone(sc):
    sc.create_session("trunk", system_prompt="Be brief.", max_tokens=5)
    for i in range(2):
        turn(sc, "trunk", f"Question {i}")
    original = sc.history("trunk")
    branch = sc.branch_session("trunk", 2, new_session_id="trunk-edit")
    assert branch.message_count == 2 and branch.system_prompt == "Be brief." and branch.max_tokens == 5
    turn(sc, "trunk-edit", "An edited second question")
    assert sc.history("trunk") == original
    assert sc.history("trunk-edit")[:2] == original[:2]
    assert sc.history("trunk-edit")[2]["content"] == "An edited second question"
    with pytest.raises(AlreadyExistsError):
        sc.branch_session("trunk", 0, new_session_id="trunk-edit")
    with pytest.raises(InvalidArgumentError):
        sc.branch_session("trunk", 5)


def _long_turn(client: Client, session_id: str):
    return client.chat(session_id, "Write a long story.", max_tokens=400,
                       logit_bias=BAN_END_OF_GENERATION, **GREEDY)


def _idle(client: Client, session_id: str) -> bool:
    try:
        client.rollback_session(session_id, 0)  # refused with SESSION_BUSY while a turn runs
        return True
    except NotFoundError:  # a first turn that ended without storing its session
        return True
    except FailedPreconditionError:
        return False


def test_a_cancelled_turn_leaves_the_history_unchanged(sc):
    session = sc.create_session()
    turn(sc, session.session_id, "First")
    before = sc.history(session.session_id)
    stream = _long_turn(sc, session.session_id)
    next(stream)
    stream.close()  # cancels the call mid-answer
    wait_for(lambda: _idle(sc, session.session_id), timeout=60)
    assert sc.history(session.session_id) == before


def test_a_second_concurrent_turn_is_refused_and_the_first_completes(sc):
    session = sc.create_session()
    first = _long_turn(sc, session.session_id)
    next(first)
    with pytest.raises(FailedPreconditionError) as err:
        turn(sc, session.session_id, "Me too")
    assert err.value.reason == "SESSION_BUSY"
    rest = list(first)
    assert rest[-1].message_count == 2
    assert [m["role"] for m in sc.history(session.session_id)] == ["user", "assistant"]


def test_unknown_sessions_and_bad_ids(sc):
    with pytest.raises(NotFoundError):
        sc.get_session("no-such-session")
    with pytest.raises(InvalidArgumentError):
        sc.create_session("bad id with spaces")
    with pytest.raises(InvalidArgumentError):
        turn(sc, "", "no id and no create_if_missing")
    with pytest.raises(AlreadyExistsError):
        sc.create_session("dup")
        sc.create_session("dup")


def test_create_if_missing_picks_an_id_and_applies_the_system_prompt(sc):
    deltas = turn(sc, "", "Hello", create_if_missing=True, system_prompt="Answer in one word.")
    session_id = deltas[0].session_id
    assert session_id and all(d.session_id == session_id for d in deltas)
    assert sc.get_session(session_id).system_prompt == "Answer in one word."
    # A later turn that sends another system prompt replaces it.
    turn(sc, session_id, "Again", create_if_missing=True, system_prompt="Be polite.")
    assert sc.get_session(session_id).system_prompt == "Be polite."
    assert len(sc.history(session_id)) == 4


def _absent(client: Client, session_id: str) -> bool:
    with pytest.raises(NotFoundError):
        client.get_session(session_id)
    return session_id not in [s.session_id for s in client.list_sessions()]


def test_a_first_turn_that_fails_or_is_cancelled_leaves_no_session(sc, session_server):
    too_long = "hello " * (session_server.backend().info().n_ctx + 100)
    with pytest.raises(InvalidArgumentError) as err:
        turn(sc, "first-too-long", too_long, create_if_missing=True)
    assert err.value.reason == "CONTEXT_LENGTH_EXCEEDED"
    assert _absent(sc, "first-too-long")

    stream = sc.chat("first-cancelled", "Write a long story.", max_tokens=400, create_if_missing=True,
                     logit_bias=BAN_END_OF_GENERATION, **GREEDY)
    next(stream)
    stream.close()  # cancels the first turn mid-answer
    wait_for(lambda: _idle(sc, "first-cancelled"), timeout=60)
    assert _absent(sc, "first-cancelled")
    # Explicit creation still makes an empty session.
    assert sc.create_session("first-created").message_count == 0
    assert sc.history("first-created") == []


def test_a_first_turn_holds_its_new_id_until_its_answer_is_stored(sc):
    sc.create_session("trunk-for-racing")
    first = sc.chat("first-racing", "Write a long story.", max_tokens=400, create_if_missing=True,
                    logit_bias=BAN_END_OF_GENERATION, **GREEDY)
    next(first)
    with pytest.raises(FailedPreconditionError) as err:
        turn(sc, "first-racing", "Me too", create_if_missing=True)
    assert err.value.reason == "SESSION_BUSY"
    for create in (lambda: sc.create_session("first-racing"),
                   lambda: sc.branch_session("trunk-for-racing", 0, new_session_id="first-racing")):
        with pytest.raises(AlreadyExistsError):
            create()
    with pytest.raises(NotFoundError):  # no empty session is visible while the answer streams
        sc.get_session("first-racing")
    assert list(first)[-1].message_count == 2
    assert [m["role"] for m in sc.history("first-racing")] == ["user", "assistant"]


def test_session_kv_survives_unrelated_traffic_and_reuse_can_be_turned_off(sc):
    session = sc.create_session()
    first = turn(sc, session.session_id, "Tell me about cats.", max_tokens=20)[-1]
    # Unrelated chats share the default system prompt's prefix with the session's cache; they
    # must not take the session's sequence while other sequences are free.
    for i in range(3):
        list(sc.generate(messages=[{"role": "user", "content": f"Unrelated {i}"}], max_tokens=4,
                         **GREEDY))
    second = turn(sc, session.session_id, "And dogs?")[-1]
    assert second.reused_prompt_tokens >= first.usage.total_tokens - 2
    third = turn(sc, session.session_id, "And birds?", reuse_cache=False)[-1]
    assert third.reused_prompt_tokens == 0


def test_a_branch_s_first_turn_takes_over_the_cache_its_parent_left(sc):
    """The Web UI's Regenerate: branch before the last exchange and ask the same question again.
    The branch's prompt is the parent's history, which the parent's sequence still holds; the
    branch takes that sequence over instead of prefilling the whole history on a free one."""
    parent = sc.create_session()
    turn(sc, parent.session_id, "Tell me about cats.", max_tokens=20)
    last = turn(sc, parent.session_id, "And dogs?", max_tokens=20)[-1]
    branch = sc.branch_session(parent.session_id, 2)
    again = turn(sc, branch.session_id, "And dogs?", max_tokens=20)[-1]
    assert again.reused_prompt_tokens >= last.usage.prompt_tokens - 2
    assert [m["content"] for m in sc.history(parent.session_id)][2] == "And dogs?"
    follow_up = turn(sc, parent.session_id, "And birds?")[-1]  # the parent goes on as before
    assert follow_up.message_count == 6


def test_sampling_defaults_are_validated_with_their_field_paths(sc):
    with pytest.raises(InvalidArgumentError) as err:
        sc.create_session(top_p=2.0)
    assert err.value.violations[0].field == "sampling.top_p"
    with pytest.raises(InvalidArgumentError) as err:
        turn(sc, sc.create_session().session_id, "x", max_tokens=0)
    assert err.value.violations[0].field == "max_tokens"


def test_session_service_health_follows_the_engine(sc):
    assert sc.health("tokenwire.v1.SessionService") == "SERVING"


@pytest.mark.parametrize("park_mb", [256, 0])
def test_more_sessions_than_sequences_park_and_restore_their_kv(park_mb):
    """Three sessions on two sequences: each turn takes a sequence another session's cache sits
    in. With a parking budget that cache is saved to host memory and restored on the owner's
    next turn; without one the owner falls back to a full prefill, with the same answers."""
    server = ServerThread(make_settings(engine={"n_parallel": 2, "kv_park_mb": park_mb})).start()
    try:
        with Client(server.target, timeout=240) as c:
            ids = [c.create_session().session_id for _ in range(3)]
            firsts = {sid: turn(c, sid, f"Tell me about the number {i}.", max_tokens=12)[-1]
                      for i, sid in enumerate(ids)}
            seconds = {sid: turn(c, sid, "Why?", max_tokens=4)[-1] for sid in ids}
            status = server.backend().stats()
    finally:
        server.stop()
    for sid in ids:
        history_tokens = firsts[sid].usage.total_tokens
        if park_mb:
            assert seconds[sid].reused_prompt_tokens >= history_tokens - 2
        else:
            # Only the shared start (default system prompt, "Tell me about the number") can come
            # from another session's cache; the session's own answer is prefilled again.
            assert seconds[sid].reused_prompt_tokens < history_tokens - 12
    assert (status.kv_restored_total > 0) == bool(park_mb)


def test_a_session_s_parked_kv_survives_parking_the_sequence_s_other_owner():
    """One sequence and room to park one conversation: A's cache is parked when B takes the
    sequence; on A's next turn, parking B must not push A's copy out before A is restored."""
    server = ServerThread(make_settings(engine={"n_parallel": 1, "kv_park_mb": 2})).start()
    try:
        with Client(server.target, timeout=240) as c:
            a, b = (c.create_session().session_id for _ in range(2))
            first = turn(c, a, "Tell me about the number 7.", max_tokens=12)[-1]
            turn(c, b, "Tell me about the number 9.", max_tokens=12)  # parks A
            again = turn(c, a, "Why?", max_tokens=4)[-1]  # parks B, restores A
    finally:
        server.stop()
    assert again.reused_prompt_tokens >= first.usage.total_tokens - 2
