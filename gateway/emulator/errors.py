"""Bedrock-shaped errors raised anywhere in the emulator.

Every failure the emulator reports travels as one `EmulatorError`, so the HTTP
layer has a single place that turns it into the wire format botocore parses
(status, ``x-amzn-ErrorType`` header, ``{"message": ...}`` body).
"""

from __future__ import annotations

VALIDATION = "ValidationException"
THROTTLING = "ThrottlingException"
INTERNAL = "InternalServerException"
NOT_FOUND = "ResourceNotFoundException"
UNKNOWN_OPERATION = "UnknownOperationException"
ACCESS_DENIED = "AccessDeniedException"
UNAVAILABLE = "ServiceUnavailableException"

INPUT_BLOCKED_MESSAGE = (
    "This request has been blocked by our content filters. "
    "Please adjust your text prompt to submit a new request."
)
THROTTLED_MESSAGE = "Too many requests, please wait before trying again."
INTERNAL_MESSAGE = "The server encountered an internal error while processing the request."
MODEL_NOT_FOUND_MESSAGE = (
    "Could not resolve the foundation model from the provided model identifier."
)


class EmulatorError(Exception):
    """An error answered to the client exactly as Bedrock would answer it."""

    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message

    def __repr__(self) -> str:
        return f"EmulatorError({self.status}, {self.error_type!r}, {self.message!r})"


def malformed(path: str, reason: str) -> EmulatorError:
    """A schema violation in Bedrock's observed JSON-schema message shape.

    Bedrock words these as ``Malformed input request: #/a/b: <reason>, please
    reformat your input and try again.``; every rule in the emulator reuses it
    so clients can rely on the ``#/path`` prefix to find the offending field.
    """
    return EmulatorError(
        400,
        VALIDATION,
        f"Malformed input request: {path}: {reason}, please reformat your input and try again.",
    )


def validation(message: str) -> EmulatorError:
    """A 400 ValidationException with a free-form message."""
    return EmulatorError(400, VALIDATION, message)


# The errors `EmulatorConfig.model_errors` can give one model.
MODEL_ERRORS: dict[str, EmulatorError] = {
    "throttled": EmulatorError(429, THROTTLING, THROTTLED_MESSAGE),
    "access_denied": EmulatorError(
        403, ACCESS_DENIED, "You don't have access to the model with the specified model ID."
    ),
    "not_found": EmulatorError(404, NOT_FOUND, MODEL_NOT_FOUND_MESSAGE),
    "unavailable": EmulatorError(503, UNAVAILABLE, "The service is temporarily unavailable."),
}
