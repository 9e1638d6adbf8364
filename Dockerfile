# syntax=docker/dockerfile:1
# Multi-stage: build a virtualenv with the package, copy it into a slim runtime image that
# runs as a non-root user. The HEALTHCHECK speaks grpc.health.v1 from Python (no probe binary).
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# A C compiler for the prefilter's extension module (moderation/_scan.c).
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
# Dependencies exactly as pinned, every file checked against its hash (`make lock` renews the
# pins), with the otel extra (traces stay off until OTEL_EXPORTER_OTLP_ENDPOINT is set); then
# the package itself, which adds nothing unpinned.
COPY requirements.lock ./
RUN /opt/venv/bin/pip install --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY moderation ./moderation
RUN /opt/venv/bin/pip install --no-deps . && /opt/venv/bin/python -m compileall -q /opt/venv

FROM python:3.11-slim-bookworm
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
# Metrics listen on the container's loopback only: to scrape from outside, set
# MODERATION_METRICS_HOST=0.0.0.0 together with MODERATION_METRICS_TOKEN (and TLS files), and
# publish 9464 on a private network only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MODERATION_HOST=0.0.0.0 \
    MODERATION_PORT=50051 \
    MODERATION_METRICS_PORT=9464 \
    MODERATION_DRAIN_SECONDS=5 \
    MODERATION_GRACE_SECONDS=20
USER app
EXPOSE 50051
# Speaks TLS (and mTLS) by itself when the MODERATION_TLS_* files are set.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["moderation", "health", "--timeout", "2"]
STOPSIGNAL SIGTERM
# Give `docker stop -t` more than drain + grace (25 s) so calls in flight finish.
CMD ["moderation", "serve"]
