"""The cost of grammar-constrained decoding: JSON-schema streams against plain ones, same server.

One `tokenwire serve --parallel 8` (this checkout's code). Each round runs, on the same prompts:
  plain      a story as free text
  json       the same request constrained to {"title": string, "story": string, "tags": [...]}
greedy and sampled (temperature 0.8, seed fixed), one stream at a time and then 8 at once. The two
kinds alternate within each round, so a shared machine's load changes touch both alike.

    .venv/bin/python -m bench.structured_output --rounds 3

Reported per case (median over rounds): decode tokens/s of one stream (client-side, first to last
token) and the aggregate tokens/s of 8 concurrent streams (all tokens / wall time), and the ratio
json / plain (the issue's target: >= 0.8). Every stream runs to --max-tokens: the plain ones with
the end of generation banned, the JSON ones held open by the schema's minLength.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import statistics
import sys
import time
from pathlib import Path

from bench.harness import (RESULTS_DIR, BenchError, ServerProcess, machine_info, print_machine, run_main,
                           write_results)
from server.config import physical_cores
from tokenwire import Client

REPO = Path(__file__).resolve().parents[1]
# The story's minLength keeps every JSON answer running to max_tokens, as the plain ones do with
# the end of generation banned: equal lengths, so prefill weighs the same in both aggregates.
SCHEMA = {"type": "object", "properties": {
    "title": {"type": "string", "maxLength": 60}, "story": {"type": "string", "minLength": 2000},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 5}},
    "required": ["title", "story", "tags"], "additionalProperties": False}
BAN_END = {0: -100.0, 2: -100.0, 4: -100.0}  # SmolLM2's end-of-generation tokens
PROMPT = "Story #{n}: write a long story about a lighthouse keeper and a storm."


def stream(client: Client, n: int, kind: str, sampled: bool, max_tokens: int) -> tuple[int, float, float]:
    """(tokens, first token time, last token time) of one stream."""
    extra = {"json_schema": SCHEMA} if kind == "json" else {"logit_bias": BAN_END}
    sampling = {"temperature": 0.8, "seed": n} if sampled else {"temperature": 0.0}
    first = last = None
    tokens = 0
    for delta in client.generate(messages=[{"role": "user", "content": PROMPT.format(n=n)}],
                                 max_tokens=max_tokens, **sampling, **extra):
        if delta.token_ids:
            now = time.perf_counter()
            first = first or now
            last = now
            tokens += len(delta.token_ids)
    if tokens != max_tokens:
        raise BenchError(f"a {kind} stream gave {tokens} tokens, not {max_tokens}")
    return tokens, first or 0.0, last or 0.0


def one_stream_rate(client: Client, n: int, kind: str, sampled: bool, max_tokens: int) -> float:
    tokens, first, last = stream(client, n, kind, sampled, max_tokens)
    return (tokens - 1) / (last - first) if tokens > 1 and last > first else 0.0


def concurrent_rate(client: Client, n: int, kind: str, sampled: bool, max_tokens: int,
                    streams: int) -> float:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        results = list(pool.map(lambda i: stream(client, n * 100 + i, kind, sampled, max_tokens),
                                range(streams)))
    return sum(tokens for tokens, _, _ in results) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--threads", type=int, default=physical_cores())
    args = parser.parse_args(argv)
    machine = machine_info()
    print_machine(machine)
    server = ServerProcess(args.threads, ["--parallel", str(args.streams)])
    paths = [str(REPO), str(REPO / "clients/python")]
    server.args = [sys.executable, "-c", f"import sys; sys.path[:0] = {paths!r}; "
                   "from server.cli import main; sys.exit(main())", *server.args[1:]]
    server.start()
    cases = [(sampled, mode) for sampled in (False, True) for mode in ("1 stream", "concurrent")]
    rates: dict[tuple, list[float]] = {}
    try:
        with Client(server.grpc_target, timeout=600) as client:
            stream(client, 0, "json", False, 8)  # warm-up: compiles the schema once
            for r in range(args.rounds):
                for sampled, mode in cases:
                    for kind in ("plain", "json"):
                        n = r * 1000 + len(rates)
                        rate = (one_stream_rate(client, n, kind, sampled, args.max_tokens)
                                if mode == "1 stream" else
                                concurrent_rate(client, n, kind, sampled, args.max_tokens,
                                                args.streams))
                        rates.setdefault((sampled, mode, kind), []).append(rate)
                        print(f"  round {r + 1} {'sampled' if sampled else 'greedy '} {mode:10} "
                              f"{kind:5} {rate:7.1f} tok/s", flush=True)
    finally:
        server.stop()
    print(f"\n| path | streams | plain tok/s | json_schema tok/s | ratio |\n|---|---|---|---|---|")
    table = []
    for sampled, mode in cases:
        plain = statistics.median(rates[(sampled, mode, "plain")])
        json_ = statistics.median(rates[(sampled, mode, "json")])
        streams = 1 if mode == "1 stream" else args.streams
        row = {"path": "sampled" if sampled else "greedy", "streams": streams,
               "plain_tps": round(plain, 1), "json_tps": round(json_, 1),
               "ratio": round(json_ / plain, 3)}
        table.append(row)
        print(f"| {row['path']} | {streams} | {row['plain_tps']} | {row['json_tps']} | "
              f"{row['ratio']:.2f} |")
    write_results(RESULTS_DIR / "structured_output.json", machine=machine, args=vars(args),
                  table=table, rates={" ".join(map(str, k)): v for k, v in rates.items()})
    return 0


if __name__ == "__main__":
    run_main(main)
