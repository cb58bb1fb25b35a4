"""Time to first token at turn 10 of a chat session against turn 1, with KV reuse on and off.

Each run creates a session and chats 10 turns through SessionService.Chat (gRPC, greedy, the end
tokens banned so every answer is exactly --answer-tokens long); by turn 10 the history is about
1,500 tokens. With reuse on, turn 10 should prefill only its new message, so its time to first
token stays close to turn 1's; with reuse off (sessions.kv_reuse: false, a server setting) it
prefills the whole history. Both servers run this checkout's code (`tokenwire serve`) with the
same model settings, side by side, and their sessions take turns; times are taken by the client.

    .venv/bin/python -m bench.session_reuse --runs 5

Reports per mode the ratio TTFT(turn 10) / TTFT(turn 1): min / median / max over the runs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.harness import (RESULTS_DIR, BenchError, ServerProcess, machine_info, min_median_max,
                           print_machine, run_main, write_results)
from server.config import physical_cores
from tokenwire import Client

REPO = Path(__file__).resolve().parents[1]
# SmolLM2's end-of-generation tokens, banned so that every answer has exactly the asked length.
BAN_END = {0: -100.0, 2: -100.0, 4: -100.0}
USER_MESSAGE = ("Turn {turn}: tell me one more fact about the history of Paris, its bridges, its "
                "museums, its markets and its people, in a few plain sentences please.")


@dataclass
class Turn:
    ttft_ms: float          # client-side: call start to the first non-empty delta
    server_ttft_ms: float   # the server's own figure (arrival to first token)
    prompt_tokens: int
    reused_prompt_tokens: int


@dataclass
class SessionRun:
    mode: str
    turns: list[Turn]

    @property
    def ratio(self) -> float:
        return self.turns[-1].ttft_ms / self.turns[0].ttft_ms


def chat_turn(client: Client, session_id: str, turn: int, answer_tokens: int) -> Turn:
    started = time.perf_counter()
    first = None
    final = None
    for delta in client.chat(session_id, USER_MESSAGE.format(turn=turn), max_tokens=answer_tokens,
                             temperature=0.0, logit_bias=BAN_END):
        if first is None and delta.text:
            first = time.perf_counter()
        final = delta
    if final is None or final.finish_reason != "length" or first is None:
        raise BenchError(f"turn {turn} ended early: {final}")
    return Turn((first - started) * 1000, final.timings.time_to_first_token_ms,
                final.usage.prompt_tokens, final.reused_prompt_tokens)


def start_server(mode: str, args: argparse.Namespace) -> ServerProcess:
    folder = Path(tempfile.mkdtemp(prefix="tokenwire-bench-sessions-"))
    config = folder / "config.yaml"
    config.write_text(f"sessions:\n  store_path: {folder / 'sessions.db'}\n"
                      f"  kv_reuse: {'true' if mode == 'reuse' else 'false'}\n")
    server = ServerProcess(args.threads, ["--parallel", str(args.parallel), "--config", str(config)])
    # This checkout's server and client package, whatever the installed `tokenwire` points at.
    paths = [str(REPO), str(REPO / "clients/python")]
    bootstrap = (f"import os, sys; sys.path[:0] = {paths!r}; "
                 f"os.environ['PYTHONPATH'] = {os.pathsep.join(paths)!r}; "  # for the bridge process
                 "from server.cli import main; sys.exit(main())")
    server.args = [sys.executable, "-c", bootstrap, *server.args[1:]]
    return server.start()


def run_session(client: Client, mode: str, index: int, args: argparse.Namespace) -> SessionRun:
    session_id = f"bench-{mode}-{index}-{uuid.uuid4()}"
    # A unique first message per run: turn 1 must not reuse the previous run's cache.
    client.create_session(session_id, system_prompt=f"Class {uuid.uuid4().hex}: you "
                                                    "are a patient history teacher.")
    turns = [chat_turn(client, session_id, t, args.answer_tokens) for t in range(1, args.turns + 1)]
    run = SessionRun(mode, turns)
    first, last = turns[0], turns[-1]
    print(f"  {mode:8} run {index + 1}: turn 1 {first.ttft_ms:7.1f} ms "
          f"({first.prompt_tokens} prompt tokens) | turn {args.turns} "
          f"{last.ttft_ms:7.1f} ms ({last.prompt_tokens} prompt tokens, "
          f"{last.reused_prompt_tokens} reused) | ratio {run.ratio:5.2f}", flush=True)
    return run


def run_modes(args: argparse.Namespace) -> dict[str, list[SessionRun]]:
    """Both servers up at once (an idle one costs nothing); their sessions take turns, so a
    shared machine's load changes affect both modes alike."""
    modes = ("reuse", "no-reuse")
    servers: dict[str, ServerProcess] = {}
    clients: dict[str, Client] = {}
    results: dict[str, list[SessionRun]] = {mode: [] for mode in modes}
    try:
        for mode in modes:
            servers[mode] = start_server(mode, args)
            clients[mode] = Client(servers[mode].grpc_target, timeout=600)
            warmup = clients[mode].create_session(f"warmup-{uuid.uuid4()}")
            chat_turn(clients[mode], warmup.session_id, 0, 4)
        for index in range(args.runs):
            for mode in modes:
                results[mode].append(run_session(clients[mode], mode, index, args))
    finally:
        for client in clients.values():
            client.close()
        for server in servers.values():
            server.stop()
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="sessions per mode")
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--answer-tokens", type=int, default=110,
                        help="tokens per answer (sets how fast the history grows)")
    parser.add_argument("--threads", type=int, default=physical_cores())
    parser.add_argument("--parallel", type=int, default=2,
                        help="server sequences (the 4096-cell cache is split between them)")
    args = parser.parse_args(argv)
    machine = machine_info()
    print_machine(machine)
    results = run_modes(args)
    print(f"\n  TTFT(turn {args.turns}) / TTFT(turn 1), {args.runs} runs each:")
    summary = {}
    for mode, runs in results.items():
        ratios = min_median_max([r.ratio for r in runs])
        ttft_first = statistics.median(r.turns[0].ttft_ms for r in runs)
        ttft_last = statistics.median(r.turns[-1].ttft_ms for r in runs)
        history = statistics.median(r.turns[-1].prompt_tokens for r in runs)
        summary[mode] = {"ratio": ratios, "median_ttft_turn1_ms": ttft_first,
                         "median_ttft_last_turn_ms": ttft_last, "last_turn_prompt_tokens": history}
        print(f"  {mode:8}: ratio min {ratios['min']:.2f} / median {ratios['median']:.2f} / "
              f"max {ratios['max']:.2f}  (median TTFT turn 1 {ttft_first:.1f} ms, turn "
              f"{args.turns} {ttft_last:.1f} ms, turn-{args.turns} prompt {history:.0f} tokens)")
    write_results(RESULTS_DIR / "session_reuse.json", machine=machine, args=vars(args),
                  summary=summary, runs=results)
    return 0


if __name__ == "__main__":
    run_main(main)
