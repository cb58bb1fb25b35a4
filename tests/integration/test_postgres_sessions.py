"""Chat sessions on the shared PostgreSQL store (a real server, started here): the SQLite session
tests again on it, then what two replicas sharing it do: a turn that lands on the other replica
rebuilds from the stored history, two replicas racing on one session store one turn (the other
gets ABORTED, HTTP 409 through the bridge), and a database that is down answers sessions with
UNAVAILABLE while stateless generation keeps working."""

from __future__ import annotations

import itertools

import grpc
import pytest

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from rest_bridge.grpc_client import BridgeChannel
from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tests.integration import test_sessions as sqlite_suite
from tests.postgres_server import PostgresServer
from tokenwire import Client
from tokenwire.errors import TokenwireError, UnavailableError

GREEDY = {"temperature": 0.0}
turn = sqlite_suite.turn
_names = itertools.count()

# The SQLite suite's behaviour tests, collected here again with `session_server` (below) on
# PostgreSQL. (The restart and KV-parking tests start servers of their own on SQLite.)
test_rollback_on_postgres = sqlite_suite.test_rollback_removes_the_last_messages_and_refuses_impossible_counts
test_delete_on_postgres = sqlite_suite.test_delete_then_every_call_is_not_found
test_branch_on_postgres = sqlite_suite.test_branch_copies_a_prefix_and_leaves_the_original_alone
test_cancel_on_postgres = sqlite_suite.test_a_cancelled_turn_leaves_the_history_unchanged
test_busy_on_postgres = sqlite_suite.test_a_second_concurrent_turn_is_refused_and_the_first_completes
test_unknown_on_postgres = sqlite_suite.test_unknown_sessions_and_bad_ids
test_create_if_missing_on_postgres = sqlite_suite.test_create_if_missing_picks_an_id_and_applies_the_system_prompt
test_failed_first_turn_on_postgres = sqlite_suite.test_a_first_turn_that_fails_or_is_cancelled_leaves_no_session
test_first_turn_holds_id_on_postgres = sqlite_suite.test_a_first_turn_holds_its_new_id_until_its_answer_is_stored
test_kv_reuse_on_postgres = sqlite_suite.test_session_kv_survives_unrelated_traffic_and_reuse_can_be_turned_off
test_sampling_on_postgres = sqlite_suite.test_sampling_defaults_are_validated_with_their_field_paths


def _reachable(client: Client) -> bool:
    try:
        client.list_sessions()
        return True
    except UnavailableError:
        return False


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer().start()
    yield server
    server.destroy()


def _settings(dsn: str, **sessions):
    return make_settings(sessions={"store": "postgres", "dsn": dsn, **sessions})


@pytest.fixture(scope="module")
def session_server(postgres):
    running = ServerThread(_settings(postgres.create_database("suite"))).start()
    yield running
    running.stop()


@pytest.fixture
def sc(session_server):
    with Client(session_server.target, timeout=240) as c:
        yield c


@pytest.fixture(scope="module")
def replicas(postgres):
    """Two servers on one database, as two replicas behind a load balancer."""
    dsn = postgres.create_database("replicas")
    started = [ServerThread(_settings(dsn, connect_timeout_s=1)).start() for _ in range(2)]
    yield started
    for running in started:
        running.stop()


def test_a_turn_on_the_other_replica_rebuilds_from_the_stored_history(replicas):
    a, b = replicas
    with Client(a.target, timeout=240) as on_a, Client(b.target, timeout=240) as on_b:
        sid = on_a.create_session(system_prompt="You are terse.").session_id
        first = turn(on_a, sid, "The capital of France is?", max_tokens=8)[-1]
        owning = turn(on_a, sid, "And of Italy?", max_tokens=8)[-1]  # its KV is resident on A
        foreign = turn(on_b, sid, "And of Spain?", max_tokens=8)[-1]  # B never saw the session
        history = on_b.history(sid)
        assert on_a.history(sid) == history
    assert [m["content"] for m in history[::2]] == ["The capital of France is?", "And of Italy?",
                                                    "And of Spain?"]
    assert foreign.message_count == 6
    # A reused the whole earlier prompt; B prefilled the history it read from the database
    # (at most the shared chat-template prefix of unrelated caches could be reused).
    assert owning.reused_prompt_tokens >= first.usage.total_tokens - 2
    assert foreign.reused_prompt_tokens < owning.usage.total_tokens // 2
    assert foreign.usage.prompt_tokens > owning.usage.total_tokens


