"""Logging set-up from LoggingSettings: level, console or file, access log, secrets redacted.

The configured level (the root logger's, changeable at run time) applies to the console or file
handler; the server's own loggers stay at INFO or below so that the in-memory buffer behind the
LogService (and Foundry's /logs) always has the server's story, including the access log, even
when the console is set to WARNING.
"""

from __future__ import annotations

import logging
import sys

from server.config import LoggingSettings
from server.monitoring.logbuffer import REDACTOR, AccessLogFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _AtRootLevel(logging.Filter):
    """Passes records at or above the root logger's level as it is now, so a live change of the
    root level takes effect here too, while loggers kept at INFO for the buffer do not flood the
    console."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.getLogger().level


def configure_logging(settings: LoggingSettings) -> None:
    handler: logging.Handler = (logging.FileHandler(settings.file) if settings.file
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_AtRootLevel())
    handler.addFilter(AccessLogFilter(settings.access_log))  # before redacting what it drops
    handler.addFilter(REDACTOR)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
