"""tokens/s and time to first token of SSE through tokenwire's REST bridge vs direct gRPC.

One `tokenwire serve` subprocess serves both: the gRPC server and, in front of it, the REST
bridge (gunicorn). The same generation is asked for four ways, on the CPU, greedily, with every
end-of-generation token banned (logit_bias -100) so each run produces exactly --max-tokens tokens:

  gRPC             the Python client's Generate stream, raw prompt
  SSE completions  POST /v1/completions, stream: true (raw prompt, as above)
  gRPC chat        the Python client's Generate stream, the prompt as one user message
  SSE chat         POST /v1/chat/completions, stream: true (the same message)

Each SSE side is compared with the gRPC side that sends the same request, so the comparison holds
the bridge alone: the chat sides run the model's chat template, which makes a longer prompt than
the raw one. The sides never run at the same time: after one warm-up each they take turns (gRPC,
SSE completions, gRPC chat, SSE chat, gRPC, ...) for --rounds rounds, so drift in the load of a
shared machine hits all of them alike. Every run's prompt is unique ("Story #<round>.<side>:
<prompt>"): the server reuses the KV cells of a prompt prefix it has seen, so repeating one prompt
would let later sides skip the prompt evaluation that earlier ones paid for. So the sides' texts
differ, and are not compared.

Every time is taken where the caller sees it, from the request to the last token (for SSE, the
last event with text; the token count is the final usage chunk's completion_tokens):
  decode tokens/s     = (tokens - 1) / (last token arrived - first token arrived)
  end-to-end tokens/s = tokens / (last token arrived - request sent)
  TTFT                = first token arrived - request sent
The server's own decode rate and time to first token (gRPC timings; SSE performance_metrics) are
recorded as well: TTFT minus the server's TTFT is what the transport adds.

Targets: median decode tokens/s of each SSE side / its gRPC side >= 0.95, and its median TTFT
minus the gRPC side's <= 10 ms. This is a benchmark, not a test: a miss is reported, not raised.
It exits non-zero only when something goes wrong (the server does not start, a request fails, a
run has the wrong number of tokens, the server does not stop cleanly).

    .venv/bin/python bench/bridge_vs_grpc.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import httpx2  # openai's HTTP client (the httpx API), installed with the openai package
import llama_cpp

from harness import (METRICS, N_BATCH, N_CTX, RESULTS_DIR, BenchError, Clock, Run, ServerProcess,
                     Summary, check_round_args, check_tokens, eog_tokens, machine_info,
                     print_machine, print_run, print_table, run_main, summarize, write_results)
from server.config import embedded_model_path, physical_cores
from tokenwire import Client, TokenwireError

TARGET_RATIO = 0.95
TARGET_ADDED_TTFT_MS = 10.0
DEFAULT_PROMPT = "Write a long story about a lighthouse keeper."
DEFAULT_OUT = RESULTS_DIR / "bridge_vs_grpc.json"
REQUEST_TIMEOUT_S = 120
MODEL = "default"  # the bridge's name for the default engine; the gRPC client leaves it empty

# (key, title), in the order each round runs them.
SIDES = (("grpc", "gRPC"), ("sse_completions", "SSE completions"),
         ("grpc_chat", "gRPC chat"), ("sse_chat", "SSE chat"))
TITLES = dict(SIDES)
# (SSE side, the gRPC side that sends the same request, heading of their table)
COMPARISONS = (("sse_completions", "grpc", "raw prompt: POST /v1/completions vs Generate"),
               ("sse_chat", "grpc_chat", "chat: POST /v1/chat/completions vs Generate(messages)"))
BRIDGE_METRICS = METRICS + (("server-reported TTFT ms", "server_ttft_ms"),)


@dataclass
class BridgeRun(Run):
    server_ttft_ms: float | None = None


def _timed(clock: Clock, tokens: int, server_tps: float | None,
           server_ttft_ms: float | None) -> BridgeRun:
    return BridgeRun(**asdict(clock.run(tokens, server_tps)), server_ttft_ms=server_ttft_ms)


def run_prompt(prompt: str, label: str, side: str) -> str:
    """The prompt of one run, unique to its round and side."""
    return f"Story #{label.removeprefix('round ')}.{side}: {prompt}"


def run_grpc(client: Client, side: str, prompt: str, args: argparse.Namespace,
             eog: list[int]) -> BridgeRun:
    request = ({"messages": [{"role": "user", "content": prompt}]} if side == "grpc_chat"
               else {"prompt": prompt})
    title = TITLES[side]
    tokens = 0
    final = None
    clock = Clock()
    # -100 bans a token outright (OpenAI's convention, which the server follows).
    for delta in client.generate(**request, max_tokens=args.max_tokens, temperature=0,
                                 logit_bias={token: -100 for token in eog}):
        if delta.token_ids:
            clock.tokens_arrived()
            tokens += len(delta.token_ids)
        if delta.finish_reason is not None:
            final = delta
    if final is None:
        raise BenchError(f"{title}: the stream ended without a final message")
    if final.usage.completion_tokens != tokens:
        raise BenchError(f"{title}: received {tokens} tokens but usage says "
                         f"{final.usage.completion_tokens}")
    check_tokens(title, tokens, args.max_tokens, final.finish_reason)
    timings = final.timings
    return _timed(clock, tokens, timings.tokens_per_second, timings.time_to_first_token_ms)


def _completion_text(choice: dict) -> str | None:
    return choice.get("text")


def _chat_text(choice: dict) -> str | None:
    return (choice.get("delta") or {}).get("content")


def run_sse(http: httpx2.Client, rest_url: str, side: str, prompt: str,
            args: argparse.Namespace, eog: list[int]) -> BridgeRun:
    title = TITLES[side]
    body: dict = {"model": MODEL, "max_tokens": args.max_tokens, "temperature": 0,
                  "stream": True, "stream_options": {"include_usage": True},
                  "logit_bias": {str(token): -100 for token in eog}}
    text_of: Callable[[dict], str | None]
    if side == "sse_chat":
        url, text_of = rest_url + "/v1/chat/completions", _chat_text
        body["messages"] = [{"role": "user", "content": prompt}]
    else:
        url, text_of = rest_url + "/v1/completions", _completion_text
        body["prompt"] = prompt
    finish_reason = None
    usage = None
    metrics: dict = {}
    clock = Clock()
    with http.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            response.read()
            raise BenchError(f"{title}: HTTP {response.status_code}: {response.text[:500]}")
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # the blank line after each event
            data = line[len("data:"):].strip()
            if data == "[DONE]":
                break
            try:
                event = json.loads(data)
            except json.JSONDecodeError:
                raise BenchError(f"{title}: not a JSON event: {line!r}") from None
            if "error" in event:
                raise BenchError(f"{title}: the stream reported an error: {event['error']}")
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices") or ():
                piece = text_of(choice)
                if piece:
                    clock.tokens_arrived()
                if choice.get("finish_reason"):
                    finish_reason = choice["finish_reason"]
                    metrics = event.get("performance_metrics") or {}
        else:
            raise BenchError(f"{title}: the stream ended without 'data: [DONE]'")
    if usage is None:
        raise BenchError(f"{title}: no usage chunk (stream_options.include_usage)")
    check_tokens(title, usage["completion_tokens"], args.max_tokens, finish_reason)
    return _timed(clock, usage["completion_tokens"], metrics.get("tokens_per_second"),
                  metrics.get("time_to_first_token_ms"))


def run_rounds(server: ServerProcess, args: argparse.Namespace, eog: list[int],
               runs: dict[str, list[BridgeRun]]) -> None:
    """One warm-up, then --rounds rounds of every side in turn; records the measured runs."""
    width = max(len(title) for _, title in SIDES)
    # trust_env=False: loopback, so no proxy from the environment.
    with Client(server.grpc_target, timeout=REQUEST_TIMEOUT_S) as client, \
            httpx2.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False) as http:
        for label in ["warm-up"] + [f"round {i}" for i in range(1, args.rounds + 1)]:
            for side, title in SIDES:
                prompt = run_prompt(args.prompt, label, side)
                if side.startswith("sse"):
                    run = run_sse(http, server.rest_url, side, prompt, args, eog)
                else:
                    run = run_grpc(client, side, prompt, args, eog)
                print_run(label, title, run, side_width=width)
                if label != "warm-up":
                    runs[side].append(run)


def compare(summary: Summary, sse: str, grpc: str) -> dict:
    """An SSE side against the gRPC side that sends the same request, by their medians."""
    def median(side: str, key: str) -> float:
        return summary[side][key]["median"]

    decode = median(sse, "decode_tps") / median(grpc, "decode_tps")
    added_ttft = median(sse, "ttft_ms") - median(grpc, "ttft_ms")
    return {
        "baseline": grpc,
        "ratio_of_medians": {"decode_tps": decode,
                             "e2e_tps": median(sse, "e2e_tps") / median(grpc, "e2e_tps")},
        "added_median_ttft_ms": added_ttft,
        "added_median_server_ttft_ms": (median(sse, "server_ttft_ms")
                                        - median(grpc, "server_ttft_ms")),
        "decode_pass": decode >= TARGET_RATIO,
        "ttft_pass": added_ttft <= TARGET_ADDED_TTFT_MS,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=physical_cores(),
                        help="the server's decode threads (default: physical cores)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="measured runs per side, after one warm-up each (default: 5)")
    parser.add_argument("--max-tokens", type=int, default=128,
                        help="tokens generated per run (default: 128)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT,
                        help="raw prompt, prefixed 'Story #<round>.<side>: ' in each run; the chat "
                             "sides send it as one user message")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    check_round_args(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_path = embedded_model_path()
    machine = {**machine_info(), "llama_cpp_python": llama_cpp.__version__,
               "httpx2": httpx2.__version__}
    print("tokenwire REST bridge (SSE) vs gRPC")
    print_machine(machine)
    print(f"  python {machine['python']}, llama-cpp-python {machine['llama_cpp_python']}, "
          f"httpx2 {machine['httpx2']}")
    print(f"  model: {model_path.name}; threads {args.threads}, n_ctx {N_CTX}, n_batch {N_BATCH}")
    print(f"  {args.max_tokens} tokens per run, {args.rounds} rounds after one warm-up each; "
          f"prompt 'Story #<round>.<side>: {args.prompt}'\n", flush=True)

    eog = eog_tokens(model_path)
    runs: dict[str, list[BridgeRun]] = {side: [] for side, _ in SIDES}
    server = ServerProcess(args.threads)
    try:
        server.start()
        try:
            run_rounds(server, args, eog, runs)
        except (BenchError, TokenwireError, httpx2.HTTPError) as exc:
            raise BenchError(f"{exc}{server.log_tail()}") from exc
    finally:
        exit_code = server.stop()
    if exit_code != 0:
        raise BenchError(f"the server exited with {exit_code} on SIGTERM{server.log_tail()}")

    summary = summarize(runs, BRIDGE_METRICS)
    comparisons = {sse: compare(summary, sse, grpc) for sse, grpc, _ in COMPARISONS}
    for sse, grpc, heading in COMPARISONS:
        print(f"\n  {heading}", end="")
        print_table(summary, [(grpc, TITLES[grpc]), (sse, TITLES[sse])], BRIDGE_METRICS)

    write_results(args.out, machine=machine,
                  config={"model": model_path, "threads": args.threads, "n_ctx": N_CTX,
                          "n_batch": N_BATCH, "max_tokens": args.max_tokens,
                          "rounds": args.rounds, "prompt": args.prompt,
                          "prompt_of_run": "Story #<round>.<side>: <prompt>"},
                  runs=runs, summary=summary, comparisons=comparisons,
                  target_ratio=TARGET_RATIO, target_added_ttft_ms=TARGET_ADDED_TTFT_MS)

    for sse, grpc, _ in COMPARISONS:
        result = comparisons[sse]
        names = f"{TITLES[sse]} / {TITLES[grpc]}"
        ratio = result["ratio_of_medians"]["decode_tps"]
        print(f"ratio decode tokens/s ({names}): {ratio:.3f} (target >= {TARGET_RATIO}): "
              f"{'PASS' if result['decode_pass'] else 'FAIL'}")
        names = f"{TITLES[sse]} - {TITLES[grpc]}"
        print(f"added median TTFT ({names}): {result['added_median_ttft_ms']:+.1f} ms "
              f"(target <= {TARGET_ADDED_TTFT_MS:g} ms): "
              f"{'PASS' if result['ttft_pass'] else 'FAIL'}")
    return 0


if __name__ == "__main__":
    run_main(main)
