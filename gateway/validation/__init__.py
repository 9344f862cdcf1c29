"""Request validation: the protobuf request in, a validated `ImageJob` out.

Every Titan / Nova Canvas limit (shared/titan-api.md, gateway.models) is checked
here, before anything is spent; all violations are reported together in one
`InvalidRequest`, each naming the dotted proto field path from the request root.
"""

from gateway.validation.request import decode_request

__all__ = ["decode_request"]
