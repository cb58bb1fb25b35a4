"""The load signals a gateway reads (the Gateway API Inference Extension's model-server protocol),
scraped from /metrics on a real server while it works: queued and running requests, KV-cache
utilization (0 to 1) and the cache-config info gauge. Two sequences and five long streams: two
decode, three wait, the cache fills; when they end the queued and running gauges fall back to 0
(the cache keeps what it holds for reuse)."""

from __future__ import annotations

import threading

import grpc
from prometheus_client.parser import text_string_to_metric_families

from rest_bridge import create_app
from rest_bridge.config import BridgeConfig
from tests.conftest import BAN_END_OF_GENERATION
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import Client

PROMETHEUS_ACCEPT = "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"


def _gauges(http) -> dict[str, tuple[float, dict]]:
    answer = http.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT})
    assert answer.status_code == 200 and answer.content_type.startswith("text/plain")
    wanted = {"tokenwire_requests_waiting", "tokenwire_requests_running",
              "tokenwire_kv_cache_usage_ratio", "tokenwire_cache_config_info"}
    found = {}
    for family in text_string_to_metric_families(answer.get_data(as_text=True)):
        if family.name in wanted:
            assert family.type == "gauge", family.name
            (sample,) = family.samples
            found[family.name] = (sample.value, sample.labels)
    assert set(found) == wanted, found
    return found


def test_queued_running_and_kv_usage_move_under_load_and_fall_back():
    server = ServerThread(make_settings(engine={"n_parallel": 2, "n_ctx": 2048},
                                        rate_limit={"enabled": False})).start()
    try:
        with grpc.insecure_channel(server.target) as channel, \
                Client(server.target, timeout=240) as client:
            app = create_app(BridgeConfig(grpc_target=server.target), channel=channel)
            app.testing = True
            http = app.test_client()
            idle = _gauges(http)
            assert idle["tokenwire_requests_waiting"][0] == 0
            assert idle["tokenwire_requests_running"][0] == 0
            assert 0.0 <= idle["tokenwire_kv_cache_usage_ratio"][0] < 0.2
            info = idle["tokenwire_cache_config_info"]
            assert info[0] == 1 and info[1]["block_size"] == "1"
            assert int(info[1]["num_gpu_blocks"]) == server.backend().stats().kv_cells_total > 0

            failures: list[BaseException] = []

            def stream(i: int) -> None:
                try:
                    list(client.generate(messages=[{"role": "user", "content": f"Story {i}, go."}],
                                         max_tokens=400, logit_bias=BAN_END_OF_GENERATION,
                                         temperature=0.0))
                except BaseException as exc:  # reported below
                    failures.append(exc)

            threads = [threading.Thread(target=stream, args=(i,)) for i in range(5)]
            for thread in threads:
                thread.start()
            busy = wait_for(lambda: (lambda g: g if g["tokenwire_requests_running"][0] == 2
                                     and g["tokenwire_requests_waiting"][0] == 3 else None)(_gauges(http)),
                            timeout=120, interval=0.05)
            # The two decoding sequences fill their share of the cache as they write.
            fuller = wait_for(lambda: (lambda g: g if g["tokenwire_kv_cache_usage_ratio"][0]
                                       > idle["tokenwire_kv_cache_usage_ratio"][0] + 0.1 else None)(_gauges(http)),
                              timeout=180, interval=0.1)
            assert 0.0 < fuller["tokenwire_kv_cache_usage_ratio"][0] <= 1.0
            assert busy["tokenwire_cache_config_info"][1] == info[1]  # configuration, not load
            for thread in threads:
                thread.join(timeout=600)
            assert failures == []
            after = _gauges(http)
            assert after["tokenwire_requests_waiting"][0] == 0
            assert after["tokenwire_requests_running"][0] == 0
            # Through gRPC too: the same text from MetricsService.
            text = client.prometheus_metrics()
            assert "tokenwire_kv_cache_usage_ratio" in text and "tokenwire_requests_waiting" in text
    finally:
        server.stop()
