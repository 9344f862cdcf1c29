"""ApplyGuardrail for the emulator: word-list guardrails from the config.

Speaks bedrock-runtime ``POST /guardrail/{guardrailIdentifier}/version/
{guardrailVersion}/apply`` (``shared/titan-api.md`` §6) in the JSON shape
botocore's rest-json parser expects. ``EmulatorConfig.guardrails`` maps a
guardrail id to its blocked words (case-insensitive substrings); any version
of a configured id answers, an unknown id is a 404 ResourceNotFoundException.

Choices where Bedrock's documentation is silent:

* ``assessments`` holds one entry per content block, in order (``{}`` for a
  block nothing was found in), so a client can tell which block intervened.
  Image blocks are validated but never match.
* ``usage`` is all zeros; ``actionReason`` is ``"Guardrail blocked."`` on an
  intervention and absent otherwise; ``outputScope`` is validated and ignored.
* Checks run in this order: route (404), JSON body (400), guardrail id (404),
  version and fields (400). Only POST reaches ApplyGuardrail.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from gateway.emulator.config import EmulatorConfig
from gateway.emulator.errors import NOT_FOUND, EmulatorError, validation

__all__ = ["BLOCKED_MESSAGE", "apply_guardrail", "guardrail_target"]

_APPLY_PATH = re.compile(r"^/guardrail/([^/]+)/version/([^/]+)/apply$")
_VERSION = re.compile(r"^(?:[1-9][0-9]{0,7}|DRAFT)$")
_SOURCES = frozenset({"INPUT", "OUTPUT"})
_OUTPUT_SCOPES = frozenset({"INTERVENTIONS", "FULL"})
_QUALIFIERS = frozenset({"grounding_source", "query", "guard_content"})
_IMAGE_FORMATS = frozenset({"png", "jpeg"})

# Bedrock's default "blocked input" message for a guardrail.
BLOCKED_MESSAGE = "Sorry, the model cannot answer this question."
BLOCKED_REASON = "Guardrail blocked."


def guardrail_target(path: str) -> tuple[str, str] | None:
    """(guardrailIdentifier, guardrailVersion) if the raw path is ApplyGuardrail's."""
    match = _APPLY_PATH.match(path)
    if match is None:
        return None
    return unquote(match.group(1)), unquote(match.group(2))


def apply_guardrail(
    config: EmulatorConfig, identifier: str, version: str, body: dict[str, Any]
) -> dict[str, Any]:
    """The ApplyGuardrail response body; raises EmulatorError as Bedrock would."""
    words = config.guardrails.get(identifier)
    if words is None:
        raise EmulatorError(
            404, NOT_FOUND, f"The guardrail {identifier} with version {version} was not found."
        )
    if not _VERSION.match(version):
        raise validation(
            f"1 validation error detected: Value '{version}' at 'guardrailVersion' failed to "
            "satisfy constraint: Member must satisfy regular expression pattern: "
            "(([1-9][0-9]{0,7})|(DRAFT))"
        )
    texts = _validated_texts(body)
    assessments = [_assess(text, words) for text in texts]
    intervened = any(assessments)
    response: dict[str, Any] = {
        "action": "GUARDRAIL_INTERVENED" if intervened else "NONE",
        "outputs": [{"text": BLOCKED_MESSAGE}] if intervened else [],
        "assessments": assessments,
        "usage": _zero_usage(),
    }
    if intervened:
        response["actionReason"] = BLOCKED_REASON
    return response


def _assess(text: str | None, words: tuple[str, ...]) -> dict[str, Any]:
    """One block's assessment: the blocked words it contains, or {} for none."""
    if not text:
        return {}
    lowered = text.lower()
    found = [word for word in words if word and word.lower() in lowered]
    if not found:
        return {}
    return {
        "wordPolicy": {
            "customWords": [
                {"match": word, "action": "BLOCKED", "detected": True} for word in found
            ]
        }
    }


def _validated_texts(body: dict[str, Any]) -> list[str | None]:
    """The text of each content block (None for an image block), after validation."""
    source = body.get("source")
    if source is None:
        raise validation("source is required.")
    if source not in _SOURCES:
        raise validation(f"source must be one of INPUT, OUTPUT; got {source!r}.")
    scope = body.get("outputScope")
    if scope is not None and scope not in _OUTPUT_SCOPES:
        raise validation(f"outputScope must be one of INTERVENTIONS, FULL; got {scope!r}.")
    content = body.get("content")
    if content is None:
        raise validation("content is required.")
    if not isinstance(content, list) or not content:
        raise validation("content must be a non-empty list of content blocks.")
    return [_block_text(i, block) for i, block in enumerate(content)]


def _block_text(index: int, block: Any) -> str | None:
    where = f"content[{index}]"
    if not isinstance(block, dict) or len(block) != 1:
        raise validation(f"{where} must set exactly one of text, image.")
    ((kind, value),) = block.items()
    if kind == "text":
        return _text_block(where, value)
    if kind == "image":
        _image_block(where, value)
        return None
    raise validation(f"{where} must set exactly one of text, image; got {kind!r}.")


def _text_block(where: str, value: Any) -> str:
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise validation(f"{where}.text.text is required and must be a string.")
    qualifiers = value.get("qualifiers", [])
    if not isinstance(qualifiers, list) or any(q not in _QUALIFIERS for q in qualifiers):
        raise validation(
            f"{where}.text.qualifiers must list grounding_source, query or guard_content."
        )
    text: str = value["text"]
    return text


def _image_block(where: str, value: Any) -> None:
    if not isinstance(value, dict) or value.get("format") not in _IMAGE_FORMATS:
        raise validation(f"{where}.image.format must be png or jpeg.")
    source = value.get("source")
    if not isinstance(source, dict) or not isinstance(source.get("bytes"), str):
        raise validation(f"{where}.image.source.bytes is required.")


def _zero_usage() -> dict[str, int]:
    return {
        "topicPolicyUnits": 0,
        "contentPolicyUnits": 0,
        "wordPolicyUnits": 0,
        "sensitiveInformationPolicyUnits": 0,
        "sensitiveInformationPolicyFreeUnits": 0,
        "contextualGroundingPolicyUnits": 0,
        "contentPolicyImageUnits": 0,
        "automatedReasoningPolicyUnits": 0,
        "automatedReasoningPolicies": 0,
    }
