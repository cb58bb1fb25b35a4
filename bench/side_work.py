"""What cheap side work does to a running stream: one greedy stream's tokens/s and its longest
gap between tokens, alone, beside a flood of Tokenize calls, and beside Embed requests of 256
inputs, against one `tokenwire serve`, in one run.

Each round runs the three sides one after another (alone, tokenize flood, embed), so drift in the
load of a shared machine hits them alike. The flood is --flood-clients threads in a separate
process, each calling Tokenize back to back on its own channel; the embedder is one thread here
calling Embed with 256 short inputs back to back. Both start before the stream and stop after it.
Reported per side: the stream's decode tokens/s (median over rounds) and its ratio to the alone
side, its longest inter-token gap (median over rounds), and the side work done per second.

    .venv/bin/python bench/side_work.py --rounds 3
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import threading
import time
from pathlib import Path

from harness import (RESULTS_DIR, BenchError, Clock, ServerProcess, check_round_args,
                     check_tokens, eog_tokens, machine_info, print_machine, run_main,
                     write_results)
from server.config import embedded_model_path, physical_cores
from tokenwire import Client

DEFAULT_OUT = RESULTS_DIR / "side_work.json"
SIDES = ["alone", "tokenize flood", "embed 256"]
EMBED_INPUTS = [f"Sentence number {i} is about a lighthouse keeper and the sea." for i in range(256)]


def _flood(target: str, clients: int, stop, done) -> None:
    """Runs in a child process: `clients` threads calling Tokenize until `stop` is set."""
    def worker() -> None:
        with Client(target, timeout=60) as client:
            while not stop.is_set():
                client.tokenize("The quick brown fox jumps over the lazy dog.")
                with done.get_lock():
                    done.value += 1

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class SideWork:
    """Starts one side's background work and stops it, counting what it got done."""

    def __init__(self, side: str, target: str, flood_clients: int) -> None:
        self.side, self.target, self.flood_clients = side, target, flood_clients
        self.started = 0.0
        self.count = 0

    def __enter__(self) -> SideWork:
        self.started = time.perf_counter()
        if self.side == "tokenize flood":
            self._stop = multiprocessing.Event()
            self._done = multiprocessing.Value("q", 0)
            self._proc = multiprocessing.Process(
                target=_flood, args=(self.target, self.flood_clients, self._stop, self._done))
            self._proc.start()
            while self._done.value < self.flood_clients:  # every flood client is calling
                time.sleep(0.01)
        elif self.side == "embed 256":
            self._stop = threading.Event()
            self._embedded = [0]
            self._thread = threading.Thread(target=self._embed, daemon=True)
            self._thread.start()
            time.sleep(0.2)  # the first Embed is running
        return self

    def _embed(self) -> None:
        with Client(self.target, timeout=300) as client:
            while not self._stop.is_set():
                client.embed(EMBED_INPUTS)
                self._embedded[0] += len(EMBED_INPUTS)

    def __exit__(self, *exc) -> None:
        elapsed = time.perf_counter() - self.started
        if self.side == "tokenize flood":
            self._stop.set()
            self._proc.join(60)
            self.count = self._done.value
        elif self.side == "embed 256":
            self._stop.set()
            self._thread.join(300)
            self.count = self._embedded[0]
        self.rate = self.count / elapsed


def one_stream(client: Client, prompt: str, max_tokens: int, bias: dict[int, float]):
    """(decode tokens/s, longest inter-token gap in ms) of one greedy stream."""
    clock = Clock()
    tokens, last, gap, final = 0, None, 0.0, None
    for delta in client.generate(prompt=prompt, max_tokens=max_tokens, temperature=0,
                                 logit_bias=bias):
        if delta.token_ids:
            now = time.perf_counter()
            if last is not None:
                gap = max(gap, now - last)
            last = now
            clock.tokens_arrived()
            tokens += len(delta.token_ids)
        if delta.finish_reason is not None:
            final = delta
    check_tokens("stream", tokens, max_tokens, final.finish_reason if final else None)
    return clock.run(tokens).decode_tps, gap * 1000


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=physical_cores(),
                        help="the server's decode threads (default: physical cores)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three sides")
    parser.add_argument("--max-tokens", type=int, default=128, help="tokens per stream")
    parser.add_argument("--flood-clients", type=int, default=8,
                        help="concurrent Tokenize callers in the flood (default: 8)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("server_args", nargs="*", help="extra `tokenwire serve` flags (after --)")
    args = parser.parse_args(argv)
    check_round_args(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_path = embedded_model_path()
    machine = machine_info()
    print("tokenwire: a stream beside cheap side work")
    print_machine(machine)
    print(f"  model: {model_path.name}; server threads {args.threads}; {args.max_tokens} tokens "
          f"per stream; {args.flood_clients} Tokenize callers; {args.rounds} rounds\n", flush=True)
    bias = {token: -100.0 for token in eog_tokens(model_path)}
    runs: dict[str, list[dict]] = {side: [] for side in SIDES}
    server = ServerProcess(args.threads, args.server_args)
    try:
        server.start()
        with Client(server.grpc_target, timeout=300) as client:
            one_stream(client, "Warm-up: a story.", args.max_tokens, bias)
            for round_ in range(1, args.rounds + 1):
                for side in SIDES:
                    with SideWork(side, server.grpc_target, args.flood_clients) as work:
                        tps, gap = one_stream(client, f"Story #{round_}: a lighthouse keeper.",
                                              args.max_tokens, bias)
                    runs[side].append({"decode_tps": tps, "max_gap_ms": gap,
                                       "side_work_per_s": work.rate})
                    print(f"  round {round_} {side:<15} decode {tps:6.1f} tok/s  longest gap "
                          f"{gap:7.1f} ms  side work {work.rate:7.1f}/s", flush=True)
    finally:
        exit_code = server.stop()
    if exit_code != 0:
        raise BenchError(f"the server exited with {exit_code} on SIGTERM{server.log_tail()}")
    summary = {side: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
               for side, rs in runs.items()}
    alone = summary["alone"]["decode_tps"]
    print()
    for side in SIDES:
        s = summary[side]
        print(f"  {side:<15} decode {s['decode_tps']:6.1f} tok/s ({s['decode_tps'] / alone:.2f}x "
              f"alone)  longest gap {s['max_gap_ms']:7.1f} ms  side work "
              f"{s['side_work_per_s']:7.1f}/s")
    write_results(args.out, machine=machine,
                  config={"model": model_path, "threads": args.threads,
                          "max_tokens": args.max_tokens, "flood_clients": args.flood_clients,
                          "rounds": args.rounds, "server_args": args.server_args},
                  runs=runs, summary=summary)
    return 0


if __name__ == "__main__":
    run_main(main)
