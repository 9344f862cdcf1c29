"""Routing: from an allowed, validated request to the chain of models it runs on.

The policy decides the model (a `route`, an A/B split) and names a fallback
chain; this package turns that into jobs the fan-out can run: each fallback
validated for its own model (one that cannot run the task is left out), the
models past their end of life on Bedrock dropped (or the request refused,
naming the replacement), the InvokeModel body limit checked for each, and
the estimate set to cover the dearest model left in the chain.
"""

from gateway.routing.chain import LifecycleGuard, Plan, plan_chain

__all__ = ["LifecycleGuard", "Plan", "plan_chain"]
