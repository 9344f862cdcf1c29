"""AdminService: for operators holding an admin key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from gateway.auth import caller
from gateway.errors import NotATenant, to_rpc_status
from gateway.policy_store import PolicyStore
from titan.gateway.v1 import admin_service_pb2 as pb
from titan.gateway.v1 import admin_service_pb2_grpc


class AdminService(admin_service_pb2_grpc.AdminServiceServicer):
    """Policy status and reload (budgets and usage arrive with the ledger)."""

    def __init__(self, policies: PolicyStore) -> None:
        self._policies = policies

    async def GetPolicyStatus(
        self, request: pb.GetPolicyStatusRequest, context: Any
    ) -> pb.GetPolicyStatusResponse:
        await _require_admin(context)
        return pb.GetPolicyStatusResponse(status=self._status())

    async def ReloadPolicy(
        self, request: pb.ReloadPolicyRequest, context: Any
    ) -> pb.ReloadPolicyResponse:
        await _require_admin(context)
        self._policies.reload()
        return pb.ReloadPolicyResponse(status=self._status())

    def _status(self) -> pb.PolicyStatus:
        store = self._policies
        policy = store.current
        return pb.PolicyStatus(
            source=str(store.path),
            digest=policy.digest,
            loaded_at=_timestamp(store.loaded_at),
            tenant_count=len(policy.tenants),
            rule_count=len(policy.rules),
            last_reload_ok=store.last_reload.ok,
            last_reload_error=store.last_reload.error,
            last_reload_at=_timestamp(store.last_reload.at),
        )


async def _require_admin(context: Any) -> None:
    if not caller().admin:
        error = NotATenant("this RPC needs an admin key")
        await context.abort_with_status(to_rpc_status(error))


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp
