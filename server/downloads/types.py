"""What the download manager tells and takes: statuses, snapshots, requests, outcomes, the
settings it reads, and the two callables that other parts of the server inject (the catalog and
auto-load)."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Protocol

# name -> (url, filename, sha256 or None), or None when the catalog has no such name.
CatalogResolver = Callable[[str], "tuple[str, str, str | None] | None"]
# Called with (model_id, final path) after a verified download that asked for auto_load.
OnDownloaded = Callable[[str, Path], Awaitable[None]]
# Called with the model_id when a download that asked for auto_load fails or is cancelled.
OnAbandoned = Callable[[str], None]


class DownloadLimits(Protocol):
    """The settings the manager and the transfer read: server.config.DownloadSettings (the
    `downloads` section) is one, handed in by server.app."""

    allow_private_addresses: bool
    max_redirects: int
    max_concurrent: int
    read_timeout_seconds: float
    max_retries: int
    retry_backoff_seconds: float
    reserve_free_bytes: int
    progress_interval_seconds: float
    resume_on_startup: bool
    history_limit: int


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

    def elapsed_seconds(self) -> float:
        """Seconds from the start until now, or until the end once terminal."""
        end = self.end_time_unix_ms or now_ms()
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


def now_ms() -> int:
    return int(time.time() * 1000)
