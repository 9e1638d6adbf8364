"""Production doors: API keys, per-key jurisdictions and rate limits, TLS and mTLS, metrics."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from moderation.errors import ConfigError
from moderation.metrics import Metrics, MetricsAccess
from moderation.pipeline import Moderator
from moderation.rpc.access import Gate, load_clients
from moderation.rpc.server import ServerOptions, Service, start
from moderation.v1 import moderation_pb2 as pb
from moderation.v1 import moderation_pb2_grpc as pb_grpc

KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-0123456789abcdef"
SCRAPE_TOKEN = "scrape-token-0123456789"  # noqa: S105  # a test's own token


def keys_file(tmp_path: Path, body: str) -> Path:
    """Write a keys file."""
    path = tmp_path / "keys.toml"
    path.write_text(body, encoding="utf-8")
    return path


def sha(key: str) -> str:
    """Hex SHA-256 of a key, as the keys file holds it."""
    return hashlib.sha256(key.encode()).hexdigest()


@pytest.fixture
async def secured(moderator: Moderator, tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Start servers with a gate, metrics and transport options; yield (service, stub maker)."""
    services: list[Service] = []
    channels: list[grpc.aio.Channel] = []

    async def open_server(gate: Gate, metrics: Metrics | None = None, **options: Any) -> Service:
        service = await start(
            moderator, ServerOptions(port=0, **options), gate=gate, metrics=metrics
        )
        services.append(service)
        return service

    def channel(
        service: Service, credentials: grpc.ChannelCredentials | None = None
    ) -> grpc.aio.Channel:
        target = f"localhost:{service.port}"
        made = (
            grpc.aio.secure_channel(target, credentials)
            if credentials
            else grpc.aio.insecure_channel(target)
        )
        channels.append(made)
        return made

    open_server.channel = channel  # type: ignore[attr-defined]
    yield open_server
    for made in channels:
        await made.close()
    for service in services:
        await service.server.stop(0)


def gate(tmp_path: Path) -> Gate:
    """Two clients: A may use anything at 2 calls/s (burst 2); B only US."""
    path = keys_file(
        tmp_path,
        f"""
[[clients]]
name = "a"
key_sha256 = "{sha(KEY_A)}"
rate_per_second = 2
burst = 2

[[clients]]
name = "b"
key_sha256 = "{sha(KEY_B)}"
jurisdictions = ["US"]
""",
    )
    return Gate(load_clients(path, ""))


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying a key."""
    return (("authorization", f"Bearer {key}"),)


async def test_keys_are_required_and_checked(secured: Any, tmp_path: Path) -> None:
    """No key or a wrong key: UNAUTHENTICATED. A known key passes. Health needs none."""
    service = await secured(gate(tmp_path))
    channel = secured.channel(service)
    stub = pb_grpc.ModerationServiceStub(channel)
    request = pb.ModerateRequest(text="你好", jurisdiction="US")
    for metadata in ((), bearer("wrong-key-0123456789"), (("authorization", KEY_B),)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Moderate(request, metadata=metadata)
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    reply = await stub.Moderate(request, metadata=bearer(KEY_B))
    assert reply.decision == pb.DECISION_ALLOW
    health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert health.status == health_pb2.HealthCheckResponse.SERVING


async def test_per_key_jurisdictions(secured: Any, tmp_path: Path) -> None:
    """A client limited to US is refused CN and the default, on every RPC shape."""
    service = await secured(gate(tmp_path))
    stub = pb_grpc.ModerationServiceStub(secured.channel(service))
    for jurisdiction in ("CN", ""):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Moderate(
                pb.ModerateRequest(text="你好", jurisdiction=jurisdiction), metadata=bearer(KEY_B)
            )
        assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ModerateBatch(
            pb.ModerateBatchRequest(items=[pb.ModerateRequest(text="你好", jurisdiction="CN")]),
            metadata=bearer(KEY_B),
        )
    assert caught.value.code() is grpc.StatusCode.PERMISSION_DENIED

    async def requests() -> AsyncIterator[pb.ModerateRequest]:
        yield pb.ModerateRequest(content_id="us", text="你好", jurisdiction="US")
        yield pb.ModerateRequest(content_id="cn", text="你好", jurisdiction="CN")

    replies = {
        r.content_id: r async for r in stub.ModerateStream(requests(), metadata=bearer(KEY_B))
    }
    assert not replies["us"].HasField("error")
    assert replies["cn"].error.code == grpc.StatusCode.PERMISSION_DENIED.value[0]


async def test_concurrent_streams_of_two_keys_keep_their_own_rights(
    secured: Any, tmp_path: Path
) -> None:
    """Streams of two clients screened in the same turns: each item is judged as its own
    caller's (A may use CN, B may not), whatever else is screened beside it."""
    service = await secured(gate(tmp_path))
    stub = pb_grpc.ModerationServiceStub(secured.channel(service))

    async def requests(name: str) -> AsyncIterator[pb.ModerateRequest]:
        for i in range(200):
            jurisdiction = "CN" if i % 2 else "US"
            yield pb.ModerateRequest(
                content_id=f"{name}{i}", text="你好", jurisdiction=jurisdiction
            )

    async def stream(key: str, name: str) -> dict[str, pb.ModerateResponse]:
        call = stub.ModerateStream(requests(name), metadata=bearer(key))
        return {r.content_id: r async for r in call}

    a, b = await asyncio.gather(stream(KEY_A, "a"), stream(KEY_B, "b"))
    assert sorted(a) == sorted(f"a{i}" for i in range(200))
    assert sorted(b) == sorted(f"b{i}" for i in range(200))
    assert not any(r.HasField("error") for r in a.values())
    refused = {i for i in range(200) if b[f"b{i}"].HasField("error")}
    assert refused == set(range(1, 200, 2))
    assert all(b[f"b{i}"].error.code == grpc.StatusCode.PERMISSION_DENIED.value[0] for i in refused)


