"""Three `tokenwire serve` replicas on 127.0.0.1, one real PostgreSQL for their sessions, and
Debian's nginx in front (gRPC over HTTP/2 and HTTP, consistent hashing on x-session-id), driven
by the Python client as users would drive it:

- a session's calls all land on one replica (its KV cache stays warm there), over gRPC and HTTP;
- a turn on the owning replica reuses its cache, one on a foreign replica rebuilds the prompt
  from the stored history (latency of both printed as figures);
- after the owner is killed with SIGKILL the session goes on on another replica, no turn lost;
- a rolling restart (SIGTERM one replica at a time, each drains then comes back) under 8
  concurrent streams drops none: a stream that started finishes; a call that a draining replica
  refuses with UNAVAILABLE before it starts is retried, as gRPC clients retry UNAVAILABLE.

Bounded: a few minutes on 2 cores (short answers, a deadline on every wait).
"""

from __future__ import annotations

import json
import statistics
import threading
import time
import urllib.request

import pytest

from tests.e2e.replica_cluster import Nginx, Replica, last_upstream, timed
from tests.helpers import wait_for
from tests.postgres_server import PostgresServer
from tokenwire import Client
from tokenwire.errors import CancelledError, UnavailableError

GREEDY = {"temperature": 0.0}
FIGURES: dict[str, object] = {}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replicas")
    postgres = PostgresServer().start()
    dsn = postgres.create_database("tokenwire")
    replicas = [Replica(f"r{i}", dsn=dsn, folder=folder) for i in range(3)]
    nginx = Nginx(replicas)
    try:
        for replica in replicas:
            replica.start(wait_serving=False)
        for replica in replicas:
            replica.wait_serving()
        nginx.start()
        yield replicas, nginx, postgres
    finally:
        nginx.stop()
        for replica in replicas:
            replica.stop()
        postgres.destroy()
        print("\nREPLICA FIGURES " + json.dumps(FIGURES, indent=1, sort_keys=True))


def _by_port(replicas: list[Replica], address: str) -> Replica:
    port = int(last_upstream(address).rsplit(":", 1)[1])
    return next(r for r in replicas if port in (r.port, r.rest_port))


def _chat_owners(nginx: Nginx, replicas, session_id: str) -> list[str]:
    return [_by_port(replicas, upstream).name for upstream, sid, path, _ in nginx.routes()
            if sid == session_id and path.endswith("/Chat")]


def turn(client: Client, sid: str, content: str, max_tokens: int = 6):
    return list(client.chat(sid, content, max_tokens=max_tokens, **GREEDY))


def test_a_session_sticks_to_one_replica_over_grpc_and_http(cluster):
    replicas, nginx, _ = cluster
    owners = {}
    with Client(nginx.target, timeout=240) as c:
        for i in range(6):
            sid = f"sticky-{i}"
            c.create_session(sid)
            for n in range(2):
                turn(c, sid, f"Say {n}.", max_tokens=3)
            c.history(sid)
            owners[sid] = _chat_owners(nginx, replicas, sid)
    assert all(len(set(o)) == 1 and len(o) == 2 for o in owners.values()), owners
    assert len({o[0] for o in owners.values()}) >= 2  # different sessions spread out
    # HTTP (the bridge of each replica behind nginx): the same header keeps one replica.
    http_upstreams = set()
    for _ in range(4):
        request = urllib.request.Request(f"{nginx.base_url}/v1/sessions/sticky-0",
                                         headers={"x-session-id": "sticky-0"})
        with urllib.request.urlopen(request, timeout=60) as response:
            session = json.load(response)["session"]
            assert session.get("sessionId", session.get("session_id")) == "sticky-0"
    for upstream, sid, path, status in nginx.routes():
        if path == "/v1/sessions/sticky-0":
            assert status == "200"
            http_upstreams.add(_by_port(replicas, upstream).name)
    assert len(http_upstreams) == 1
    # Stateless calls (no header) are spread round-robin.
    with Client(nginx.target, timeout=240) as c:
        for _ in range(6):
            c.health("tokenwire.v1.GenerationService")
    health_upstreams = {_by_port(replicas, u).name for u, sid, path, _ in nginx.routes()
                        if path.endswith("/Check")}
    assert len(health_upstreams) >= 2


