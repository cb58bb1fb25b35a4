"""Settings precedence (defaults < file < env < flags), the Kolosal file schema, and errors."""

from __future__ import annotations

import os
import json

import pytest

from server.cli import _overrides, build_parser
from server.config import ConfigError, embedded_model_path, load_settings
from server.core.engines import context_plan

KOLOSAL_YAML = """
server:
  port: "9090"
  host: "127.0.0.1"
  max_connections: 10
logging:
  level: "WARN"
  access_log: true
auth:
  enabled: true
  api_keys: ["sk-not-ours-yet"]
models:
  - id: "small"
    path: "./models/small.gguf"
    load_immediately: false
    main_gpu_id: 1
    load_params:
      n_ctx: 2048
      n_gpu_layers: 50
      use_mmap: true
      use_mlock: false
"""


def flags(*argv: str) -> dict:
    return _overrides(build_parser().parse_args(["serve", *argv]))


def test_defaults_serve_the_embedded_model_as_default():
    s = load_settings(environ={})
    specs = s.engine_specs()
    assert [(spec.id, spec.path) for spec in specs] == [("default", str(embedded_model_path()))]
    assert s.default_engine_id() == "default"
    assert s.server.grpc_port == 50051 and s.server.port == 8080
    params = s.resolved_load_params(specs[0])
    assert params.n_threads >= 1
    # No context size configured: each of the 4 sequences gets SmolLM2's trained 8,192 tokens
    # when the memory share allows it (8 GiB free here).
    assert params.n_ctx == 0 and params.n_parallel == 4
    plan = context_plan(specs[0].path, params, available_bytes=8 << 30)
    assert (plan.n_ctx_seq, plan.n_ctx, plan.source) == (8192, 4 * 8192, "trained context")


def test_kolosal_yaml_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(KOLOSAL_YAML)
    s = load_settings(str(path), environ={})
    assert s.server.port == 9090 and s.server.max_connections == 10
    assert s.logging.level == "WARNING" and s.logging.access_log
    (small,) = s.engine_specs()
    assert small.id == "small" and not small.load_immediately
    params = s.resolved_load_params(small)
    assert (params.n_ctx, params.n_gpu_layers, params.main_gpu) == (2048, 50, 1)


def test_json_file_env_and_flags_override_in_order(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"server": {"grpc_port": 1111, "port": 2222, "host": "127.0.0.2"}}))
    env = {"TOKENWIRE_SERVER_GRPC_PORT": "3333", "KOLOSAL_PORT": "4444"}
    s = load_settings(str(path), environ=env, overrides=flags("--grpc-port", "5555"))
    assert s.server.grpc_port == 5555  # flag beats env beats file
    assert s.server.port == 4444  # documented Kolosal env name beats the file
    assert s.server.host == "127.0.0.2"  # only the file set it


def test_config_file_from_environment(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("engine:\n  n_ctx: 1024\n")
    assert load_settings(environ={"TOKENWIRE_CONFIG": str(path)}).engine.n_ctx == 1024


def test_model_flags_replace_the_embedded_default():
    s = load_settings(environ={}, overrides=flags("--model-path", "/m/x.gguf", "--model-id", "x",
                                                  "--context-size", "1024", "--gpu-layers", "7",
                                                  "--main-gpu", "1"))
    (spec,) = s.engine_specs()
    assert (spec.id, spec.path) == ("x", "/m/x.gguf")
    params = s.resolved_load_params(spec)
    assert (params.n_ctx, params.n_gpu_layers, params.main_gpu) == (1024, 7, 1)
    assert s.default_engine_id() == "x"


@pytest.mark.parametrize("text, key", [
    ("server:\n  port: 70000\n", "server.port"),
    ("server:\n  prot: 1\n", "server.prot"),
    ("logging:\n  level: LOUD\n", "logging.level"),
    ("models:\n  - id: '../evil'\n    path: x.gguf\n", "models.0.id"),
    ("models:\n  - id: a\n    path: a.gguf\n  - id: a\n    path: b.gguf\n", "duplicate id a"),
    ("engine:\n  default_model: ghost\n", "engine.default_model"),
])
def test_bad_values_name_the_key_and_source(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(str(path), environ={})
    assert key in str(caught.value)


def test_unparseable_file_is_a_config_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("server: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(str(path), environ={})
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(str(tmp_path / "missing.yaml"), environ={})


@pytest.mark.parametrize("cpu_max, expected", [("max 100000", None), ("150000 100000", 2),
                                               ("100000 100000", 1), ("50000 100000", 1),
                                               ("garbage", None)])
def test_the_cgroup_quota_is_read_in_whole_cpus_rounded_up(tmp_path, cpu_max, expected):
    from server.config import cgroup_cpu_quota

    (tmp_path / "cpu.max").write_text(cpu_max + "\n")
    assert cgroup_cpu_quota(tmp_path / "cpu.max") == expected
    assert cgroup_cpu_quota(tmp_path / "missing") is None


def test_default_threads_never_exceed_the_cgroup_quota_or_the_affinity(tmp_path):
    from server.config import physical_cores

    (tmp_path / "cpu.max").write_text("100000 100000\n")
    assert physical_cores(tmp_path / "cpu.max") == 1
    assert physical_cores(tmp_path / "missing") <= len(os.sched_getaffinity(0))
