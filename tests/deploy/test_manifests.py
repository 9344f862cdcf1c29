"""The container image and the Kubernetes manifests, checked offline.

Every manifest validates against the Kubernetes OpenAPI schemas that
kubernetes-validate bundles (strict: unknown fields are errors), for the
oldest Kubernetes these manifests support (1.27, where gRPC probes are GA)
and the newest it knows. Then what a reviewer checks by hand: non-root and a
read-only root, gRPC health probes on 50051, a grace period that covers the
drain, a PDB that selects the Deployment's pods, scrape annotations that
match the metrics port, every TITAN_GW_* variable a real setting with a
valid value, the mounted policy a valid non-dev policy, and the Dockerfile's
USER, EXPOSE, ENV, ENTRYPOINT, CMD and HEALTHCHECK.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import tomllib
import typing
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from gateway.ledger import open_ledger
from gateway.limits import open_limiter
from gateway.server import CLEANUP_TIMEOUT_S
from gateway.settings import (
    Settings,
    is_dev_policy,
    is_loopback,
    load_settings,
    split_listen,
    unknown_variable_problem,
)
from policies import load_policy
from tests.deploy import support
from tests.deploy.support import (
    KUBERNETES,
    PREFIX,
    REPO,
    container_env,
    deployment,
    dockerfile_stages,
    effective_env,
    gateway_container,
    healthcheck,
    manifests,
    one,
    pod_spec,
    runtime_stage,
)

# grpc probes are GA from 1.27; the newest schemas the package ships.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
GRPC_PORT = 50051
METRICS_PORT = 9464
UID = 10001
NAMESPACED = {
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
}


def _id(item: tuple[Path, dict[str, Any]]) -> str:
    path, doc = item
    return f"{path.name}:{doc['kind']}/{doc['metadata']['name']}"


# -- schemas -------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("item", manifests(), ids=_id)
def test_manifest_is_valid_against_the_kubernetes_schema(
    item: tuple[Path, dict[str, Any]], version: str
) -> None:
    path, doc = item
    problem = _schema_problem(doc, version)
    assert problem is None, f"{path.name}: {problem}"


def test_the_schema_check_catches_a_misspelt_field() -> None:
    """Strict schemas refuse unknown fields, so a typo cannot pass as valid."""
    broken = copy.deepcopy(deployment())
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest_and_one_namespace() -> None:
    listed = support.kustomization()["resources"]
    on_disk = sorted(p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == on_disk
    namespace = one("Namespace")["metadata"]["name"]
    assert support.kustomization()["namespace"] == namespace
    for path, doc in manifests():
        if doc["kind"] != "Namespace":
            assert doc["kind"] in NAMESPACED, f"{path.name}: {doc['kind']} is not expected here"
            assert doc["metadata"]["namespace"] == namespace, path.name


def test_no_database_is_shipped() -> None:
    """PostgreSQL and Redis are external services: one workload, the gateway."""
    kinds = [doc["kind"] for _, doc in manifests()]
    assert kinds.count("Deployment") == 1
    assert not {"StatefulSet", "DaemonSet", "PersistentVolumeClaim", "Job"} & set(kinds)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (kustomize) not installed")
def test_kustomize_renders_valid_objects() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(KUBERNETES)],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    for doc in docs:
        problem = _schema_problem(doc, KUBERNETES_VERSIONS[-1])
        assert problem is None, f"rendered: {problem}"
    # The generated ConfigMap's name carries a hash; the Deployment follows it.
    (env,) = [d for d in docs if d["metadata"]["name"].startswith("titan-gateway-env-")]
    (rendered,) = [d for d in docs if d["kind"] == "Deployment"]
    container = rendered["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": env["metadata"]["name"]}}]


# -- the Deployment --------------------------------------------------------------


def test_three_replicas_roll_without_losing_capacity() -> None:
    spec = deployment()["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["selector"]["matchLabels"].items() <= _pod_labels().items()


def test_pods_run_non_root_on_a_read_only_root() -> None:
    pod = pod_spec()["securityContext"]
    container = gateway_container()["securityContext"]
    assert pod["runAsNonRoot"] is True
    assert container["runAsNonRoot"] is True
    assert pod["runAsUser"] == container["runAsUser"] == UID
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["readOnlyRootFilesystem"] is True
    assert container["allowPrivilegeEscalation"] is False
    assert container["capabilities"] == {"drop": ["ALL"]}
    assert pod_spec()["automountServiceAccountToken"] is False


def test_the_writable_paths_are_volumes() -> None:
    """With a read-only root, data_dir and /tmp are emptyDirs; the policy is the
    ConfigMap mounted as a directory (a subPath mount would never reload)."""
    env = effective_env()
    mounts = {m["mountPath"]: m for m in gateway_container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    for path in (env["TITAN_GW_DATA_DIR"], "/tmp"):
        assert path in mounts, f"{path} is not writable"
        assert "emptyDir" in volumes[mounts[path]["name"]]
    policy = PurePosixPath(env["TITAN_GW_POLICY_FILE"])
    mount = mounts[str(policy.parent)]
    assert mount.get("readOnly") is True
    assert "subPath" not in mount
    volume = volumes[mount["name"]]["configMap"]
    assert [item["path"] for item in volume["items"]] == [policy.name]
    assert one("ConfigMap", volume["name"])


def test_resources_have_requests_and_limits() -> None:
    resources = gateway_container()["resources"]
    for kind in ("cpu", "memory"):
        request = _quantity(resources["requests"][kind])
        limit = _quantity(resources["limits"][kind])
        assert 0 < request <= limit, kind


def test_image_is_pinned() -> None:
    image = gateway_container()["image"]
    assert ":" in image
    assert not image.endswith(":latest")
    (entry,) = support.kustomization()["images"]
    assert image.split(":")[0] == entry["name"]


def test_probes_are_grpc_health_on_the_grpc_port() -> None:
    container = gateway_container()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"grpc": GRPC_PORT, "metrics": METRICS_PORT}
    assert int(split_listen(effective_env()["TITAN_GW_LISTEN"])[1]) == GRPC_PORT
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["grpc"] == {"port": GRPC_PORT, "service": ""}, probe
    # Every health name turns NOT_SERVING while the ledger or Redis is down:
    # liveness checks the gRPC port itself, so an outage does not restart pods.
    liveness, readiness = container["livenessProbe"], container["readinessProbe"]
    assert liveness["tcpSocket"] == {"port": GRPC_PORT}
    assert "grpc" not in liveness
    assert _patience(liveness) > _patience(readiness)


def test_the_grace_period_covers_the_whole_drain() -> None:
    """preStop sleep, then shutdown_grace_s for the streams, then their
    clean-ups (bounded by CLEANUP_TIMEOUT_S) all end before SIGKILL."""
    spec = pod_spec()
    command = gateway_container()["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    pre_stop = float(command[1])
    grace = float(container_env()["TITAN_GW_SHUTDOWN_GRACE_S"])
    assert pre_stop > 0
    assert grace > 0
    assert spec["terminationGracePeriodSeconds"] > pre_stop + grace + CLEANUP_TIMEOUT_S


def test_the_pdb_selects_the_deployments_pods() -> None:
    pdb = one("PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] == 2 < deployment()["spec"]["replicas"]
    assert pdb["selector"] == deployment()["spec"]["selector"]
    assert pdb["selector"]["matchLabels"].items() <= _pod_labels().items()


def test_services_select_the_pods_by_their_named_ports() -> None:
    port_names = {p["name"] for p in gateway_container()["ports"]}
    services = {s["metadata"]["name"]: s["spec"] for s in support.all_of("Service")}
    assert services["titan-gateway"]["type"] == "ClusterIP"
    assert services["titan-gateway-headless"]["clusterIP"] == "None"
    for name, spec in services.items():
        assert spec["selector"].items() <= _pod_labels().items(), name
        assert spec["selector"] == deployment()["spec"]["selector"]["matchLabels"], name
        for port in spec["ports"]:
            assert port["targetPort"] in port_names, (name, port)
        grpc = next(p for p in spec["ports"] if p["name"] == "grpc")
        assert grpc["port"] == GRPC_PORT


def test_prometheus_scrapes_the_metrics_port() -> None:
    annotations = deployment()["spec"]["template"]["metadata"]["annotations"]
    port = int(container_env()["TITAN_GW_TELEMETRY__PROMETHEUS_PORT"])
    assert port == METRICS_PORT
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port)
    assert annotations["prometheus.io/path"] == "/metrics"
    assert str(port) in runtime_stage().last("EXPOSE").value.split()


def test_metrics_listen_beyond_loopback_once_the_setting_exists() -> None:
    """/metrics binds 127.0.0.1 unless a telemetry host setting says otherwise:
    once the gateway has one, the manifests must set it, or the scrape
    annotations point at a port nobody outside the pod can reach."""
    telemetry: Any = Settings.model_fields["telemetry"].annotation
    hosts = [n for n in telemetry.model_fields if re.search("host|addr|listen|bind", n)]
    env = container_env()
    for name in hosts:
        value = env.get(f"{PREFIX}TELEMETRY__{name.upper()}")
        assert value in ("0.0.0.0", "::", "[::]"), f"set telemetry.{name} in the manifests"


# -- settings --------------------------------------------------------------------


def test_every_titan_gw_variable_is_a_setting() -> None:
    variables = support.titan_variables()
    assert "TITAN_GW_LISTEN" in variables
    assert "TITAN_GW_LEDGER_URL" in variables
    for name, places in variables.items():
        path = name[len(PREFIX) :].lower().split("__")
        assert _is_setting(path), f"{name} ({', '.join(places)}) names no setting"
        assert unknown_variable_problem(name) is None, name


def test_no_variable_is_set_twice_in_the_pod() -> None:
    container = gateway_container()
    explicit = [var["name"] for var in container["env"]]
    assert len(explicit) == len(set(explicit))
    generated = support.generated_env()
    for source in container["envFrom"]:
        assert not set(generated[source["configMapRef"]["name"]]) & set(explicit)


def test_the_pods_settings_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The image's ENV with the manifests' on top are valid settings: values of
    the right types, a non-loopback listener, the shared stores, no dev policy."""
    for name in list(os.environ):
        if name.upper().startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in effective_env().items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    assert settings.backend == "bedrock"
    assert not is_loopback(settings.listen)
    assert str(settings.policy_file) == "/etc/titan-gateway/policy.yaml"
    assert settings.ledger_url is not None
    assert settings.ledger_url.startswith("postgresql://")
    assert settings.limits_url is not None
    assert settings.limits_url.startswith("rediss://")
    open_ledger(settings.ledger_url)  # accepted, not connected
    open_limiter(settings.limits_url, prefix=settings.limits_prefix)
    assert settings.telemetry.prometheus_port == METRICS_PORT


