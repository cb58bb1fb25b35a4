"""DownloadService over gRPC with the typed client: a real server fetching a real GGUF from a local
HTTP server (Range, ETag, redirects, and knobs that pause or cut responses at a byte offset)."""

from __future__ import annotations

import hashlib
import os
import shutil
import threading

import grpc
import pytest

from server.config import ConfigError, load_settings
from tests.conftest import CAPITAL_QUESTION
from tests.integration.conftest import download_settings
from tests.file_server import SERVED_GGUF, TLS_CERT, FileServer, copy_embedded_gguf
from tests.helpers import ServerThread, make_settings, wait_for
from tokenwire import (AlreadyExistsError, Client, InvalidArgumentError, NotFoundError,
                       PermissionDeniedError, ResourceExhaustedError, UnavailableError)

MiB = 1024 * 1024
GGUF = SERVED_GGUF


@pytest.fixture(scope="module")
def gguf_size(files) -> int:
    return (files.root / GGUF).stat().st_size


@pytest.fixture(scope="module")
def dl_server(files, gguf_sha256, models_dir):
    catalog = {"smollm2-test": (files.url(GGUF), "catalog-smollm2.gguf", gguf_sha256),
               "smollm2-wrong-sha": (files.url(GGUF), "catalog-wrong.gguf", "0" * 64)}
    running = ServerThread(download_settings(models_dir), catalog=catalog.get).start()
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _reset_file_server(files):
    yield
    files.release()
    files.truncate_at = files.cut_next_at = None
    files.redirects.clear()


def finish(client: Client, download_id: str) -> list:
    """Every event of the download until its terminal one."""
    return list(client.watch_download(download_id, timeout=240))


def no_leftovers(models_dir, filename: str) -> bool:
    partial = models_dir / ".partial"
    return not (partial / f"{filename}.part").exists() and not (partial / f"{filename}.json").exists()


def test_download_reports_monotonic_progress_and_lands_verified(dl, files, gguf_sha256, gguf_size,
                                                                models_dir):
    files.pause(10 * MiB)  # hold it mid-way so the progress in between is observable
    started = dl.start_download(files.url(GGUF), model_id="smol-plain", filename="plain.gguf",
                                expected_sha256=gguf_sha256)
    assert started.status == "downloading" and started.download_type == "regular"
    assert started.local_path == str(models_dir / "plain.gguf")
    wait_for(lambda: dl.get_download(started.download_id).downloaded_bytes == 10 * MiB, timeout=60)

    events = dl.watch_download(started.download_id, timeout=240)
    first = next(events)
    assert first.downloaded_bytes == 10 * MiB and first.total_bytes == gguf_size
    assert first.percent == pytest.approx(100 * 10 * MiB / gguf_size)
    assert not (models_dir / "plain.gguf").exists()  # nothing under the final name before the end
    files.release()
    history = [first, *events]

    done = history[-1]
    assert done.status == "completed", done.error
    assert done.sha256 == gguf_sha256 and done.percent == 100.0
    assert done.downloaded_bytes == gguf_size and done.end_time_unix_ms > 0
    for before, after in zip(history, history[1:]):
        assert after.downloaded_bytes >= before.downloaded_bytes
        assert after.percent >= before.percent
    assert [e.status for e in history].count("completed") == 1
    assert hashlib.sha256((models_dir / "plain.gguf").read_bytes()).hexdigest() == gguf_sha256
    assert no_leftovers(models_dir, "plain.gguf")

    assert dl.get_download(model_id="smol-plain").download_id == started.download_id
    listed = dl.list_downloads(model_id="smol-plain", statuses=["completed"])
    assert [d.download_id for d in listed] == [started.download_id]


def test_catalog_name_supplies_url_file_name_and_checksum(dl, gguf_sha256, models_dir):
    started = dl.start_download(catalog_name="smollm2-test")
    assert started.catalog_name == "smollm2-test" and started.filename == "catalog-smollm2.gguf"
    assert started.model_id == "catalog-smollm2" and started.expected_sha256 == gguf_sha256
    assert finish(dl, started.download_id)[-1].status == "completed"

    with pytest.raises(NotFoundError) as error:
        dl.start_download(catalog_name="no-such-model")
    assert error.value.reason == "CATALOG_MODEL_NOT_FOUND"


