"""The download manager: fetches model files into the models directory, safely and resumably.

Each download's bytes go to `<models_dir>/.partial/<filename>.part`, with its description in
`<filename>.json` beside it, so a server that stops or crashes resumes the download with an HTTP
Range request when it starts again. Only a complete file whose SHA-256 matches (when one is known)
is fsynced and renamed to its final name; a failed or cancelled download deletes its temporary
file, so the final name never holds a partial or unverified file.

The transfer itself runs in a thread (blocking http.client reads), one per download; everything
else, and all the state that callers see, lives on the event loop. Callers see immutable
snapshots, published on status changes and every `progress_interval_seconds` while bytes arrive.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import enum
import hashlib
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterable

from server.config import DownloadSettings
from server.core import download_sources as sources
from server.core.download_http import Abort, Aborted, TransferError, open_get
from server.errors import (AlreadyExists, CatalogEntryNotFound, DownloadNotFound,
                           EngineUnavailable, FailedPrecondition, InvalidArgument,
                           ResourceExhausted)

log = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"
CHUNK_BYTES = 256 * 1024
SPEED_WINDOW_SECONDS = 3.0
MAX_BACKOFF_SECONDS = 30.0

# name -> (url, filename, sha256 or None), or None when the catalog has no such name.
CatalogResolver = Callable[[str], "tuple[str, str, str | None] | None"]
# Called with (model_id, final path) after a verified download that asked for auto_load.
OnDownloaded = Callable[[str, Path], Awaitable[None]]


class DownloadStatus(enum.Enum):
    DOWNLOADING = "downloading"
    CREATING_ENGINE = "creating_engine"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (DownloadStatus.COMPLETED, DownloadStatus.FAILED, DownloadStatus.CANCELLED)


class DownloadType(enum.Enum):
    REGULAR = "regular"
    STARTUP = "startup"


@dataclass(frozen=True)
class DownloadSnapshot:
    """A download as callers see it at one moment."""

    download_id: str
    model_id: str
    url: str
    catalog_name: str
    filename: str
    local_path: str
    status: DownloadStatus
    download_type: DownloadType
    downloaded_bytes: int
    total_bytes: int | None
    speed_bytes_per_second: float
    eta_seconds: float | None
    resumed_from_bytes: int
    expected_sha256: str
    sha256: str
    auto_load: bool
    error: str
    error_reason: str
    http_status: int
    start_time_unix_ms: int
    end_time_unix_ms: int

    @property
    def percent(self) -> float:
        if self.status in (DownloadStatus.COMPLETED, DownloadStatus.CREATING_ENGINE):
            return 100.0
        if not self.total_bytes:
            return 0.0
        return min(100.0, 100.0 * self.downloaded_bytes / self.total_bytes)

    def elapsed_seconds(self, now_ms: int | None = None) -> float:
        end = self.end_time_unix_ms or (now_ms if now_ms is not None else _now_ms())
        return max(0.0, (end - self.start_time_unix_ms) / 1000.0)


@dataclass(frozen=True)
class DownloadRequest:
    """What StartDownload asks for, before validation."""

    url: str | None = None
    catalog_name: str | None = None
    model_id: str = ""
    filename: str | None = None
    expected_sha256: str | None = None
    auto_load: bool = False
    force: bool = False


@dataclass(frozen=True)
class CancelOutcome:
    cancelled: bool
    previous_status: DownloadStatus
    download: DownloadSnapshot


@dataclass(frozen=True)
class CancelAllOutcome:
    total: int
    cancelled: list[tuple[DownloadSnapshot, DownloadStatus]]  # (after, status before)
    not_cancelled: list[tuple[DownloadSnapshot, str]]  # (download, why)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Job:
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


class Subscription:
    """Progress events for one download or all of them. Events that a slow reader has not taken
    yet are coalesced per download (the newest wins), so memory stays bounded and a terminal
    event is never dropped."""

    def __init__(self, download_id: str | None):
        self.download_id = download_id
        self._pending: dict[str, DownloadSnapshot] = {}
        self._ready = asyncio.Event()
        self._closed = False

    def offer(self, snapshot: DownloadSnapshot) -> None:
        if self.download_id in (None, snapshot.download_id):
            self._pending[snapshot.download_id] = snapshot
            self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def next_events(self) -> list[DownloadSnapshot]:
        await self._ready.wait()
        self._ready.clear()
        events, self._pending = list(self._pending.values()), {}
        if not events and self._closed:
            raise EngineUnavailable("the server is shutting down", reason="SERVER_DRAINING")
        return events


class DownloadManager:
    def __init__(self, settings: DownloadSettings, models_dir: str | os.PathLike, *,
                 catalog: CatalogResolver | None = None,
                 on_downloaded: OnDownloaded | None = None):
        self.settings = settings
        self.models_dir = Path(models_dir).expanduser().resolve()
        self.partial_dir = self.models_dir / PARTIAL_DIR
        self._catalog = catalog
        self._on_downloaded = on_downloaded
        self._jobs: dict[str, _Job] = {}  # insertion order = start order
        self._subscriptions: set[Subscription] = set()
        self._tickers: dict[str, asyncio.Task] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="download")
        self._closing = False

    # -- observation ---------------------------------------------------------------------------

    def list(self, model_id: str = "",
             statuses: Iterable[DownloadStatus] = ()) -> list[DownloadSnapshot]:
        wanted = set(statuses)
        return [self._current(job) for job in reversed(self._jobs.values())
                if (not model_id or job.model_id == model_id)
                and (not wanted or job.status in wanted)]

    def get(self, download_id: str = "", model_id: str = "") -> DownloadSnapshot:
        return self._current(self._find(download_id, model_id))

    def _find(self, download_id: str, model_id: str) -> _Job:
        if bool(download_id) == bool(model_id):
            raise InvalidArgument.single("download_id", "set exactly one of download_id and model_id")
        if download_id:
            job = self._jobs.get(download_id)
            if job is None:
                raise DownloadNotFound(f"no download has id '{download_id}'",
                                       metadata={"download_id": download_id})
            return job
        for job in reversed(self._jobs.values()):
            if job.model_id == model_id:
                return job
        raise DownloadNotFound(f"no download of model '{model_id}'", metadata={"model_id": model_id})

    def _current(self, job: _Job) -> DownloadSnapshot:
        return job.published or job.snapshot()

    @contextlib.contextmanager
    def subscribe(self, download_id: str | None = None):
        """Events published from now on; read the current state after subscribing."""
        subscription = Subscription(download_id)
        if self._closing:
            subscription.close()
        self._subscriptions.add(subscription)
        try:
            yield subscription
        finally:
            self._subscriptions.discard(subscription)

    async def watch(self, download_id: str = "", model_id: str = "") -> AsyncIterator[DownloadSnapshot]:
        """The download's current state, then every event until it reaches a terminal status."""
        job = self._find(download_id, model_id)
        with self.subscribe(job.download_id) as subscription:
            current = self._current(job)
            yield current
            while not current.status.terminal:
                for current in await subscription.next_events():
                    yield current

    async def watch_all(self) -> AsyncIterator[DownloadSnapshot]:
        """Every known download's current state, then every event of every download."""
        with self.subscribe(None) as subscription:
            for snapshot in reversed(self.list()):
                yield snapshot
            while True:
                for snapshot in await subscription.next_events():
                    yield snapshot

    def _publish(self, job: _Job) -> None:
        with job.lock:
            downloaded = job.downloaded_bytes
        job.samples.append((time.monotonic(), downloaded))
        snapshot = job.snapshot()
        if job.published is not None and replace(job.published, speed_bytes_per_second=0.0,
                                                 eta_seconds=None) == replace(
                snapshot, speed_bytes_per_second=0.0, eta_seconds=None):
            return  # nothing moved since the last event
        job.published = snapshot
        for subscription in list(self._subscriptions):
            subscription.offer(snapshot)

    async def _tick(self, job: _Job) -> None:
        # Periodic sampling of the counters the transfer thread updates (not synchronisation):
        # one event per interval however fast bytes arrive.
        while True:
            await asyncio.sleep(self.settings.progress_interval_seconds)
            self._publish(job)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resumes the downloads a stop or crash interrupted (their .json state files)."""
        if not self.settings.resume_on_startup or not self.partial_dir.is_dir():
            return
        for state_path in sorted(self.partial_dir.glob("*.json")):
            try:
                job = self._job_from_state(state_path)
            except (OSError, ValueError, KeyError, TypeError, InvalidArgument) as exc:
                log.warning("download state %s is unusable (%s); deleting it", state_path, exc)
                _unlink(state_path)
                _unlink(state_path.with_suffix(".part"))
                continue
            if any(j.filename == job.filename and not j.status.terminal for j in self._jobs.values()):
                continue
            log.info("resuming download %s of %s (%s)", job.download_id, job.filename, job.url)
            self._launch(job)

    def _job_from_state(self, state_path: Path) -> _Job:
        data = json.loads(state_path.read_text())
        filename = sources.check_filename(str(data["filename"]), "filename")
        if state_path.name != f"{filename}.json":
            raise ValueError("state file name does not match its file name")
        sources.check_url(str(data["url"]), "url")
        expected = str(data.get("expected_sha256") or "")
        if expected:
            sources.check_sha256(expected, "expected_sha256")
        total = data.get("total_bytes")
        return _Job(
            download_id=str(data["download_id"]),
            model_id=sources.check_model_id(str(data["model_id"]), "model_id"),
            url=str(data["url"]), catalog_name=str(data.get("catalog_name") or ""),
            filename=filename, final_path=self.models_dir / filename,
            part_path=self.partial_dir / f"{filename}.part", state_path=state_path,
            expected_sha256=expected.lower(), auto_load=bool(data.get("auto_load")),
            force=bool(data.get("force")), download_type=DownloadType.STARTUP,
            start_time_unix_ms=int(data.get("start_time_unix_ms") or _now_ms()),
            validator=str(data.get("validator") or ""),
            total_bytes=int(total) if total is not None else None)

    async def close(self, timeout: float = 10.0) -> None:
        """Stops running transfers, keeping their partial files for a resume at the next start."""
        self._closing = True
        for subscription in list(self._subscriptions):
            subscription.close()
        running = [job for job in self._jobs.values() if job.status is DownloadStatus.DOWNLOADING]
        for job in running:
            job.abort.set("shutdown")
        tasks = [job.task for job in running if job.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- start ---------------------------------------------------------------------------------

    async def start_download(self, request: DownloadRequest,
                             download_type: DownloadType = DownloadType.REGULAR) -> DownloadSnapshot:
        if self._closing:
            raise EngineUnavailable("the server is shutting down", reason="SERVER_DRAINING")
        url, catalog_name, filename, expected = self._source(request)
        parsed = sources.check_url(url, "catalog_name" if catalog_name else "url")
        model_id = sources.check_model_id(
            request.model_id or sources.model_id_from_filename(filename), "model_id")
        if request.auto_load and self._on_downloaded is None:
            raise FailedPrecondition("auto_load is not available: this server cannot create "
                                     "engines from downloads", reason="AUTO_LOAD_UNAVAILABLE")
        if not self.settings.allow_private_addresses:
            await self._check_addresses(parsed)
        # No await from here on: the checks and the registration are one step.
        self._check_conflicts(model_id, filename, request.force)
        job = _Job(
            download_id=f"dl-{uuid.uuid4().hex[:16]}", model_id=model_id, url=url,
            catalog_name=catalog_name, filename=filename, final_path=self.models_dir / filename,
            part_path=self.partial_dir / f"{filename}.part",
            state_path=self.partial_dir / f"{filename}.json", expected_sha256=expected,
            auto_load=request.auto_load, force=request.force, download_type=download_type,
            start_time_unix_ms=_now_ms())
        self._adopt_leftover(job)
        try:
            self.partial_dir.mkdir(parents=True, exist_ok=True)
            _write_state(job)
        except OSError as exc:
            raise FailedPrecondition(f"cannot write to the models directory {self.models_dir}: "
                                     f"{exc.strerror}", reason="MODELS_DIR_NOT_WRITABLE") from None
        log.info("download %s: %s -> %s", job.download_id, url, job.final_path)
        self._launch(job)
        return self._current(job)

    def _source(self, request: DownloadRequest) -> tuple[str, str, str, str]:
        """(url, catalog name, file name, expected sha256) from the request and the catalog."""
        if bool(request.url) == bool(request.catalog_name):
            raise InvalidArgument.single("url", "set exactly one of url and catalog_name",
                                         reason="INVALID_SOURCE")
        catalog_filename, catalog_sha = "", None
        if request.catalog_name:
            entry = self._catalog(request.catalog_name) if self._catalog else None
            if entry is None:
                raise CatalogEntryNotFound(f"the catalog has no model named "
                                           f"'{request.catalog_name}'",
                                           metadata={"catalog_name": request.catalog_name})
            url, catalog_filename, catalog_sha = entry
        else:
            url = request.url
        if request.filename is not None:
            filename = sources.check_filename(request.filename, "filename")
        elif catalog_filename:
            filename = sources.check_filename(catalog_filename, "catalog_name")
        else:
            segment = sources.check_url(url, "url").last_segment
            if not segment:
                raise InvalidArgument.single("filename", "the URL ends in '/'; set filename",
                                             reason="INVALID_FILENAME")
            try:
                filename = sources.check_filename(segment, "filename")
            except InvalidArgument as exc:
                raise InvalidArgument.single(
                    "filename", f"{exc.violations[0].description} (taken from the URL; set "
                                f"filename to choose another)", reason="INVALID_FILENAME") from None
        if request.expected_sha256 is not None:
            expected = sources.check_sha256(request.expected_sha256, "expected_sha256")
        else:
            expected = catalog_sha.lower() if catalog_sha else ""
        return url, request.catalog_name or "", filename, expected

    async def _check_addresses(self, parsed: sources.HttpUrl) -> None:
        loop = asyncio.get_running_loop()
        try:
            addresses = await loop.run_in_executor(None, sources.resolve, parsed.host, parsed.port)
        except OSError as exc:
            raise InvalidArgument.single("url", f"cannot resolve host {parsed.host}: {exc}",
                                         reason="UNRESOLVABLE_HOST") from None
        refusal = sources.address_refusal(parsed.host, addresses)
        if refusal is not None:
            raise refusal

    def _check_conflicts(self, model_id: str, filename: str, force: bool) -> None:
        active = [job for job in self._jobs.values() if not job.status.terminal]
        for job in active:
            if job.model_id == model_id or job.filename == filename:
                raise AlreadyExists(
                    f"download {job.download_id} of model '{job.model_id}' ({job.filename}) is "
                    f"already in progress", reason="DOWNLOAD_IN_PROGRESS",
                    metadata={"download_id": job.download_id})
        if (self.models_dir / filename).exists() and not force:
            raise AlreadyExists(f"{filename} is already in the models directory; set force to "
                                f"download it again", reason="FILE_EXISTS",
                                metadata={"filename": filename})
        if len(active) >= self.settings.max_concurrent:
            raise ResourceExhausted(f"{len(active)} downloads are running, the most allowed "
                                    f"(downloads.max_concurrent); retry when one ends",
                                    reason="TOO_MANY_DOWNLOADS")

    def _adopt_leftover(self, job: _Job) -> None:
        """Keeps a partial file that an earlier run left for the same URL (resumes it), and
        deletes one left for another URL."""
        try:
            old = json.loads(job.state_path.read_text())
        except (OSError, ValueError):
            _unlink(job.part_path)
            return
        if old.get("url") == job.url and old.get("validator"):
            job.validator = str(old["validator"])
            job.total_bytes = old.get("total_bytes")
        else:
            _unlink(job.part_path)

    def _launch(self, job: _Job) -> None:
        self._jobs[job.download_id] = job
        self._prune_history()
        self._publish(job)
        job.task = asyncio.get_running_loop().create_task(self._run(job))
        self._tickers[job.download_id] = asyncio.get_running_loop().create_task(self._tick(job))

    def _prune_history(self) -> None:
        finished = [j for j in self._jobs.values() if j.status.terminal]
        for job in finished[:max(0, len(finished) - self.settings.history_limit)]:
            del self._jobs[job.download_id]

    # -- cancel --------------------------------------------------------------------------------

    async def cancel(self, download_id: str = "", model_id: str = "") -> CancelOutcome:
        job = self._find(download_id, model_id)
        previous = job.status
        cancelled = previous is DownloadStatus.DOWNLOADING and job.abort.set("cancel")
        if cancelled and job.task is not None:
            # The outcome is decided (the transfer can no longer commit); wait for the cleanup so
            # the answer shows the final state. shield: a caller giving up does not stop it.
            await asyncio.wait([asyncio.shield(job.task)], timeout=30)
        return CancelOutcome(cancelled, previous, self._current(job))

    async def cancel_all(self) -> CancelAllOutcome:
        jobs = list(self._jobs.values())
        cancelled, not_cancelled = [], []
        outcomes = await asyncio.gather(*(self.cancel(download_id=j.download_id) for j in jobs))
        for job, outcome in zip(jobs, outcomes):
            if outcome.cancelled:
                cancelled.append((outcome.download, outcome.previous_status))
            else:
                not_cancelled.append((outcome.download, _why_not_cancelled(outcome.previous_status)))
        return CancelAllOutcome(len(jobs), cancelled, not_cancelled)

    # -- the download itself -------------------------------------------------------------------

    async def _run(self, job: _Job) -> None:
        loop = asyncio.get_running_loop()
        try:
            job.sha256 = await loop.run_in_executor(self._executor, self._transfer, job, loop)
        except Aborted:
            if job.abort.why == "shutdown":
                log.info("download %s suspended; it resumes at the next start", job.download_id)
                self._stop_ticker(job)
                return
            self._discard(job)
            self._finish(job, DownloadStatus.CANCELLED)
            log.info("download %s cancelled", job.download_id)
            return
        except TransferError as exc:
            self._discard(job)
            self._fail(job, exc.reason, exc.message, exc.http_status)
            return
        except Exception as exc:  # a disk or programming error must still end the download
            log.exception("download %s failed unexpectedly", job.download_id)
            self._discard(job)
            self._fail(job, "IO_ERROR", f"{type(exc).__name__}: {exc}", 0)
            return
        if job.auto_load and self._on_downloaded is not None:
            job.status = DownloadStatus.CREATING_ENGINE
            self._publish(job)
            try:
                await self._on_downloaded(job.model_id, job.final_path)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
                log.error("download %s: creating engine '%s' failed: %s", job.download_id,
                          job.model_id, message)
                self._fail(job, "ENGINE_CREATION_FAILED",
                           f"the file is downloaded and verified at {job.final_path}, but "
                           f"creating engine '{job.model_id}' failed: {message}", 0)
                return
        self._finish(job, DownloadStatus.COMPLETED)
        log.info("download %s completed: %s (%d bytes, sha256 %s)", job.download_id,
                 job.final_path, job.downloaded_bytes, job.sha256)

    def _fail(self, job: _Job, reason: str, message: str, http_status: int) -> None:
        job.error_reason, job.error = reason, message
        if http_status:
            job.http_status = http_status
        log.warning("download %s failed (%s): %s", job.download_id, reason, message)
        self._finish(job, DownloadStatus.FAILED)

    def _finish(self, job: _Job, status: DownloadStatus) -> None:
        job.status = status
        job.end_time_unix_ms = _now_ms()
        self._stop_ticker(job)
        self._publish(job)

    def _stop_ticker(self, job: _Job) -> None:
        ticker = self._tickers.pop(job.download_id, None)
        if ticker is not None:
            ticker.cancel()

    def _discard(self, job: _Job) -> None:
        _unlink(job.part_path)
        _unlink(job.state_path)

    def _transfer(self, job: _Job, loop: asyncio.AbstractEventLoop) -> str:
        """Runs in a worker thread: fetches every byte (resuming and retrying), verifies, renames.
        Returns the SHA-256; raises TransferError or Aborted."""
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
                hasher = self._attempt(job, hasher, loop)
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

    def _attempt(self, job: _Job, hasher, loop: asyncio.AbstractEventLoop):
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
            loop.call_soon_threadsafe(self._publish, job)
            self._receive(job, response, hasher)
        finally:
            job.abort.watch(None)
            opened.close()
        if job.total_bytes is not None and job.downloaded_bytes < job.total_bytes:
            raise TransferError("TRUNCATED", f"the connection closed after {job.downloaded_bytes} "
                                f"of {job.total_bytes} bytes", retryable=True)
        return hasher

    def _accept_headers(self, job: _Job, response, total: int | None, offset: int) -> None:
        etag = response.getheader("ETag") or ""
        validator = etag if etag and not etag.startswith("W/") else (
            response.getheader("Last-Modified") or "")
        if total is not None:
            needed = total - offset
            free = shutil.disk_usage(self.partial_dir).free
            if needed > free - self.settings.reserve_free_bytes:
                raise TransferError(
                    "INSUFFICIENT_STORAGE", f"the file needs {needed} more bytes but the disk "
                    f"holding {self.models_dir} has {free} free (and keeps "
                    f"{self.settings.reserve_free_bytes} free: downloads.reserve_free_bytes)")
        if (total, validator) != (job.total_bytes, job.validator):
            with job.lock:
                job.total_bytes, job.validator = total, validator
            _write_state(job)

    def _receive(self, job: _Job, response, hasher) -> None:
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
                    return
                if job.total_bytes is not None and job.downloaded_bytes + len(chunk) > job.total_bytes:
                    raise TransferError("HTTP_ERROR", "the server sent more bytes than it announced")
                _write_all(out, chunk)
                hasher.update(chunk)
                with job.lock:
                    job.downloaded_bytes += len(chunk)

    def _commit(self, job: _Job, digest: str) -> str:
        if job.expected_sha256 and digest != job.expected_sha256:
            raise TransferError("CHECKSUM_MISMATCH", f"the file's SHA-256 is {digest}, expected "
                                f"{job.expected_sha256}; the file was deleted")
        with open(job.part_path, "rb+") as f:
            os.fsync(f.fileno())
        if not job.abort.commit():
            raise Aborted(job.abort.why)
        if job.final_path.exists() and not job.force:
            raise TransferError("FILE_EXISTS", f"{job.final_path} appeared during the download; "
                                f"start it again with force to replace it")
        os.replace(job.part_path, job.final_path)
        _fsync_dir(job.final_path.parent)
        _unlink(job.state_path)
        with job.lock:
            if job.total_bytes is None:
                job.total_bytes = job.downloaded_bytes
        return digest


def _why_not_cancelled(status: DownloadStatus) -> str:
    return {DownloadStatus.COMPLETED: "Already completed", DownloadStatus.FAILED: "Already failed",
            DownloadStatus.CANCELLED: "Already cancelled",
            DownloadStatus.CREATING_ENGINE: "Engine creation in progress"}.get(status, "Not running")


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


def _write_state(job: _Job) -> None:
    tmp = job.state_path.with_name(job.state_path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(job.persisted(), f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, job.state_path)


def _truncate(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError), open(path, "r+b") as f:
        f.truncate(0)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