async def test_rate_limit_per_key(secured: Any, tmp_path: Path) -> None:
    """Past its burst a client gets RESOURCE_EXHAUSTED with a retry delay; others are unaffected."""
    service = await secured(gate(tmp_path))
    stub = pb_grpc.ModerationServiceStub(secured.channel(service))
    request = pb.ModerateRequest(text="你好", jurisdiction="US")
    for _ in range(2):
        await stub.Moderate(request, metadata=bearer(KEY_A))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Moderate(request, metadata=bearer(KEY_A))
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(caught.value)
    assert status is not None
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert 0 < retry.retry_delay.ToNanoseconds() <= 600_000_000
    await stub.Moderate(request, metadata=bearer(KEY_B))  # b has no limit


@pytest.mark.parametrize(
    ("body", "env", "says"),
    [
        ('[[clients]]\nname = "a"\nkey_sha256 = "nothex"\n', "", "not a valid keys file"),
        (
            '[[clients]]\nname = "a"\nkey_sha256 = "' + "0" * 64 + '"\nextra = 1\n',
            "",
            "not a valid keys file",
        ),
        ("", "a=short", "at least 16 characters"),
        ("", "nokey", "name=key pairs"),
        ('[[clients]]\nname = "a"\nkey_sha256 = "' + "0" * 64 + '"\n', "a=" + KEY_A, "unique"),
    ],
)
def test_bad_key_configuration_is_refused(tmp_path: Path, body: str, env: str, says: str) -> None:
    """A malformed keys file or environment stops the start with what to fix."""
    path = keys_file(tmp_path, body) if body else None
    with pytest.raises(ConfigError, match=says):
        load_clients(path, env)


def _certificates(folder: Path, san: str = "DNS:localhost,IP:127.0.0.1") -> dict[str, bytes]:
    """A throwaway CA, a server certificate for ``san`` (localhost) and a client certificate."""

    def run(*args: str) -> None:
        openssl = shutil.which("openssl")
        assert openssl is not None, "the tests make certificates with openssl"
        subprocess.run([openssl, *args], cwd=folder, check=True, capture_output=True)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=test-ca",
    )
    (folder / "san.cnf").write_text(f"subjectAltName={san}\n")
    for name in ("server", "client"):
        run(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={'localhost' if name == 'server' else 'client'}",
        )
        run(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "1",
            "-extfile",
            "san.cnf",
        )
    wanted = (".pem", ".key")
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.suffix in wanted}


