"""`tokenwire chat` as a user runs it: lines on stdin, answers on stdout, history on the server."""

from __future__ import annotations

import subprocess
import uuid

from tests.e2e.cli_process import TOKENWIRE
from tokenwire import Client


def chat(target: str, *args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([TOKENWIRE, "chat", "--target", target, "--temperature", "0",
                           "--max-tokens", "8", *args], input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_an_interactive_chat_keeps_its_session_across_runs(server):
    session_id = f"cli-{uuid.uuid4()}"
    first = chat(server.target, "--session", session_id, "--system", "Answer in one word.",
                 stdin="What is the capital of France?\n/session\n")
    assert first.returncode == 0, first.stderr
    assert "Paris" in first.stdout and session_id in first.stdout

    # A second run continues the same session: the server kept the history.
    second = chat(server.target, "--session", session_id,
                  stdin="And of Italy?\n/history\n/rollback 2\n/rollback 9\n/quit\n")
    assert second.returncode == 0, second.stderr
    assert "user: What is the capital of France?" in second.stdout
    assert "user: And of Italy?" in second.stdout
    assert "[rolled back 2; 2 messages left]" in second.stdout
    assert "message_count" in second.stderr  # the impossible rollback is reported, the chat goes on
    with Client(server.target) as client:
        assert [m["content"] for m in client.history(session_id) if m["role"] == "user"] == [
            "What is the capital of France?"]
