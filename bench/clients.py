"""tokens/s and TTFT of one streamed generation through each generated client (TypeScript, Go,
Java) against the Python client (clients/python), all against the same `tokenwire serve`, in one
run.

Each client runs as it would in an app: one long-lived process (the TypeScript worker
clients/typescript/bench/stream-worker.ts, the Go command clients/go/cmd/tokenwire-stream -bench,
the Java dev.tokenwire.client.StreamCommand --bench) holding one connection, fed one request per
line; the Python client runs in this process. The sides never run at the same time: after
--warmups unmeasured runs each they take turns (python, typescript, go, java, python, ...) for
--rounds rounds, so drift in the load of a shared machine hits them alike. Every run has a
prompt of its own of the same shape ("Story #<round>.<side>: <prompt>"), so no side finds its
prompt in the server's KV cache from the side before it (which cut about 30 ms from the TTFT
of every side after the first while they shared one prompt); greedy decoding with every
end-of-generation token banned makes each run exactly --max-tokens tokens.

Times are taken in each client, where its caller sees them (as bench/harness.Clock):
  decode tokens/s     = (tokens - 1) / (last token arrived - first token arrived)
  end-to-end tokens/s = tokens / (last token arrived - request sent)
  TTFT                = first token arrived - request sent
Ratios are medians of each client over the Python client's (tokens/s: higher is better; TTFT:
lower is better). The target is each within 5% of Python. A benchmark, not a test: a ratio off
target is reported, not raised.

    .venv/bin/python bench/clients.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from harness import (RESULTS_DIR, BenchError, Clock, Run, ServerProcess, check_round_args,
                     check_tokens, eog_tokens, machine_info, print_machine, print_run, print_table,
                     run_main, summarize, write_results)
from server.config import embedded_model_path, physical_cores
from tokenwire import Client

ROOT = Path(__file__).resolve().parents[1]
TS = ROOT / "clients" / "typescript"
GO_IMPORT_PATH = "github.com/tokenwire/tokenwire/clients/go"
DEFAULT_PROMPT = "Write a long story about a lighthouse keeper."
DEFAULT_OUT = RESULTS_DIR / "clients.json"
TARGET = 0.05  # each client within 5% of Python


def build_typescript() -> list[str]:
    if not (TS / "node_modules" / ".installed").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=TS,
                       check=True)
        (TS / "node_modules" / ".installed").touch()
    subprocess.run(["node", "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], cwd=TS,
                   check=True)
    return ["node", str(TS / "dist" / "bench" / "stream-worker.js")]


def build_go(workdir: Path) -> list[str]:
    """GOPATH mode against Debian's packaged modules (see tests/clients/test_go_client.py)."""
    link = workdir / "src" / GO_IMPORT_PATH
    link.parent.mkdir(parents=True)
    link.symlink_to(ROOT / "clients" / "go", target_is_directory=True)
    binary = workdir / "tokenwire-stream"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{workdir}:/usr/share/gocode",
           "GOFLAGS": ""}
    subprocess.run(["go", "build", "-o", str(binary), f"{GO_IMPORT_PATH}/cmd/tokenwire-stream"],
                   cwd=workdir, env=env, check=True)
    return [str(binary), "-bench"]


def build_java() -> list[str]:
    """clients/java/build.sh: buf-generated stubs compiled against Debian's grpc-java jars."""
    built = subprocess.run([str(ROOT / "clients" / "java" / "build.sh")], cwd=ROOT, check=True,
                           stdout=subprocess.PIPE, text=True)
    classpath = built.stdout.strip().splitlines()[-1]
    # A client process beside the server on a small machine: by default the JVM sizes its GC,
    # JIT compiler and netty event-loop threads by the machine's cores, and their work takes CPU
    # from the server's decode threads (the server's own rate fell to 0.93x of the Python turns).
    # One of each, as one would run a client sidecar, and it matches the others.
    return ["java", *JVM_CLIENT_FLAGS, "-cp", classpath, "dev.tokenwire.client.StreamCommand",
            "--bench"]


JVM_CLIENT_FLAGS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-XX:CICompilerCount=1",
                    "-XX:ActiveProcessorCount=1", "-Dio.netty.eventLoopThreads=1")


class Worker:
    """A client process fed one JSON request per line, answering one JSON line of timings."""

    def __init__(self, name: str, cmd: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env={**os.environ, "TOKENWIRE_API_KEY": ""})

    def run(self, job: dict, max_tokens: int) -> tuple[Run, str]:
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise BenchError(f"{self.name}: the worker exited with {self.proc.wait()}")
        r = json.loads(line)
        # "FINISH_REASON_LENGTH" (Go, Java) or "LENGTH" (protobuf-es drops the prefix) -> "length".
        finish = r["finish_reason"].removeprefix("FINISH_REASON_").lower()
        check_tokens(self.name, r["tokens"], max_tokens, finish)
        return Run(tokens=r["tokens"], ttft_ms=r["ttft_ms"], decode_tps=r["decode_tps"],
                   e2e_tps=r["e2e_tps"], server_tps=r["server_tps"]), r["text"]

    def close(self) -> None:
        self.proc.stdin.close()
        if self.proc.wait(30) != 0:
            raise BenchError(f"{self.name}: the worker exited with {self.proc.returncode}")


