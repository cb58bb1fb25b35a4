"""A local HTTP file server for download tests: Range and If-Range, ETag, redirects, and knobs that
make failures deterministic (pause at a byte offset until released, truncate bodies, fail paths).
It counts the body bytes it sends, so tests can tell how much a resumed download fetched again."""

from __future__ import annotations

import contextlib
import email.utils
import importlib.util
import shutil
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from server.config import EMBEDDED_MODEL_FILE, EMBEDDED_MODEL_PACKAGE

CHUNK = 64 * 1024


def embedded_gguf() -> Path:
    """The embedded SmolLM2 GGUF, found without importing its package."""
    spec = importlib.util.find_spec(EMBEDDED_MODEL_PACKAGE)
    return Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_MODEL_FILE


#: The name tests serve the embedded model under.
SERVED_GGUF = "smollm2.gguf"


def copy_embedded_gguf(directory: Path, name: str = SERVED_GGUF) -> Path:
    target = directory / name
    shutil.copyfile(embedded_gguf(), target)
    return target


@dataclass
class Served:
    """One request: its path, Range header, status, and the body bytes sent so far."""

    path: str
    range: str | None
    status: int
    bytes_sent: int = 0


TLS_CERT = Path(__file__).parent / "data" / "tls_test_cert.pem"  # self-signed: localhost, 127.0.0.1
TLS_KEY = Path(__file__).parent / "data" / "tls_test_key.pem"  # a test-only key


class FileServer:
    def __init__(self, root: Path, *, tls: bool = False):
        self.root = root.resolve()
        self.lock = threading.Lock()
        self.requests: list[Served] = []
        self.redirects: dict[str, str] = {}  # path -> Location
        self.truncate_at: int | None = None  # absolute offset after which bodies are cut off
        self.cut_next_at: int | None = None  # like truncate_at, for the next response only
        self.pause_at: int | None = None  # absolute offset at which bodies wait for release()
        self.paused = threading.Event()  # set while a response waits at pause_at
        self._released = threading.Event()
        self._drop_paused = False
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.scheme = "https" if tls else "http"
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(TLS_CERT, TLS_KEY)
            self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}/{path.lstrip('/')}"

    def start(self) -> "FileServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()

    def pause(self, offset: int) -> None:
        """Responses stop at `offset` of the file until release()."""
        with self.lock:
            self.pause_at = offset
            self.paused.clear()
            self._released.clear()

    def release(self) -> None:
        with self.lock:
            self.pause_at = None
        self._released.set()

    def drop_paused(self) -> None:
        """The response waiting at the pause closes its connection instead of going on."""
        with self.lock:
            self._drop_paused = True
        self.release()

    def bytes_sent_since(self, first_request: int) -> int:
        with self.lock:
            return sum(r.bytes_sent for r in self.requests[first_request:])

    def mark(self) -> int:
        """An index into `requests`: what comes after happened after this call."""
        with self.lock:
            return len(self.requests)

    def _handler_class(self):
        files = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _record(self, status: int) -> Served:
                served = Served(self.path, self.headers.get("Range"), status)
                with files.lock:
                    files.requests.append(served)
                return served

            def _plain(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
                body = text.encode()
                self._record(status)
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                if path in files.redirects:
                    self._plain(302, "moved", {"Location": files.redirects[path]})
                    return
                file = files.root / urllib.parse.unquote(path.lstrip("/"))
                if not file.is_file() or files.root not in file.resolve().parents:
                    self._plain(404, "not found")
                    return
                stat = file.stat()
                size = stat.st_size
                etag = f'"{size:x}-{stat.st_mtime_ns:x}"'
                start = 0
                wanted = self.headers.get("Range")
                if_range = self.headers.get("If-Range")
                if wanted and (if_range is None or if_range == etag):
                    start = int(wanted.removeprefix("bytes=").split("-")[0])
                    if start >= size:
                        self._plain(416, "range not satisfiable", {"Content-Range": f"bytes */{size}"})
                        return
                status = 206 if start else 200
                served = self._record(status)
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(size - start))
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))
                self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                self.end_headers()
                try:
                    self._send_body(file, start, size, served)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send_body(self, file: Path, position: int, size: int, served: Served) -> None:
                with files.lock:
                    cut_at, files.cut_next_at = files.cut_next_at, None
                with open(file, "rb") as f:
                    f.seek(position)
                    while position < size:
                        limit = size
                        with files.lock:
                            pause_at, truncate_at = files.pause_at, files.truncate_at
                        if cut_at is not None:
                            truncate_at = cut_at if truncate_at is None else min(cut_at, truncate_at)
                        if truncate_at is not None:
                            if position >= truncate_at:
                                self.close_connection = True
                                return
                            limit = min(limit, truncate_at)
                        if pause_at is not None and position >= pause_at:
                            files.paused.set()
                            files._released.wait(120)
                            with files.lock:
                                drop, files._drop_paused = files._drop_paused, False
                            if drop:
                                self.close_connection = True
                                return
                            continue
                        if pause_at is not None:
                            limit = min(limit, pause_at)
                        data = f.read(min(CHUNK, limit - position))
                        self.wfile.write(data)
                        self.wfile.flush()
                        position += len(data)
                        with files.lock:
                            served.bytes_sent += len(data)

        return Handler


@contextlib.contextmanager
def serving_embedded_gguf(root: Path, name: str, *,
                          aliases: tuple[str, ...] = ()) -> Iterator[FileServer]:
    """A FileServer on 127.0.0.1 serving a copy of the embedded model as `root/name` (and as
    hard links named `aliases`, for tests that need one file per download)."""
    copy_embedded_gguf(root, name)
    for alias in aliases:
        (root / alias).hardlink_to(root / name)
    served = FileServer(root).start()
    try:
        yield served
    finally:
        served.stop()
