"""tokens/s of one generation through tokenwire's gRPC server vs llama-cpp-python in-process.

Both sides load the same GGUF file with the same context, batch and thread settings, run on the
CPU, decode greedily from the same prompt, and have every end-of-generation token banned so each
run produces exactly --max-tokens tokens. The server runs as a `tokenwire serve` subprocess; the
baseline runs in this process. The two never run at the same time: after one warm-up each they
alternate (in-process, gRPC, in-process, gRPC, ...) for --rounds rounds, so drift in the load of
a shared machine hits both sides alike.

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
import json
import os
import platform
import re
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import llama_cpp
import numpy as np

from server.config import embedded_model_path, physical_cores
from tokenwire import Client, UnavailableError

N_CTX = 4096
N_BATCH = 512
TARGET_RATIO = 0.95
DEFAULT_PROMPT = "Write a long story about a lighthouse keeper."
DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "grpc_vs_inprocess.json"
# `tokenwire` is installed beside the interpreter that runs this script (the venv).
TOKENWIRE = Path(sys.executable).parent / "tokenwire"
PORT_LINE = re.compile(r"gRPC listening on ([\d.]+:\d+)")
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30


class BenchError(Exception):
    """A failure that makes the measurement meaningless."""


@dataclass
class Run:
    tokens: int
    ttft_ms: float
    decode_tps: float
    e2e_tps: float
    server_tps: float | None = None


class _Clock:
    """Client-side timestamps of one streamed generation; created just before the request."""

    def __init__(self) -> None:
        self.sent = time.perf_counter()
        self.first: float | None = None
        self.last: float | None = None

    def tokens_arrived(self) -> None:
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        self.last = now

    def run(self, tokens: int, server_tps: float | None = None) -> Run:
        return Run(tokens=tokens,
                   ttft_ms=(self.first - self.sent) * 1000,
                   decode_tps=(tokens - 1) / (self.last - self.first),
                   e2e_tps=tokens / (self.last - self.sent),
                   server_tps=server_tps)


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


def _check_tokens(side: str, got: int, want: int, finish_reason: str | None) -> None:
    if got != want or finish_reason != "length":
        raise BenchError(f"{side}: generated {got} tokens (finish_reason {finish_reason!r}); "
                         f"expected {want} (finish_reason 'length')")


def run_inprocess(llm: llama_cpp.Llama, args: argparse.Namespace,
                  eog: list[int]) -> tuple[Run, str]:
    ban = _BanTokens(eog)
    # Forget the previous run: llama-cpp-python would otherwise reuse the cached prompt and skip
    # its evaluation, while the server evaluates every prompt from an empty KV cache.
    llm.reset()
    text: list[str] = []
    finish_reason = None
    clock = _Clock()
    for chunk in llm.create_completion(args.prompt, max_tokens=args.max_tokens, temperature=0,
                                       logits_processor=llama_cpp.LogitsProcessorList([ban]),
                                       stream=True):
        choice = chunk["choices"][0]
        if choice["finish_reason"] is None:
            clock.tokens_arrived()
            text.append(choice["text"])
        else:
            finish_reason = choice["finish_reason"]
    _check_tokens("in-process", ban.calls, args.max_tokens, finish_reason)
    return clock.run(ban.calls), "".join(text)


def run_grpc(client: Client, args: argparse.Namespace, eog: list[int]) -> tuple[Run, str]:
    text: list[str] = []
    tokens = 0
    final = None
    clock = _Clock()
    # -100 bans a token outright (OpenAI's convention, which the server follows).
    for delta in client.generate(prompt=args.prompt, max_tokens=args.max_tokens, temperature=0,
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
    _check_tokens("gRPC", tokens, args.max_tokens, final.finish_reason)
    return clock.run(tokens, final.timings.tokens_per_second), "".join(text)


class ServerProcess:
    """`tokenwire serve` on a free loopback port, with the baseline's model settings."""

    def __init__(self, threads: int) -> None:
        self.args = [str(TOKENWIRE), "serve", "--host", "127.0.0.1", "--grpc-port", "0",
                     "--threads", str(threads), "--context-size", str(N_CTX),
                     "--batch-size", str(N_BATCH), "--gpu-layers", "0"]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        """Starts the server, waits until its model is loaded, returns HOST:PORT."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # Only the port line goes to stdout; logs (stderr) go to a file shown if anything fails.
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, env=env)
        deadline = time.monotonic() + START_TIMEOUT_S
        ready, _, _ = select.select([self.proc.stdout], [], [], START_TIMEOUT_S)
        match = PORT_LINE.search(self.proc.stdout.readline()) if ready else None
        if not match:
            raise BenchError(f"the server printed no port line{self.log_tail()}")
        target = match.group(1)
        with Client(target, timeout=5) as client:
            while self._health(client) != "SERVING":
                if self.proc.poll() is not None:
                    raise BenchError(f"the server exited with {self.proc.returncode}"
                                     f"{self.log_tail()}")
                if time.monotonic() > deadline:
                    raise BenchError(f"the server was not SERVING after {START_TIMEOUT_S}s"
                                     f"{self.log_tail()}")
                time.sleep(0.1)
        return target

    @staticmethod
    def _health(client: Client) -> str:
        try:
            return client.health()
        except UnavailableError:
            return "UNAVAILABLE"

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        self.log.seek(0)
        tail = self.log.read().splitlines()[-lines:]
        return "; server log:\n" + "\n".join(tail) if tail else ""


def _summary(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _print_run(label: str, side: str, run: Run) -> None:
    server = f"  server {run.server_tps:6.1f} tok/s" if run.server_tps is not None else ""
    print(f"  {label:<8} {side:<10}  decode {run.decode_tps:6.1f} tok/s  "
          f"end-to-end {run.e2e_tps:6.1f} tok/s  TTFT {run.ttft_ms:6.1f} ms{server}", flush=True)


METRICS = (("decode tokens/s", "decode_tps"), ("end-to-end tokens/s", "e2e_tps"),
           ("TTFT ms", "ttft_ms"), ("server-reported tokens/s", "server_tps"))


def _print_table(summary: dict[str, dict[str, dict[str, float]]]) -> None:
    print(f"\n  {'':<26}{'in-process min / median / max':>32}{'gRPC min / median / max':>32}")
    for title, key in METRICS:
        cells = []
        for side in ("inprocess", "grpc"):
            s = summary[side].get(key)
            cells.append(f"{s['min']:.1f} / {s['median']:.1f} / {s['max']:.1f}" if s else "-")
        print(f"  {title:<26}{cells[0]:>32}{cells[1]:>32}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=physical_cores(),
                        help="decode threads on both sides (default: physical cores)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="measured runs per side, after one warm-up each (default: 5)")
    parser.add_argument("--max-tokens", type=int, default=128,
                        help="tokens generated per run (default: 128)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="raw prompt, no chat template")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    if args.threads < 1 or args.rounds < 1 or args.max_tokens < 2:
        parser.error("--threads and --rounds must be >= 1, --max-tokens >= 2")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_path = embedded_model_path()
    machine = {"platform": platform.platform(), "cpu": _cpu_model(),
               "logical_cpus": os.cpu_count(), "physical_cores": physical_cores(),
               "python": platform.python_version(), "llama_cpp_python": llama_cpp.__version__,
               "llama_cpp_system_info": llama_cpp.llama_print_system_info().decode().strip()}
    print("tokenwire gRPC vs llama-cpp-python in-process")
    print(f"  machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
          f"({machine['physical_cores']} physical cores), {machine['platform']}")
    print(f"  python {machine['python']}, llama-cpp-python {machine['llama_cpp_python']}")
    print(f"  model: {model_path.name}; threads {args.threads}, n_ctx {N_CTX}, n_batch {N_BATCH}")
    print(f"  {args.max_tokens} tokens per run, {args.rounds} rounds after one warm-up each; "
          f"prompt {args.prompt!r}\n", flush=True)

    llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=N_CTX, n_batch=N_BATCH,
                          n_ubatch=N_BATCH, n_threads=args.threads, n_threads_batch=args.threads,
                          n_gpu_layers=0, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    # Every end-of-generation token, not just EOS: the server stops on any of them.
    eog = [t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]

    runs: dict[str, list[Run]] = {"inprocess": [], "grpc": []}
    texts: set[str] = set()
    server = ServerProcess(args.threads)
    try:
        target = server.start()
        with Client(target, timeout=120) as client:
            for label in ["warm-up"] + [f"round {i}" for i in range(1, args.rounds + 1)]:
                local, local_text = run_inprocess(llm, args, eog)
                _print_run(label, "in-process", local)
                remote, remote_text = run_grpc(client, args, eog)
                _print_run(label, "gRPC", remote)
                texts.update((local_text, remote_text))
                if label != "warm-up":
                    runs["inprocess"].append(local)
                    runs["grpc"].append(remote)
    finally:
        exit_code = server.stop()
    if exit_code != 0:
        raise BenchError(f"the server exited with {exit_code} on SIGTERM{server.log_tail()}")

    summary = {side: {key: _summary([getattr(r, key) for r in side_runs])
                      for _, key in METRICS if getattr(side_runs[0], key) is not None}
               for side, side_runs in runs.items()}
    ratios = {key: summary["grpc"][key]["median"] / summary["inprocess"][key]["median"]
              for key in ("decode_tps", "e2e_tps")}
    # Greedy decoding of the same prompt with the same model: every run should write the same text.
    same_text = len(texts) == 1
    _print_table(summary)
    if not same_text:
        print("\n  warning: the runs did not all generate the same text")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "machine": machine,
        "config": {"model": str(model_path), "threads": args.threads, "n_ctx": N_CTX,
                   "n_batch": N_BATCH, "max_tokens": args.max_tokens, "rounds": args.rounds,
                   "prompt": args.prompt},
        "runs": {side: [asdict(r) for r in side_runs] for side, side_runs in runs.items()},
        "summary": summary,
        "ratio_of_medians": ratios,
        "target_ratio": TARGET_RATIO,
        "same_text": same_text,
    }, indent=2) + "\n")
    print(f"\n  results: {args.out}\n")

    for title, key in (("decode tokens/s", "decode_tps"), ("end-to-end tokens/s", "e2e_tps")):
        verdict = "PASS" if ratios[key] >= TARGET_RATIO else "FAIL"
        print(f"ratio {title} (gRPC / in-process): {ratios[key]:.3f} "
              f"(target >= {TARGET_RATIO}): {verdict}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
