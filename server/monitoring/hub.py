"""Everything a server observes, created once per server by `create_server`."""

from __future__ import annotations

import asyncio
import logging
import threading
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

#: The loggers that install() keeps at INFO or below for the log buffer.
SERVER_LOGGERS = (ACCESS_LOGGER, "server", "tokenwire")

# Logger levels belong to the process, not to one server, and a process can run several servers
# (tests do): the levels as they were before an install raised them, and the installed hubs that
# rely on the raise. The last of those to uninstall puts the levels back.
_levels_before_install: dict[str, int] = {}
_relying_on_raised_levels: set["Monitoring"] = set()
_install_guard = threading.Lock()


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
        console and file handlers drop its lines unless the access log is enabled.
        `uninstall()` undoes all of it."""
        logging.getLogger().addHandler(self.logs)
        with _install_guard:
            for name in SERVER_LOGGERS:
                logger = logging.getLogger(name)
                if logger.getEffectiveLevel() > logging.INFO:
                    _levels_before_install.setdefault(name, logger.level)
                    logger.setLevel(logging.INFO)
            if _levels_before_install:
                _relying_on_raised_levels.add(self)

    def uninstall(self) -> None:
        """Stops collecting log records and, if no other installed hub relies on them, puts the
        logger levels back as install() found them (safe to call twice)."""
        self.logs.close_subscribers()
        logging.getLogger().removeHandler(self.logs)
        with _install_guard:
            _relying_on_raised_levels.discard(self)
            if not _relying_on_raised_levels:
                for name, level in _levels_before_install.items():
                    logging.getLogger(name).setLevel(level)
                _levels_before_install.clear()
