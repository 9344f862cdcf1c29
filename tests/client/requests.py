"""Requests the client tests send."""

from __future__ import annotations

from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks


def fox(count: int = 2, *, text: str = "a red fox in snow") -> pb.GenerateImagesRequest:
    """Text to image, 512 px, `count` images."""
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text=text),
        config=tasks.ImageGenerationConfig(number_of_images=count, width=512, height=512),
    )