async def test_tls_and_mutual_tls(secured: Any, tmp_path: Path) -> None:
    """TLS serves clients that trust the CA; under mTLS a client without a certificate fails."""
    pem = _certificates(tmp_path)
    tls = await secured(Gate(()), tls_cert=pem["server.pem"], tls_key=pem["server.key"])
    trusted = grpc.ssl_channel_credentials(root_certificates=pem["ca.pem"])
    stub = pb_grpc.ModerationServiceStub(secured.channel(tls, trusted))
    assert (await stub.Moderate(pb.ModerateRequest(text="你好"))).decision == pb.DECISION_ALLOW
    plain = pb_grpc.ModerationServiceStub(secured.channel(tls))
    with pytest.raises(grpc.aio.AioRpcError):
        await plain.Moderate(pb.ModerateRequest(text="你好"), timeout=3)

    mtls = await secured(
        Gate(()), tls_cert=pem["server.pem"], tls_key=pem["server.key"], tls_client_ca=pem["ca.pem"]
    )
    anonymous = pb_grpc.ModerationServiceStub(secured.channel(mtls, trusted))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await anonymous.Moderate(pb.ModerateRequest(text="你好"), timeout=3)
    assert caught.value.code() is grpc.StatusCode.UNAVAILABLE
    identified = grpc.ssl_channel_credentials(
        root_certificates=pem["ca.pem"],
        private_key=pem["client.key"],
        certificate_chain=pem["client.pem"],
    )
    stub = pb_grpc.ModerationServiceStub(secured.channel(mtls, identified))
    assert (await stub.Moderate(pb.ModerateRequest(text="你好"))).decision == pb.DECISION_ALLOW


async def test_metrics_count_rpcs_by_status_and_decisions(
    secured: Any, moderator: Moderator
) -> None:
    """grpc_server_* counts calls by method and code; decisions are counted by jurisdiction."""
    metrics = Metrics()
    original = moderator._on_result  # the session moderator: restore the hook afterwards
    moderator._on_result = metrics.observe
    try:
        service = await secured(Gate(()), metrics=metrics)
        stub = pb_grpc.ModerationServiceStub(secured.channel(service))
        await stub.Moderate(pb.ModerateRequest(text="你就是个傻逼", jurisdiction="CN"))
        await stub.Moderate(pb.ModerateRequest(text="你好"))
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Moderate(pb.ModerateRequest(text=""))
    finally:
        moderator._on_result = original
    value = metrics.registry.get_sample_value
    labels = {
        "grpc_type": "unary",
        "grpc_service": "moderation.v1.ModerationService",
        "grpc_method": "Moderate",
    }
    # An aborted call's status reaches the client before the server's handler has unwound
    # and counted it: give it a moment.
    for _ in range(100):
        if value("grpc_server_handling_seconds_count", labels) == 3:
            break
        await asyncio.sleep(0.02)
    assert value("grpc_server_started_total", labels) == 3
    assert value("grpc_server_handled_total", {**labels, "grpc_code": "OK"}) == 2
    assert value("grpc_server_handled_total", {**labels, "grpc_code": "INVALID_ARGUMENT"}) == 1
    assert value("grpc_server_handling_seconds_count", labels) == 3
    assert value("moderation_decisions_total", {"decision": "BLOCK", "jurisdiction": "CN"}) == 1
    assert value("moderation_labels_total", {"category": "ABUSE", "jurisdiction": "CN"}) == 1
    assert value("moderation_escalations_total", {"status": "NOT_NEEDED"}) == 2
    assert value("moderation_risk_score_count") == 2  # one score per decision
    assert value("moderation_risk_score_bucket", {"le": "0.3"}) == 1  # 你好; 你就是个傻逼 is 0.66


