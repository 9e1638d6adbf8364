"""The grpc.aio server: our service, standard health and reflection, and a graceful stop.

On SIGTERM or SIGINT: health turns NOT_SERVING (so balancers drain), the server waits
``drain_seconds`` while still serving, then stops accepting calls and gives the calls in
flight ``grace_seconds`` to finish before cancelling them.
"""

from __future__ import annotations

import asyncio
import signal
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from moderation.errors import ConfigError
from moderation.metrics import Metrics
from moderation.pipeline import Moderator
from moderation.rpc.access import Gate
from moderation.rpc.interceptors import Access, Admission, ErrorMapping, Observe
from moderation.rpc.servicer import ModerationServicer
from moderation.tracing import Tracing
from moderation.v1 import moderation_pb2 as pb
from moderation.v1 import moderation_pb2_grpc as pb_grpc

log = structlog.get_logger("moderation.server")

#: Addresses that only this machine reaches.
LOOPBACK = ("127.0.0.1", "localhost", "::1")
#: On stop, how long new calls are refused UNAVAILABLE before gRPC stops taking them.
REFUSE_SECONDS = 0.25

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["ModerationService"].full_name


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """Transport limits (from settings)."""

    host: str = "127.0.0.1"
    port: int = 50051
    max_message_bytes: int = 32 * 1024 * 1024
    max_concurrent_rpcs: int = 256
    max_batch_items: int = 500
    stream_window: int = 32
    stream_idle_seconds: float = 300.0
    drain_seconds: float = 0.0
    grace_seconds: float = 10.0
    tls_cert: bytes | None = None
    tls_key: bytes | None = None
    tls_client_ca: bytes | None = None


class Service:
    """A started server with its health servicer and the port it listens on."""

    def __init__(
        self,
        server: grpc.aio.Server,
        health_servicer: health.aio.HealthServicer,
        port: int,
        options: ServerOptions,
        admission: Admission,
    ) -> None:
        self.server = server
        self.health = health_servicer
        self.port = port
        self.options = options
        self.admission = admission

    async def stop(self) -> None:
        """Drain: NOT_SERVING, wait ``drain_seconds``, then stop with ``grace_seconds``.

        From the end of the drain, a call that reaches the server is refused UNAVAILABLE
        (which clients retry on another instance) rather than cut off CANCELLED; calls in
        flight have ``grace_seconds`` to finish.
        """
        log.info(
            "server.draining",
            drain_s=self.options.drain_seconds,
            grace_s=self.options.grace_seconds,
        )
        await self.health.enter_graceful_shutdown()
        if self.options.drain_seconds:
            await asyncio.sleep(self.options.drain_seconds)
        self.admission.closing = True
        # Calls already queued when the server stops are cut off CANCELLED by gRPC itself;
        # refused first, they get UNAVAILABLE, which clients retry.
        await asyncio.sleep(REFUSE_SECONDS)
        await self.server.stop(self.options.grace_seconds)
        log.info("server.stopped")


def _address(host: str, port: int) -> str:
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


