"""Pieces the benchmarks share: the server subprocess, client-side clocks, summaries, printing.

Every time is taken where the caller sees it (see `Clock`). `ServerProcess` runs `tokenwire serve`
(the gRPC server and the REST bridge) on free loopback ports with the model settings every
benchmark uses, so their figures compare.
"""

from __future__ import annotations

import json
import logging
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
import urllib.request
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any, Sequence

import llama_cpp

from server.config import physical_cores
from tokenwire import Client, UnavailableError

N_CTX = 4096
N_BATCH = 512
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# `tokenwire` is installed beside the interpreter that runs the benchmark (the venv).
TOKENWIRE = Path(sys.executable).parent / "tokenwire"
PORT_LINE = re.compile(r"(gRPC|REST) listening on ([\d.]+):(\d+)")
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 30

# (title, Run attribute) of the figures every benchmark summarises.
METRICS = (("decode tokens/s", "decode_tps"), ("end-to-end tokens/s", "e2e_tps"),
           ("TTFT ms", "ttft_ms"), ("server-reported tokens/s", "server_tps"))


class BenchError(Exception):
    """A failure that makes the measurement meaningless."""


@dataclass
class Run:
    tokens: int
    ttft_ms: float
    decode_tps: float
    e2e_tps: float
    server_tps: float | None = None


class Clock:
    """Client-side timestamps of one streamed generation; created just before the request.

      decode tokens/s     = (tokens - 1) / (last token arrived - first token arrived)
      end-to-end tokens/s = tokens / (last token arrived - request sent)
      TTFT                = first token arrived - request sent
    """

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
        if self.first is None or self.last == self.first:
            raise BenchError("the tokens arrived in fewer than two pieces: cannot time decoding")
        return Run(tokens=tokens,
                   ttft_ms=(self.first - self.sent) * 1000,
                   decode_tps=(tokens - 1) / (self.last - self.first),
                   e2e_tps=tokens / (self.last - self.sent),
                   server_tps=server_tps)


def check_tokens(side: str, got: int, want: int, finish_reason: str | None) -> None:
    if got != want or finish_reason != "length":
        raise BenchError(f"{side}: generated {got} tokens (finish_reason {finish_reason!r}); "
                         f"expected {want} (finish_reason 'length')")


def eog_tokens(model_path: Path) -> list[int]:
    """Every end-of-generation token of the model, not just EOS: the server stops on any of them.

    Reads the vocabulary only (no weights, no context), quietly.
    """
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # what verbose=False does
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), params)
    if not model:
        raise BenchError(f"cannot read the vocabulary of {model_path}")
    try:
        vocab = llama_cpp.llama_model_get_vocab(model)
        return [t for t in range(llama_cpp.llama_vocab_n_tokens(vocab))
                if llama_cpp.llama_vocab_is_eog(vocab, t)]
    finally:
        llama_cpp.llama_model_free(model)


