"""Everything a server observes, created once per server by `create_server`."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from server.monitoring.hardware import Hardware
from server.monitoring.logbuffer import ACCESS_LOGGER, LogBuffer
from server.monitoring.metrics import Metrics
from server.monitoring.observer import GenerationObserver
from server.monitoring.performance import PerformanceTuner
from server.monitoring.status import StatusReporter

if TYPE_CHECKING:
    from server.config import Settings
    from server.core.engines import EngineManager


class Monitoring:
    def __init__(self, settings: "Settings", engines: "EngineManager"):
        self.engines = engines
        self.hardware = Hardware()
        self.metrics = Metrics(engines, self.hardware)
        self.observer = GenerationObserver(self.metrics)
        engines.observe = self.observer.observe  # every generation, whoever asks for it
        self.status = StatusReporter(engines)
        self.tuner = PerformanceTuner(engines, settings)
        self.logs = LogBuffer(settings.logging.buffer_size)
        self._draining = asyncio.Event()
        self._status_watchers: set[asyncio.Queue] = set()
        engines.subscribe(self._engines_changed)

    def _engines_changed(self, engines: "EngineManager") -> None:
        if engines.draining and not self._draining.is_set():
            self._draining.set()
            self.logs.close_subscribers()
        self.tuner.engines_changed()
        for watcher in list(self._status_watchers):
            watcher.put_nowait(True)

    def watch_status(self) -> asyncio.Queue:
        """A queue that gets an item whenever engine states or draining change."""
        watcher: asyncio.Queue = asyncio.Queue()
        self._status_watchers.add(watcher)
        return watcher

    def unwatch_status(self, watcher: asyncio.Queue) -> None:
        self._status_watchers.discard(watcher)

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    async def wait_draining(self, timeout: float | None) -> None:
        """Sleeps up to `timeout` seconds, waking at once when the server starts draining."""
        try:
            await asyncio.wait_for(self._draining.wait(), timeout)
        except asyncio.TimeoutError:
            pass

    def install(self) -> None:
        """Starts collecting log records. The access logger always passes INFO to the buffer;
        console and file handlers drop its lines unless the access log is enabled."""
        logging.getLogger().addHandler(self.logs)
        access = logging.getLogger(ACCESS_LOGGER)
        if access.getEffectiveLevel() > logging.INFO:
            access.setLevel(logging.INFO)
        for name in ("server", "tokenwire"):
            logger = logging.getLogger(name)
            if logger.getEffectiveLevel() > logging.INFO:
                logger.setLevel(logging.INFO)

    def uninstall(self) -> None:
        self.logs.close_subscribers()
        logging.getLogger().removeHandler(self.logs)
