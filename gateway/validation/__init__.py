"""Request validation: the protobuf request in, a validated `ImageJob` out.

Every limit of the model that will run the request (its `ModelLimits` in the
model registry, `gateway.registry`) is checked here, before anything is
spent; all violations are reported together in one `InvalidRequest`, each
naming the dotted proto field path from the request root. A model that
cannot run the task at all is `TaskNotSupported`, raised first.
"""

from gateway.validation.request import decode_request

__all__ = ["decode_request"]
