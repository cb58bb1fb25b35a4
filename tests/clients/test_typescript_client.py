"""The TypeScript client (clients/typescript) against a live server, with node's own test runner."""

from __future__ import annotations

import re

from tests.clients.conftest import CLIENTS, npm_ci, require, run

TS = CLIENTS / "typescript"


def test_typescript_client_live(client_env):
    node = require("node")
    npm_ci()
    run([node, "node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], cwd=TS)
    out = run([node, "--test", "--test-reporter=tap", "dist/test/"], cwd=TS, env=client_env)
    print(out)
    passed = int(re.search(r"^# pass (\d+)$", out, re.M).group(1))
    assert re.search(r"^# fail 0$", out, re.M) and passed == 6, out
