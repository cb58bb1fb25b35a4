"""What the security interceptor costs a small unary call: ListEngines with auth and rate limiting
off (the loopback default) vs on (10 user keys, 1 admin key, a rate limit high enough never to
refuse), two in-process servers side by side in this process's event-loop threads.

Rounds alternate (off, on, off, on, ...) so drift in a shared machine's load hits both alike; each
round times --calls sequential calls on one channel. Reported: per-call latency of each side
(min / median / max over rounds of the round median) and the on/off ratio. Not a test: nothing
is asserted.

    .venv/bin/python bench/auth_overhead.py --rounds 7 --calls 500
"""

from __future__ import annotations

import argparse
import statistics
import time

import grpc

from tests.helpers import ServerThread, make_settings
from tokenwire.v1 import engine_service_pb2, engine_service_pb2_grpc

KEYS = [f"bench-user-key-{i:02d}" for i in range(10)]


def round_median_us(stub, metadata, calls: int) -> float:
    times = []
    request = engine_service_pb2.ListEnginesRequest()
    for _ in range(calls):
        start = time.perf_counter()
        stub.ListEngines(request, metadata=metadata, timeout=30)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--no-rate-limit", action="store_true",
                        help="keys on, rate limiting off: the cost of key checking alone")
    args = parser.parse_args()
    off = ServerThread(make_settings()).start(wait_loaded=False)
    on = ServerThread(make_settings(
        auth={"api_keys": KEYS, "admin_api_keys": ["bench-admin-key-0"]},
        rate_limit={"enabled": not args.no_rate_limit, "max_requests": 10**9})).start(wait_loaded=False)
    try:
        sides = {"off": (off, ()), "on": (on, (("authorization", f"Bearer {KEYS[-1]}"),))}
        results: dict[str, list[float]] = {name: [] for name in sides}
        channels = {name: grpc.insecure_channel(server.target) for name, (server, _) in sides.items()}
        stubs = {name: engine_service_pb2_grpc.EngineServiceStub(ch) for name, ch in channels.items()}
        for name, (_, metadata) in sides.items():  # warm-up
            round_median_us(stubs[name], metadata, 50)
        for _ in range(args.rounds):
            for name, (_, metadata) in sides.items():
                results[name].append(round_median_us(stubs[name], metadata, args.calls))
        for name, values in results.items():
            print(f"auth {name:3}: per-call median us  min {min(values):7.1f}  "
                  f"median {statistics.median(values):7.1f}  max {max(values):7.1f}")
        ratios = [b / a for a, b in zip(results["off"], results["on"])]
        print(f"on/off ratio per round: min {min(ratios):.3f}  median {statistics.median(ratios):.3f}"
              f"  max {max(ratios):.3f}  ({args.rounds} rounds x {args.calls} calls)")
        for channel in channels.values():
            channel.close()
    finally:
        off.stop()
        on.stop()


if __name__ == "__main__":
    main()
