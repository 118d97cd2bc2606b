"""The deployment files under ``deploy/``: the compose file against the
Compose Specification's schema, the NATS configuration against nats-server
itself, and the Helm chart's values against the chart's own schema, each
also held to what this backend needs (probes, resources, migrations first).

``docker compose config`` and ``helm lint``/``helm template`` run as well
where those tools are installed; the checks above run everywhere.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from mastery_deploy.engines import nats_server_binary
from mastery_deploy.services import installed_services

ROOT = Path(__file__).parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_ENV = DEPLOY / "compose.env.example"
CHART = DEPLOY / "helm" / "mastery"
SERVICES = [service.name for service in installed_services()]


def load(path: Path) -> Any:
    """Parse one YAML file, merge keys and anchors resolved."""
    return yaml.safe_load(path.read_text())


def check_jsonschema(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """Run check-jsonschema, installed with the project's tools."""
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", *map(str, arguments)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_compose_file_follows_the_compose_specification() -> None:
    """The compose file validates against the Compose Specification's
    schema, which check-jsonschema carries with it (no download)."""
    result = check_jsonschema("--builtin-schema", "vendor.compose-spec", COMPOSE)

    assert result.returncode == 0, result.stdout + result.stderr


def test_a_misspelt_compose_key_is_refused(tmp_path: Path) -> None:
    """The same check refuses a service with a key Compose does not know,
    so the test above could fail."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        COMPOSE.read_text().replace("    restart: unless-stopped\n", "    restar: x\n")
    )

    result = check_jsonschema("--builtin-schema", "vendor.compose-spec", broken)

    assert result.returncode == 1
    assert "restar" in result.stdout


def test_compose_runs_every_service_after_migrations_behind_its_readiness() -> None:
    """Each installed service runs ``<name> serve`` on its own port, waits
    for the migration and the database login to finish and for NATS to be
    healthy, and is healthy only while ``/readyz`` answers 200."""
    services = load(COMPOSE)["services"]

    assert services["migrate"]["command"] == ["migrate"]
    assert services["migrate"]["depends_on"]["postgres"] == {
        "condition": "service_healthy"
    }
    for name in SERVICES:
        service = services[name]
        assert service["command"] == [name, "serve"]
        assert service["environment"][f"MASTERY_{name.upper()}_PORT"] == "8000"
        assert service["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "database-login": {"condition": "service_completed_successfully"},
            "nats": {"condition": "service_healthy"},
        }
        probe = " ".join(service["healthcheck"]["test"])
        assert "http://127.0.0.1:8000/readyz" in probe
        assert "KEY_ENCRYPTION_KEY" in "".join(service["environment"])


def test_compose_nats_syncs_to_disk_before_each_acknowledgement() -> None:
    """The NATS container reads jetstream.conf, which nats-server itself
    accepts, and that file asks for an fsync on every write."""
    nats = load(COMPOSE)["services"]["nats"]
    mounted = {volume.split(":")[1]: volume.split(":")[0] for volume in nats["volumes"]}
    config = DEPLOY / mounted["/etc/nats/jetstream.conf"]

    tested = subprocess.run(
        [str(nats_server_binary()), "-t", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )

    assert nats["command"] == ["--config", "/etc/nats/jetstream.conf"]
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(r"^\s*sync_interval:\s*always\s*$", config.read_text(), re.M)


def compose_command() -> list[str] | None:
    """Return the command that runs Docker Compose v2 here, if there is one
    (v1 predates parts of the Compose Specification this file uses)."""
    for command in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(command[0]) is None:
            continue
        found = subprocess.run(
            [*command, "version", "--short"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        if found.returncode == 0 and found.stdout.lstrip("v").startswith("2"):
            return command

    return None


def test_docker_compose_reads_the_file_with_the_example_settings() -> None:
    """Docker Compose itself resolves the file, with every variable the
    example settings file sets."""
    command = compose_command()
    if command is None:
        pytest.skip("Docker Compose v2 is not installed on this machine")

    result = subprocess.run(
        [*command, "-f", str(COMPOSE), "--env-file", str(COMPOSE_ENV), "config"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert set(SERVICES) <= set(yaml.safe_load(result.stdout)["services"])


def test_the_image_installs_every_workspace_member() -> None:
    """The Dockerfile copies the manifest and sources of each member of the
    uv workspace, so a new service cannot be left out of the image."""
    workspace = tomllib.loads((ROOT / "pyproject.toml").read_text())
    members = [
        path.parent.relative_to(ROOT).as_posix()
        for pattern in workspace["tool"]["uv"]["workspace"]["members"]
        for path in ROOT.glob(f"{pattern}/pyproject.toml")
    ]
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+) ", dockerfile, re.M)

    assert sorted(members) == sorted(
        ["libs/events", "deploy/launcher", *(f"services/{s}" for s in SERVICES)]
    )
    for member in members:
        assert f"{member}/pyproject.toml" in copied
        assert any(member.startswith(source) for source in copied), member
    assert "uv sync --frozen --no-dev --no-editable" in dockerfile


def test_chart_values_follow_the_charts_schema() -> None:
    """values.yaml validates against values.schema.json, the schema Helm
    itself applies on install, upgrade and lint."""
    result = check_jsonschema(
        "--schemafile", CHART / "values.schema.json", CHART / "values.yaml"
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_charts_schema_refuses_missing_readiness_and_a_malformed_key(
    tmp_path: Path,
) -> None:
    """A service whose readiness probe is gone, or points at the liveness
    path, and a key-encryption key of the wrong shape are refused by the
    chart's schema."""
    values = load(CHART / "values.yaml")
    values["secrets"]["keyEncryptionKey"] = "correct-horse-battery-staple"
    del values["services"]["grading"]["probes"]["readiness"]
    values["services"]["reports"]["probes"]["readiness"] = {
        "path": "/healthz",
        "periodSeconds": 5,
        "failureThreshold": 2,
    }
    broken = tmp_path / "values.yaml"
    broken.write_text(yaml.safe_dump(values))

    result = check_jsonschema("--schemafile", CHART / "values.schema.json", broken)

    assert result.returncode == 1
    assert "services.grading.probes" in result.stdout
    assert "services.reports.probes.readiness.path" in result.stdout
    assert "secrets.keyEncryptionKey" in result.stdout


