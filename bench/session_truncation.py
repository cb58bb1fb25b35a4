"""A chat session longer than its window (issue 23): time to first token per turn, around the
turns where the oldest turns leave the prompt.

`tokenwire serve` with `--context-size 2048 --parallel 2` (a 1,024-token window per sequence);
one session, N turns of "Write a detailed paragraph about X" (150 tokens, greedy) over gRPC
SessionService/Chat. Per turn: messages left out, prompt tokens, reused prompt tokens, TTFT.
Then the TTFT of each turn whose cut moved (the kept suffix is prefilled again) and of the turn
after it (reusing that prefix), against the median of the other turns.

    .venv/bin/python bench/session_truncation.py [--turns 30] [--window 1024]
"""

from __future__ import annotations

import argparse
import statistics
import uuid

import grpc

from bench.harness import ServerProcess
from server.config import physical_cores
from tokenwire.v1 import generation_pb2 as gen_pb
from tokenwire.v1 import session_service_pb2 as session_pb
from tokenwire.v1 import session_service_pb2_grpc as session_grpc

TOPICS = ["the ocean", "volcanoes", "the moon", "bread", "bicycles", "libraries", "rain",
          "mountains", "coffee", "trains", "forests", "music", "deserts", "bees", "castles",
          "rivers", "winter", "clocks", "bridges", "gardens", "the sun", "ships", "cities",
          "owls", "paper", "glass", "islands", "storms", "maps", "lighthouses"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=30)
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=physical_cores())
    args = parser.parse_args()
    server = ServerProcess(args.threads, ["--context-size", str(2 * args.window),
                                          "--parallel", "2"]).start()
    rows = []
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = session_grpc.SessionServiceStub(channel)
            session_id = f"bench-{uuid.uuid4()}"
            for turn in range(args.turns):
                topic = TOPICS[turn % len(TOPICS)]
                last = None
                for last in stub.Chat(session_pb.ChatRequest(
                        session_id=session_id, create_if_missing=True, max_tokens=150,
                        content=f"Write a detailed paragraph about {topic}.",
                        system_prompt="You are a helpful writer.",
                        sampling=gen_pb.SamplingParams(temperature=0)), timeout=600):
                    pass
                rows.append((turn, last.truncated_messages, last.usage.prompt_tokens,
                             last.reused_prompt_tokens, last.timings.time_to_first_token_ms))
    finally:
        server.stop()
    print(f"window {args.window} tokens per sequence, {args.threads} threads")
    print(f"{'turn':>4} {'cut msgs':>8} {'prompt':>6} {'reused':>6} {'TTFT ms':>8}")
    for turn, cut, prompt, reused, ttft in rows:
        print(f"{turn:4d} {cut:8d} {prompt:6d} {reused:6d} {ttft:8.1f}")
    moved = [i for i in range(1, len(rows)) if rows[i][1] != rows[i - 1][1]]
    after = [i + 1 for i in moved if i + 1 < len(rows) and rows[i + 1][1] == rows[i][1]]
    other = [rows[i][4] for i in range(1, len(rows)) if i not in moved]
    print(f"cut moved at turns {moved}")
    if moved:
        print(f"TTFT when the cut moved: median {statistics.median(rows[i][4] for i in moved):.1f} ms "
              f"(prompt re-prefilled: median "
              f"{statistics.median(rows[i][2] - rows[i][3] for i in moved):.0f} tokens)")
    if after:
        print(f"TTFT of the turn after:  median {statistics.median(rows[i][4] for i in after):.1f} ms "
              f"(prefilled: median {statistics.median(rows[i][2] - rows[i][3] for i in after):.0f} tokens)")
    if other:
        print(f"TTFT of all turns with an unmoved cut: median {statistics.median(other):.1f} ms")


if __name__ == "__main__":
    main()