def test_owning_replica_reuses_its_cache_a_foreign_one_rebuilds_from_the_database(cluster):
    replicas, nginx, _ = cluster
    owning, foreign = [], []
    with Client(nginx.target, timeout=240) as c:
        for i in range(3):
            sid = f"latency-{i}"
            c.create_session(sid, system_prompt="You are a helpful assistant.")
            for n in range(4):  # a history worth caching
                # Words of its own: greedy answers to the same questions would give two sessions
                # the same tokens, and a replica reuses any cache whose prefix matches.
                turn(c, sid, f"I am visitor {i * 7 + 3}. Tell me one fact about the number {n}.",
                     max_tokens=24)
            owner = _by_port(replicas, next(u for u, s, p, _ in reversed(nginx.routes())
                                            if s == sid and p.endswith("/Chat")))
            other = next(r for r in replicas if r is not owner)
            (warm, warm_s) = timed(lambda: turn(c, sid, "And why?", max_tokens=4))
            with Client(other.target, timeout=240) as direct:  # bypasses the balancer
                (cold, cold_s) = timed(lambda: turn(direct, sid, "Really?", max_tokens=4))
            assert cold[-1].message_count == warm[-1].message_count + 2  # the stored history
            assert warm[-1].reused_prompt_tokens >= warm[-1].usage.prompt_tokens - 16
            assert cold[-1].reused_prompt_tokens < cold[-1].usage.prompt_tokens // 2
            owning.append((warm_s, warm[-1].usage.prompt_tokens, warm[-1].reused_prompt_tokens))
            foreign.append((cold_s, cold[-1].usage.prompt_tokens, cold[-1].reused_prompt_tokens))
    FIGURES["session_turn_owning_replica_s"] = [round(o[0], 3) for o in owning]
    FIGURES["session_turn_foreign_replica_s"] = [round(f[0], 3) for f in foreign]
    FIGURES["session_turn_owning_median_s"] = round(statistics.median(o[0] for o in owning), 3)
    FIGURES["session_turn_foreign_median_s"] = round(statistics.median(f[0] for f in foreign), 3)
    FIGURES["owning_prompt_reused_tokens"] = [f"{o[2]}/{o[1]}" for o in owning]
    FIGURES["foreign_prompt_reused_tokens"] = [f"{f[2]}/{f[1]}" for f in foreign]


def test_a_session_goes_on_on_another_replica_after_its_replica_is_killed(cluster):
    replicas, nginx, _ = cluster
    sid = "survives-kill"
    with Client(nginx.target, timeout=240) as c:
        c.create_session(sid)
        for n in range(3):
            assert turn(c, sid, f"Count {n}.")[-1].message_count == 2 * (n + 1)
        owner = _by_port(replicas, _chat_route(nginx, sid))
        owner.kill9()  # SIGKILL: no drain, no goodbye
        try:
            for n in range(3, 6):
                assert turn(c, sid, f"Count {n}.")[-1].message_count == 2 * (n + 1)
            history = c.history(sid)
            survivor = _by_port(replicas, _chat_route(nginx, sid))
        finally:
            owner.start()  # back on its ports for the next test
    assert survivor is not owner
    assert [m["content"] for m in history[::2]] == [f"Count {n}." for n in range(6)]
    FIGURES["turns_lost_after_kill9"] = 6 - len(history) // 2


def _chat_route(nginx: Nginx, sid: str) -> str:
    return next(u for u, s, p, _ in reversed(nginx.routes()) if s == sid and p.endswith("/Chat"))


def test_a_rolling_restart_under_8_concurrent_streams_drops_none(cluster):
    replicas, nginx, _ = cluster
    stop = threading.Event()
    lock = threading.Lock()
    counts = {"completed": 0, "dropped": 0, "refused_then_retried": 0}
    dropped: list[str] = []

    def one_stream(c: Client, worker: int, n: int, received: list):
        if worker % 2:  # half the streams are session turns, half stateless generations
            stream = c.chat(f"rolling-{worker}", f"Tell me about {n}.", max_tokens=16,
                            create_if_missing=True, **GREEDY)
        else:
            stream = c.generate(messages=[{"role": "user", "content": f"Tell me about {n}."}],
                                max_tokens=16, **GREEDY)
        for delta in stream:
            received.append(delta)
        return received

    def worker(w: int) -> None:
        with Client(nginx.target, timeout=240) as c:
            n = 0
            while not stop.is_set():
                n += 1
                deadline = time.monotonic() + 120
                while True:
                    received: list = []
                    try:
                        deltas = one_stream(c, w, n, received)
                        assert deltas[-1].finish_reason in ("length", "stop")
                        with lock:
                            counts["completed"] += 1
                        break
                    except (UnavailableError, CancelledError) as exc:
                        # Refused before it started (a draining replica, or nginx found none;
                        # or nginx reset a stream whose replica was stopping before it answered
                        # anything): nothing ran, so retrying is safe. A stream cut after its
                        # first message is a drop (below).
                        if isinstance(exc, CancelledError) and received:
                            with lock:
                                counts["dropped"] += 1
                                dropped.append(f"worker {w}: cut after {len(received)} messages: {exc}")
                            break
                        if time.monotonic() > deadline:
                            with lock:
                                counts["dropped"] += 1
                                dropped.append(f"worker {w}: {exc}")
                            break
                        with lock:
                            counts["refused_then_retried"] += 1
                        time.sleep(0.2)
                    except Exception as exc:  # a stream cut off: what this test must not see
                        with lock:
                            counts["dropped"] += 1
                            dropped.append(f"worker {w}: {type(exc).__name__}: {exc}")
                        break

    workers = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(8)]
    for thread in workers:
        thread.start()
    exit_codes = []
    try:
        wait_for(lambda: counts["completed"] >= 8, timeout=120, interval=0.1)
        for replica in replicas:
            before = counts["completed"]
            exit_codes.append(replica.terminate(timeout=120))
            replica.start()
            wait_for(lambda: counts["completed"] > before + 4, timeout=120, interval=0.1)
    finally:
        stop.set()
        for thread in workers:
            thread.join(timeout=240)
    FIGURES["rolling_restart"] = dict(counts, exit_codes=exit_codes)
    assert exit_codes == [0, 0, 0]
    assert dropped == [] and counts["dropped"] == 0
    assert not any(thread.is_alive() for thread in workers)
