"""Download throughput: tokenwire's DownloadService against two baselines, over loopback.

One local HTTP server (tests/file_server.py: Range, ETag) serves a file of `--copies` copies of the
embedded GGUF. In turns, each round:

- tokenwire: `tokenwire serve` (a subprocess) fetches it via StartDownload; the clock runs from the
  call to the COMPLETED event of WatchDownload (includes SHA-256, fsync and the rename);
- python: a subprocess streams it with urllib, hashing with hashlib, then fsyncs and renames
  (the same work, written by hand);
- curl: `curl -o` (no hashing, no fsync: a floor, not a peer).

It prints min / median / max seconds and MiB/s per side and the ratio of tokenwire's median
throughput to each baseline's. A benchmark, not a test: it asserts nothing about speed.

    PYTHONPATH=$PWD:$PWD/clients/python .venv/bin/python bench/downloads.py --rounds 5 --copies 4
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "clients" / "python")]

from harness import min_median_max  # noqa: E402
from tests.e2e.cli_process import ServeProcess  # noqa: E402
from tests.file_server import FileServer, embedded_gguf  # noqa: E402
from tokenwire import Client  # noqa: E402

PYTHON_BASELINE = r"""
import hashlib, os, sys, urllib.request
url, part, final = sys.argv[1:4]
h = hashlib.sha256()
with urllib.request.urlopen(url) as r, open(part, "wb", buffering=0) as f:
    while chunk := r.read1(256 * 1024):
        f.write(chunk); h.update(chunk)
    os.fsync(f.fileno())
os.replace(part, final)
print(h.hexdigest())
"""


def build_file(directory: Path, copies: int) -> Path:
    target = directory / "bench.gguf"
    with open(target, "wb") as out:
        for _ in range(copies):
            with open(embedded_gguf(), "rb") as src:
                shutil.copyfileobj(src, out, 4 * 1024 * 1024)
    return target


def run_tokenwire(client: Client, url: str, sha: str, models: Path) -> float:
    began = time.perf_counter()
    started = client.start_download(url, filename="bench.gguf", expected_sha256=sha, force=True)
    last = list(client.watch_download(started.download_id))[-1]
    elapsed = time.perf_counter() - began
    if last.status != "completed":
        raise SystemExit(f"tokenwire download {last.status}: {last.error}")
    (models / "bench.gguf").unlink()
    return elapsed


def run_python(url: str, sha: str, scratch: Path) -> float:
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PYTHON_BASELINE, url, str(scratch / "py.part"),
                          str(scratch / "py.gguf")], capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - began
    if out.stdout.strip() != sha:
        raise SystemExit("python baseline: wrong sha256")
    (scratch / "py.gguf").unlink()
    return elapsed


def run_curl(url: str, size: int, scratch: Path) -> float:
    began = time.perf_counter()
    subprocess.run(["curl", "-s", "-o", str(scratch / "curl.gguf"), url], check=True)
    elapsed = time.perf_counter() - began
    if (scratch / "curl.gguf").stat().st_size != size:
        raise SystemExit("curl baseline: wrong size")
    (scratch / "curl.gguf").unlink()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--copies", type=int, default=4, help="copies of the GGUF in the file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "served").mkdir()
        (root / "models").mkdir()
        (root / "scratch").mkdir()
        served_file = build_file(root / "served", args.copies)
        size = served_file.stat().st_size
        sha = hashlib.sha256(served_file.read_bytes()).hexdigest()
        files = FileServer(root / "served").start()
        server = ServeProcess("--models-dir", str(root / "models"), "--allow-private-downloads",
                              env={"PYTHONPATH": os.pathsep.join(sys.path[:2])}).start()
        url = files.url("bench.gguf")
        times: dict[str, list[float]] = {"tokenwire": [], "python": [], "curl": []}
        try:
            with Client(server.target, timeout=600) as client:
                run_tokenwire(client, url, sha, root / "models")  # warm-up (page cache, imports)
                for n in range(args.rounds):
                    times["tokenwire"].append(run_tokenwire(client, url, sha, root / "models"))
                    times["python"].append(run_python(url, sha, root / "scratch"))
                    times["curl"].append(run_curl(url, size, root / "scratch"))
                    print(f"  round {n + 1}: " + "  ".join(
                        f"{side} {t[-1]:.2f}s" for side, t in times.items()), flush=True)
        finally:
            server.terminate()
            server.kill()
            files.stop()
    mib = size / 2**20
    print(f"\n  file: {mib:.1f} MiB over loopback, {args.rounds} rounds after one warm-up")
    medians = {}
    for side, values in times.items():
        s = min_median_max(values)
        medians[side] = s["median"]
        print(f"  {side:<10} seconds min / median / max {s['min']:.2f} / {s['median']:.2f} / "
              f"{s['max']:.2f}   MiB/s median {mib / s['median']:.0f}")
    for baseline in ("python", "curl"):
        print(f"  throughput ratio tokenwire / {baseline}: "
              f"{medians[baseline] / medians['tokenwire']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
