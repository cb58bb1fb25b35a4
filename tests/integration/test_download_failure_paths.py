"""Failure paths of the download manager that change what a client must do next: a host name that
does not resolve, at StartDownload or during the transfer (retry later, or fix the URL), and a
file that takes the final name while a download runs (the user's file and the downloaded bytes are
both kept)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import socket
import threading

import pytest

from server.downloads import sources
from server.downloads.transfer import Job, Transfer
from server.downloads.types import DownloadType
from server.downloads.manager import DownloadManager
from tests.file_server import SERVED_GGUF
from tests.helpers import make_settings, wait_for
from tokenwire import AlreadyExistsError, Client, InvalidArgumentError, UnavailableError

MiB = 1024 * 1024
GGUF = SERVED_GGUF
REMOTE_URL = "https://models.example/org/model-q4.gguf"
TEMPORARY = (socket.EAI_AGAIN, "Temporary failure in name resolution")
NO_SUCH_NAME = (socket.EAI_NONAME, "Name or service not known")
# Every resolver answer that means "this name has no address" (EAI_NODATA is not defined on every
# platform).
NAME_HAS_NO_ADDRESS = [pytest.param(NO_SUCH_NAME, id="EAI_NONAME")] + (
    [pytest.param((socket.EAI_NODATA, "No address associated with hostname"), id="EAI_NODATA")]
    if hasattr(socket, "EAI_NODATA") else [])
MIRROR = "mirror.tokenwire.test"  # a made-up name that scripted_dns answers for


@pytest.fixture(autouse=True)
def _reset_file_server(files):
    yield
    files.release()


@pytest.fixture
def resolver_fails(dl_server, monkeypatch):
    """Makes StartDownload's address check (on here) meet a resolver failing with (errno, text)."""
    limits = dl_server.settings.downloads
    limits.allow_private_addresses = False

    def fail_with(failure: tuple[int, str]) -> None:
        def resolve(host: str, port: int) -> list[str]:
            raise socket.gaierror(*failure)

        monkeypatch.setattr(sources, "resolve", resolve)

    yield fail_with
    limits.allow_private_addresses = True


class ScriptedDns:
    """getaddrinfo() for MIRROR: fails with `failure` for the first `times` lookups (every lookup
    when `times` is None), then answers with the loopback address, where the file server
    listens. Other names resolve as usual. `lookups` counts the lookups of MIRROR."""

    def __init__(self) -> None:
        self.failure: tuple[int, str] | None = None
        self.times: int | None = None
        self.lookups = 0
        self._lock = threading.Lock()
        self._real = socket.getaddrinfo

    def fail(self, failure: tuple[int, str], times: int | None = None) -> None:
        self.failure, self.times = failure, times

    def getaddrinfo(self, host, port, *args, **kwargs):
        if host != MIRROR:
            return self._real(host, port, *args, **kwargs)
        with self._lock:
            self.lookups += 1
            failing = self.failure is not None and (self.times is None or self.lookups <= self.times)
        if failing:
            raise socket.gaierror(*self.failure)
        return self._real("127.0.0.1", port, *args, **kwargs)


@pytest.fixture
def scripted_dns(dl_server, monkeypatch):
    """The transfer's resolver, scripted; private addresses are allowed (the fixture server's
    setting), so StartDownload does not resolve and every lookup is the transfer's."""
    assert dl_server.settings.downloads.allow_private_addresses
    dns = ScriptedDns()
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    return dns


def finish(client: Client, download_id: str) -> list:
    return list(client.watch_download(download_id, timeout=240))


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- a host name that does not resolve --------------------------------------------------------


def test_a_temporary_dns_failure_is_unavailable_so_clients_retry(dl, resolver_fails, models_dir):
    resolver_fails(TEMPORARY)
    with pytest.raises(UnavailableError) as error:
        dl.start_download(REMOTE_URL)
    assert error.value.reason == "DNS_UNAVAILABLE"
    assert "models.example" in error.value.message and "Temporary failure" in error.value.message
    assert dl.list_downloads(model_id="model-q4") == []
    assert not (models_dir / "model-q4.gguf").exists()


def test_a_name_that_does_not_exist_is_an_invalid_url(dl, resolver_fails):
    resolver_fails(NO_SUCH_NAME)
    with pytest.raises(InvalidArgumentError) as error:
        dl.start_download(REMOTE_URL)
    assert error.value.reason == "UNRESOLVABLE_HOST"
    (violation,) = error.value.violations
    assert violation.field == "url" and "models.example" in violation.description
    assert dl.list_downloads(model_id="model-q4") == []