def test_two_replicas_racing_on_one_session_store_one_turn_the_other_is_aborted(replicas):
    a, b = replicas
    with Client(a.target, timeout=240) as on_a, Client(b.target, timeout=240) as on_b:
        sid = on_a.create_session().session_id
        slow = on_a.chat(sid, "Write a long story.", max_tokens=40, logit_bias=BAN_END_OF_GENERATION,
                         **GREEDY)
        next(slow)  # A has read the (empty) history and is answering
        won = turn(on_b, sid, "Say hi.", max_tokens=4)[-1]  # B answers and stores first
        assert won.message_count == 2
        with pytest.raises(TokenwireError) as err:
            list(slow)
        assert err.value.code == grpc.StatusCode.ABORTED
        assert err.value.reason == "SESSION_CONFLICT"
        assert "another turn was stored first" in str(err.value)
        history = on_a.history(sid)
    assert [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"] == "Say hi."  # the loser stored nothing, nothing interleaved


def test_the_bridge_names_the_session_to_the_balancer_on_every_session_call(replicas):
    """The bridge may sit in front of a balancer too: each gRPC call it makes for a session carries
    x-session-id (from the request, whatever header the HTTP client sent), other calls none."""
    _, b = replicas
    with grpc.insecure_channel(b.target) as channel:
        app = create_app(BridgeConfig(grpc_target=b.target), channel=channel)
        app.testing = True
        seen: list = []
        original = BridgeChannel.metadata

        def spy(self, given, message=None):
            pairs = original(self, given, message)
            seen.append((type(message).__name__, dict(pairs).get("x-session-id")))
            return pairs

        BridgeChannel.metadata = spy
        try:
            http = app.test_client()
            created = http.post("/v1/sessions", json={"session_id": "via-bridge"})
            assert created.status_code == 200, created.get_data(as_text=True)
            assert http.get("/v1/sessions/via-bridge", headers={"x-session-id": "other"}).status_code == 200
            chat = http.post("/v1/sessions/via-bridge:chat", json={"content": "Hi.", "max_tokens": 3})
            assert chat.status_code == 200, chat.get_data(as_text=True)
            chat.get_data()
            assert http.get("/v1/models").status_code == 200
        finally:
            BridgeChannel.metadata = original
    by_message = dict(seen)
    assert by_message["CreateSessionRequest"] == "via-bridge"
    assert by_message["GetSessionRequest"] == "via-bridge"  # not the client's "other"
    assert by_message["ChatRequest"] == "via-bridge"
    assert all(sid is None for name, sid in seen if "Session" not in name and name != "ChatRequest")
    from rest_bridge.errors import HTTP_STATUS  # a lost race (ABORTED) is an HTTP 409

    assert HTTP_STATUS[grpc.StatusCode.ABORTED] == 409


def test_with_the_database_down_sessions_are_unavailable_and_generation_works(replicas, postgres):
    a, _ = replicas
    with Client(a.target, timeout=240) as c:
        sid = c.create_session().session_id
        turn(c, sid, "Hello.", max_tokens=3)
        postgres.stop()
        try:
            for call in (lambda: c.history(sid), c.list_sessions,
                         lambda: turn(c, sid, "Still there?", max_tokens=3)):
                with pytest.raises(UnavailableError) as err:
                    call()
                assert err.value.reason == "SESSION_STORE_UNAVAILABLE"
                assert "session database" in str(err.value) and "cannot be reached" in str(err.value)
            deltas = list(c.generate(messages=[{"role": "user", "content": "Say hello."}],
                                     max_tokens=8, **GREEDY))
            assert "".join(d.text for d in deltas).strip() and deltas[-1].finish_reason
        finally:
            postgres.start()
        # Back without a restart once the pool has reconnected (it retries with a short backoff).
        wait_for(lambda: _reachable(c), timeout=60, interval=0.2)
        assert len(c.history(sid)) == 2
        assert turn(c, sid, "Back?", max_tokens=3)[-1].message_count == 4
