"""Idempotency keys: a retried request is answered from the first run.

A request with `client_request_id` claims (tenant, key) in the ledger with a
hash of the request. The first caller runs it and records every event (image
bytes go to the artifact store); a retry while it runs waits for it; a retry
after it finished gets the same events and the same image bytes, and is not
charged again. The same key with a different request is ALREADY_EXISTS.

The request id (and so the usage records' key) is derived from the
idempotency key, so even a run that is taken over after its owner died
settles each image index at most once.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import grpc

from gateway.artifacts import ArtifactStore
from gateway.errors import GatewayError, IdempotencyConflict
from gateway.ledger import IdempotencyState, Ledger
from titan.gateway.v1 import image_service_pb2 as pb

_NAMESPACE = uuid.UUID("6f1c8a52-2f6e-4f57-9d7c-3c1d1c0e7a11")
POLL_S = 0.1


class StillRunning(GatewayError):
    """The first request with this key is still running past the caller's deadline."""

    code = grpc.StatusCode.ABORTED


def request_id_for(tenant_id: str, key: str) -> str:
    """A stable request id for (tenant, key): retries settle the same usage rows."""
    return str(uuid.uuid5(_NAMESPACE, f"{tenant_id}\x00{key}"))


def request_hash(request: pb.GenerateImagesRequest) -> str:
    return hashlib.sha256(request.SerializeToString(deterministic=True)).hexdigest()


@dataclass
class Recording:
    """The events of a run, kept for replay; image bytes live in the artifact store."""

    prefix: str
    events: list[dict[str, str]] = field(default_factory=list)

    def add(self, event: pb.GenerateImagesResponse, artifact: str = "") -> None:
        self.events.append(
            {"event": base64.b64encode(event.SerializeToString()).decode(), "artifact": artifact}
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

    def recording(self, tenant_id: str, key: str) -> Recording:
        prefix = f"{tenant_id}/{hashlib.sha256(key.encode()).hexdigest()[:32]}"
        return Recording(prefix)

    async def keep_image(self, recording: Recording, event: pb.GenerateImagesResponse) -> None:
        name = f"{recording.prefix}/{event.image.index}.png"
        await self._artifacts.put(name, event.image.data)
        stripped = pb.GenerateImagesResponse()
        stripped.CopyFrom(event)
        stripped.image.data = b""
        recording.add(stripped, name)

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
                event.image.data = await self._artifacts.get(item["artifact"])
            events.append(event)
        return events
