"""deploy/ is tested, not just text: `kubectl kustomize` (Debian's kubectl) renders the base and the
production overlay; every core object validates with kubernetes-validate against a pinned
Kubernetes version (strict: no unknown fields); the InferencePool validates against the CRD schema
vendored from the Gateway API Inference Extension; then the pieces are checked against each other
and against the server: ports, probes, selectors, the Secret and ConfigMap keys the pod reads, the
config file (loaded with the server's own settings loader), the drain timing, the metric the HPA
and the EPP read (which the server exports), and the Containerfile."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import jsonschema
import kubernetes_validate
import pytest
import yaml

from server.config import load_settings

ROOT = pathlib.Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.33.0"  # pinned: the oldest release the manifests must run on
CRD = DEPLOY / "crds" / "inference.networking.k8s.io_inferencepools.yaml"


def _kustomize(path: pathlib.Path) -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl is missing: install Debian's kubectl (tools/system-deps.sh "
                           "installs tools/system-packages.d/replicas.txt)")
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module", params=["base", "overlays/production"])
def rendered(request) -> dict[str, dict]:
    objects = _kustomize(DEPLOY / request.param)
    by_kind = {}
    for obj in objects:
        assert obj["kind"] not in by_kind, f"one {obj['kind']} expected"
        by_kind[obj["kind"]] = obj
    return by_kind


def test_every_object_is_there_and_core_objects_validate_strictly(rendered):
    assert set(rendered) == {"ConfigMap", "Secret", "PersistentVolumeClaim", "Deployment", "Service",
                             "PodDisruptionBudget", "HorizontalPodAutoscaler", "InferencePool"}
    for kind, obj in rendered.items():
        if kind == "InferencePool":
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_the_validator_would_catch_a_mistake(rendered):
    broken = yaml.safe_load(yaml.safe_dump(rendered["Deployment"]))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"]["port"] = "grpc"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**rendered["InferencePool"], "spec": {"targetPorts": [{"number": 0}]}},
                            _pool_schema())


def _pool_schema() -> dict:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def test_the_inference_pool_validates_against_the_vendored_crd(rendered):
    assert (DEPLOY / "crds" / "LICENSE").read_text().lstrip().startswith("Apache License")
    pool = rendered["InferencePool"]
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    jsonschema.validate(pool, _pool_schema())


def _container(rendered) -> dict:
    (container,) = rendered["Deployment"]["spec"]["template"]["spec"]["containers"]
    return container


def _secret_env(rendered) -> dict[str, str]:
    """The environment the pod gets from the Secret, by the names the Deployment gives it."""
    data = rendered["Secret"]["stringData"]
    return {env["name"]: data[env["valueFrom"]["secretKeyRef"]["key"]]
            for env in _container(rendered)["env"] if "secretKeyRef" in env.get("valueFrom", {})}


def _config(rendered):
    """The settings the pod's server starts with: the ConfigMap's file, read as TOKENWIRE_CONFIG
    names it, with the Secret's variables."""
    import tempfile

    folder = pathlib.Path(tempfile.mkdtemp(prefix="tokenwire-deploy-"))
    (folder / "tokenwire.yaml").write_text(rendered["ConfigMap"]["data"]["tokenwire.yaml"])
    return load_settings(environ={**_secret_env(rendered),
                                  "TOKENWIRE_CONFIG": str(folder / "tokenwire.yaml")})


