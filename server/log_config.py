"""Logging set-up from LoggingSettings: level, console or file, access log, secrets redacted.

The configured level applies to the console or file handler; the server's own loggers stay at
INFO or below so that the in-memory buffer behind the LogService (and Foundry's /logs) always has
the server's story, including the access log, even when the console is set to WARNING.
"""

from __future__ import annotations

import logging
import sys

from server.config import LoggingSettings
from server.monitoring.logbuffer import REDACTOR, AccessLogFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: LoggingSettings) -> None:
    handler: logging.Handler = (logging.FileHandler(settings.file) if settings.file
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(settings.level)
    handler.addFilter(REDACTOR)
    handler.addFilter(AccessLogFilter(settings.access_log))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
