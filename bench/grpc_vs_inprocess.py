"""tokens/s of one generation through tokenwire's gRPC server vs llama-cpp-python in-process.

Both sides load the same GGUF file with the same context, batch and thread settings and flash
attention, run on the CPU, decode greedily from the same prompt, and have every end-of-generation
token banned so each run produces exactly --max-tokens tokens. Each round's prompt is made unique
("Story #<round>: <prompt>"), and both sides get that round's prompt: the server reuses the KV
cells of a prompt prefix it has seen, so repeating one prompt would favour it.

The server runs as a `tokenwire serve` subprocess; the baseline runs in this process. The two
never run at the same time: after one warm-up each they alternate (in-process, gRPC, in-process,
gRPC, ...) for --rounds rounds, so drift in the load of a shared machine hits both sides alike.

Every time is taken where the caller sees it, from the call to the last token:
  decode tokens/s     = (tokens - 1) / (last token arrived - first token arrived)
  end-to-end tokens/s = tokens / (last token arrived - request sent)
  TTFT                = first token arrived - request sent
For gRPC the server's own decode rate (timings.tokens_per_second) is recorded as well.

This is a benchmark, not a test: a ratio below the target is reported, not raised. It exits
non-zero only when something goes wrong (the server does not start, a run has the wrong number
of tokens, the server does not stop cleanly).

    .venv/bin/python bench/grpc_vs_inprocess.py --rounds 5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import llama_cpp
import numpy as np

from harness import (N_BATCH, N_CTX, RESULTS_DIR, BenchError, Clock, Run, ServerProcess,
                     check_round_args, check_tokens, eog_tokens, machine_info, print_machine,
                     print_run, print_table, run_main, summarize, write_results)
from server.config import embedded_model_path, physical_cores
from tokenwire import Client

TARGET_RATIO = 0.95
DEFAULT_PROMPT = "Write a long story about a lighthouse keeper."
DEFAULT_OUT = RESULTS_DIR / "grpc_vs_inprocess.json"


class _BanTokens:
    """Logits processor that bans `tokens` and counts how often it is called.

    llama-cpp-python calls it once per sampled token, so it is also the exact token count: the
    stream's chunks are not, since a chunk can hold several tokens (a split UTF-8 character).
    It does what create_completion's `logit_bias` does, through the same Python hook, minus
    logit_bias's copy of the whole logits array for every token.
    """

    def __init__(self, tokens: list[int]) -> None:
        self.tokens = tokens
        self.calls = 0

    def __call__(self, input_ids: np.ndarray, scores: np.ndarray) -> np.ndarray:
        self.calls += 1
        scores[self.tokens] = -np.inf
        return scores


def round_prompt(prompt: str, label: str) -> str:
    """The prompt of one round, unique to it (the warm-up's too)."""
    return f"Story #{label.removeprefix('round ')}: {prompt}"


def run_inprocess(llm: llama_cpp.Llama, prompt: str, args: argparse.Namespace,
                  eog: list[int]) -> tuple[Run, str]:
    ban = _BanTokens(eog)
    # Forget the previous run: llama-cpp-python would otherwise reuse the cached prompt prefix
    # (the prompts differ only after "Story #").
    llm.reset()
    text: list[str] = []
    finish_reason = None
    clock = Clock()
    for chunk in llm.create_completion(prompt, max_tokens=args.max_tokens, temperature=0,
                                       logits_processor=llama_cpp.LogitsProcessorList([ban]),
                                       stream=True):
        choice = chunk["choices"][0]
        if choice["finish_reason"] is None:
            clock.tokens_arrived()
            text.append(choice["text"])
        else:
            finish_reason = choice["finish_reason"]
    check_tokens("in-process", ban.calls, args.max_tokens, finish_reason)
    return clock.run(ban.calls), "".join(text)


def run_grpc(client: Client, prompt: str, args: argparse.Namespace,
             eog: list[int]) -> tuple[Run, str]:
    text: list[str] = []
    tokens = 0
    final = None
    clock = Clock()
    # -100 bans a token outright (OpenAI's convention, which the server follows).
    for delta in client.generate(prompt=prompt, max_tokens=args.max_tokens, temperature=0,
                                 logit_bias={token: -100 for token in eog}):
        if delta.token_ids:
            clock.tokens_arrived()
            tokens += len(delta.token_ids)
        text.append(delta.text)
        if delta.finish_reason is not None:
            final = delta
    if final is None:
        raise BenchError("gRPC: the stream ended without a final message")
    if final.usage.completion_tokens != tokens:
        raise BenchError(f"gRPC: received {tokens} tokens but usage says "
                         f"{final.usage.completion_tokens}")
    check_tokens("gRPC", tokens, args.max_tokens, final.finish_reason)
    return clock.run(tokens, final.timings.tokens_per_second), "".join(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=physical_cores(),
                        help="decode threads on both sides (default: physical cores)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="measured runs per side, after one warm-up each (default: 5)")
    parser.add_argument("--max-tokens", type=int, default=128,
                        help="tokens generated per run (default: 128)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT,
                        help="raw prompt, no chat template; each round prefixes 'Story #<round>: '")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    check_round_args(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_path = embedded_model_path()
    machine = {**machine_info(), "llama_cpp_python": llama_cpp.__version__,
               "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip()}
    print("tokenwire gRPC vs llama-cpp-python in-process")
    print_machine(machine)
    print(f"  python {machine['python']}, llama-cpp-python {machine['llama_cpp_python']}")
    print(f"  model: {model_path.name}; threads {args.threads}, n_ctx {N_CTX}, n_batch {N_BATCH}")
    print(f"  {args.max_tokens} tokens per run, {args.rounds} rounds after one warm-up each; "
          f"prompt 'Story #<round>: {args.prompt}'\n", flush=True)

    llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=N_CTX, n_batch=N_BATCH,
                          n_ubatch=N_BATCH, n_threads=args.threads, n_threads_batch=args.threads,
                          n_gpu_layers=0, flash_attn=True, verbose=False)
    eog = eog_tokens(model_path)

    runs: dict[str, list[Run]] = {"inprocess": [], "grpc": []}
    # Greedy decoding of the same prompt with the same model: both sides should write the same
    # text in every round.
    same_text = True
    server = ServerProcess(args.threads)
    try:
        server.start()
        with Client(server.grpc_target, timeout=120) as client:
            for label in ["warm-up"] + [f"round {i}" for i in range(1, args.rounds + 1)]:
                prompt = round_prompt(args.prompt, label)
                local, local_text = run_inprocess(llm, prompt, args, eog)
                print_run(label, "in-process", local)
                remote, remote_text = run_grpc(client, prompt, args, eog)
                print_run(label, "gRPC", remote)
                same_text = same_text and local_text == remote_text
                if label != "warm-up":
                    runs["inprocess"].append(local)
                    runs["grpc"].append(remote)
    finally:
        exit_code = server.stop()
    if exit_code != 0:
        raise BenchError(f"the server exited with {exit_code} on SIGTERM{server.log_tail()}")

    summary = summarize(runs)
    ratios = {key: summary["grpc"][key]["median"] / summary["inprocess"][key]["median"]
              for key in ("decode_tps", "e2e_tps")}
    print_table(summary, [("inprocess", "in-process"), ("grpc", "gRPC")])
    if not same_text:
        print("\n  warning: in some round the two sides did not generate the same text")

    write_results(args.out, machine=machine,
                  config={"model": model_path, "threads": args.threads, "n_ctx": N_CTX,
                          "n_batch": N_BATCH, "flash_attn": True, "max_tokens": args.max_tokens,
                          "rounds": args.rounds, "prompt": args.prompt,
                          "prompt_of_round": "Story #<round>: <prompt>"},
                  runs=runs, summary=summary, ratio_of_medians=ratios,
                  target_ratio=TARGET_RATIO, same_text=same_text)

    for title, key in (("decode tokens/s", "decode_tps"), ("end-to-end tokens/s", "e2e_tps")):
        verdict = "PASS" if ratios[key] >= TARGET_RATIO else "FAIL"
        print(f"ratio {title} (gRPC / in-process): {ratios[key]:.3f} "
              f"(target >= {TARGET_RATIO}): {verdict}")
    return 0


if __name__ == "__main__":
    run_main(main)
