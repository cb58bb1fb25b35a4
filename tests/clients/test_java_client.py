"""The Java client (clients/java) against a live server: built by clients/java/build.sh (buf
generates the stubs, javac compiles them against Debian's grpc-java and protobuf-java jars; no
Maven repository is reachable here), then its live checks run as a Java main."""

from __future__ import annotations

import re

from tests.clients.conftest import CLIENTS, ROOT, require, run

CHECKS = ["HealthCheckIsServing", "ListEngines", "StreamsAChatGenerationTokenByToken",
          "CancelMidwayFreesTheSequence", "InvalidArgumentCarriesTheFieldViolation",
          "UnauthenticatedWithoutKeySuccessWithKey"]


def test_java_client_live(client_env):
    require("javac")
    java = require("java")
    build = run([str(CLIENTS / "java" / "build.sh")], cwd=ROOT,
                env={"BUF": str(ROOT / ".venv" / "bin" / "buf")})
    classpath = build.strip().splitlines()[-1]
    assert classpath.startswith(str(CLIENTS / "java" / "build" / "classes")), build
    out = run([java, "-cp", classpath, "dev.tokenwire.client.LiveTest"], cwd=ROOT, env=client_env)
    print(out)
    assert re.findall(r"^PASS (\w+)$", out, re.M) == CHECKS, out
    assert "FAIL" not in out and out.rstrip().endswith("ok"), out