async def test_every_call_has_an_access_line_and_is_counted_by_client(
    secured: Any, tmp_path: Path, log_buffer: io.StringIO
) -> None:
    """Refused calls included: one rpc.call line each with the code and the client's name (or
    -), never the request; per-client counts; the process's own figures are served too."""
    metrics = Metrics()
    service = await secured(gate(tmp_path), metrics=metrics)
    stub = pb_grpc.ModerationServiceStub(secured.channel(service))
    private = "你就是个傻逼访问日志"
    await stub.Moderate(pb.ModerateRequest(text=private), metadata=bearer(KEY_A))
    for metadata, expected in (
        ((), grpc.StatusCode.UNAUTHENTICATED),
        (bearer(KEY_B), grpc.StatusCode.PERMISSION_DENIED),  # B may use US only
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.Moderate(pb.ModerateRequest(text=private), metadata=metadata)
        assert caught.value.code() is expected
    for _ in range(100):  # a refused call is logged as its handler unwinds, after the answer
        calls = [json.loads(x) for x in log_buffer.getvalue().splitlines() if '"rpc.call"' in x]
        if len(calls) == 3:
            break
        await asyncio.sleep(0.02)
    assert [(c["client"], c["code"]) for c in calls] == [
        ("a", "OK"),
        ("-", "UNAUTHENTICATED"),
        ("b", "PERMISSION_DENIED"),
    ]
    assert all(c["method"] == "/moderation.v1.ModerationService/Moderate" for c in calls)
    assert all(c["duration_ms"] >= 0 and c["level"] == "info" for c in calls)
    assert private not in log_buffer.getvalue()
    value = metrics.registry.get_sample_value
    by = {"grpc_method": "Moderate"}
    assert value("moderation_client_calls_total", {**by, "client": "a", "grpc_code": "OK"}) == 1
    assert (
        value(
            "moderation_client_calls_total", {**by, "client": "-", "grpc_code": "UNAUTHENTICATED"}
        )
        == 1
    )
    assert (value("process_resident_memory_bytes") or 0) > 10_000_000
    assert value("python_gc_objects_collected_total", {"generation": "0"}) is not None


def _paced_gate(tmp_path: Path, rate: int, burst: int) -> Gate:
    path = keys_file(
        tmp_path,
        f'[[clients]]\nname = "a"\nkey_sha256 = "{sha(KEY_A)}"\n'
        f"rate_per_second = {rate}\nburst = {burst}\n",
    )
    return Gate(load_clients(path, ""))


async def test_rate_limit_counts_items_not_calls(secured: Any, tmp_path: Path) -> None:
    """A batch spends one token per item; more items than the burst can ever hold are refused
    as INVALID_ARGUMENT naming the burst; a stream is paced to the client's rate."""
    service = await secured(_paced_gate(tmp_path, rate=20, burst=4))
    stub = pb_grpc.ModerationServiceStub(secured.channel(service))
    items = [pb.ModerateRequest(content_id=str(i), text="你好") for i in range(4)]
    await stub.ModerateBatch(pb.ModerateBatchRequest(items=items), metadata=bearer(KEY_A))
    with pytest.raises(grpc.aio.AioRpcError) as spent:
        await stub.ModerateBatch(pb.ModerateBatchRequest(items=items), metadata=bearer(KEY_A))
    assert spent.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    with pytest.raises(grpc.aio.AioRpcError) as too_many:
        await stub.ModerateBatch(pb.ModerateBatchRequest(items=items * 2), metadata=bearer(KEY_A))
    assert too_many.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "burst" in (too_many.value.details() or "")

    await asyncio.sleep(0.3)  # the bucket fills again
    began = asyncio.get_running_loop().time()
    call = stub.ModerateStream(metadata=bearer(KEY_A))
    for i in range(14):
        await call.write(pb.ModerateRequest(content_id=str(i), text="你好"))
    await call.done_writing()
    answers = [reply async for reply in call]
    elapsed = asyncio.get_running_loop().time() - began
    assert sorted(int(a.content_id) for a in answers) == list(range(14))
    assert all(not a.HasField("error") for a in answers)
    assert elapsed >= 0.4, f"14 items at 20/s (burst 4) took only {elapsed:.2f} s"


async def test_idle_streams_cannot_lock_out_probes_or_other_calls(
    secured: Any, tmp_path: Path
) -> None:
    """Streams that hold every slot and send nothing: health still answers, another call is
    refused RESOURCE_EXHAUSTED, and after the idle timeout the streams end UNAVAILABLE."""
    service = await secured(Gate(()), max_concurrent_rpcs=2, stream_idle_seconds=0.5)
    channel = secured.channel(service)
    stub = pb_grpc.ModerationServiceStub(channel)
    idle = [stub.ModerateStream() for _ in range(2)]
    for call in idle:
        await call.write(pb.ModerateRequest(content_id="x", text="你好"))
        assert (await call.read()).content_id == "x"
    reply = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(), timeout=2
    )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.Moderate(pb.ModerateRequest(text="你好"), timeout=2)
    assert refused.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    for call in idle:
        assert await call.code() is grpc.StatusCode.UNAVAILABLE
        assert "sent nothing" in (await call.details())
    assert (await stub.Moderate(pb.ModerateRequest(text="你好"))).decision == pb.DECISION_ALLOW