@pytest.mark.parametrize("failure,native,kolosal", [(TEMPORARY, 503, 503),
                                                    (NO_SUCH_NAME, 400, 422)])
def test_dns_failures_over_rest(dl_http, resolver_fails, failure, native, kolosal):
    """The native route and Kolosal's (which documents 422 for a URL it will not fetch) agree
    with gRPC: a temporary failure is 503 with Retry-After, a name that does not exist is not."""
    resolver_fails(failure)
    started = dl_http.post("/v1/model-downloads", json={"url": REMOTE_URL})
    assert started.status_code == native
    assert ("Retry-After" in started.headers) == (native == 503)
    added = dl_http.post("/engines", json={"engine_id": "dns-engine", "model_path": REMOTE_URL})
    assert added.status_code == kolosal, added.get_json()
    assert ("Retry-After" in added.headers) == (kolosal == 503)


def assert_nothing_kept(models_dir, filename: str) -> None:
    assert not (models_dir / filename).exists()
    assert not (models_dir / ".partial" / f"{filename}.part").exists()
    assert not (models_dir / ".partial" / f"{filename}.json").exists()


@pytest.mark.parametrize("failure", NAME_HAS_NO_ADDRESS)
def test_a_name_that_does_not_exist_fails_the_transfer_at_once(dl, files, scripted_dns, models_dir,
                                                               failure):
    """With private addresses allowed nothing resolves at StartDownload; the transfer's lookup
    finds that the name has no address, which no retry can change: the download fails with the
    reason StartDownload gives the same URL, after one lookup."""
    scripted_dns.fail(failure)
    mark = files.mark()
    started = dl.start_download(files.url(GGUF, host=MIRROR), filename="no-such-host.gguf")
    done = finish(dl, started.download_id)[-1]
    assert done.status == "failed" and done.error_reason == "UNRESOLVABLE_HOST", done.error
    assert MIRROR in done.error and failure[1] in done.error
    assert scripted_dns.lookups == 1  # not retried
    assert files.mark() == mark  # nothing was fetched
    assert_nothing_kept(models_dir, "no-such-host.gguf")


def test_a_redirect_to_a_name_that_does_not_exist_fails_at_once(dl, files, scripted_dns,
                                                                models_dir, monkeypatch):
    scripted_dns.fail(NO_SUCH_NAME)
    monkeypatch.setitem(files.redirects, "/moved.gguf", files.url(GGUF, host=MIRROR))
    mark = files.mark()
    started = dl.start_download(files.url("moved.gguf"), filename="moved-away.gguf")
    done = finish(dl, started.download_id)[-1]
    assert done.status == "failed" and done.error_reason == "UNRESOLVABLE_HOST", done.error
    assert "redirect" in done.error and MIRROR in done.error
    assert scripted_dns.lookups == 1
    assert [r.path for r in files.requests[mark:]] == ["/moved.gguf"]  # the redirect, once
    assert_nothing_kept(models_dir, "moved-away.gguf")


def test_a_resolver_that_fails_for_now_is_retried_until_it_answers(dl, dl_server, files,
                                                                   scripted_dns, models_dir,
                                                                   gguf_sha256):
    retries = dl_server.settings.downloads.max_retries
    scripted_dns.fail(TEMPORARY, times=retries)  # the last retry finds the resolver back
    started = dl.start_download(files.url(GGUF, host=MIRROR), filename="dns-recovered.gguf",
                                expected_sha256=gguf_sha256)
    done = finish(dl, started.download_id)[-1]
    assert done.status == "completed" and done.sha256 == gguf_sha256, done.error
    assert scripted_dns.lookups == retries + 1
    assert sha256_of(models_dir / "dns-recovered.gguf") == gguf_sha256


def test_a_resolver_that_stays_unavailable_fails_after_the_retries(dl, dl_server, files,
                                                                  scripted_dns, models_dir):
    scripted_dns.fail(TEMPORARY)
    started = dl.start_download(files.url(GGUF, host=MIRROR), filename="dns-down.gguf")
    done = finish(dl, started.download_id)[-1]
    assert done.status == "failed" and done.error_reason == "NETWORK_ERROR", done.error
    assert MIRROR in done.error and "Temporary failure" in done.error
    assert scripted_dns.lookups == dl_server.settings.downloads.max_retries + 1
    assert_nothing_kept(models_dir, "dns-down.gguf")


