"""The tracer and instruments handed to the request path (OpenTelemetry API
only; `gateway.telemetry.sdk` builds the real ones at start-up)."""

from __future__ import annotations

from dataclasses import dataclass, field

from opentelemetry import metrics, trace

from gateway.telemetry import Instruments

# OpenTelemetry GenAI semantic conventions (Development status; the registry
# now lives in open-telemetry/semantic-conventions-genai). One CLIENT span per
# Bedrock call, named "{gen_ai.operation.name} {gen_ai.request.model}".
#: Replaced ``gen_ai.system``; Bedrock's well-known value is "aws.bedrock".
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_PROVIDER_BEDROCK = "aws.bedrock"
GEN_AI_OPERATION = "gen_ai.operation.name"
#: No well-known operation is an image generation; "generate_content"
#: ("multimodal content generation") is the closest of the listed values.
GEN_AI_OPERATION_GENERATE_CONTENT = "generate_content"
GEN_AI_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
#: The requested output modality; "image" is a well-known value.
GEN_AI_OUTPUT_TYPE = "gen_ai.output.type"
RPC_STATUS = "rpc.grpc.status_code"

# The gateway's own span attributes that join a trace to the API and the
# ledger. Money is integer micro-USD, as in the API (1 USD = 1,000,000).
#: Accepted.request_id: the id the ledger's usage and denial records carry.
REQUEST_ID = "titan.request_id"
#: Why the RPC was refused: the google.rpc.ErrorInfo reason when the status
#: carries one (POLICY_DENIED, BUDGET_EXHAUSTED …), else the status name.
REFUSAL = "titan.refusal"


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