def test_auto_load_creates_an_engine_that_answers(dl, files, models_dir):
    started = dl.start_download(files.url(GGUF), model_id="smol-auto", filename="auto.gguf",
                                auto_load=True)
    statuses = [e.status for e in finish(dl, started.download_id)]
    assert statuses[-2:] == ["creating_engine", "completed"]
    answer = dl.complete(messages=CAPITAL_QUESTION, model="smol-auto", temperature=0, max_tokens=8)
    assert "Paris" in answer.text and answer.model == "smol-auto"


@pytest.mark.parametrize("case", ["wrong_sha256", "truncated", "not_found"])
def test_failures_end_in_failed_with_a_reason_and_leave_no_file(case, dl, files, models_dir,
                                                                gguf_size):
    filename = f"fail-{case}.gguf"
    url, sha = files.url(GGUF), None
    if case == "wrong_sha256":
        sha = "ab" * 32
    elif case == "truncated":
        files.truncate_at = 5 * MiB  # every response, ranged retries too, stops there
    else:
        url = files.url("missing.gguf")
    started = dl.start_download(url, filename=filename, expected_sha256=sha)
    done = finish(dl, started.download_id)[-1]

    assert done.status == "failed"
    expected = {"wrong_sha256": ("CHECKSUM_MISMATCH", "ab" * 32),
                "truncated": ("TRUNCATED", f"after {5 * MiB} of {gguf_size} bytes"),
                "not_found": ("HTTP_ERROR", "HTTP 404")}[case]
    assert done.error_reason == expected[0]
    assert expected[1] in done.error
    if case == "not_found":
        assert done.http_status == 404
    assert not (models_dir / filename).exists()
    assert no_leftovers(models_dir, filename)


def test_an_interrupted_connection_resumes_with_range(dl, files, gguf_sha256, gguf_size):
    files.cut_next_at = 6 * MiB  # the first response drops after 6 MiB
    mark = files.mark()
    started = dl.start_download(files.url(GGUF), filename="resumed.gguf",
                                expected_sha256=gguf_sha256)
    done = finish(dl, started.download_id)[-1]
    assert done.status == "completed" and done.sha256 == gguf_sha256
    requests = files.requests[mark:]
    assert [(r.status, r.range) for r in requests] == [(200, None), (206, f"bytes={6 * MiB}-")]
    assert files.bytes_sent_since(mark) == gguf_size  # not one byte fetched twice


