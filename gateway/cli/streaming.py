"""Writing one GenerateImages stream to a folder, as the task commands do.

Each image is written as `<request id>-<index>.<png|jpg|webp>` (a returned
mask beside it as `<request id>-<index>-mask.png`) the moment it arrives.
stdout carries only the written paths, or with `--json` one JSON object per
event, the images' bytes replaced by the paths they were written to
(`path`, `maskPath`). Everything for people goes to stderr: a progress bar,
the policy's rewrites, the route, fallbacks, failures and the summary.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from gateway.cli.output import format_usd, json_line, message_dict
from titan.gateway.v1 import image_service_pb2 as pb

EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


def rewrite_line(rewrite: pb.Rewrite) -> str:
    """`rule R set quality: premium -> standard`."""
    return f"rule {rewrite.rule} set {rewrite.field}: {rewrite.old_value} -> {rewrite.new_value}"


@dataclass
class _Run:
    """One stream being written: where, under what prefix, with what bar."""

    out: Path
    as_json: bool = False
    prefix: str = "image"
    model_id: str = ""
    bar: tqdm | None = None
    failed: int = 0

    def accept(self, accepted: pb.Accepted) -> None:
        self.prefix, self.model_id = accepted.request_id[:8], accepted.model_id
        self.bar = tqdm(
            total=accepted.image_count, unit="img", desc=accepted.model_id, file=sys.stderr
        )
        for rewrite in accepted.rewrites:
            self.say(rewrite_line(rewrite))
        if accepted.route_arm:
            self.say(f"route arm: {accepted.route_arm}")
        if accepted.fallback_model_ids:
            self.say(f"fallbacks: {', '.join(accepted.fallback_model_ids)}")

    def save(self, image: pb.Image) -> list[Path]:
        ext = EXTENSIONS.get(image.mime_type) or image.mime_type.rpartition("/")[2] or "png"
        path = self.out / f"{self.prefix}-{image.index}.{ext}"
        path.write_bytes(image.data)
        written = [path]
        if image.mask:
            written.append(self.out / f"{self.prefix}-{image.index}-mask.png")
            written[-1].write_bytes(image.mask)
        note = f"wrote {path} ({image.width}x{image.height})"
        if image.model_id and image.model_id != self.model_id:
            note += f" with fallback model {image.model_id}"
        self.advance(note)
        if not self.as_json:
            for written_path in written:
                self.say(str(written_path), file=sys.stdout)
        return written

    def fail(self, fail: pb.ImageFailed) -> None:
        self.failed += 1
        reason = pb.FailureReason.Name(fail.reason)
        self.advance(f"image {fail.index} failed: {reason}: {fail.message}")

    def emit(self, event: pb.GenerateImagesResponse, written: list[Path]) -> None:
        """The event as one JSON line on stdout (`--json`)."""
        data = message_dict(event)
        if "image" in data:
            image = data["image"]
            image.pop("data", None)
            image.pop("mask", None)
            image["path"] = str(written[0])
            if len(written) > 1:
                image["maskPath"] = str(written[1])
        self.say(json_line(data), file=sys.stdout)

    def say(self, message: str, file: TextIO | None = None) -> None:
        file = file or sys.stderr
        if self.bar is None:
            print(message, file=file, flush=True)
        else:
            self.bar.write(message, file=file)
            file.flush()

    def advance(self, message: str) -> None:
        self.say(message)
        if self.bar is not None:
            self.bar.update(1)


async def consume(
    call: AsyncIterable[pb.GenerateImagesResponse], out: Path, *, as_json: bool = False
) -> int:
    """Write each image as it arrives; 1 if any image failed."""
    run = _Run(out, as_json)
    try:
        async for event in call:
            kind = event.WhichOneof("event")
            written: list[Path] = []
            if kind == "accepted":
                run.accept(event.accepted)
            elif kind == "image":
                written = run.save(event.image)
            elif kind == "image_failed":
                run.fail(event.image_failed)
            elif kind == "completed":
                run.say(summary(event.completed))
            if as_json:
                run.emit(event, written)
    finally:
        if run.bar is not None:
            run.bar.close()
    return 1 if run.failed else 0


def summary(done: pb.Completed) -> str:
    note = " (replayed: nothing generated or charged again)" if done.replayed else ""
    cost = format_usd(done.cost_micros)
    return f"{done.images_delivered} delivered, {done.images_failed} failed, cost {cost}{note}"
