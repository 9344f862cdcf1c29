"""One valid GenerateImagesRequest per task, for any model that can run it."""

from __future__ import annotations

from collections.abc import Callable

from gateway.enums import TaskType
from tests.imagekit import box_mask, disc_on_white, encode, outline, photo
from titan.gateway.v1 import image_service_pb2 as pb
from titan.gateway.v1 import tasks_pb2 as tasks

PHOTO = encode(photo(512, 512))
SMALL = encode(photo(256, 256))
DISC = encode(disc_on_white(512))
SKETCH = encode(outline(512))
MASK = encode(box_mask((512, 512), (128, 128, 384, 384)))

Builder = Callable[[], pb.GenerateImagesRequest]


def _conditioned(mode: int) -> pb.GenerateImagesRequest:
    cond = tasks.ImageConditioning(condition_image=SKETCH, control_mode=mode)
    return pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a lighthouse", conditioning=cond)
    )


BUILDERS: dict[TaskType, Builder] = {
    TaskType.TEXT_IMAGE: lambda: pb.GenerateImagesRequest(
        text_to_image=tasks.TextToImageTask(text="a red fox in snow")
    ),
    TaskType.INPAINTING: lambda: pb.GenerateImagesRequest(
        inpainting=tasks.InpaintingTask(image=PHOTO, mask_image=MASK, text="a glass of water")
    ),
    TaskType.OUTPAINTING: lambda: pb.GenerateImagesRequest(
        outpainting=tasks.OutpaintingTask(image=PHOTO, mask_image=MASK, text="a beach")
    ),
    TaskType.IMAGE_VARIATION: lambda: pb.GenerateImagesRequest(
        image_variation=tasks.ImageVariationTask(images=[PHOTO], text="in autumn")
    ),
    TaskType.BACKGROUND_REMOVAL: lambda: pb.GenerateImagesRequest(
        background_removal=tasks.BackgroundRemovalTask(image=DISC)
    ),
    TaskType.COLOR_GUIDED_GENERATION: lambda: pb.GenerateImagesRequest(
        color_guided_generation=tasks.ColorGuidedGenerationTask(
            text="a poster", colors=["#FF0000", "#0000FF"]
        )
    ),
    TaskType.IMAGE_TO_IMAGE: lambda: pb.GenerateImagesRequest(
        image_to_image=tasks.ImageToImageTask(image=PHOTO, text="as a watercolour", strength=0.6)
    ),
    TaskType.FAST_UPSCALE: lambda: pb.GenerateImagesRequest(
        fast_upscale=tasks.FastUpscaleTask(image=SMALL)
    ),
    TaskType.CONSERVATIVE_UPSCALE: lambda: pb.GenerateImagesRequest(
        conservative_upscale=tasks.ConservativeUpscaleTask(image=SMALL, text="a test card")
    ),
    TaskType.CREATIVE_UPSCALE: lambda: pb.GenerateImagesRequest(
        creative_upscale=tasks.CreativeUpscaleTask(image=SMALL, text="a test card")
    ),
    TaskType.SEARCH_AND_REPLACE: lambda: pb.GenerateImagesRequest(
        search_and_replace=tasks.SearchAndReplaceTask(
            image=PHOTO, search_prompt="the yellow disc", text="a blue moon"
        )
    ),
    TaskType.SEARCH_AND_RECOLOR: lambda: pb.GenerateImagesRequest(
        search_and_recolor=tasks.SearchAndRecolorTask(
            image=PHOTO, select_prompt="the yellow disc", text="a green disc"
        )
    ),
    TaskType.ERASE_OBJECT: lambda: pb.GenerateImagesRequest(
        erase_object=tasks.EraseObjectTask(image=PHOTO, mask_image=MASK)
    ),
    TaskType.EXPAND_CANVAS: lambda: pb.GenerateImagesRequest(
        expand_canvas=tasks.ExpandCanvasTask(image=PHOTO, left=64, down=128, text="more sky")
    ),
    TaskType.STYLE_GUIDE: lambda: pb.GenerateImagesRequest(
        style_guide=tasks.StyleGuideTask(image=PHOTO, text="a cat", fidelity=0.7)
    ),
    TaskType.STYLE_TRANSFER: lambda: pb.GenerateImagesRequest(
        style_transfer=tasks.StyleTransferTask(image=PHOTO, style_image=DISC)
    ),
    TaskType.CONTROL_SKETCH: lambda: _conditioned(tasks.CONTROL_MODE_SKETCH),
    TaskType.CONTROL_STRUCTURE: lambda: _conditioned(tasks.CONTROL_MODE_STRUCTURE),
    TaskType.VIRTUAL_TRY_ON: lambda: pb.GenerateImagesRequest(
        virtual_try_on=tasks.VirtualTryOnTask(
            source_image=PHOTO, reference_image=DISC, garment_class="UPPER_BODY"
        )
    ),
}


def request_for(task: TaskType, model_id: str = "", **config: object) -> pb.GenerateImagesRequest:
    request = BUILDERS[task]()
    request.model_id = model_id
    for name, value in config.items():
        setattr(request.config, name, value)
    return request