def _health(port: int, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``moderation health`` against a local port, as the container's HEALTHCHECK runs it."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MODERATION_")}
    return subprocess.run(
        [sys.executable, "-m", "moderation", "health", "--address", f"127.0.0.1:{port}", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**clean, **env},
    )


async def test_health_probes_tls_and_mtls_servers(secured: Any, tmp_path: Path) -> None:
    """Beside a TLS or mTLS server (its files in the environment) ``moderation health`` speaks
    TLS by itself, even for a certificate issued to another name than 127.0.0.1; plaintext
    against TLS fails; explicit --ca/--cert/--key work too."""
    pem = _certificates(tmp_path, san="DNS:moderation.internal")
    files = {name: tmp_path / name for name in pem}
    tls = await secured(Gate(()), tls_cert=pem["server.pem"], tls_key=pem["server.key"])
    mtls = await secured(
        Gate(()), tls_cert=pem["server.pem"], tls_key=pem["server.key"], tls_client_ca=pem["ca.pem"]
    )
    server_env = {
        "MODERATION_TLS_CERT_FILE": str(files["server.pem"]),
        "MODERATION_TLS_KEY_FILE": str(files["server.key"]),
    }
    checks = await asyncio.gather(
        asyncio.to_thread(_health, tls.port, **server_env),
        asyncio.to_thread(
            _health,
            mtls.port,
            **server_env,
            MODERATION_TLS_CLIENT_CA_FILE=str(files["ca.pem"]),
        ),
        asyncio.to_thread(
            _health,
            mtls.port,
            "--ca",
            str(files["ca.pem"]),
            "--cert",
            str(files["client.pem"]),
            "--key",
            str(files["client.key"]),
        ),
        asyncio.to_thread(_health, tls.port),
        asyncio.to_thread(_health, mtls.port, "--ca", str(files["ca.pem"])),
    )
    assert [c.returncode for c in checks] == [0, 0, 0, 1, 1], [c.stderr[-300:] for c in checks]
    assert checks[0].stdout.strip() == "SERVING"


async def test_metrics_endpoint_can_require_a_token_and_tls(tmp_path: Path) -> None:
    """With a token, a scrape without it is 401; with TLS files, /metrics speaks HTTPS."""
    _certificates(tmp_path)
    metrics = Metrics()
    plain_port = metrics.serve("127.0.0.1", 0, MetricsAccess(token=SCRAPE_TOKEN))
    tls_port = metrics.serve(
        "127.0.0.1",
        0,
        MetricsAccess(cert_file=tmp_path / "server.pem", key_file=tmp_path / "server.key"),
    )
    async with httpx.AsyncClient() as client:
        refused = await client.get(f"http://127.0.0.1:{plain_port}/metrics")
        allowed = await client.get(
            f"http://127.0.0.1:{plain_port}/metrics",
            headers={"authorization": f"Bearer {SCRAPE_TOKEN}"},
        )
    assert refused.status_code == 401
    assert "grpc_server_handled_total" not in refused.text
    assert allowed.status_code == 200
    assert "# HELP grpc_server_started_total" in allowed.text
    context = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    async with httpx.AsyncClient(verify=context) as client:
        secure = await client.get(f"https://localhost:{tls_port}/metrics")
    assert secure.status_code == 200