class ServerProcess:
    """`tokenwire serve` (gRPC server and REST bridge) on free loopback ports, CPU only.

    `extra_args` are appended to the command line (e.g. `["--parallel", "8"]`); the server's own
    defaults apply to everything else.
    """

    def __init__(self, threads: int, extra_args: Sequence[str] = ()) -> None:
        self.args = [str(TOKENWIRE), "serve", "--host", "127.0.0.1", "--grpc-port", "0",
                     "--port", "0", "--threads", str(threads), "--context-size", str(N_CTX),
                     "--batch-size", str(N_BATCH), "--gpu-layers", "0", *extra_args]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.proc: subprocess.Popen | None = None
        self.grpc_target = ""  # HOST:PORT
        self.rest_url = ""     # http://HOST:PORT

    def start(self) -> ServerProcess:
        """Starts the server and waits until gRPC health is SERVING and the bridge answers."""
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        # Only the port lines go to stdout; logs (stderr) go to a file shown if anything fails.
        # Its own process group, so that stop() can clean up after a server that crashed.
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=self.log, env=env,
                                     start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT_S
        ports = self._read_ports(deadline)
        self.grpc_target = "{}:{}".format(*ports["gRPC"])
        self.rest_url = "http://{}:{}".format(*ports["REST"])
        with Client(self.grpc_target, timeout=5) as client:
            self._wait(lambda: self._health(client) == "SERVING", "gRPC health SERVING", deadline)
        self._wait(self._bridge_answers, f"GET {self.rest_url}/v1/models answering 200", deadline)
        return self

    def _read_ports(self, deadline: float) -> dict[str, tuple[str, str]]:
        """Reads the 'gRPC listening on ...' and 'REST listening on ...' lines, in that order."""
        # Raw reads, not readline: a buffered reader could hold the second line where select()
        # cannot see it.
        fd = self.proc.stdout.fileno()
        data = b""
        ports: dict[str, tuple[str, str]] = {}
        while True:
            *lines, data = data.split(b"\n")
            for line in lines:
                match = PORT_LINE.search(line.decode(errors="replace"))
                if not match:
                    raise BenchError(f"unexpected output from the server: {line!r}"
                                     f"{self.log_tail()}")
                ports[match.group(1)] = (match.group(2), match.group(3))
            if {"gRPC", "REST"} <= ports.keys():
                return ports
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(fd, 4096) if ready else b""
            if not chunk:
                missing = " and ".join(sorted({"gRPC", "REST"} - ports.keys()))
                raise BenchError(f"the server printed no {missing} port line{self.log_tail()}")
            data += chunk

    def _wait(self, condition, what: str, deadline: float) -> None:
        while not condition():
            if self.proc.poll() is not None:
                raise BenchError(f"the server exited with {self.proc.returncode}"
                                 f"{self.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"no {what} after {START_TIMEOUT_S}s{self.log_tail()}")
            time.sleep(0.1)

    @staticmethod
    def _health(client: Client) -> str:
        try:
            return client.health()
        except UnavailableError:
            return "UNAVAILABLE"

    def _bridge_answers(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
        try:
            with opener.open(self.rest_url + "/v1/models", timeout=5) as response:
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in time; returns the exit code."""
        if self.proc is None:
            return None
        stop_process_group(self.proc)
        self.proc.stdout.close()
        return self.proc.returncode

    def log_tail(self, lines: int = 20) -> str:
        self.log.seek(0)
        tail = self.log.read().splitlines()[-lines:]
        return "; server log:\n" + "\n".join(tail) if tail else ""


def _jsonable(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def write_results(path: Path, **sections: Any) -> None:
    """Writes `sections` as one JSON object (dataclasses such as `Run` become objects) and says
    where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sections, indent=2, default=_jsonable) + "\n")
    print(f"\n  results: {path}\n")


def min_median_max(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


Summary = dict[str, dict[str, dict[str, float]]]  # side -> metric -> min / median / max


def summarize(runs: dict[str, list[Run]],
              metrics: Sequence[tuple[str, str]] = METRICS) -> Summary:
    """Per side, min / median / max of every metric the side's runs have."""
    return {side: {key: min_median_max([getattr(r, key) for r in side_runs])
                   for _, key in metrics if getattr(side_runs[0], key) is not None}
            for side, side_runs in runs.items()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, object]:
    return {"platform": platform.platform(), "cpu": cpu_model(),
            "logical_cpus": os.cpu_count(), "physical_cores": physical_cores(),
            "python": platform.python_version()}


def print_machine(machine: dict) -> None:
    print(f"  machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
          f"({machine['physical_cores']} physical cores), {machine['platform']}")


def print_run(label: str, side: str, run: Run, side_width: int = 10) -> None:
    server = f"  server {run.server_tps:6.1f} tok/s" if run.server_tps is not None else ""
    print(f"  {label:<8} {side:<{side_width}}  decode {run.decode_tps:6.1f} tok/s  "
          f"end-to-end {run.e2e_tps:6.1f} tok/s  TTFT {run.ttft_ms:6.1f} ms{server}", flush=True)


def print_table(summary: Summary, sides: Sequence[tuple[str, str]],
                metrics: Sequence[tuple[str, str]] = METRICS) -> None:
    """One row per metric, one `min / median / max` column per (side key, side title)."""
    headers = [f"{title} min / median / max" for _, title in sides]
    width = max(32, *(len(header) + 2 for header in headers))
    print(f"\n  {'':<26}" + "".join(f"{header:>{width}}" for header in headers))
    for title, key in metrics:
        cells = []
        for side, _ in sides:
            s = summary[side].get(key)
            cells.append(f"{s['min']:.1f} / {s['median']:.1f} / {s['max']:.1f}" if s else "-")
        print(f"  {title:<26}" + "".join(f"{cell:>{width}}" for cell in cells))


def stop_process_group(proc: subprocess.Popen) -> None:
    """SIGTERM, SIGKILL if it does not exit in time, then SIGKILL to whatever is left of its
    process group (a server that did not stop cleanly can leave children behind). The process
    must have been started with start_new_session=True."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # nothing left: the usual case


def run_main(main) -> None:
    """Runs a benchmark's main(); a BenchError ends it with a message and status 1."""
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)


def check_round_args(parser, args) -> None:
    """The checks every round-based benchmark makes of its common flags."""
    if args.threads < 1 or args.rounds < 1 or args.max_tokens < 2:
        parser.error("--threads and --rounds must be >= 1, --max-tokens >= 2")