# -- a file that takes the final name while the download runs ---------------------------------


def test_a_file_that_appears_during_the_download_is_not_replaced_and_the_bytes_are_kept(
        dl, files, models_dir, gguf_sha256):
    files.pause(4 * MiB)
    started = dl.start_download(files.url(GGUF), filename="appeared.gguf",
                                expected_sha256=gguf_sha256)
    wait_for(lambda: dl.get_download(started.download_id).downloaded_bytes == 4 * MiB, timeout=60)
    final = models_dir / "appeared.gguf"
    final.write_bytes(b"the user's own file")  # copied in by hand, or by another download
    files.release()

    done = finish(dl, started.download_id)[-1]
    assert done.status == "failed" and done.error_reason == "FILE_EXISTS"
    assert str(final) in done.error and "force" in done.error
    assert final.read_bytes() == b"the user's own file"
    part = models_dir / ".partial" / "appeared.gguf.part"
    assert sha256_of(part) == gguf_sha256  # the verified download is kept, not deleted
    assert (models_dir / ".partial" / "appeared.gguf.json").exists()

    with pytest.raises(AlreadyExistsError) as error:  # without force, nothing changes
        dl.start_download(files.url(GGUF), filename="appeared.gguf")
    assert error.value.reason == "FILE_EXISTS" and sha256_of(part) == gguf_sha256

    mark = files.mark()
    retried = dl.start_download(files.url(GGUF), filename="appeared.gguf",
                                expected_sha256=gguf_sha256, force=True)
    done = finish(dl, retried.download_id)[-1]
    assert done.status == "completed" and done.sha256 == gguf_sha256, done.error
    assert done.resumed_from_bytes == done.total_bytes  # every byte was already here
    assert files.bytes_sent_since(mark) == 0  # finished from the kept bytes, none fetched again
    assert sha256_of(final) == gguf_sha256
    assert not part.exists() and not (models_dir / ".partial" / "appeared.gguf.json").exists()


def _kept_download(models_dir, *, final_content: bytes | None, link: bool = False) -> Job:
    """A verified .part file with its state, as a download blocked at its finish leaves them."""
    partial = models_dir / ".partial"
    partial.mkdir()
    part = partial / "taken.gguf.part"
    part.write_bytes(b"verified bytes")
    job = Job(download_id="dl-kept", model_id="taken", url="http://127.0.0.1:9/taken.gguf",
              catalog_name="", filename="taken.gguf", final_path=models_dir / "taken.gguf",
              part_path=part, state_path=partial / "taken.gguf.json", expected_sha256="",
              auto_load=False, force=False, download_type=DownloadType.REGULAR,
              start_time_unix_ms=1, validator='"v1"', total_bytes=part.stat().st_size)
    job.state_path.write_text(json.dumps(job.persisted()))
    if link:
        os.link(part, job.final_path)
    elif final_content is not None:
        job.final_path.write_bytes(final_content)
    return job


def test_a_kept_download_whose_name_is_taken_is_not_resumed_at_start(tmp_path):
    """Resuming it could only end in FILE_EXISTS again; its bytes wait for a retry with force."""
    job = _kept_download(tmp_path, final_content=b"the user's own file")
    settings = make_settings(model_store={"directory": str(tmp_path)}).downloads

    async def start_then_close() -> list:
        manager = DownloadManager(settings, tmp_path)
        await manager.start()
        listed = manager.list()
        await manager.close()
        return listed

    assert asyncio.run(start_then_close()) == []
    assert job.final_path.read_bytes() == b"the user's own file"
    assert job.part_path.read_bytes() == b"verified bytes" and job.state_path.exists()


def test_a_finish_interrupted_after_linking_completes_when_run_again(tmp_path):
    """A crash between linking the final name and deleting the .part leaves one file under both
    names: that is this download's own file, not a conflict."""
    job = _kept_download(tmp_path, final_content=None, link=True)
    settings = make_settings(model_store={"directory": str(tmp_path)}).downloads
    digest = hashlib.sha256(b"verified bytes").hexdigest()
    assert Transfer(settings, lambda j: None)._commit(job, digest) == digest
    assert job.final_path.read_bytes() == b"verified bytes"
    assert not job.part_path.exists() and not job.state_path.exists()