def test_the_secret_holds_every_referenced_key() -> None:
    for var in gateway_container()["env"]:
        if "valueFrom" in var:
            ref = var["valueFrom"]["secretKeyRef"]
            assert ref["key"] in support.secret_values(ref["name"]), var["name"]


def test_the_mounted_policy_is_valid_and_not_the_dev_policy(tmp_path: Path) -> None:
    text = support.policy_text()
    policy = load_policy(text, source="policy.yaml")
    assert policy.tenants
    assert policy.admin_keys.entries
    owners = {owner for _, owner in policy.tenant_keys.entries}
    assert owners == set(policy.tenants), "every tenant has a key"
    copy_ = tmp_path / "policy.yaml"
    copy_.write_text(text, encoding="utf-8")
    assert not is_dev_policy(copy_)


# -- the Dockerfile ----------------------------------------------------------------


def test_dockerfile_is_multi_stage_on_python_slim() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2
    build, runtime = stages[0], stages[-1]
    assert build.base == runtime.base == "python:3.11-slim"
    assert build.name == "build"
    # The build installs the package itself (no editable install: the stubs
    # must come from the wheel) into the venv the runtime copies.
    build_commands = " ".join(i.value for i in build.all("RUN"))
    assert "pip wheel" in build_commands
    assert not re.search(r"(^|\s)(-e|--editable)\s", build_commands)
    assert "import titan.gateway.v1" in build_commands
    # The runtime stage takes the venv and nothing from the build context.
    assert not runtime.all("ADD")
    copies = [i.value.split() for i in runtime.all("COPY")]
    assert copies == [["--from=build", "/opt/titan-gateway", "/opt/titan-gateway"]]
    assert runtime.env()["PATH"].startswith("/opt/titan-gateway/bin:")


