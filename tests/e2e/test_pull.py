"""Downloads as users run them: `tokenwire serve` in a subprocess (killed mid-download and started
again), and `tokenwire pull` with its progress bar and exit codes."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from tests.e2e.cli_process import TOKENWIRE, ServeProcess
from tests.file_server import serving_embedded_gguf
from tests.helpers import wait_for
from tokenwire import Client

MiB = 1024 * 1024
GGUF = "smollm2.gguf"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    with serving_embedded_gguf(tmp_path_factory.mktemp("served"), GGUF) as served:
        yield served


@pytest.fixture(scope="module")
def gguf(files) -> tuple[int, str]:
    data = (files.root / GGUF).read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def serve(models_dir) -> ServeProcess:
    return ServeProcess("--models-dir", str(models_dir), "--allow-private-downloads",
                        env={"TOKENWIRE_DOWNLOADS_PROGRESS_INTERVAL_SECONDS": "0.05"})


def test_sigkill_mid_download_then_restart_resumes_without_refetching(files, gguf, tmp_path):
    size, sha = gguf
    final = tmp_path / "resume.gguf"
    part = tmp_path / ".partial" / "resume.gguf.part"
    files.pause(24 * MiB)
    first = serve(tmp_path).start()
    try:
        with Client(first.target, timeout=60) as client:
            started = client.start_download(files.url(GGUF), model_id="smol-resume",
                                            filename="resume.gguf", expected_sha256=sha)
            wait_for(lambda: client.get_download(started.download_id).downloaded_bytes == 24 * MiB,
                     timeout=60)
        first.proc.kill()  # SIGKILL: no shutdown code runs
        first.proc.wait(10)
    finally:
        first.kill()
    files.release()  # the old response runs into the dead connection
    assert not final.exists()
    assert part.stat().st_size == 24 * MiB

    mark = files.mark()
    files.pause(60 * MiB)  # hold the resumed download to look at it mid-way
    second = serve(tmp_path).start()
    try:
        with Client(second.target, timeout=240) as client:
            wait_for(files.paused.is_set, timeout=60)
            resumed = client.get_download(started.download_id)  # same id after the restart
            assert resumed.status == "downloading" and resumed.download_type == "startup"
            assert resumed.resumed_from_bytes == 24 * MiB and resumed.model_id == "smol-resume"
            assert not final.exists()
            files.release()
            done = list(client.watch_download(started.download_id))[-1]
        assert done.status == "completed", done.error
        assert done.sha256 == sha
        assert hashlib.sha256(final.read_bytes()).hexdigest() == sha
        assert not part.exists() and not (tmp_path / ".partial" / "resume.gguf.json").exists()
        assert files.requests[mark].range == f"bytes={24 * MiB}-"
        refetched = files.bytes_sent_since(mark) - (size - 24 * MiB)
        assert refetched < 2 * MiB
        assert second.terminate() == 0
    finally:
        second.kill()


def pull(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([TOKENWIRE, "pull", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_tokenwire_pull_shows_progress_and_exit_codes(files, gguf, tmp_path):
    size, sha = gguf
    served = serve(tmp_path).start()
    try:
        ok = pull(files.url(GGUF), "--target", served.target, "--sha256", sha,
                  "--model-id", "pulled")
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == str(tmp_path / GGUF)
        assert "100.0%" in ok.stderr and "done:" in ok.stderr and sha in ok.stderr
        assert hashlib.sha256((tmp_path / GGUF).read_bytes()).hexdigest() == sha

        again = pull(files.url(GGUF), "--target", served.target)
        assert again.returncode == 2 and "ALREADY_EXISTS" in again.stderr and "force" in again.stderr

        bad = pull("ftp://127.0.0.1/x.gguf", "--target", served.target)
        assert bad.returncode == 2 and "url:" in bad.stderr and "http://" in bad.stderr

        missing = pull(files.url("missing.gguf"), "--target", served.target)
        assert missing.returncode == 1
        assert "failed" in missing.stderr and "HTTP 404" in missing.stderr and "[HTTP_ERROR]" in missing.stderr

        unknown = pull("no-such-catalog-model", "--target", served.target)
        assert unknown.returncode == 2 and "NOT_FOUND" in unknown.stderr

        assert served.terminate() == 0
    finally:
        served.kill()
    unreachable = pull(files.url(GGUF), "--target", served.target, timeout=60)
    assert unreachable.returncode == 3 and "cannot reach" in unreachable.stderr
