"""The tracer and instruments handed to the request path (OpenTelemetry API
only; `gateway.telemetry.sdk` builds the real ones at start-up)."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import metrics, trace

from gateway.telemetry import Instruments

# GenAI and RPC semantic-convention attribute names used across the gateway.
GEN_AI_SYSTEM = "gen_ai.system"
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_MODEL = "gen_ai.request.model"
RPC_STATUS = "rpc.grpc.status_code"


@dataclass(frozen=True)
class Observer:
    """What the request path records traces and metrics with."""

    tracer: trace.Tracer
    instruments: Instruments
    record_prompts: bool = False
    # Latest remaining budget per (tenant, period), in micro-USD: the budget
    # gauge's callback must be cheap, so it reads this cache.
    budgets: dict[tuple[str, str], int] = field(default_factory=dict)

    @classmethod
    def noop(cls) -> Observer:
        """Records nothing (no SDK installed): for unit tests and tools."""
        meter = metrics.NoOpMeterProvider().get_meter("titan_gateway")
        return cls(
            trace.NoOpTracerProvider().get_tracer("titan_gateway"), Instruments.create(meter)
        )

    def budget_readings(self) -> list[tuple[str, str, int]]:
        return [(tenant, period, left) for (tenant, period), left in self.budgets.items()]
