"""One `tokenwire serve` requiring an API key, shared by the generated clients' live tests, and
the helpers that run each language's own test runner against it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import sentinel
from tests.e2e.cli_process import ServeProcess
from tests.sentinel import SENTINEL, USER_KEY

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "clients"


def require(tool: str) -> str:
    """The path of a tool the tests need; fails (never skips) when it is missing."""
    path = shutil.which(tool)
    if not path:
        pytest.fail(f"{tool} is not installed: `make system-deps` installs it "
                    "(tools/system-packages.d/clients.txt)")
    return path


def run(cmd: list[str], *, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 600) -> str:
    """Runs a command to the end; its output joins the key-leak check; fails with the output."""
    out = subprocess.run(cmd, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True,
                         text=True, timeout=timeout)
    text = out.stdout + out.stderr
    sentinel.captured_output.append(text)
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}:\n{text[-8000:]}"
    return text


def npm_ci() -> None:
    """clients/typescript's packages from its lockfile, when missing or older than the lockfile
    (what `make client-deps` does)."""
    ts = CLIENTS / "typescript"
    stamp = ts / "node_modules" / ".installed"
    lock = ts / "package-lock.json"
    if not stamp.exists() or stamp.stat().st_mtime < lock.stat().st_mtime:
        run([require("npm"), "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=ts)
        stamp.touch()


@pytest.fixture(scope="session")
def secured_serve():
    """The real server and embedded model, every call but health requiring USER_KEY."""
    process = ServeProcess("--rate-limit", "100000",
                           env={"KOLOSAL_API_KEY": USER_KEY, "KOLOSAL_REQUIRE_API_KEY": "true"})
    process.start(wait_serving=True)
    try:
        yield process
    finally:
        process.terminate()
        out, err = process.output(timeout=60)
        sentinel.captured_output.extend([out, err])
        assert SENTINEL not in out + err


@pytest.fixture
def client_env(secured_serve) -> dict[str, str]:
    return {"TOKENWIRE_TARGET": secured_serve.target, "TOKENWIRE_API_KEY": USER_KEY}