def test_a_resume_after_the_file_changed_starts_over(dl, files, gguf_size):
    files.pause(4 * MiB)
    mark = files.mark()
    started = dl.start_download(files.url(GGUF), filename="changed.gguf")
    wait_for(lambda: dl.get_download(started.download_id).downloaded_bytes == 4 * MiB, timeout=60)
    served = files.root / GGUF
    stat = served.stat()
    os.utime(served, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a new ETag
    files.drop_paused()  # the connection drops; the retry sends Range with If-Range
    done = finish(dl, started.download_id)[-1]
    assert done.status == "completed" and done.resumed_from_bytes == 0
    assert done.downloaded_bytes == gguf_size
    requests = files.requests[mark:]
    assert [(r.status, r.range) for r in requests] == [(200, None), (200, f"bytes={4 * MiB}-")]


def test_disk_space_is_checked_before_any_byte_is_written(dl, dl_server, files, models_dir):
    limits = dl_server.settings.downloads
    free = shutil.disk_usage(models_dir).free
    try:
        limits.reserve_free_bytes = free + 1024**4  # already below the reserve: refused at once
        with pytest.raises(ResourceExhaustedError) as error:
            dl.start_download(files.url(GGUF), filename="nospace.gguf")
        assert error.value.reason == "INSUFFICIENT_STORAGE"

        limits.reserve_free_bytes = free - 40 * MiB  # room for 40 MiB, the file needs ~94 MiB
        started = dl.start_download(files.url(GGUF), filename="nospace.gguf")
        done = finish(dl, started.download_id)[-1]
        assert done.status == "failed" and done.error_reason == "INSUFFICIENT_STORAGE"
        assert done.downloaded_bytes == 0 and "downloads.reserve_free_bytes" in done.error
        assert no_leftovers(models_dir, "nospace.gguf")
    finally:
        limits.reserve_free_bytes = 0


def test_concurrent_downloads_are_bounded(dl, dl_server, files):
    limits = dl_server.settings.downloads
    files.pause(1 * MiB)
    try:
        limits.max_concurrent = 1
        first = dl.start_download(files.url(GGUF), filename="bounded-1.gguf")
        with pytest.raises(ResourceExhaustedError) as error:
            dl.start_download(files.url(GGUF), filename="bounded-2.gguf")
        assert error.value.reason == "TOO_MANY_DOWNLOADS"
        assert dl.cancel_download(first.download_id).cancelled
    finally:
        limits.max_concurrent = 4


def test_cancel_stops_the_download_and_deletes_the_temp_file(dl, files, models_dir):
    files.pause(4 * MiB)
    started = dl.start_download(files.url(GGUF), model_id="smol-cancel", filename="cancel.gguf")
    wait_for(lambda: dl.get_download(started.download_id).downloaded_bytes == 4 * MiB, timeout=60)
    assert (models_dir / ".partial" / "cancel.gguf.part").stat().st_size == 4 * MiB

    result = dl.cancel_download(model_id="smol-cancel")
    assert result.cancelled and result.previous_status == "downloading"
    assert result.download.status == "cancelled"
    assert no_leftovers(models_dir, "cancel.gguf") and not (models_dir / "cancel.gguf").exists()
    assert finish(dl, started.download_id)[-1].status == "cancelled"

    again = dl.cancel_download(started.download_id)
    assert not again.cancelled and again.previous_status == "cancelled"


def test_cancel_all_reports_the_documented_summary(dl, files, models_dir):
    files.pause(2 * MiB)
    running = [dl.start_download(files.url(GGUF), filename=f"bulk-{i}.gguf") for i in range(2)]
    known = len(dl.list_downloads())
    result = dl.cancel_all_downloads()
    assert result.total_downloads == known
    assert result.successful_cancellations == 2 == result.regular_cancellations
    assert result.startup_cancellations == 0
    assert result.failed_cancellations == known - 2 == len(result.not_cancelled)
    assert {c[0] for c in result.cancelled} == {d.download_id for d in running}
    assert all(c[2] == "downloading" for c in result.cancelled)
    assert all(reason.startswith("Already ") for *_, reason in result.not_cancelled)
    for i in range(2):
        assert no_leftovers(models_dir, f"bulk-{i}.gguf")


def test_watch_downloads_streams_every_download(dl, files):
    files.pause(1 * MiB)  # keep it running until the stream is surely subscribed
    started = dl.start_download(files.url(GGUF), filename="watched.gguf")
    seen: list = []
    subscribed = threading.Event()
    stream = dl.watch_downloads(timeout=240)

    def consume():
        for event in stream:
            seen.append(event)
            if event.download_id == started.download_id:
                subscribed.set()  # the stream opens with the state of every known download
                if event.terminal:
                    return

    reader = threading.Thread(target=consume)
    reader.start()
    assert subscribed.wait(60)
    files.release()
    reader.join(240)
    stream.close()
    mine = [e for e in seen if e.download_id == started.download_id]
    assert mine[0].status == "downloading" and mine[-1].status == "completed"


BAD_INPUTS = [
    ("filename", "../x.gguf", "contains a path separator"),
    ("filename", "..", "contains '..'"),
    ("filename", "/etc/passwd", "is an absolute path"),
    ("filename", "%2e%2e", "contains '..' once percent-decoded"),
    ("filename", "%2e%2e%2fx.gguf", "once percent-decoded"),
    ("filename", "a\x00b.gguf", "contains a NUL character"),
    ("filename", ".partial", "may only hold"),
    ("model_id", "../x", "contains a path separator"),
    ("model_id", "/abs", "is an absolute path"),
    ("model_id", "%2e%2e", "once percent-decoded"),
    ("model_id", "a\x00b", "contains a NUL character"),
    ("url", "file:///etc/passwd", "only http:// and https://"),
    ("url", "ftp://127.0.0.1/x.gguf", "only http:// and https://"),
    ("url", "http://user:secret@127.0.0.1/x.gguf", "credentials"),
    ("url", "not a url", "spaces or control characters"),
    ("expected_sha256", "abc", "64 hexadecimal digits"),
]


@pytest.mark.parametrize("field,value,why", BAD_INPUTS)
def test_bad_names_and_urls_are_invalid_argument(dl, files, field, value, why):
    request = {"url": files.url(GGUF), "filename": "ok.gguf"}
    request[field] = value
    with pytest.raises(InvalidArgumentError) as error:
        dl.start_download(**request)
    (violation,) = error.value.violations
    assert violation.field == field and why in violation.description


@pytest.mark.parametrize("field,value,why", BAD_INPUTS)
def test_bad_names_and_urls_are_400_over_rest_naming_the_field(dl_http, files, field, value, why):
    body = {"url": files.url(GGUF), "filename": "ok.gguf", field: value}
    refused = dl_http.post("/v1/model-downloads", json=body)
    assert refused.status_code == 400
    violations = [v for d in refused.get_json()["details"] for v in d.get("fieldViolations", ())]
    assert [v["field"] for v in violations] == [field]
    assert why in violations[0]["description"]


def test_traversal_in_the_url_path_is_refused(dl, files):
    with pytest.raises(InvalidArgumentError) as error:
        dl.start_download(files.url("%2e%2e"))
    assert error.value.violations[0].field == "filename"
    assert "once percent-decoded" in error.value.violations[0].description


def test_an_existing_file_needs_force(dl, files, models_dir, gguf_sha256):
    (models_dir / "exists.gguf").write_bytes(b"old")
    with pytest.raises(AlreadyExistsError) as error:
        dl.start_download(files.url(GGUF), filename="exists.gguf")
    assert error.value.reason == "FILE_EXISTS"
    started = dl.start_download(files.url(GGUF), filename="exists.gguf", force=True)
    assert finish(dl, started.download_id)[-1].status == "completed"
    assert hashlib.sha256((models_dir / "exists.gguf").read_bytes()).hexdigest() == gguf_sha256


def test_a_second_download_of_the_same_model_is_refused_while_one_runs(dl, files):
    files.pause(1 * MiB)
    first = dl.start_download(files.url(GGUF), model_id="smol-dup", filename="dup.gguf")
    with pytest.raises(AlreadyExistsError) as error:
        dl.start_download(files.url(GGUF), model_id="smol-dup", filename="dup2.gguf")
    assert error.value.reason == "DOWNLOAD_IN_PROGRESS"
    assert dl.cancel_download(first.download_id).cancelled


def test_redirects_are_followed_bounded_and_rechecked(dl, files, gguf_sha256):
    files.redirects["/hop1"] = "/hop2"
    files.redirects["/hop2"] = files.url(GGUF)
    started = dl.start_download(files.url("hop1"), filename="redirected.gguf")
    assert finish(dl, started.download_id)[-1].sha256 == gguf_sha256

    files.redirects["/loop"] = "/loop"
    looped = finish(dl, dl.start_download(files.url("loop"), filename="loop.gguf").download_id)[-1]
    assert looped.status == "failed" and looped.error_reason == "TOO_MANY_REDIRECTS"

    files.redirects["/to-ftp"] = "ftp://127.0.0.1/x.gguf"
    ftp = finish(dl, dl.start_download(files.url("to-ftp"), filename="ftp.gguf").download_id)[-1]
    assert ftp.status == "failed" and ftp.error_reason == "REDIRECT_REFUSED"
    assert "ftp://" in ftp.error


def test_https_verifies_the_certificate_against_the_host_name(dl, tmp_path, gguf_sha256,
                                                              monkeypatch):
    copy_embedded_gguf(tmp_path, GGUF)
    secure = FileServer(tmp_path, tls=True).start()
    try:
        untrusted = dl.start_download(secure.url(GGUF), filename="tls-untrusted.gguf")
        done = finish(dl, untrusted.download_id)[-1]
        assert done.status == "failed" and done.error_reason == "TLS_ERROR"
        assert "certificate" in done.error

        # Trust the test certificate (OpenSSL reads SSL_CERT_FILE for the default trust store).
        # The URL names "localhost": the connection goes to the vetted address, while SNI and
        # the certificate check use the host name.
        monkeypatch.setenv("SSL_CERT_FILE", str(TLS_CERT))
        trusted = dl.start_download(secure.url(GGUF, host="localhost"), filename="tls.gguf",
                                    expected_sha256=gguf_sha256)
        done = finish(dl, trusted.download_id)[-1]
        assert done.status == "completed", done.error
    finally:
        secure.stop()


def test_unknown_download_is_not_found(dl):
    with pytest.raises(NotFoundError) as error:
        dl.get_download("dl-0000000000000000")
    assert error.value.reason == "DOWNLOAD_NOT_FOUND"
    with pytest.raises(NotFoundError):
        dl.cancel_download(model_id="never-downloaded")
    with pytest.raises(InvalidArgumentError):
        dl.get_download()


def test_loopback_urls_are_refused_unless_allowed(files, tmp_path):
    settings = make_settings(model_store={"directory": str(tmp_path)})
    assert settings.downloads.allow_private_addresses is False
    strict = ServerThread(settings).start()
    try:
        with Client(strict.target, timeout=60) as client:
            for url in (files.url(GGUF), f"http://localhost:{files.port}/{GGUF}",
                        f"http://[::ffff:127.0.0.1]:{files.port}/{GGUF}"):
                with pytest.raises(PermissionDeniedError) as error:
                    client.start_download(url)
                assert error.value.reason == "PRIVATE_ADDRESS_REFUSED"
                assert "allow_private_addresses" in error.value.message
            assert client.list_downloads() == []
        assert not any(tmp_path.iterdir())
    finally:
        strict.stop()


def test_download_rpcs_are_admin_only_in_the_contract():
    from tokenwire.v1 import access_pb2, download_service_pb2

    service = download_service_pb2.DESCRIPTOR.services_by_name["DownloadService"]
    admin = {m.name for m in service.methods
             if m.GetOptions().Extensions[access_pb2.access] == access_pb2.ACCESS_ADMIN}
    assert admin == {"StartDownload", "CancelDownload", "CancelAllDownloads"}


def test_reflection_and_health_list_the_download_service(dl, dl_server):
    assert dl.health("tokenwire.v1.DownloadService") == "SERVING"
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(dl_server.target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answer = next(stub.ServerReflectionInfo(iter([
            reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in answer.list_services_response.service}
    assert "tokenwire.v1.DownloadService" in names


def test_a_stopped_server_keeps_the_partial_file_and_resumes_it_at_start(files, gguf_sha256,
                                                                        tmp_path):
    settings = make_settings(model_store={"directory": str(tmp_path)},
                             downloads={"allow_private_addresses": True})
    files.pause(3 * MiB)
    first = ServerThread(settings).start()
    client = Client(first.target, timeout=60)
    stopped = False
    try:
        started = client.start_download(files.url(GGUF), filename="graceful.gguf",
                                        expected_sha256=gguf_sha256)
        wait_for(lambda: client.get_download(started.download_id).downloaded_bytes == 3 * MiB,
                 timeout=60)
        watcher = client.watch_download(started.download_id)
        next(watcher)
        first.stop()  # the SIGTERM path: transfers stop, partial files stay
        stopped = True
        with pytest.raises(UnavailableError) as ended:  # watchers learn the server went away
            list(watcher)
        assert ended.value.reason == "SERVER_DRAINING"
    finally:
        client.close()
        if not stopped:
            first.stop()
    partial = tmp_path / ".partial"
    assert (partial / "graceful.gguf.part").stat().st_size == 3 * MiB
    assert (partial / "graceful.gguf.json").exists() and not (tmp_path / "graceful.gguf").exists()

    files.release()
    second = ServerThread(settings).start()
    try:
        with Client(second.target, timeout=240) as client:
            done = finish(client, started.download_id)[-1]
        assert done.status == "completed" and done.sha256 == gguf_sha256
        assert done.resumed_from_bytes == 3 * MiB and done.download_type == "startup"
    finally:
        second.stop()


def test_the_native_rest_form_comes_from_the_annotations(http):
    listed = http.get("/v1/model-downloads")
    assert listed.status_code == 200 and listed.get_json().get("downloads", []) == []
    refused = http.post("/v1/model-downloads", json={"url": "file:///etc/passwd"})
    assert refused.status_code == 400
    assert refused.get_json()["details"][0]["reason"] == "INVALID_URL"
    missing = http.get("/v1/model-downloads/dl-0000000000000000")
    assert missing.status_code == 404


def settings_with_models(models: list[dict], **sections):
    """make_settings() plus a models[] list, as a config file would give it."""
    return load_settings(environ={}, overrides={
        "server": {"host": "127.0.0.1", "grpc_port": 0}, "models": models, **sections})


def test_a_model_configured_by_url_is_downloaded_at_startup_then_served(files, gguf_sha256,
                                                                       tmp_path):
    settings = settings_with_models(
        [{"id": "fetched", "path": files.url(GGUF), "sha256": gguf_sha256}],
        model_store={"directory": str(tmp_path)}, downloads={"allow_private_addresses": True})
    files.pause(2 * MiB)
    mark = files.mark()
    first = ServerThread(settings).start()
    try:
        with Client(first.target, timeout=240) as client:
            download = client.get_download(model_id="fetched")
            assert download.download_type == "startup" and download.auto_load
            assert client.health() == "NOT_SERVING"  # the default engine waits for its file
            files.release()
            statuses = [e.status for e in client.watch_download(download.download_id)]
            assert statuses[-2:] == ["creating_engine", "completed"]
            assert client.health() == "SERVING"
            answer = client.complete(messages=CAPITAL_QUESTION, temperature=0, max_tokens=8)
            assert "Paris" in answer.text and answer.model == "fetched"
    finally:
        first.stop()
    fetched = files.bytes_sent_since(mark)

    second = ServerThread(settings).start()  # the file is there now: no second download
    try:
        with Client(second.target, timeout=240) as client:
            assert client.list_downloads() == []
            assert client.health() == "SERVING"
        assert files.bytes_sent_since(mark) == fetched
    finally:
        second.stop()


def test_a_startup_download_cut_by_a_stop_resumes_at_the_next_start(files, gguf_sha256, tmp_path):
    settings = settings_with_models(
        [{"id": "fetched", "path": files.url(GGUF), "sha256": gguf_sha256}],
        model_store={"directory": str(tmp_path)}, downloads={"allow_private_addresses": True})
    files.pause(2 * MiB)
    first = ServerThread(settings).start()
    try:
        with Client(first.target, timeout=60) as client:
            started = client.get_download(model_id="fetched")
            wait_for(lambda: client.get_download(started.download_id).downloaded_bytes == 2 * MiB,
                     timeout=60)
    finally:
        first.stop()
    files.release()

    # The manager resumes the interrupted download; the preload must not start a second one.
    second = ServerThread(settings).start()
    try:
        with Client(second.target, timeout=240) as client:
            (download,) = client.list_downloads()
            assert download.download_id == started.download_id
            assert download.resumed_from_bytes == 2 * MiB
            assert [e.status for e in client.watch_download(download.download_id)][-1] == "completed"
            wait_for(lambda: client.health() == "SERVING", timeout=60)
            answer = client.complete(messages=CAPITAL_QUESTION, temperature=0, max_tokens=8)
            assert "Paris" in answer.text and answer.model == "fetched"
    finally:
        second.stop()


def test_a_bad_model_url_in_the_config_is_a_config_error():
    for url, problem in (("ftp://example.com/m.gguf", "only http:// and https://"),
                         ("https://example.com/a/%2e%2e", "once percent-decoded")):
        with pytest.raises(ConfigError) as error:
            settings_with_models([{"id": "m", "path": url}])
        assert "models.0.path" in str(error.value) and problem in str(error.value)


def test_a_failed_add_engine_download_frees_the_engine_id(dl_server, dl, files):
    """AddEngine with a URL reserves the engine id while it downloads; a download that fails
    gives the id back, so the user can retry with a good URL."""
    from tokenwire.v1 import engine_service_pb2 as engine_pb
    from tokenwire.v1 import engine_service_pb2_grpc as engine_grpc

    with grpc.insecure_channel(dl_server.target) as channel:
        engines = engine_grpc.EngineServiceStub(channel)
        first = engines.AddEngine(engine_pb.AddEngineRequest(engine_id="retry-me",
                                                             model=files.url("missing.gguf")))
        assert finish(dl, first.download_id)[-1].status == "failed"
        retry = engines.AddEngine(engine_pb.AddEngineRequest(engine_id="retry-me",
                                                             model=files.url(GGUF)))
        assert finish(dl, retry.download_id)[-1].status == "completed"
        assert engines.GetEngine(engine_pb.GetEngineRequest(engine_id="retry-me")).engine
