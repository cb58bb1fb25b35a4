"""The Go client (clients/go) against a live server, with `go test`.

No Go module proxy is reachable here, so the client builds in GOPATH mode (GO111MODULE=off)
against Debian's packaged modules in /usr/share/gocode: a GOPATH whose src/ holds the client under
its import path (a symlink), followed by Debian's tree."""

from __future__ import annotations

import re

from tests.clients.conftest import CLIENTS, require, run

IMPORT_PATH = "github.com/tokenwire/tokenwire/clients/go"


def go_env(tmp_path) -> dict[str, str]:
    link = tmp_path / "src" / IMPORT_PATH
    link.parent.mkdir(parents=True)
    link.symlink_to(CLIENTS / "go", target_is_directory=True)
    return {"GO111MODULE": "off", "GOPATH": f"{tmp_path}:/usr/share/gocode", "GOFLAGS": "",
            "GOPROXY": "off"}


def test_go_client_live(client_env, tmp_path):
    go = require("go")
    env = {**go_env(tmp_path), **client_env}
    unformatted = run([require("gofmt"), "-l", "client.go", "errors.go", "client_live_test.go",
                       "cmd"], cwd=CLIENTS / "go")
    assert not unformatted.strip(), f"not gofmt-formatted: {unformatted}"
    run([go, "vet", IMPORT_PATH, f"{IMPORT_PATH}/cmd/tokenwire-stream"], cwd=tmp_path, env=env)
    out = run([go, "test", "-count=1", "-v", IMPORT_PATH], cwd=tmp_path, env=env)
    print(out)
    passed = re.findall(r"^--- PASS: (\w+)", out, re.M)
    assert len(passed) == 6 and "--- FAIL" not in out and re.search(r"^ok\s", out, re.M), out