def test_dockerfile_runs_as_uid_10001() -> None:
    runtime = runtime_stage()
    assert runtime.last("USER").value == f"{UID}:{UID}"  # numeric: runAsNonRoot can verify it
    assert f"--uid {UID}" in " ".join(i.value for i in runtime.all("RUN"))


def test_dockerfile_exposes_grpc_and_metrics() -> None:
    exposed = " ".join(i.value for i in runtime_stage().all("EXPOSE")).split()
    assert exposed == [str(GRPC_PORT), str(METRICS_PORT)]


def test_dockerfile_env_defaults() -> None:
    env = runtime_stage().env()
    assert env["TITAN_GW_LISTEN"] == f"0.0.0.0:{GRPC_PORT}"
    assert env["TITAN_GW_BACKEND"] == "bedrock"
    assert env["TITAN_GW_DATA_DIR"] == "/var/lib/titan-gateway"
    # Never the dev policy: the path the deployment mounts its own policy at.
    assert env["TITAN_GW_POLICY_FILE"] == "/etc/titan-gateway/policy.yaml"
    assert not is_dev_policy(Path(env["TITAN_GW_POLICY_FILE"]))
    assert "TITAN_GW_ALLOW_DEV_POLICY" not in effective_env()


def test_dockerfile_entrypoint_is_the_console_script() -> None:
    runtime = runtime_stage()
    assert runtime.last("ENTRYPOINT").exec_form() == ["titan-gateway"]
    assert runtime.last("CMD").exec_form() == ["serve"]
    assert runtime.last("ENTRYPOINT").value.startswith("[")  # exec form: signals reach it
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert "titan-gateway" in scripts


