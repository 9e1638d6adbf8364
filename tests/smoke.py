"""Smoke test of a running service, or of the container image (``make image``).

``python -m tests.smoke --address HOST:PORT`` checks a server that is already up;
``python -m tests.smoke --image IMAGE`` starts the image with Docker, checks it the same way,
waits for the image's own HEALTHCHECK to say healthy, stops it with SIGTERM and expects a
clean exit within the grace period. Exits 1 and names each failed check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import time

import grpc

from moderation.rpc.server import probe
from moderation.v1 import moderation_pb2 as pb
from moderation.v1 import moderation_pb2_grpc as pb_grpc

INSULT = "你就是个傻逼"
CLEAN = "今天天气真好"


async def check_service(address: str, wait_s: float = 30.0) -> list[str]:
    """What is wrong with the server at ``address``; empty when every check passes."""
    until = time.monotonic() + wait_s
    while not await probe(address, wait_s=1.0):
        if time.monotonic() > until:
            return [f"health: {address} not SERVING within {wait_s:.0f} s"]
        await asyncio.sleep(0.5)
    problems: list[str] = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.ModerationServiceStub(channel)
        bad = await stub.Moderate(pb.ModerateRequest(text=INSULT), timeout=5)
        if bad.decision != pb.DECISION_BLOCK or pb.CATEGORY_ABUSE not in {
            label.category for label in bad.labels
        }:
            problems.append(f"Moderate: an insult gave {pb.Decision.Name(bad.decision)}")
        good = await stub.Moderate(pb.ModerateRequest(text=CLEAN), timeout=5)
        if good.decision != pb.DECISION_ALLOW:
            problems.append(f"Moderate: a clean text gave {pb.Decision.Name(good.decision)}")
        batch = await stub.ModerateBatch(
            pb.ModerateBatchRequest(items=[pb.ModerateRequest(text=CLEAN)] * 3), timeout=5
        )
        if len(batch.results) != 3:
            problems.append(f"ModerateBatch: {len(batch.results)} answers for 3 items")
        policies = await stub.ListPolicies(pb.ListPoliciesRequest(), timeout=5)
        if "GLOBAL" not in {policy.jurisdiction for policy in policies.policies}:
            problems.append("ListPolicies: no GLOBAL policy")
        try:
            await stub.Moderate(pb.ModerateRequest(text=""), timeout=5)
            problems.append("Moderate: an empty text was accepted")
        except grpc.aio.AioRpcError as exc:
            if exc.code() is not grpc.StatusCode.INVALID_ARGUMENT:
                problems.append(f"Moderate: an empty text gave {exc.code().name}")
    return problems


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    docker = shutil.which("docker")
    if docker is None:
        raise SystemExit("smoke: docker is not on PATH")
    return subprocess.run([docker, *args], capture_output=True, text=True, check=check)


def _docker_out(*args: str) -> str:
    """What ``docker ARGS`` prints on stdout."""
    return _docker(*args).stdout.strip()


def check_image(image: str, health_wait_s: float = 60.0) -> list[str]:
    """Start ``image``, check it, wait for its HEALTHCHECK, stop it; what went wrong."""
    container = _docker_out("run", "--detach", "--publish", "127.0.0.1::50051", image)
    problems: list[str] = []
    try:
        address = _docker_out("port", container, "50051/tcp").splitlines()[0]
        problems += asyncio.run(check_service(address))
        until = time.monotonic() + health_wait_s
        status = ""
        while time.monotonic() < until:
            state = json.loads(_docker_out("inspect", "--format", "{{json .State}}", container))
            status = state.get("Health", {}).get("Status", "")
            if status in ("healthy", "unhealthy"):
                break
            time.sleep(1)
        if status != "healthy":
            problems.append(f"HEALTHCHECK: {status or 'no status'} after {health_wait_s:.0f} s")
        began = time.monotonic()
        _docker("stop", "--time", "30", container)
        took = time.monotonic() - began
        code = int(_docker_out("inspect", "--format", "{{.State.ExitCode}}", container))
        if code != 0 or took > 29:
            problems.append(f"SIGTERM: exit code {code} after {took:.1f} s")
        logs = _docker("logs", container)  # the container's stdout and stderr
        if INSULT in logs.stdout + logs.stderr:
            problems.append("logs: user content was logged")
    finally:
        _docker("rm", "--force", container, check=False)
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.smoke", description=__doc__)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--address", help="HOST:PORT of a running server")
    target.add_argument("--image", help="a container image to start and check")
    args = parser.parse_args()
    problems = check_image(args.image) if args.image else asyncio.run(check_service(args.address))
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    print("smoke: ok" if not problems else f"smoke: {len(problems)} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
