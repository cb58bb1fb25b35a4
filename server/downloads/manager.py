"""The download manager: fetches model files into the models directory, safely and resumably.

Each download's bytes go to `<models_dir>/.partial/<filename>.part`, with its description in
`<filename>.json` beside it, so a server that stops or crashes resumes the download with an HTTP
Range request when it starts again. Only a complete file whose SHA-256 matches (when one is known)
is fsynced and renamed to its final name; a failed or cancelled download deletes its temporary
file, so the final name never holds a partial or unverified file. One failure keeps it: a file
that took the final name during the download (FILE_EXISTS) is not replaced without force, and the
verified bytes wait in `.partial` for a retry with force.

The transfer itself runs in a thread (blocking http.client reads), one per download; everything
else, and all the state that callers see, lives on the event loop. Callers see immutable
snapshots, published on status changes and every `progress_interval_seconds` while bytes arrive.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import AsyncIterator, Callable, Iterable

from server.downloads import sources
from server.downloads.http import Aborted, TransferError
from server.downloads.transfer import (FinalNameTaken, Job, Transfer, name_taken, unlink,
                                       write_state)
from server.downloads.types import (CancelAllOutcome, CancelOutcome, CatalogResolver,
                                    DownloadLimits, DownloadRequest, DownloadSnapshot,
                                    DownloadStatus, DownloadType, OnAbandoned, OnDownloaded, now_ms)
from server.errors import (AlreadyExists, CatalogEntryNotFound, DownloadLimitReached,
                           DownloadNotFound, InvalidArgument, PreconditionFailed, Unavailable)

log = logging.getLogger(__name__)

PARTIAL_DIR = ".partial"
# The models directory, or a function returning it (the directory can change while serving).
ModelsDir = str | os.PathLike | Callable[[], str | os.PathLike]


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
            raise Unavailable("the server is shutting down", reason="SERVER_DRAINING")
        return events


class DownloadManager:
    def __init__(self, settings: DownloadLimits, models_dir: ModelsDir, *,
                 catalog: CatalogResolver | None = None,
                 on_downloaded: OnDownloaded | None = None,
                 on_abandoned: OnAbandoned | None = None):
        self.settings = settings
        self._models_dir = models_dir
        self._catalog = catalog
        self._on_downloaded = on_downloaded
        self._on_abandoned = on_abandoned
        self._jobs: dict[str, Job] = {}  # insertion order = start order
        self._subscriptions: set[Subscription] = set()
        self._tickers: dict[str, asyncio.Task] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix="download")
        self._closing = False
        self._watches_ended = False

    @property
    def models_dir(self) -> Path:
        """Where new downloads land; a running download keeps the directory it started in."""
        where = self._models_dir() if callable(self._models_dir) else self._models_dir
        return Path(where).expanduser().resolve()

    @property
    def partial_dir(self) -> Path:
        return self.models_dir / PARTIAL_DIR

    # -- observation ---------------------------------------------------------------------------

    def list(self, model_id: str = "",
             statuses: Iterable[DownloadStatus] = ()) -> list[DownloadSnapshot]:
        wanted = set(statuses)
        return [self._current(job) for job in reversed(self._jobs.values())
                if (not model_id or job.model_id == model_id)
                and (not wanted or job.status in wanted)]

    def get(self, download_id: str = "", model_id: str = "") -> DownloadSnapshot:
        return self._current(self._find(download_id, model_id))

    def _find(self, download_id: str, model_id: str) -> Job:
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

    def _current(self, job: Job) -> DownloadSnapshot:
        return job.published or job.snapshot()

    @contextlib.contextmanager
    def subscribe(self, download_id: str | None = None):
        """Events published from now on; read the current state after subscribing."""
        subscription = Subscription(download_id)
        if self._watches_ended:
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

    def _publish(self, job: Job) -> None:
        with job.lock:
            downloaded = job.downloaded_bytes
        job.samples.append((time.monotonic(), downloaded))
        snapshot = job.snapshot()
        if snapshot == job.published:
            return  # nothing moved (a stalled transfer publishes until its speed reaches 0)
        job.published = snapshot
        for subscription in list(self._subscriptions):
            subscription.offer(snapshot)

    async def _tick(self, job: Job) -> None:
        # Periodic sampling of the counters the transfer thread updates (not synchronisation):
        # one event per interval however fast bytes arrive.
        while True:
            await asyncio.sleep(self.settings.progress_interval_seconds)
            self._publish(job)

    # -- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resumes the downloads a stop or crash interrupted (their .json state files)."""
        partial_dir = self.partial_dir
        if not self.settings.resume_on_startup or not partial_dir.is_dir():
            return
        for state_path in sorted(partial_dir.glob("*.json")):
            try:
                job = self._job_from_state(state_path)
            except (OSError, ValueError, KeyError, TypeError, InvalidArgument) as exc:
                log.warning("download state %s is unusable (%s); deleting it", state_path, exc)
                unlink(state_path)
                unlink(state_path.with_suffix(".part"))
                continue
            if any(j.filename == job.filename and not j.status.terminal for j in self._jobs.values()):
                continue
            if not job.force and name_taken(job):
                # It could only end in FILE_EXISTS; its bytes stay for a retry with force.
                log.info("download %s of %s is not resumed: %s exists; start it again with force "
                         "to replace it", job.download_id, job.filename, job.final_path)
                continue
            log.info("resuming download %s of %s (%s)", job.download_id, job.filename, job.url)
            self._launch(job)

    def _job_from_state(self, state_path: Path) -> Job:
        models_dir = state_path.parent.parent
        data = json.loads(state_path.read_text())
        filename = sources.check_filename(str(data["filename"]), "filename")
        if state_path.name != f"{filename}.json":
            raise ValueError("state file name does not match its file name")
        sources.check_url(str(data["url"]), "url")
        expected = str(data.get("expected_sha256") or "")
        if expected:
            sources.check_sha256(expected, "expected_sha256")
        total = data.get("total_bytes")
        part_path = state_path.parent / f"{filename}.part"
        kept = part_path.stat().st_size if part_path.is_file() else 0
        return Job(
            download_id=str(data["download_id"]),
            model_id=sources.check_model_id(str(data["model_id"]), "model_id"),
            url=str(data["url"]), catalog_name=str(data.get("catalog_name") or ""),
            filename=filename, final_path=models_dir / filename,
            part_path=part_path, state_path=state_path,
            expected_sha256=expected.lower(), auto_load=bool(data.get("auto_load")),
            force=bool(data.get("force")), download_type=DownloadType.STARTUP,
            start_time_unix_ms=int(data.get("start_time_unix_ms") or now_ms()),
            validator=str(data.get("validator") or ""),
            total_bytes=int(total) if total is not None else None,
            # Known now, so the first event already shows where the download resumes.
            downloaded_bytes=kept, resumed_from_bytes=kept)

    def end_watches(self) -> None:
        """Ends every watch stream, and any opened later, with UNAVAILABLE SERVER_DRAINING;
        transfers go on. A draining server calls it first: its in-flight calls include the
        watches, which would otherwise hold the shutdown for the whole grace period."""
        self._watches_ended = True
        for subscription in list(self._subscriptions):
            subscription.close()

    async def close(self, timeout: float = 10.0) -> None:
        """Stops running transfers, keeping their partial files for a resume at the next start."""
        self._closing = True
        self.end_watches()
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
            raise Unavailable("the server is shutting down", reason="SERVER_DRAINING")
        url, catalog_name, filename, expected = self._source(request)
        parsed = sources.check_url(url, "catalog_name" if catalog_name else "url")
        model_id = sources.check_model_id(
            request.model_id or sources.model_id_from_filename(filename), "model_id")
        if request.auto_load and self._on_downloaded is None:
            raise PreconditionFailed("auto_load is not available: this server cannot create "
                                     "engines from downloads", reason="AUTO_LOAD_UNAVAILABLE")
        if not self.settings.allow_private_addresses:
            await self._check_addresses(parsed)
        # No await from here on: the checks and the registration are one step.
        self._check_conflicts(model_id, filename, request.force)
        self._check_free_space()
        models_dir = self.models_dir
        partial_dir = models_dir / PARTIAL_DIR
        job = Job(
            download_id=f"dl-{uuid.uuid4().hex[:16]}", model_id=model_id, url=url,
            catalog_name=catalog_name, filename=filename, final_path=models_dir / filename,
            part_path=partial_dir / f"{filename}.part",
            state_path=partial_dir / f"{filename}.json", expected_sha256=expected,
            auto_load=request.auto_load, force=request.force, download_type=download_type,
            start_time_unix_ms=now_ms())
        self._adopt_leftover(job)
        try:
            partial_dir.mkdir(parents=True, exist_ok=True)
            write_state(job)
        except OSError as exc:
            raise PreconditionFailed(
                f"cannot write to the models directory {models_dir}: {exc.strerror}",
                reason="MODELS_DIR_NOT_WRITABLE") from None
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
            raise _resolve_error(parsed.host, exc) from None
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
            raise DownloadLimitReached(f"{len(active)} downloads are running, the most allowed "
                                    f"(downloads.max_concurrent); retry when one ends",
                                    reason="TOO_MANY_DOWNLOADS")

    def _check_free_space(self) -> None:
        """Refuses at once when the disk is already below the reserve (the size of the file is
        only known once the response arrives; that check happens then)."""
        models_dir = self.models_dir
        existing = next((p for p in (models_dir, *models_dir.parents) if p.exists()), None)
        if existing is None:
            return
        free = shutil.disk_usage(existing).free
        reserve = self.settings.reserve_free_bytes
        if free < reserve:
            raise DownloadLimitReached(f"the disk holding {models_dir} has {free} bytes free, "
                                    f"less than the {reserve} it must keep "
                                    f"(downloads.reserve_free_bytes)", reason="INSUFFICIENT_STORAGE")

    def _adopt_leftover(self, job: Job) -> None:
        """Keeps a partial file that an earlier run left for the same URL (resumes it), and
        deletes one left for another URL."""
        try:
            old = json.loads(job.state_path.read_text())
        except (OSError, ValueError):
            unlink(job.part_path)
            return
        if old.get("url") == job.url and old.get("validator"):
            job.validator = str(old["validator"])
            job.total_bytes = old.get("total_bytes")
        else:
            unlink(job.part_path)

    def _launch(self, job: Job) -> None:
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

    async def _run(self, job: Job) -> None:
        loop = asyncio.get_running_loop()
        transfer = Transfer(self.settings,
                            lambda j: loop.call_soon_threadsafe(self._publish, j))
        try:
            job.sha256 = await loop.run_in_executor(self._executor, transfer.run, job)
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
            if not isinstance(exc, FinalNameTaken):  # that one keeps its verified bytes
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

    def _fail(self, job: Job, reason: str, message: str, http_status: int) -> None:
        job.error_reason, job.error = reason, message
        if http_status:
            job.http_status = http_status
        log.warning("download %s failed (%s): %s", job.download_id, reason, message)
        self._finish(job, DownloadStatus.FAILED)

    def _finish(self, job: Job, status: DownloadStatus) -> None:
        job.status = status
        job.end_time_unix_ms = now_ms()
        self._stop_ticker(job)
        self._publish(job)
        if job.auto_load and status is not DownloadStatus.COMPLETED and self._on_abandoned:
            self._on_abandoned(job.model_id)

    def _stop_ticker(self, job: Job) -> None:
        ticker = self._tickers.pop(job.download_id, None)
        if ticker is not None:
            ticker.cancel()

    def _discard(self, job: Job) -> None:
        unlink(job.part_path)
        unlink(job.state_path)


def _resolve_error(host: str, exc: OSError) -> InvalidArgument | Unavailable:
    """A name with no address will keep failing: a bad argument. Any other resolver failure may
    pass, as the transfer's retries assume: UNAVAILABLE, which clients retry."""
    why = sources.resolve_failure_text(exc)
    if sources.name_has_no_address(exc):
        return InvalidArgument.single("url", f"cannot resolve host {host}: {why}",
                                      reason="UNRESOLVABLE_HOST")
    return Unavailable(f"cannot resolve host {host} now ({why}); retry later",
                       reason="DNS_UNAVAILABLE")


def _why_not_cancelled(status: DownloadStatus) -> str:
    return {DownloadStatus.COMPLETED: "Already completed", DownloadStatus.FAILED: "Already failed",
            DownloadStatus.CANCELLED: "Already cancelled",
            DownloadStatus.CREATING_ENGINE: "Engine creation in progress"}.get(status, "Not running")
