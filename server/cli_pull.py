"""`tokenwire pull`: start a download on a running server and show its progress on stderr."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

import grpc

EXIT_OK, EXIT_FAILED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
BAR_WIDTH = 30
LINE_EVERY_PERCENT = 10  # without a terminal, a line per step instead of a redrawn bar


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """A one-line bar redrawn in place on a terminal, or a line per 10% otherwise."""

    def __init__(self, out: TextIO):
        self.out = out
        self.interactive = out.isatty()
        self._last_step = -1
        self._drawn = False

    def render(self, d) -> str:
        if d.total_bytes:
            filled = int(BAR_WIDTH * d.percent / 100)
            bar = "#" * filled + "." * (BAR_WIDTH - filled)
            amount = f"{_size(d.downloaded_bytes)}/{_size(d.total_bytes)}"
            return (f"{d.model_id} [{bar}] {d.percent:5.1f}% {amount} "
                    f"{_size(d.speed_bytes_per_second)}/s ETA {_clock(d.eta_seconds)}")
        return f"{d.model_id} {_size(d.downloaded_bytes)} {_size(d.speed_bytes_per_second)}/s"

    def update(self, d) -> None:
        # The final state is drawn too: a fast download may end before any progress event.
        if d.status not in ("downloading", "completed") or (
                d.total_bytes is None and not d.downloaded_bytes):
            return  # nothing to show before the server's response
        if self.interactive:
            self.out.write("\r\033[K" + self.render(d))
            self._drawn = True
        else:
            step = int(d.percent // LINE_EVERY_PERCENT)
            if step == self._last_step:
                return
            self._last_step = step
            self.out.write(self.render(d) + "\n")
        self.out.flush()

    def say(self, text: str) -> None:
        if self._drawn:
            self.out.write("\n")
            self._drawn = False
        self.out.write(text + "\n")
        self.out.flush()


def pull(args: argparse.Namespace, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from tokenwire import Client, TokenwireError

    source = {"url": args.source} if "://" in args.source else {"catalog_name": args.source}
    bar = ProgressBar(err)
    with Client(args.target) as client:
        try:
            started = client.start_download(**source, model_id=args.model_id,
                                            filename=args.filename, expected_sha256=args.sha256,
                                            auto_load=args.auto_load, force=args.force)
        except TokenwireError as exc:
            if exc.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                print(f"tokenwire: cannot reach the server at {args.target}: {exc.message}",
                      file=err)
                return EXIT_UNREACHABLE
            print(f"tokenwire: {exc}", file=err)
            for violation in exc.violations:
                print(f"  {violation.field}: {violation.description}", file=err)
            return EXIT_REFUSED
        if args.detach:
            print(started.download_id, file=out)
            return EXIT_OK
        bar.say(f"pulling {started.url} -> {started.local_path} ({started.download_id})")
        began = time.monotonic()
        last = started
        try:
            for event in client.watch_download(started.download_id):
                last = event
                if event.status == "creating_engine":
                    bar.say(f"downloaded; creating engine '{event.model_id}'")
                bar.update(event)
        except KeyboardInterrupt:
            client.cancel_download(started.download_id)
            bar.say("interrupted; download cancelled")
            return EXIT_INTERRUPTED
        except TokenwireError as exc:
            bar.say(f"tokenwire: lost the server while watching: {exc} "
                    f"(the download may go on; see download {started.download_id})")
            return EXIT_UNREACHABLE
    if last.status == "completed":
        bar.say(f"done: {last.local_path} ({_size(last.downloaded_bytes)} in "
                f"{time.monotonic() - began:.1f}s, sha256 {last.sha256})")
        print(last.local_path, file=out)
        return EXIT_OK
    bar.say(f"tokenwire: download {last.status}: {last.error or 'cancelled'}"
            + (f" [{last.error_reason}]" if last.error_reason else ""))
    return EXIT_FAILED
