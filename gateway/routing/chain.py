"""`plan_chain`: the primary job and its fallbacks, priced and checked."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date

from gateway.dialects import encode_body
from gateway.domain import ImageJob, InputImage
from gateway.errors import FieldViolation, InvalidRequest, ModelRetired, TaskNotSupported
from gateway.registry import MAX_BODY_BYTES
from gateway.registry.catalog import LegacyWarnings
from policies import Decision
from titan.gateway.v1 import image_service_pb2 as pb

log = logging.getLogger(__name__)

Decode = Callable[[pb.GenerateImagesRequest], ImageJob]


@dataclass(frozen=True)
class Plan:
    """What one request runs: `job`, then `fallbacks` in order, at `prices`."""

    job: ImageJob
    decision: Decision
    fallbacks: tuple[ImageJob, ...] = ()
    prices: Mapping[str, int] = field(default_factory=dict)


@dataclass
class LifecycleGuard:
    """Refuses models past their end of life when the backend is real Bedrock
    (the emulator serves every model), and warns once a day per legacy model."""

    enforce: bool
    warnings: LegacyWarnings = field(default_factory=LegacyWarnings)

    def live(self, jobs: list[ImageJob], today: date) -> list[ImageJob]:
        if not self.enforce:
            return jobs
        kept = [j for j in jobs if not j.model.lifecycle.retired(today)]
        for job in kept:
            self.warnings.used(job.model, today)
        return kept


def plan_chain(
    request: pb.GenerateImagesRequest,
    job: ImageJob,
    decision: Decision,
    decode: Decode,
    guard: LifecycleGuard,
    today: date,
) -> Plan:
    """The chain for an allowed request whose (rewritten) form is `request`
    and decoded primary job is `job`. Raises ModelRetired when no model of
    the chain can run on Bedrock any more, InvalidRequest when a body would
    exceed InvokeModel's limit."""
    candidates = [job, *_fallback_jobs(request, decision, decode)]
    chain = guard.live(candidates, today)
    if not chain:
        life = job.model.lifecycle
        eol = life.eol.isoformat() if life.eol else "an unannounced date"
        raise ModelRetired(job.model.model_id, eol, life.replacement)
    for planned in chain:
        _check_body_size(request, planned)
    prices = dict(decision.model_prices)
    prices.setdefault(job.model.model_id, decision.price_per_image_micros)
    primary, fallbacks = chain[0], tuple(chain[1:])
    count = primary.config.count
    priced = replace(
        decision,
        price_per_image_micros=prices[primary.model.model_id],
        estimate_micros=max(prices[j.model.model_id] for j in chain) * count,
    )
    return Plan(primary, priced, fallbacks, prices)


def _fallback_jobs(
    request: pb.GenerateImagesRequest, decision: Decision, decode: Decode
) -> list[ImageJob]:
    """Each fallback model's job; a model that cannot run this request is left out."""
    jobs = []
    for model_id in decision.fallbacks:
        other = pb.GenerateImagesRequest()
        other.CopyFrom(request)
        other.model_id = model_id
        try:
            jobs.append(decode(other))
        except (InvalidRequest, TaskNotSupported) as exc:
            log.info("fallback %s left out of the chain: %s", model_id, exc.message)
    return jobs


def _check_body_size(request: pb.GenerateImagesRequest, job: ImageJob) -> None:
    """Bedrock refuses InvokeModel bodies over 25,000,000 bytes; base64 makes
    images 4/3 larger, so inputs within their own limits can still exceed it.

    The body is encoded (its images base64'd, a Stability mask inverted) only
    when a cheap upper bound of its size does not already fit."""
    if _size_bound(job) <= MAX_BODY_BYTES:
        return
    size = len(encode_body(job, 0))
    if size > MAX_BODY_BYTES:
        task = request.WhichOneof("task") or "task"
        raise InvalidRequest(
            [
                FieldViolation(
                    task,
                    f"the InvokeModel body for {job.model.model_id} would be {size:,} bytes; "
                    f"Bedrock accepts at most {MAX_BODY_BYTES:,} (images grow by 4/3 in "
                    "base64): send fewer or smaller images",
                )
            ]
        )


# Prompts (at most 10,000 characters each, up to 6 bytes when JSON-escaped)
# and every other field of a body fit in this, with room to spare.
_TEXT_AND_FIELDS_BOUND = 512 * 1024


def _size_bound(job: ImageJob) -> int:
    """At least the size of any body `job` can produce."""
    total = _TEXT_AND_FIELDS_BOUND
    for name, image in _input_images(job):
        size = len(image.data)
        if "mask" in name:  # a dialect may re-encode it (Stability inverts masks) as PNG
            size = max(size, image.width * image.height * 4 + image.height + 4096)
        total += 4 * -(-size // 3)
    return total


def _input_images(job: ImageJob) -> list[tuple[str, InputImage]]:
    found: list[tuple[str, InputImage]] = []
    for member in dataclasses.fields(job.task):
        value = getattr(job.task, member.name)
        values = value if isinstance(value, tuple) else (value,)
        found += [(member.name, v) for v in values if isinstance(v, InputImage)]
    return found
