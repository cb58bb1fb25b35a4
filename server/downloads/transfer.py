"""One download's transfer, run in a worker thread: GET (ranged when bytes are already on disk),
append to the .part file while hashing, retry without progress a bounded number of times, then
verify the SHA-256, fsync and rename into place. `Job` is the state it shares with the manager."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import hashlib
import json
import logging
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from server.downloads import sources
from server.downloads.http import Abort, Aborted, TransferError, open_get
from server.downloads.types import DownloadLimits, DownloadSnapshot, DownloadStatus, DownloadType

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024
SPEED_WINDOW_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 30.0


@dataclass
class Job:
    """One download's live state. The transfer thread writes the byte counters under `lock`;
    everything else is changed on the event loop."""

    download_id: str
    model_id: str
    url: str
    catalog_name: str
    filename: str
    final_path: Path
    part_path: Path
    state_path: Path
    expected_sha256: str
    auto_load: bool
    force: bool
    download_type: DownloadType
    start_time_unix_ms: int
    validator: str = ""  # ETag or Last-Modified of the bytes in the .part file, for If-Range
    status: DownloadStatus = DownloadStatus.DOWNLOADING
    downloaded_bytes: int = 0
    total_bytes: int | None = None
    resumed_from_bytes: int = 0
    sha256: str = ""
    error: str = ""
    error_reason: str = ""
    http_status: int = 0
    end_time_unix_ms: int = 0
    abort: Abort = field(default_factory=Abort)
    task: asyncio.Task | None = None
    samples: collections.deque = field(default_factory=lambda: collections.deque(maxlen=64))
    published: DownloadSnapshot | None = None

    def __post_init__(self) -> None:
        self.lock = threading.Lock()

    def persisted(self) -> dict:
        return {"download_id": self.download_id, "model_id": self.model_id, "url": self.url,
                "catalog_name": self.catalog_name, "filename": self.filename,
                "expected_sha256": self.expected_sha256, "auto_load": self.auto_load,
                "force": self.force, "start_time_unix_ms": self.start_time_unix_ms,
                "total_bytes": self.total_bytes, "validator": self.validator}

    def speed(self) -> tuple[float, float | None]:
        """(bytes per second over the recent window, ETA in seconds or None)."""
        if self.status is not DownloadStatus.DOWNLOADING or len(self.samples) < 2:
            return 0.0, None
        t_last, b_last = self.samples[-1]
        t_first, b_first = next(((t, b) for t, b in self.samples
                                 if t_last - t <= SPEED_WINDOW_SECONDS), self.samples[-1])
        if t_last <= t_first:
            return 0.0, None
        rate = max(0.0, (b_last - b_first) / (t_last - t_first))
        if rate <= 0 or self.total_bytes is None:
            return rate, None
        return rate, max(0.0, (self.total_bytes - b_last) / rate)

    def snapshot(self) -> DownloadSnapshot:
        with self.lock:
            downloaded, total = self.downloaded_bytes, self.total_bytes
        speed, eta = self.speed()
        return DownloadSnapshot(
            download_id=self.download_id, model_id=self.model_id, url=self.url,
            catalog_name=self.catalog_name, filename=self.filename,
            local_path=str(self.final_path), status=self.status,
            download_type=self.download_type, downloaded_bytes=downloaded, total_bytes=total,
            speed_bytes_per_second=speed, eta_seconds=eta,
            resumed_from_bytes=self.resumed_from_bytes, expected_sha256=self.expected_sha256,
            sha256=self.sha256, auto_load=self.auto_load, error=self.error,
            error_reason=self.error_reason, http_status=self.http_status,
            start_time_unix_ms=self.start_time_unix_ms, end_time_unix_ms=self.end_time_unix_ms)


class FinalNameTaken(TransferError):
    """A file took the download's final name while it ran, and force is off.

    Neither file is deleted: the one under the final name is someone's data (another download,
    or a user copying the model in), and the verified .part file is the user's download. Both
    it and its state stay, so a retry with force (or after removing the other file) finishes
    from them: its ranged request answers 416, and nothing is fetched again unless the server's
    file changed meanwhile (If-Range)."""

    def __init__(self, job: Job):
        super().__init__("FILE_EXISTS", f"{job.final_path} appeared while the download ran and was "
                         f"left as it is; the verified download is kept: start it again with "
                         f"force to replace the file with it (its bytes are reused)")


class Transfer:
    """Moves one job's bytes. `headers_received(job)` is called (from the worker thread) once a
    response's size is known, so the manager can publish it at once."""

    def __init__(self, settings: DownloadLimits, headers_received: Callable[[Job], None]):
        self.settings = settings
        self._headers_received = headers_received

    def run(self, job: Job) -> str:
        """Fetches every byte (resuming and retrying), verifies, renames. Runs in a worker
        thread; returns the SHA-256; raises TransferError or Aborted."""
        hasher = hashlib.sha256()
        offset = job.part_path.stat().st_size if job.part_path.exists() else 0
        if offset and job.total_bytes is not None and offset > job.total_bytes:
            _truncate(job.part_path)
            offset = 0
        if offset:
            _hash_prefix(job.part_path, hasher, job.abort)
        with job.lock:
            job.downloaded_bytes = job.resumed_from_bytes = offset
        failures = 0
        while True:
            job.abort.check()
            before = job.downloaded_bytes
            try:
                hasher = self._attempt(job, hasher)
                break
            except TransferError as exc:
                if not exc.retryable:
                    raise
                failures = 1 if job.downloaded_bytes > before else failures + 1
                if failures > self.settings.max_retries:
                    raise
                delay = min(MAX_BACKOFF_SECONDS,
                            self.settings.retry_backoff_seconds * 2 ** (failures - 1))
                log.warning("download %s: %s; retrying in %.1fs (%d/%d)", job.download_id,
                            exc.message, delay, failures, self.settings.max_retries)
                if job.abort.wait(delay):
                    raise Aborted(job.abort.why) from None
        return self._commit(job, hasher.hexdigest())

    def _attempt(self, job: Job, hasher):
        """One GET (ranged when bytes are already here), written to the .part file. Returns the
        hasher covering the file (a fresh one when the server sent the whole file again)."""
        offset = job.downloaded_bytes
        headers: dict[str, str] = {}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            if job.validator:
                headers["If-Range"] = job.validator
        opened = open_get(job.url, headers, allow_private=self.settings.allow_private_addresses,
                          max_redirects=self.settings.max_redirects,
                          timeout=self.settings.read_timeout_seconds, abort=job.abort)
        try:
            response = opened.response
            job.http_status = response.status
            host = sources.parse_http_url(opened.url).host
            if response.status == 416 and offset and job.total_bytes == offset:
                return hasher  # every byte was already here
            if response.status == 206 and offset:
                total = _content_range_total(response.getheader("Content-Range"), offset)
            elif response.status == 200:
                if offset:
                    log.info("download %s: %s sent the whole file again; starting over",
                             job.download_id, host)
                    _truncate(job.part_path)
                    hasher = hashlib.sha256()
                    with job.lock:
                        job.downloaded_bytes = job.resumed_from_bytes = offset = 0
                length = response.getheader("Content-Length")
                total = int(length) if length and length.isdigit() else None
            elif response.status == 416:
                _truncate(job.part_path)
                with job.lock:
                    job.downloaded_bytes = job.resumed_from_bytes = 0
                raise TransferError("RANGE_MISMATCH", f"{host} refused the range request "
                                    f"(HTTP 416); starting over", retryable=True, http_status=416)
            else:
                retryable = response.status == 429 or response.status >= 500
                raise TransferError("HTTP_ERROR", f"HTTP {response.status} {response.reason} "
                                    f"from {host}", retryable=retryable,
                                    http_status=response.status)
            self._accept_headers(job, response, total, offset)
            self._headers_received(job)
            self._receive(job, response, hasher)
        finally:
            job.abort.watch(None)
            opened.close()
        if job.total_bytes is not None and job.downloaded_bytes < job.total_bytes:
            raise TransferError("TRUNCATED", f"the connection closed after {job.downloaded_bytes} "
                                f"of {job.total_bytes} bytes", retryable=True)
        return hasher

    def _accept_headers(self, job: Job, response, total: int | None, offset: int) -> None:
        etag = response.getheader("ETag") or ""
        validator = etag if etag and not etag.startswith("W/") else (
            response.getheader("Last-Modified") or "")
        if total is not None:
            needed = total - offset
            free = shutil.disk_usage(job.part_path.parent).free
            if needed > free - self.settings.reserve_free_bytes:
                raise TransferError(
                    "INSUFFICIENT_STORAGE", f"the file needs {needed} more bytes but the disk "
                    f"holding {job.final_path.parent} has {free} free (and keeps "
                    f"{self.settings.reserve_free_bytes} free: downloads.reserve_free_bytes)")
        if (total, validator) != (job.total_bytes, job.validator):
            with job.lock:
                job.total_bytes, job.validator = total, validator
            write_state(job)

    def _receive(self, job: Job, response, hasher) -> None:
        with open(job.part_path, "ab", buffering=0) as out:
            while True:
                job.abort.check()
                try:
                    chunk = response.read1(CHUNK_BYTES)
                except (OSError, ValueError, ConnectionError) as exc:
                    job.abort.check()
                    raise TransferError("NETWORK_ERROR", f"reading the response failed: {exc}",
                                        retryable=True) from None
                except Exception as exc:  # http.client.IncompleteRead and friends
                    job.abort.check()
                    raise TransferError("NETWORK_ERROR", f"reading the response failed: "
                                        f"{type(exc).__name__}", retryable=True) from None
                if not chunk:
                    job.abort.check()  # a stop shuts the socket down, which reads as EOF
                    return
                if job.total_bytes is not None and job.downloaded_bytes + len(chunk) > job.total_bytes:
                    raise TransferError("HTTP_ERROR", "the server sent more bytes than it announced")
                try:
                    _write_all(out, chunk)
                except OSError as exc:
                    reason = "INSUFFICIENT_STORAGE" if exc.errno == errno.ENOSPC else "IO_ERROR"
                    raise TransferError(reason, f"writing {job.part_path} failed: "
                                        f"{exc.strerror}") from None
                hasher.update(chunk)
                with job.lock:
                    job.downloaded_bytes += len(chunk)

    def _commit(self, job: Job, digest: str) -> str:
        if job.expected_sha256 and digest != job.expected_sha256:
            raise TransferError("CHECKSUM_MISMATCH", f"the file's SHA-256 is {digest}, expected "
                                f"{job.expected_sha256}; the file was deleted")
        with open(job.part_path, "rb+") as f:
            os.fsync(f.fileno())
        with job.lock:
            if job.total_bytes is None:
                job.total_bytes = job.downloaded_bytes
        if not job.abort.commit():
            raise Aborted(job.abort.why)
        _move_into_place(job)
        _fsync_dir(job.final_path.parent)
        unlink(job.state_path)
        return digest


