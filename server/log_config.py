"""Logging set-up from LoggingSettings: level, console or file."""

from __future__ import annotations

import logging
import sys

from server.config import LoggingSettings

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(settings: LoggingSettings) -> None:
    handler: logging.Handler = (logging.FileHandler(settings.file) if settings.file
                                else logging.StreamHandler(sys.stderr))
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.level)