def test_chart_gives_every_service_probes_resources_and_autoscaling() -> None:
    """Each installed service has values for its three probes, requests and
    limits, and an autoscaler of at least two replicas; the templates turn
    every entry of ``services`` into a Deployment wired to them, a Service,
    an autoscaler and a disruption budget."""
    values = load(CHART / "values.yaml")
    templates = CHART / "templates"
    deployment = (templates / "deployment.yaml").read_text()

    assert sorted(values["services"]) == sorted(SERVICES)
    for name in SERVICES:
        service = values["services"][name]
        assert service["probes"]["liveness"]["path"] == "/healthz"
        assert service["probes"]["readiness"]["path"] == "/readyz"
        assert {"cpu", "memory"} <= set(service["resources"]["requests"])
        assert "memory" in service["resources"]["limits"]
        scaling = service["autoscaling"]
        assert 2 <= scaling["minReplicas"] <= scaling["maxReplicas"]
    for template in ("deployment", "service", "hpa", "pdb"):
        text = (templates / f"{template}.yaml").read_text()
        assert "range $name, $service := .Values.services" in text, template
    for wired in (
        "livenessProbe:",
        "readinessProbe:",
        "startupProbe:",
        "$service.probes.liveness.path",
        "$service.probes.readiness.path",
        "toYaml $service.resources",
        "MASTERY_{{ upper $name }}_PORT",
        'include "mastery.secretEnv"',
    ):
        assert wired in deployment, wired


def test_chart_brings_a_three_server_jetstream_cluster_from_the_nats_chart() -> None:
    """NATS comes from the NATS project's chart as a clustered, replicated
    JetStream that fsyncs before acknowledging, and streams ask for three
    copies."""
    chart = load(CHART / "Chart.yaml")
    values = load(CHART / "values.yaml")
    (nats,) = [d for d in chart["dependencies"] if d["name"] == "nats"]
    config = values["nats"]["config"]

    assert nats["repository"] == "https://nats-io.github.io/k8s/helm/charts/"
    assert nats["condition"] == "nats.enabled"
    assert config["cluster"] == {"enabled": True, "replicas": 3}
    assert config["jetstream"]["enabled"] is True
    assert config["jetstream"]["merge"] == {"sync_interval": "always"}
    assert values["config"]["natsReplicas"] == 3


def test_chart_keeps_secrets_in_a_secret_and_leaves_a_place_for_the_kek() -> None:
    """Database URLs, the JWT secret and the key-encryption key reach the
    pods from a Secret, never from the ConfigMap."""
    templates = CHART / "templates"
    helpers = (templates / "_helpers.tpl").read_text()
    configmap = (templates / "configmap.yaml").read_text()
    secret = (templates / "secret.yaml").read_text()

    for key, variable in (
        ("database-url", "MASTERY_DATABASE_URL"),
        ("migration-database-url", "MASTERY_MIGRATION_DATABASE_URL"),
        ("jwt-secret", "MASTERY_JWT_SECRET"),
        ("key-encryption-key", "MASTERY_KEY_ENCRYPTION_KEY"),
    ):
        assert f"key: {key}" in helpers
        assert f"{key}:" in secret
        assert variable in helpers
        assert variable not in configmap


def test_helm_lints_and_renders_probes_and_resources_for_every_service() -> None:
    """With helm installed, the chart lints and renders a Deployment per
    service with both probes and resources."""
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not installed on this machine (no package provides it)")
    lint_values = str(CHART / "ci" / "lint-values.yaml")

    built = subprocess.run(
        [helm, "dependency", "build", str(CHART)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if built.returncode != 0:
        pytest.skip(f"the NATS chart could not be fetched: {built.stderr.strip()}")
    linted = subprocess.run(
        [helm, "lint", str(CHART), "-f", lint_values],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    rendered = subprocess.run(
        [helm, "template", "district", str(CHART), "-f", lint_values],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert rendered.returncode == 0, rendered.stderr
    deployments = {
        document["metadata"]["name"]: document
        for document in yaml.safe_load_all(rendered.stdout)
        if document and document["kind"] == "Deployment"
    }
    for name in SERVICES:
        (container,) = deployments[f"district-mastery-{name}"]["spec"]["template"][
            "spec"
        ]["containers"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"]
