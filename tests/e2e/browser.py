"""A headless Chromium driven over the DevTools protocol (a WebSocket), for tests that must wait
for a page to reach a state rather than read it once (`--dump-dom` cannot wait for a stream)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import tempfile
import threading

import pytest
from websockets.sync.client import connect

from tests.helpers import wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# A sandboxed, offline machine: no first-run work, no background network traffic.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEVTOOLS_LINE = re.compile(r"DevTools listening on (ws://\S+)")


class Page:
    def __init__(self, browser: "Browser", session_id: str):
        self._browser, self._session = browser, session_id

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (awaited when it is a promise)."""
        result = self._browser.call("Runtime.evaluate", {
            "expression": expression, "returnByValue": True, "awaitPromise": True},
            session=self._session)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0):
        """Polls until the expression is truthy; while the page is still loading it may throw,
        which counts as not yet."""
        def value():
            try:
                return self.evaluate(expression)
            except AssertionError:
                return None

        return wait_for(value, timeout=timeout, interval=0.1)


class Browser:
    """`with Browser() as browser: page = browser.open(url)`; a fresh profile every time."""

    def __enter__(self) -> "Browser":
        if CHROMIUM is None:
            pytest.fail("chromium is not installed (Debian: apt-get install chromium; .ci/run does it)")
        # A helper process may still be writing as the browser exits: never fail on cleanup.
        self._profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        self._proc = subprocess.Popen(
            [CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile.name}",
             "--remote-debugging-port=0", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        found: list[str] = []
        ready = threading.Event()

        def read_stderr() -> None:  # keeps reading, so a chatty browser never blocks on the pipe
            for line in self._proc.stderr:
                match = DEVTOOLS_LINE.search(line)
                if match and not found:
                    found.append(match.group(1))
                    ready.set()

        threading.Thread(target=read_stderr, daemon=True).start()
        if not ready.wait(60):
            self._proc.kill()
            raise AssertionError("chromium did not open its DevTools endpoint")
        self._connection = connect(found[0], max_size=None, open_timeout=30)
        self._ws = self._connection.__enter__()
        self._ids = itertools.count(1)
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.call("Browser.close")  # lets Chromium finish writing its profile
            self._connection.__exit__(None, None, None)
            self._proc.wait(30)
        except Exception:
            self._proc.kill()
            self._proc.wait(30)
        finally:
            self._profile.cleanup()

    def call(self, method: str, params: dict | None = None, *, session: str | None = None) -> dict:
        message_id = next(self._ids)
        message = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:  # events arrive in between; only our answer matters
            answer = json.loads(self._ws.recv(timeout=60))
            if answer.get("id") == message_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer["result"]

    def open(self, url: str) -> Page:
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})
        return Page(self, session["sessionId"])