def run_python(client: Client, job: dict, max_tokens: int) -> tuple[Run, str]:
    text, tokens, final = [], 0, None
    clock = Clock()
    for delta in client.generate(prompt=job["prompt"], max_tokens=max_tokens, temperature=0,
                                 logit_bias={int(k): v for k, v in job["logit_bias"].items()}):
        if delta.token_ids:
            clock.tokens_arrived()
            tokens += len(delta.token_ids)
        text.append(delta.text)
        if delta.finish_reason is not None:
            final = delta
    if final is None:
        raise BenchError("python: the stream ended without a final message")
    check_tokens("python", tokens, max_tokens, final.finish_reason)
    return clock.run(tokens, final.timings.tokens_per_second), "".join(text)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=physical_cores(),
                        help="the server's decode threads (default: physical cores)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="measured runs per client, after the warm-ups (default: 5)")
    parser.add_argument("--warmups", type=int, default=3,
                        help="unmeasured runs per client first (default: 3): the JVM's JIT "
                             "takes about three 128-token streams to settle (client CPU per "
                             "stream 0.52, 0.14, 0.11, 0.07 s), and compiles on the server's "
                             "cores meanwhile")
    parser.add_argument("--max-tokens", type=int, default=128,
                        help="tokens generated per run (default: 128)")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT,
                        help="raw prompt; each round prefixes 'Story #<round>: '")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    args = parser.parse_args(argv)
    check_round_args(parser, args)
    if args.warmups < 1:
        parser.error("--warmups must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_path = embedded_model_path()
    machine = machine_info()
    print("tokenwire clients: TypeScript, Go and Java against Python")
    print_machine(machine)
    print(f"  model: {model_path.name}; server threads {args.threads}; {args.max_tokens} tokens "
          f"per run, {args.rounds} rounds after {args.warmups} warm-ups each\n", flush=True)
    bias = {str(token): -100.0 for token in eog_tokens(model_path)}
    sides = ["python", "typescript", "go", "java"]
    runs: dict[str, list[Run]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="tokenwire-bench-go-") as gopath:
        workers = {"typescript": Worker("typescript", build_typescript()),
                   "go": Worker("go", build_go(Path(gopath))),
                   "java": Worker("java", build_java())}
        server = ServerProcess(args.threads)
        try:
            server.start()
            with Client(server.grpc_target, timeout=300) as client:
                warmups = [f"warm-up {i}" for i in range(1, args.warmups + 1)]
                for label in warmups + [f"round {i}" for i in range(1, args.rounds + 1)]:
                    for number, side in enumerate(sides, 1):
                        job = {"target": server.grpc_target, "max_tokens": args.max_tokens,
                               "prompt": f"Story #{label.split()[-1]}.{number}: {args.prompt}",
                               "logit_bias": bias}
                        run, _ = (run_python(client, job, args.max_tokens) if side == "python"
                                  else workers[side].run(job, args.max_tokens))
                        print_run(label, side, run)
                        if label not in warmups:
                            runs[side].append(run)
            for worker in workers.values():
                worker.close()
        finally:
            for worker in workers.values():
                if worker.proc.poll() is None:
                    worker.proc.kill()
            exit_code = server.stop()
    if exit_code != 0:
        raise BenchError(f"the server exited with {exit_code} on SIGTERM{server.log_tail()}")

    summary = summarize(runs)
    print_table(summary, [(side, side) for side in sides])
    ratios = {side: {key: summary[side][key]["median"] / summary["python"][key]["median"]
                     for key in ("decode_tps", "e2e_tps", "ttft_ms")}
              for side in sides[1:]}
    write_results(args.out, machine=machine,
                  config={"model": model_path, "threads": args.threads,
                          "max_tokens": args.max_tokens, "rounds": args.rounds,
                          "prompt": args.prompt, "prompt_of_run": "Story #<round>.<side number>: <prompt>",
                          "warmups": args.warmups},
                  runs=runs, summary=summary, ratio_of_medians_vs_python=ratios)
    for side, r in ratios.items():
        ok = (r["decode_tps"] >= 1 - TARGET and r["e2e_tps"] >= 1 - TARGET
              and r["ttft_ms"] <= 1 + TARGET)
        print(f"{side} / python: decode tokens/s {r['decode_tps']:.3f}, end-to-end tokens/s "
              f"{r['e2e_tps']:.3f}, TTFT {r['ttft_ms']:.3f} (target within 5%): "
              f"{'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    run_main(main)