async def start(
    moderator: Moderator,
    options: ServerOptions,
    *,
    gate: Gate | None = None,
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
) -> Service:
    """Build and start the server; returns once it accepts calls and reports SERVING.

    Interceptors, outermost first: the trace span (with ``tracing``), the access line and
    metrics (they see the final status), error mapping,
    admission (the cap on calls at once, and refusal while stopping; probes exempt), access
    (key and rate limit).
    """
    gate = gate or Gate(())
    admission = Admission(options.max_concurrent_rpcs)
    interceptors: list[grpc.aio.ServerInterceptor] = [
        Observe(metrics),
        ErrorMapping(),
        admission,
        Access(gate),
    ]
    if tracing is not None:
        interceptors.insert(0, tracing.server_interceptor())
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", options.max_message_bytes),
            ("grpc.max_send_message_length", options.max_message_bytes),
            ("grpc.keepalive_time_ms", 60_000),
            ("grpc.keepalive_timeout_ms", 20_000),
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 30_000),
            ("grpc.keepalive_permit_without_calls", 1),
            # A second server on a taken port must fail, not silently share it.
            ("grpc.so_reuseport", 0),
        ],
    )
    pb_grpc.add_ModerationServiceServicer_to_server(
        ModerationServicer(
            moderator,
            max_batch_items=options.max_batch_items,
            stream_window=options.stream_window,
            stream_idle_s=options.stream_idle_seconds,
        ),
        server,
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    address = _address(options.host, options.port)
    try:
        if options.tls_cert is not None and options.tls_key is not None:
            credentials = grpc.ssl_server_credentials(
                [(options.tls_key, options.tls_cert)],
                root_certificates=options.tls_client_ca,
                require_client_auth=options.tls_client_ca is not None,
            )
            port = server.add_secure_port(address, credentials)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:  # grpc's way of saying the bind failed
        raise ConfigError(
            f"cannot listen on {address}: the port is taken or the address is not local; "
            "choose another with --port/MODERATION_PORT or --host/MODERATION_HOST"
        ) from exc
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info(
        "server.started",
        address=_address(options.host, port),
        policies=[p.jurisdiction for p in moderator.policies],
        lexicon_version=moderator.lexicon_version,
        model=moderator.escalator.model if moderator.escalator else None,
    )
    if not gate.enabled and options.host not in LOOPBACK:
        log.warning("server.unauthenticated", reason="listening beyond loopback without API keys")
    if options.tls_cert is None and options.host not in LOOPBACK:
        log.warning("server.plaintext", reason="listening beyond loopback without TLS")
    return Service(server, health_servicer, port, options, admission)


@dataclass(frozen=True, slots=True)
class ProbeTls:
    """How ``probe`` speaks TLS: whom it trusts, and the certificate it presents (mTLS)."""

    ca: bytes | None = None
    """PEM roots; None: trust the certificate the server presents (a liveness probe of a
    server one runs oneself checks that it answers, not who it is)."""
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None
    """The name to expect in the certificate; None: the first name the certificate holds."""


def _client_context(tls: ProbeTls, roots: bytes | None) -> ssl.SSLContext:
    """A client TLS context: checks the server against ``roots`` (None: checks nothing) and
    presents ``tls``'s certificate, if any."""
    context = ssl.create_default_context()
    context.check_hostname = False
    if roots is None:
        context.verify_mode = ssl.CERT_NONE
    else:
        context.load_verify_locations(cadata=roots.decode())
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN  # a pinned leaf is its own anchor
    context.set_alpn_protocols(["h2"])
    if tls.cert is not None and tls.key is not None:
        with tempfile.TemporaryDirectory() as folder:  # ssl loads a chain from files only
            cert, key = Path(folder, "cert.pem"), Path(folder, "key.pem")
            cert.write_bytes(tls.cert)
            key.write_bytes(tls.key)
            context.load_cert_chain(cert, key)
    return context


async def _handshake(
    host: str, port: int, tls: ProbeTls, roots: bytes | None, wait_s: float
) -> tuple[bytes, list[str]]:
    """One TLS handshake with the server: its certificate (PEM) and, when checked against
    ``roots``, the DNS names and addresses it holds (None: nothing checked, no names)."""
    context = _client_context(tls, roots)
    _, writer = await asyncio.wait_for(asyncio.open_connection(host, port, ssl=context), wait_s)
    try:
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        peer = writer.get_extra_info("peercert") or {}
    finally:
        writer.close()
    names = [str(v) for kind, v in peer.get("subjectAltName", ()) if kind in ("DNS", "IP Address")]
    return ssl.DER_cert_to_PEM_cert(der).encode(), names


async def probe(address: str, wait_s: float = 2.0, tls: ProbeTls | None = None) -> bool:
    """True when the server at ``address`` answers grpc.health.v1 Check with SERVING.

    With ``tls``, over TLS (and mTLS when it holds a certificate); the name checked is the
    one the server's certificate holds, so a probe of 127.0.0.1 works with a certificate
    issued for the service's DNS name.
    """
    try:
        if tls is None:
            channel = grpc.aio.insecure_channel(address)
        else:
            host, _, port = address.rpartition(":")
            host = host.strip("[]")
            roots = tls.ca or (await _handshake(host, int(port), tls, None, wait_s))[0]
            name = tls.server_name
            if name is None:
                _, names = await _handshake(host, int(port), tls, roots, wait_s)
                name = host if host in names or not names else names[0]
            channel = grpc.aio.secure_channel(
                address,
                grpc.ssl_channel_credentials(roots, tls.key, tls.cert),
                options=[("grpc.ssl_target_name_override", name)],
            )
    except (OSError, ssl.SSLError, TimeoutError, ValueError):
        return False
    async with channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=wait_s
            )
        except grpc.aio.AioRpcError:
            return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


async def serve(
    moderator: Moderator,
    options: ServerOptions,
    *,
    gate: Gate | None = None,
    metrics: Metrics | None = None,
    tracing: Tracing | None = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    service = await start(moderator, options, gate=gate, metrics=metrics, tracing=tracing)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    waiter = asyncio.create_task(service.server.wait_for_termination())
    stop_signal = asyncio.create_task(stopping.wait())
    await asyncio.wait({waiter, stop_signal}, return_when=asyncio.FIRST_COMPLETED)
    if stopping.is_set():
        await service.stop()
    waiter.cancel()
    stop_signal.cancel()