def test_ports_probes_and_selectors_agree(rendered):
    deployment, service = rendered["Deployment"], rendered["Service"]
    pod = deployment["spec"]["template"]
    labels = pod["metadata"]["labels"]
    container = _container(rendered)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    settings = _config(rendered)
    assert ports == {"grpc": settings.server.grpc_port, "http": settings.server.port}

    def selects(selector: dict) -> bool:
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(service["spec"]["selector"])
    assert selects(rendered["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"])
    assert selects(rendered["InferencePool"]["spec"]["selector"]["matchLabels"])
    by_name = {p["name"]: p for p in service["spec"]["ports"]}
    assert by_name["grpc"]["targetPort"] == "grpc" and by_name["grpc"]["appProtocol"] == "grpc"
    assert by_name["http"]["targetPort"] == "http"
    assert {p["port"] for p in service["spec"]["ports"]} == set(ports.values())
    assert [p["number"] for p in rendered["InferencePool"]["spec"]["targetPorts"]] == [ports["http"]]
    # Native gRPC probes on grpc.health.v1, on the gRPC port; readiness and startup on "" (NOT_SERVING
    # while the model loads and while draining), liveness on a service that stays up until the drain.
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert set(container[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"} == {"grpc"}
        assert container[probe]["grpc"]["port"] == ports["grpc"]
    assert container["readinessProbe"]["grpc"]["service"] == ""
    assert container["startupProbe"]["grpc"]["service"] == ""
    from server.app import ALWAYS_ON_SERVICES, ENGINE_BACKED_SERVICES

    assert "" in ENGINE_BACKED_SERVICES
    assert container["livenessProbe"]["grpc"]["service"] in ALWAYS_ON_SERVICES
    hpa = rendered["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert hpa["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["maxReplicas"]


def test_the_drain_fits_the_grace_period_and_liveness_never_kills_a_draining_pod(rendered):
    spec = _container(rendered)
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    pause = spec["lifecycle"]["preStop"]["sleep"]["seconds"]
    drain = _config(rendered).server.shutdown_grace_seconds
    assert pod["terminationGracePeriodSeconds"] >= pause + drain + 10
    live = spec["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > pause + drain
    assert rendered["Deployment"]["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_pod_reads_only_keys_that_exist_and_the_config_selects_postgres(rendered):
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    secret = rendered["Secret"]
    config = rendered["ConfigMap"]
    containers = pod["containers"] + pod["initContainers"]
    for container in containers:
        for env in container.get("env", []):
            source = env.get("valueFrom", {})
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                assert ref["name"] == config["metadata"]["name"] and ref["key"] in config["data"]
    main = {e["name"]: e for e in _container(rendered)["env"]}
    config_path = pathlib.PurePosixPath(main["TOKENWIRE_CONFIG"]["value"])
    mounts = {m["name"]: m["mountPath"] for m in _container(rendered)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert str(config_path.parent) == mounts["config"]
    assert volumes["config"]["configMap"]["name"] == config["metadata"]["name"]
    assert config_path.name in config["data"]
    assert volumes["models"]["persistentVolumeClaim"]["claimName"] == \
        rendered["PersistentVolumeClaim"]["metadata"]["name"]
    # The environment names are the server's own: with the secrets set, the settings are complete.
    assert set(_secret_env(rendered)) == {"TOKENWIRE_SESSION_DSN", "TOKENWIRE_AUTH_API_KEYS",
                                          "TOKENWIRE_AUTH_ADMIN_API_KEYS"}
    settings = _config(rendered)
    assert settings.sessions.store_args()["kind"] == "postgres"
    assert settings.sessions.store_args()["dsn"] == secret["stringData"]["session-dsn"]
    assert [k.get_secret_value() for k in settings.auth.api_keys] == [secret["stringData"]["api-keys"]]
    assert settings.engine.model_path.startswith(mounts["models"] + "/")
    assert settings.model_store.directory == mounts["models"]


def test_the_init_step_pulls_the_model_with_tokenwire_pull(rendered, tmp_path):
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    config = rendered["ConfigMap"]["data"]
    script_name = pathlib.PurePosixPath(init["command"][-1]).name
    script = config[script_name]
    (tmp_path / script_name).write_text(script)
    syntax = subprocess.run(["sh", "-n", str(tmp_path / script_name)], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    assert "tokenwire pull" in script and "$MODEL_SOURCE" in script
    settings = _config(rendered)
    assert f"/models/{pathlib.PurePosixPath(settings.engine.model_path).name}" in script
    # The source is a name the built-in catalog knows (or a URL).
    from server.core.catalog import Catalog

    source = config["model-source"]
    assert "://" in source or Catalog.load(None).find(source) is not None


def test_the_metrics_the_hpa_and_the_pool_read_are_the_ones_the_server_exports(rendered):
    from server.monitoring import metrics

    exported = set(re.findall(r'GaugeMetricFamily\("(tokenwire_[a-z_]+)"',
                              pathlib.Path(metrics.__file__).read_text()))
    hpa_metric = rendered["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["pods"]["metric"]["name"]
    assert hpa_metric == "tokenwire_requests_waiting" and hpa_metric in exported
    pool_doc = (DEPLOY / "base" / "inferencepool.yaml").read_text()
    for flag in re.findall(r"--[a-z-]+-metric=(tokenwire_[a-z_]+)", pool_doc):
        assert flag in exported, flag


def test_the_containerfile_builds_llama_cpp_in_a_builder_and_runs_as_non_root(rendered):
    text = (DEPLOY / "Containerfile").read_text()
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?$", text, re.M)
    assert len(stages) == 2 and stages[0][1] == "builder"
    assert all("slim" in image for image, _ in stages)
    builder, runtime = re.split(r"^FROM .*$", text, flags=re.M)[1:]
    assert "cmake" in builder and "-r /src/requirements.txt" in builder  # the pinned set
    assert "COPY --from=builder" in runtime and "cmake" not in runtime
    (user,) = re.findall(r"^USER (\S+)$", runtime, re.M)
    pod = rendered["Deployment"]["spec"]["template"]["spec"]
    assert user.split(":")[0] == str(pod["securityContext"]["runAsUser"]) != "0"
    assert pod["securityContext"]["runAsNonRoot"] is True
    exposed = {int(p) for p in re.findall(r"^EXPOSE (.+)$", text, re.M)[0].split()}
    assert exposed == {p["containerPort"] for p in _container(rendered)["ports"]}
    assert re.search(r'^ENTRYPOINT \["tokenwire"\]$', text, re.M)
    assert _container(rendered)["args"] == ["serve"]
    # Every pinned requirement it installs is in requirements.txt, psycopg for the shared store too.
    requirements = (ROOT / "requirements.txt").read_text()
    for package in ("psycopg==", "psycopg-pool==", "llama-cpp-python=="):
        assert package in requirements


def test_the_architecture_picture_is_a_well_formed_svg_naming_its_parts():
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.parse(DEPLOY / "architecture.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for part in ("x-session-id", "PostgreSQL", "replica 1", "InferencePool", "ABORTED"):
        assert part in text, part
