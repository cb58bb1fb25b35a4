"""What monitoring costs per RPC: Tokenize latency (a cheap call, so the per-call overhead of the
metrics/tracing/access-log interceptor shows) on a server with ObservabilityInterceptor against
one where it is replaced by a pass-through, both in this process, called in alternating rounds so a
shared machine's load affects both sides alike. Prints min / median / max per side and the ratio
of medians (monitored / bare).

    PYTHONPATH=.:clients/python .venv/bin/python bench/monitoring_overhead.py --rounds 10 --calls 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import grpc

sys.path[:0] = [str(Path(__file__).resolve().parent.parent)]

import server.app as app_module  # noqa: E402
from harness import min_median_max  # noqa: E402
from tests.helpers import ServerThread, make_settings  # noqa: E402
from tokenwire.v1 import generation_service_pb2 as pb  # noqa: E402
from tokenwire.v1 import generation_service_pb2_grpc as pb_grpc  # noqa: E402


class PassThrough(grpc.aio.ServerInterceptor):
    def __init__(self, *_args):
        pass

    async def intercept_service(self, continuation, handler_call_details):
        return await continuation(handler_call_details)


def round_ms(stub, calls: int) -> float:
    """Median latency of `calls` Tokenize calls, in milliseconds."""
    samples = []
    request = pb.TokenizeRequest(text="The quick brown fox jumps over the lazy dog.")
    for _ in range(calls):
        started = time.perf_counter()
        stub.Tokenize(request, timeout=30)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    sides: dict[str, ServerThread] = {}
    channels: dict[str, grpc.Channel] = {}
    try:
        sides["monitored"] = ServerThread(make_settings()).start()
        original = app_module.ObservabilityInterceptor
        app_module.ObservabilityInterceptor = PassThrough
        try:
            sides["bare"] = ServerThread(make_settings()).start()
        finally:
            app_module.ObservabilityInterceptor = original
        results: dict[str, list[float]] = {name: [] for name in sides}
        channels = {name: grpc.insecure_channel(s.target) for name, s in sides.items()}
        stubs = {name: pb_grpc.GenerationServiceStub(ch) for name, ch in channels.items()}
        for name in sides:  # warm-up
            round_ms(stubs[name], 20)
        for _ in range(args.rounds):
            for name in sides:
                results[name].append(round_ms(stubs[name], args.calls))
    finally:  # a failed run leaves no server behind
        for ch in channels.values():
            ch.close()
        for s in sides.values():
            s.stop()
    summary = {name: min_median_max(values) for name, values in results.items()}
    for name, s in summary.items():
        print(f"{name:9s} Tokenize median ms per round: min {s['min']:.3f} "
              f"median {s['median']:.3f} max {s['max']:.3f}")
    ratio = summary["monitored"]["median"] / summary["bare"]["median"]
    print(f"ratio monitored / bare (medians): {ratio:.3f}")


if __name__ == "__main__":
    main()
