"""The reference documents' own client code, run unchanged with the runtime it is written for,
against the bridge as `tokenwire serve` runs it (werkzeug's threaded server, in-process).

The snippets live in tests/reference_snippets/ as the documents print them; a test substitutes
only the document's host and example model name (the document's model is not served here).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

SNIPPETS = Path(__file__).resolve().parents[1] / "reference_snippets"
# Hang protection only: a loaded 2-core machine may take long for a generation.
NODE_TIMEOUT_S = 600


def _node() -> str:
    node = shutil.which("node")
    assert node, "Node.js is needed to run the reference documents' JavaScript examples"
    return node


def _websocket_flags(node: str) -> list[str]:
    """Node 22 has a global WebSocket; Node 20 and 21 have it behind a flag."""
    probe = subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"],
                           capture_output=True, timeout=60)
    return [] if probe.returncode == 0 else ["--experimental-websocket"]


def _snippet(name: str, tmp_path: Path, replacements: dict[str, str]) -> Path:
    code = (SNIPPETS / name).read_text()
    for old, new in replacements.items():
        assert old in code, f"{name} no longer holds {old!r}"
        code = code.replace(old, new)
    script = tmp_path / name
    script.write_text(code)
    return script


# -- Rust LLM Inference Service (003): WS /chat/ws -----------------------------------------------


def test_the_documents_websocket_client_sees_the_answer_and_a_clean_close(bridge, tmp_path):
    node = _node()
    ws_base = bridge.base_url.replace("http://", "ws://")
    script = _snippet("rust_websocket_client.mjs", tmp_path,
                      {"ws://localhost:3000": ws_base, "Qwen/Qwen2.5-0.5B-Instruct": "default"})
    done = subprocess.run([node, *_websocket_flags(node), "--import",
                           (SNIPPETS / "record_close.mjs").as_uri(), str(script)],
                          capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    assert "WebSocket error" not in done.stderr and "Error:" not in done.stderr, done.stderr
    assert "[close] code=1000 clean=true\n" in done.stdout, done.stdout
    assert done.stdout.splitlines()[-1] == "Connection closed", done.stdout
    answer = done.stdout.split("[close]")[0]
    assert answer.strip(), done.stdout


def test_fifty_websocket_sessions_in_a_row_each_close_cleanly(bridge):
    """The close handshake completes every time: no HTTP response after the close frame (which
    left Node's WebSocket in CLOSING without `close`, about 5 runs in 12)."""
    node = _node()
    url = bridge.base_url.replace("http://", "ws://") + "/chat/ws"
    done = subprocess.run([node, *_websocket_flags(node), str(SNIPPETS / "ws_sessions.mjs"), url,
                           "default", "50", "15"],
                          capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    sessions = [json.loads(line) for line in done.stdout.splitlines()]
    unclean = [s for s in sessions if s.get("code") != 1000 or s.get("clean") is not True]
    assert not unclean, unclean
    assert len(sessions) == 50
    assert all(s["text"] and not s["text"].startswith("__ERROR__") for s in sessions), sessions


CLOSE_1000 = b"\x88\x02\x03\xe8"  # a server's close frame with code 1000 (unmasked)


def _open_websocket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /chat/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                 f"Sec-WebSocket-Version: 13\r\n\r\n".encode())
    head = b""
    while b"\r\n\r\n" not in head:  # a client sends nothing before the 101 (RFC 6455, 4.1)
        chunk = sock.recv(1)
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    assert len(payload) < 126
    mask = os.urandom(4)
    return (bytes([0x80 | opcode, 0x80 | len(payload)]) + mask
            + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    """Unmasked server frames; raises on bytes that are not a frame (an HTTP response)."""
    frames, at = [], 0
    while at < len(data):
        opcode, length = data[at] & 0x0F, data[at + 1] & 0x7F
        assert data[at] & 0x70 == 0 and opcode in (0x1, 0x2, 0x8, 0x9, 0xA), data[at:]
        assert data[at + 1] & 0x80 == 0 and length < 126, data[at:]
        frames.append((opcode, data[at + 2:at + 2 + length]))
        at += 2 + length
    return frames


def test_nothing_follows_the_close_frame_and_the_server_closes_after_the_reply(bridge):
    """On the wire: text frames, the close frame, and after the client's close reply the end of
    the connection; never werkzeug's `HTTP/1.1 200 OK` on the upgraded socket."""
    sock = _open_websocket(bridge.port)
    with sock:
        body = {"model-name": "default", "prompt": "Say hi", "max-token": 2, "temperature": 0}
        sock.sendall(_masked_frame(0x1, json.dumps(body).encode()))
        data = b""
        while CLOSE_1000 not in data:
            chunk = sock.recv(65536)
            assert chunk, data  # the connection ended before the close frame
            data += chunk
        sock.sendall(_masked_frame(0x8, b"\x03\xe8"))  # the client's close reply
        rest = b""
        while chunk := sock.recv(65536):  # the server ends the connection once it has the reply
            rest += chunk
    frames = _frames(data + rest)
    assert frames[-1] == (0x8, b"\x03\xe8") and [op for op, _ in frames[:-1]] == [0x1] * (len(frames) - 1)
    assert b"HTTP/1.1" not in data + rest


# -- Kolosal Server (000): the Node.js client's getMetrics() with axios ------------------------


@pytest.fixture(scope="module")
def node_modules(tmp_path_factory) -> Path:
    """A folder with the snippets' npm dependencies (pinned in tests/reference_snippets/
    package-lock.json), installed with `npm ci`; scripts placed in it resolve them."""
    npm = shutil.which("npm")
    assert npm, "npm is needed to install the reference documents' Node.js dependencies"
    folder = tmp_path_factory.mktemp("reference-snippets")
    for name in ("package.json", "package-lock.json"):
        shutil.copy(SNIPPETS / name, folder / name)
    done = subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=folder,
                          capture_output=True, text=True, timeout=NODE_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    return folder


def test_the_documents_node_client_reads_the_json_metrics(bridge, node_modules):
    """KolosalClient as the document writes it (axios, its default Accept header
    `application/json, text/plain, */*`), and the document's own getMetrics() usage lines."""
    code = (SNIPPETS / "kolosal_client.js").read_text()
    client_class, usage = code.split("// Usage\n")
    construct = "const client = new KolosalClient('http://localhost:8080', 'sk-your-key');"
    get_metrics = ("        const metrics = await client.getMetrics();\n"
                   "        console.log(`CPU: ${metrics.system.cpu.usage_percent}%`);\n")
    assert construct in usage and get_metrics in usage
    script = node_modules / "get_metrics.js"
    script.write_text(client_class + construct.replace("http://localhost:8080", bridge.base_url)
                      + "\n(async () => {\n" + get_metrics + "})();\n")
    done = subprocess.run([_node(), str(script)], capture_output=True, text=True,
                          timeout=NODE_TIMEOUT_S)
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip()
    assert line.startswith("CPU: ") and line.endswith("%"), done.stdout
    float(line[len("CPU: "):-1])  # a number, not "undefined" (Prometheus text has no .system)
