"""Engines created from downloads.

Three things end in "download the model, then create an engine for it": Kolosal's `POST /engines`
whose `model_path` is a URL (AddEngine), a configured model whose `path` is a URL (Kolosal's
startup preload), and a download started with `auto_load`. The engine id and load parameters are
recorded when the download starts and used when it completes; a download nobody registered
becomes an engine named by its model id with the default parameters.

Everything here is in domain types: the servicer decodes AddEngine's request (load parameters
resolved, load flag, SHA-256), and server.app turns a configured model into a `Preload`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from server.core.engines import EngineManager
from server.core.model_library import ModelLibrary, ResolvedModel
from server.core.types import LoadParams
from server.downloads import sources
from server.downloads.manager import DownloadManager
from server.downloads.types import DownloadRequest, DownloadType
from server.errors import AlreadyExists

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PendingEngine:
    engine_id: str
    params: LoadParams
    load: bool


@dataclass(frozen=True)
class Preload:
    """A configured model whose path is a URL: its engine is created once the file is here."""

    engine_id: str
    url: str
    expected_sha256: str | None
    params: LoadParams  # resolved: every value set
    load: bool


#: AddEngine's download: (model, engine id, resolved load params, load at once, expected SHA-256
#: or None) -> the download id.
DownloadThenAdd = Callable[[ResolvedModel, str, LoadParams, bool, "str | None"], Awaitable[str]]


def download_model_id(engine_id: str) -> str:
    """A download's model id for an engine id (engine ids may hold '/', download ids may not)."""
    return re.sub(r"[^A-Za-z0-9._:-]", "-", engine_id)[:128]


def is_url(path: str) -> bool:
    return path.lower().startswith(("http://", "https://"))


class EnginesFromDownloads:
    def __init__(self, engines: EngineManager, library: ModelLibrary,
                 default_params: Callable[[], LoadParams]):
        """`default_params`: the resolved load parameters of an engine nobody registered."""
        self._engines = engines
        self._library = library
        self._default_params = default_params
        self._pending: dict[str, PendingEngine] = {}

    def _check_free(self, engine_id: str) -> None:
        if any(e.id == engine_id for e in self._engines.engines()) or any(
                p.engine_id == engine_id for p in self._pending.values()):
            raise AlreadyExists(f"an engine with id '{engine_id}' already exists or is being "
                                "downloaded", reason="ENGINE_EXISTS", metadata={"engine_id": engine_id})

    async def __call__(self, model_id: str, path: Path) -> None:
        """The download manager's auto-load hook: creates (and loads) the engine."""
        pending = self._pending.pop(model_id, None) or PendingEngine(
            self._unregistered_engine_id(model_id, path), self._default_params(), True)
        await self._engines.create(pending.engine_id, str(path), pending.params, load=pending.load)

    def forget(self, model_id: str) -> None:
        """The download manager's hook for a download that failed or was cancelled: the engine
        it was to create is no longer pending, so its id is free again."""
        self._pending.pop(model_id, None)

    def _unregistered_engine_id(self, model_id: str, path: Path) -> str:
        """A catalog model's engine is named by its catalog id ("Qwen/Qwen2.5-…"), which is what
        clients of Impetus and Foundry then send as `model`; anything else by the download's id."""
        name = path.name.lower()
        entry = next((e for e in self._library.catalog.entries() if e.filename.lower() == name), None)
        if entry is not None and not any(e.id == entry.model_id for e in self._engines.engines()):
            return entry.model_id
        return model_id

    def download_then_add(self, downloads: DownloadManager) -> DownloadThenAdd:
        """AddEngine's path for a model that is not on disk yet (a URL or a catalog entry)."""

        async def start(resolved: ResolvedModel, engine_id: str, params: LoadParams, load: bool,
                        expected_sha256: str | None) -> str:
            self._check_free(engine_id)
            entry = resolved.entry
            snapshot = await downloads.start_download(DownloadRequest(
                url=None if entry else resolved.url, catalog_name=entry.name if entry else None,
                model_id=download_model_id(engine_id), expected_sha256=expected_sha256,
                auto_load=True))
            # No await since the download was registered: it cannot have finished yet.
            self._pending[snapshot.model_id] = PendingEngine(engine_id, params, load)
            return snapshot.download_id

        return start

    def expect_preload(self, preload: Preload) -> None:
        """Registers a configured model whose path is a URL, before the download manager resumes
        an interrupted download of it: whichever download completes creates this engine."""
        self._pending[download_model_id(preload.engine_id)] = PendingEngine(
            preload.engine_id, preload.params, preload.load)

    async def preload(self, downloads: DownloadManager, preload: Preload, models_dir: Path) -> None:
        """Creates a URL-configured model's engine from the file when an earlier run downloaded
        it, else downloads it first (download type "startup"); a download resumed from an earlier
        run is left to finish. expect_preload() must have been called."""
        engine_id, url = preload.engine_id, preload.url
        model_id = download_model_id(engine_id)
        parsed = sources.check_url(url, f"models[{engine_id}].path")
        existing = models_dir / parsed.last_segment
        if existing.is_file():
            pending = self._pending.pop(model_id)
            await self._engines.create(engine_id, str(existing), pending.params, load=pending.load)
            return
        try:
            await downloads.start_download(
                DownloadRequest(url=url, model_id=model_id, expected_sha256=preload.expected_sha256,
                                auto_load=True), DownloadType.STARTUP)
        except AlreadyExists as exc:
            if exc.reason != "DOWNLOAD_IN_PROGRESS":
                self._pending.pop(model_id, None)
                raise
            log.info("model %s: resuming the download of %s", engine_id, url)
            return
        log.info("model %s: downloading %s before creating its engine", engine_id, url)
