"""What ships beside the package: the image's pins, the deployment files, the smoke test."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from moderation.settings import ENV_PREFIX, Settings
from tests.conftest import spawn_server
from tests.smoke import check_service

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes" / "moderation.yaml"
COMPOSE = ROOT / "deploy" / "compose.yaml"
#: The released contract `make lint` checks against (named in the Makefile).
RELEASED = (
    ROOT
    / re.search(  # type: ignore[index]
        r"^RELEASED := (\S+)$", (ROOT / "Makefile").read_text(encoding="utf-8"), re.MULTILINE
    )[1]
)


def _pins() -> dict[str, str]:
    text = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    return {
        canonicalize_name(name): version
        for name, version in re.findall(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", text, re.MULTILINE)
    }


def test_the_lock_pins_every_dependency_within_its_range() -> None:
    """A dependency of the image (the package and its otel extra) added to pyproject.toml
    without `make lock` fails here, not in the image."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = _pins()
    wanted = [
        *project["project"]["dependencies"],
        *project["project"]["optional-dependencies"]["otel"],
    ]
    for spec in wanted:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements.lock: run make lock"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} vs {spec}"
    hashed = (ROOT / "requirements.lock").read_text(encoding="utf-8").count("--hash=sha256:")
    assert hashed >= len(pins)


def _env_names(node: Any) -> set[str]:
    """Every MODERATION_* name set anywhere in a parsed YAML document."""
    names: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("name"), str) and ("value" in node or "valueFrom" in node):
            names.add(node["name"])
        for key, value in node.items():
            if key == "environment" and isinstance(value, dict):
                names.update(value)
            names |= _env_names(value)
    elif isinstance(node, list):
        for item in node:
            names |= _env_names(item)
    return {name for name in names if name.startswith(ENV_PREFIX)}


def _known() -> set[str]:
    return {ENV_PREFIX + field.upper() for field in Settings.model_fields}


def test_kubernetes_manifests_use_real_settings_probes_and_a_private_metrics_port() -> None:
    """Every variable is a setting the service reads; probes ask the gRPC port; the grace
    period outlasts drain plus grace; the Service and the open ingress carry gRPC only."""
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all(KUBERNETES.read_text("utf-8"))}
    assert set(documents) == {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"}
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert _env_names(documents) <= _known(), _env_names(documents) - _known()
    grpc_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "grpc")
    for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[kind]["grpc"]["port"] == grpc_port, kind
    defaults = Settings()
    image = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    drain = float(re.search(r"MODERATION_DRAIN_SECONDS=(\d+)", image)[1])  # type: ignore[index]
    grace = float(re.search(r"MODERATION_GRACE_SECONDS=(\d+)", image)[1])  # type: ignore[index]
    assert pod["terminationGracePeriodSeconds"] > drain + grace
    assert grpc_port == defaults.port
    service_ports = {p["port"] for p in documents["Service"]["spec"]["ports"]}
    assert service_ports == {grpc_port}
    ingress = documents["NetworkPolicy"]["spec"]["ingress"]
    open_rules = [rule for rule in ingress if "from" not in rule]
    assert [p["port"] for rule in open_rules for p in rule["ports"]] == [grpc_port]


def test_compose_publishes_grpc_on_loopback_and_keeps_metrics_internal() -> None:
    """Only gRPC (and Prometheus's UI) reach the host, on loopback; metrics stay on an
    internal network that only Prometheus joins."""
    compose = yaml.safe_load(COMPOSE.read_text("utf-8"))
    services = compose["services"]
    assert _env_names(compose) <= _known()
    published = [port for service in services.values() for port in service.get("ports", [])]
    assert all(port.startswith("127.0.0.1:") for port in published)
    assert not any(port.endswith(":9464") for port in published)
    assert compose["networks"]["metrics"]["internal"] is True
    joined = [name for name, s in services.items() if "metrics" in s.get("networks", [])]
    assert sorted(joined) == ["moderation", "prometheus"]
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text("utf-8"))
    (job,) = scrape["scrape_configs"]
    assert job["static_configs"][0]["targets"] == ["moderation:9464"]
    assert "credentials_file" in job["authorization"]


async def _run(*command: str) -> subprocess.CompletedProcess[str]:
    """Run a command off the event loop (the server under test shares it)."""
    return await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60, check=False
    )


async def test_the_smoke_test_passes_against_a_served_process(
    processes: list[Any],
) -> None:
    """`make image` runs these checks against the container; here against a local server."""
    _, address, _ = await spawn_server(processes)
    assert await check_service(address) == []


async def test_the_smoke_test_fails_without_a_server() -> None:
    """No server: the smoke test says so instead of passing."""
    problems = await check_service("127.0.0.1:1", wait_s=1.0)
    assert problems
    assert problems[0].startswith("health:")


async def test_the_node_example_client_calls_a_served_process(
    processes: list[Any],
) -> None:
    """examples/node builds its client from proto/ and gets the same answers as Python does."""
    _, address, _ = await spawn_server(processes)
    node = shutil.which("node")
    assert node is not None, "node is needed: the README's make test installs the example"
    client = str(ROOT / "examples" / "node" / "client.js")
    done = await _run(node, client, address, "你就是个傻逼", "今天天气真好")
    assert done.returncode == 0, done.stderr
    insult, clean = (json.loads(line) for line in done.stdout.splitlines())
    assert insult["decision"] == "DECISION_BLOCK"
    assert insult["categories"] == ["CATEGORY_ABUSE"]
    assert insult["evidence"] == [[4, 6]]
    assert clean["decision"] == "DECISION_ALLOW"
    empty = await _run(node, client, address, "")
    assert empty.returncode == 1
    assert "INVALID_ARGUMENT: text" in empty.stderr


def _buf_breaking(proto_root: Path) -> subprocess.CompletedProcess[str]:
    buf = ROOT / "node_modules" / ".bin" / "buf"
    assert buf.exists(), "buf is needed: make test installs it"
    return subprocess.run(
        [str(buf), "breaking", str(proto_root), "--against", str(RELEASED)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=proto_root.parent,
    )


def test_the_contract_keeps_the_last_release_and_breaking_changes_are_caught(
    tmp_path: Path,
) -> None:
    """Today's proto is compatible with the released one; removing a field is caught."""
    assert _buf_breaking(ROOT / "proto").returncode == 0
    copy = tmp_path / "proto"
    shutil.copytree(ROOT / "proto", copy)
    contract = copy / "moderation" / "v1" / "moderation.proto"
    text = contract.read_text(encoding="utf-8")
    contract.write_text(text.replace("  optional float block_at = 7;\n", ""), encoding="utf-8")
    broken = _buf_breaking(copy)
    assert broken.returncode != 0
    assert "block_at" in broken.stdout + broken.stderr


async def test_the_readme_python_examples_run_against_a_served_process(
    processes: list[Any],
) -> None:
    """Every Python block in the README runs as written, pointed at a real server."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
    assert len(blocks) >= 2
    _, address, _ = await spawn_server(processes)
    for block in blocks:
        assert "127.0.0.1:50051" in block
        done = await _run(sys.executable, "-c", block.replace("127.0.0.1:50051", address))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip()
