"""Idempotency keys: a retried request is answered from the first run.

A request with `client_request_id` claims (tenant, key) in the ledger with a
hash of the request. The first caller runs it and records every event (image
bytes go to the artifact store); a retry while it runs waits for it; a retry
after it finished gets the same events and the same image bytes, and is not
charged again. The same key with a different request is ALREADY_EXISTS.

Every attempt at a key has its own request id, so its usage rows are its
own: an attempt that was cancelled or failed (the key is then free again)
or taken over after its owner's lease ran out never lends its rows to the
next attempt, whose images are billed in full (Bedrock ran them again).
What a finished attempt delivered is replayed byte for byte: artifacts are
kept per attempt in a store every replica shares, with their sha256, which
is checked before a replayed image is sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc

from gateway.artifacts import ArtifactMissing, ArtifactStore
from gateway.errors import GatewayError, IdempotencyConflict
from gateway.ledger import IdempotencyState, Ledger
from titan.gateway.v1 import image_service_pb2 as pb

POLL_S = 0.1


class StillRunning(GatewayError):
    """The first request with this key is still running past the caller's deadline."""

    code = grpc.StatusCode.ABORTED


class ReplayUnavailable(GatewayError):
    """A finished run's stored image is missing or not the bytes delivered."""

    code = grpc.StatusCode.DATA_LOSS


def request_hash(request: pb.GenerateImagesRequest) -> str:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


@dataclass
class Recording:
    """The events of a run, kept for replay; image bytes live in the artifact store."""

    prefix: str
    events: list[dict[str, str]] = field(default_factory=list)

    def add(self, event: pb.GenerateImagesResponse, artifact: str = "", sha256: str = "") -> None:
        self.events.append(
            {
                "event": base64.b64encode(event.SerializeToString()).decode(),
                "artifact": artifact,
                "sha256": sha256,
            }
        )

    def encode(self) -> bytes:
        return json.dumps({"version": 1, "events": self.events}).encode()


class Idempotency:
    """Claims, recordings and replays of keyed requests."""

    def __init__(self, ledger: Ledger, artifacts: ArtifactStore, lease_s: float) -> None:
        self._ledger = ledger
        self._artifacts = artifacts
        self._lease_s = lease_s

    async def claim(self, tenant_id: str, key: str, digest: str, deadline: float) -> bytes | None:
        """None: the caller owns the key and runs the request. Bytes: a finished
        run to replay. Waits (until `deadline`, monotonic) while another runs."""
        while True:
            claim = await self._ledger.claim_idempotency(
                tenant_id, key, digest, now=datetime.now(UTC), lease_s=self._lease_s
            )
            if claim.state is IdempotencyState.NEW:
                return None
            if claim.state is IdempotencyState.DONE:
                return claim.result or b""
            if claim.state is IdempotencyState.CONFLICT:
                raise IdempotencyConflict(
                    f"idempotency key {key!r} was already used for a different request; "
                    "use a new key for a new request"
                )
            if time.monotonic() + POLL_S >= deadline:
                raise StillRunning(f"the request with idempotency key {key!r} is still running")
            await asyncio.sleep(POLL_S)

    def recording(self, tenant_id: str, key: str, request_id: str) -> Recording:
        """A recording for one attempt (`request_id`) at `key`."""
        prefix = f"{tenant_id}/{hashlib.sha256(key.encode()).hexdigest()[:32]}/{request_id}"
        return Recording(prefix)

    async def keep_image(self, recording: Recording, event: pb.GenerateImagesResponse) -> None:
        name = f"{recording.prefix}/{event.image.index}"
        data = event.image.data
        await self._artifacts.put(name, data)
        stripped = pb.GenerateImagesResponse()
        stripped.CopyFrom(event)
        stripped.image.data = b""
        digest = event.image.sha256 or hashlib.sha256(data).hexdigest()
        recording.add(stripped, name, digest)

    async def complete(self, tenant_id: str, key: str, recording: Recording) -> None:
        await self._ledger.complete_idempotency(tenant_id, key, recording.encode())

    async def abandon(self, tenant_id: str, key: str) -> None:
        await self._ledger.abandon_idempotency(tenant_id, key)

    async def replay(self, result: bytes) -> list[pb.GenerateImagesResponse]:
        """The recorded events, image bytes restored from the artifact store."""
        events = []
        for item in json.loads(result)["events"]:
            event = pb.GenerateImagesResponse.FromString(base64.b64decode(item["event"]))
            if item["artifact"]:
                event.image.data = await self._restore(item["artifact"], item.get("sha256", ""))
            events.append(event)
        return events

    async def _restore(self, name: str, sha256: str) -> bytes:
        try:
            data = await self._artifacts.get(name)
        except ArtifactMissing as exc:
            raise ReplayUnavailable(
                f"the image of the finished request ({name}) is no longer stored"
            ) from exc
        if sha256 and hashlib.sha256(data).hexdigest() != sha256:
            raise ReplayUnavailable(f"the stored image {name} is not the image delivered")
        return data