def name_taken(job: Job) -> bool:
    """Whether something other than the job's own .part file holds its final name (a dangling
    link counts: it is not ours to replace)."""
    return os.path.lexists(job.final_path) and not _same_file(job.part_path, job.final_path)


def _move_into_place(job: Job) -> None:
    """Gives the verified .part file its final name. Without force, os.link fails when the name
    is taken, where checking exists() before os.replace would overwrite a file that appears in
    between; the .part name goes only once the final one holds the bytes."""
    if job.force:
        os.replace(job.part_path, job.final_path)
        return
    try:
        os.link(job.part_path, job.final_path)
    except FileExistsError:
        pass  # taken, or already ours: a crash between link and unlink left both names
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if not name_taken(job):  # no hard links here (FAT, some network shares): the racy
            os.replace(job.part_path, job.final_path)  # check is the best this filesystem has
            return
    if name_taken(job):
        write_state(job)  # with total_bytes known, so a retry sees that every byte is here
        raise FinalNameTaken(job)
    unlink(job.part_path)


# os.link errors that mean the filesystem has no hard links, not that the name is taken.
_NO_HARD_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV,
                            errno.EMLINK, errno.ENOSYS})


def _content_range_total(header: str | None, offset: int) -> int | None:
    """The total size from `bytes START-END/TOTAL`, checking that START is where we resume."""
    try:
        unit, _, spec = (header or "").partition(" ")
        span, _, total = spec.partition("/")
        start = int(span.split("-", 1)[0])
    except ValueError:
        start, unit = -1, ""
    if unit != "bytes" or start != offset:
        raise TransferError("RANGE_MISMATCH", f"asked for bytes from {offset} but the server "
                            f"answered Content-Range {header!r}", http_status=206)
    return int(total) if total.isdigit() else None


def _hash_prefix(path: Path, hasher, abort: Abort) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(4 * 1024 * 1024):
            abort.check()
            hasher.update(chunk)


def _write_all(out, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = out.write(view)
        view = view[written:]


def write_state(job: Job) -> None:
    tmp = job.state_path.with_name(job.state_path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(job.persisted(), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, job.state_path)


def _truncate(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError), open(path, "r+b") as f:
        f.truncate(0)


def unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