def test_dockerfile_healthcheck_is_grpc_health() -> None:
    check = healthcheck()
    assert check.argv[:2] == ["python", "-c"]
    code = check.argv[2]
    assert "grpc_health.v1" in code
    assert "HealthCheckRequest(service='')" in code
    assert "TITAN_GW_LISTEN" in code
    assert "SERVING" in code
    assert {"interval", "timeout", "start-period", "retries"} <= set(check.options)
    # The RPC's own deadline ends before Docker kills the check.
    deadline = re.search(r"timeout=([\d.]+)", code)
    assert deadline is not None
    assert float(deadline.group(1)) < _seconds(check.options["timeout"])


# -- helpers ---------------------------------------------------------------------


def _schema_problem(doc: dict[str, Any], version: str) -> str | None:
    """Why `doc` fails the strict schema of Kubernetes `version`, in one line."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:  # its own text prints the whole schema
        where = ".".join(str(p) for p in exc.absolute_path)
        return f"{doc['kind']} {where}: {exc.message} (Kubernetes {version})"
    return None


def _pod_labels() -> dict[str, str]:
    labels: dict[str, str] = deployment()["spec"]["template"]["metadata"]["labels"]
    return labels


def _patience(probe: dict[str, Any]) -> int:
    """Seconds of failures before the probe acts."""
    return int(probe.get("periodSeconds", 10)) * int(probe.get("failureThreshold", 3))


def _is_setting(path: list[str]) -> bool:
    """Whether a variable's path (`telemetry__prometheus_port` split at `__`)
    names a field of Settings: nested models by field, a dict setting by key."""
    model: Any = Settings
    for i, part in enumerate(path):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i == len(path) - 1 or typing.get_origin(annotation) is dict:
            return True
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return False
        model = annotation
    return True


def _quantity(value: str | int) -> float:
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    text = str(value)
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", duration)
    assert match, duration
    return float(match.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[match.group(2)]


def test_every_replica_signs_with_the_shared_key_from_the_signing_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Against real Bedrock `serve` refuses the per-replica development chain:
    the pods get one signing identity, from a Secret mounted read-only."""
    for name in list(os.environ):
        if name.upper().startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in effective_env().items():
        monkeypatch.setenv(name, value)
    provenance = load_settings().provenance
    assert not provenance.development
    assert not provenance.allow_development_chain
    mounts = {m["name"]: m for m in gateway_container()["volumeMounts"]}
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    mount = mounts["signing"]
    assert mount["readOnly"] is True
    secret = one("Secret", volumes["signing"]["secret"]["secretName"])
    for path in (provenance.key_file, provenance.chain_file, provenance.trust_anchors_file):
        assert path is not None
        assert str(PurePosixPath(str(path)).parent) == mount["mountPath"]
        assert PurePosixPath(str(path)).name in secret["stringData"]
    assert volumes["signing"]["secret"]["defaultMode"] == 0o400
