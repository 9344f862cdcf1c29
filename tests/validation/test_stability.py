"""The Stability tasks: valid requests decode to the right domain object and
nominal output size; each rule has a failing case on the right field."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import Image

from gateway.domain import (
    ConservativeUpscale,
    ControlMode,
    CreativeUpscale,
    EraseObject,
    ExpandCanvas,
    FastUpscale,
    ImageToImage,
    Inpainting,
    SearchAndRecolor,
    SearchAndReplace,
    StyleGuide,
    StyleTransfer,
    Task,
    TaskType,
    TextToImage,
)
from gateway.registry import ModelRegistry
from gateway.validation import decode_request
from tests.validation.support import (
    BLACK,
    CONSERVATIVE,
    CREATIVE,
    ERASE,
    FAST_UPSCALE,
    INPAINT,
    OUTPAINT,
    SD35,
    SEARCH_RECOLOR,
    SEARCH_REPLACE,
    SKETCH,
    STRUCTURE,
    STYLE_GUIDE,
    STYLE_TRANSFER,
    TITAN_V2,
    ULTRA,
    Build,
    check_rule,
    encode,
    input_image,
    jpeg,
    mask_png,
    png,
    png_header,
    request,
    webp,
)
from titan.gateway.v1 import tasks_pb2

IMG = png(600, 400)
WEBP = webp(600, 400)
MASK = mask_png(600, 400)
SKETCH_MODE, STRUCTURE_MODE = tasks_pb2.CONTROL_MODE_SKETCH, tasks_pb2.CONTROL_MODE_STRUCTURE


def _control(mode: int, **fields: Any) -> dict[str, Any]:
    cond = {"condition_image": WEBP, "control_mode": mode, **fields}
    return {"text": "a castle", "conditioning": cond, "style": "line-art"}


# (id, model, task kwargs, config, expected task, expected nominal size, aspect ratio)
VALID: list[tuple[str, str, dict[str, Any], dict[str, Any], Task, tuple[int, int], str | None]] = [
    ("image-to-image", SD35,
     {"image_to_image": {"image": IMG, "text": "a cat", "negative_text": "dogs", "strength": 0.5}},
     {}, ImageToImage(input_image(IMG), "a cat", "dogs", 0.5), (1216, 832), None),
    ("image-to-image-webp-tall", ULTRA,
     {"image_to_image": {"image": webp(400, 700), "text": "a cat"}}, {},
     ImageToImage(input_image(webp(400, 700), "WEBP"), "a cat"), (768, 1344), None),
    ("fast-upscale", FAST_UPSCALE, {"fast_upscale": {"image": WEBP}}, {},
     FastUpscale(input_image(WEBP, "WEBP")), (2400, 1600), None),
    ("conservative-upscale", CONSERVATIVE,
     {"conservative_upscale": {"image": IMG, "text": "a cat", "creativity": 0.2}}, {},
     ConservativeUpscale(input_image(IMG), "a cat", creativity=0.2), (2508, 1672), None),
    ("creative-upscale-square", CREATIVE,
     {"creative_upscale": {"image": png(64, 64), "text": "a", "creativity": 0.5,
                           "style": "anime"}}, {},
     CreativeUpscale(input_image(png(64, 64)), "a", creativity=0.5, style="anime"),
     (2048, 2048), None),
    ("search-and-replace", SEARCH_REPLACE,
     {"search_and_replace": {"image": IMG, "search_prompt": "the dog", "text": "a cat",
                             "grow_mask": 0, "style": "photographic"}}, {},
     SearchAndReplace(input_image(IMG), "the dog", "a cat", grow_mask=0, style="photographic"),
     (600, 400), None),
    ("search-and-recolor", SEARCH_RECOLOR,
     {"search_and_recolor": {"image": jpeg(600, 400), "select_prompt": "the jacket",
                             "text": "a red jacket", "grow_mask": 20}}, {},
     SearchAndRecolor(input_image(jpeg(600, 400), "JPEG"), "the jacket", "a red jacket",
                      grow_mask=20), (600, 400), None),
    ("erase-with-mask", ERASE, {"erase_object": {"image": IMG, "mask_image": MASK,
                                                 "grow_mask": 5}}, {},
     EraseObject(input_image(IMG), input_image(MASK), 5), (600, 400), None),
    ("erase-alpha", ERASE, {"erase_object": {"image": png(600, 400, (1, 2, 3, 0), "RGBA")}}, {},
     EraseObject(input_image(png(600, 400, (1, 2, 3, 0), "RGBA"))), (600, 400), None),
    ("expand-canvas", OUTPAINT,
     {"expand_canvas": {"image": IMG, "left": 100, "right": 2000, "down": 1, "text": "sea",
                        "creativity": 1.0, "style": "enhance"}}, {},
     ExpandCanvas(input_image(IMG), 100, 2000, 0, 1, "sea", 1.0, "enhance"), (2700, 401), None),
    ("style-guide", STYLE_GUIDE,
     {"style_guide": {"image": IMG, "text": "a cat", "fidelity": 0.0, "style": "origami"}},
     {"aspect_ratio": "21:9"}, StyleGuide(input_image(IMG), "a cat", fidelity=0.0,
                                         style="origami"), (1536, 640), "21:9"),
    ("style-transfer", STYLE_TRANSFER,
     {"style_transfer": {"image": IMG, "style_image": WEBP, "style_strength": 1.0,
                         "composition_fidelity": 0.0, "change_strength": 0.1}}, {},
     StyleTransfer(input_image(IMG), input_image(WEBP, "WEBP"), style_strength=1.0,
                   composition_fidelity=0.0, change_strength=0.1), (600, 400), None),
    ("control-sketch", SKETCH, {"text_to_image": _control(SKETCH_MODE, control_strength=0.4)},
     {}, TextToImage("a castle", None, input_image(WEBP, "WEBP"), ControlMode.SKETCH, 0.4,
                     "line-art"), (600, 400), None),
    ("control-structure", STRUCTURE, {"text_to_image": _control(STRUCTURE_MODE)}, {},
     TextToImage("a castle", None, input_image(WEBP, "WEBP"), ControlMode.STRUCTURE,
                 style="line-art"), (600, 400), None),
    ("inpaint-mask-image", INPAINT,
     {"inpainting": {"image": IMG, "mask_image": MASK, "text": "a vase", "grow_mask": 7,
                     "style": "anime"}}, {},
     Inpainting(input_image(IMG), mask_image=input_image(MASK), text="a vase", grow_mask=7,
                style="anime"), (600, 400), None),
    ("inpaint-alpha", INPAINT, {"inpainting": {"image": WEBP, "text": "a vase"}}, {},
     Inpainting(input_image(WEBP, "WEBP"), text="a vase"), (600, 400), None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "fields", "config", "expected", "size", "ratio"),
    [pytest.param(*case[1:], id=case[0]) for case in VALID],
)
def test_valid_stability_task(
    registry: ModelRegistry,
    model: str,
    fields: dict[str, Any],
    config: dict[str, Any],
    expected: Task,
    size: tuple[int, int],
    ratio: str | None,
) -> None:
    job = decode_request(request(model, config, **fields), registry)
    assert job.task == expected
    assert job.model.model_id == model
    assert (job.config.width, job.config.height, job.config.aspect_ratio) == (*size, ratio)
    assert job.config.send_size is False
    assert job.config.cfg_scale is None


def test_control_tasks_run_as_control_task_types(registry: ModelRegistry) -> None:
    sketch = request(SKETCH, text_to_image=_control(SKETCH_MODE))
    structure = request(STRUCTURE, text_to_image=_control(STRUCTURE_MODE))
    assert decode_request(sketch, registry).task_type is TaskType.CONTROL_SKETCH
    assert decode_request(structure, registry).task_type is TaskType.CONTROL_STRUCTURE


def test_image_to_image_picks_the_closest_ratio(registry: ModelRegistry) -> None:
    sizes = {
        (512, 512): (1024, 1024),
        (1000, 560): (1344, 768),  # 1.79 ~ 16:9
        (900, 400): (1536, 640),  # 2.25 ~ 21:9
        (800, 1000): (896, 1088),  # 0.8 = 4:5
        (1100, 1000): (1024, 1024),  # 1.1: nearer 1:1 than 5:4 by log ratio
        (1150, 1000): (1088, 896),  # 1.15: nearer 5:4
    }
    for (w, h), nominal in sizes.items():
        req = request(SD35, image_to_image={"image": png(w, h), "text": "a"})
        config = decode_request(req, registry).config
        assert ((config.width, config.height), config.aspect_ratio) == (nominal, None), (w, h)


def _lossy_webp_mask() -> bytes:
    img = Image.new("RGB", (600, 400), (255, 255, 255))
    img.paste(BLACK, (100, 100, 301, 333))
    return encode(img, "WEBP", quality=50)


def i2i(model: str = SD35, config: dict[str, Any] | None = None, **fields: Any) -> Build:
    return lambda: request(model, config, image_to_image={"image": IMG, "text": "a", **fields})


def on(model: str, config: dict[str, Any] | None = None, **task: Any) -> Build:
    return lambda: request(model, config, **task)


def srep(**fields: Any) -> Build:
    base = {"image": IMG, "search_prompt": "the dog", "text": "a cat"}
    return on(SEARCH_REPLACE, search_and_replace={**base, **fields})


def srec(**fields: Any) -> Build:
    base = {"image": IMG, "select_prompt": "the jacket", "text": "red"}
    return on(SEARCH_RECOLOR, search_and_recolor={**base, **fields})


def expand(**fields: Any) -> Build:
    return on(OUTPAINT, expand_canvas={"image": IMG, "left": 10, **fields})


def guide(config: dict[str, Any] | None = None, **fields: Any) -> Build:
    return on(STYLE_GUIDE, config, style_guide={"image": IMG, "text": "a", **fields})


def transfer(**fields: Any) -> Build:
    return on(STYLE_TRANSFER, style_transfer={"image": IMG, "style_image": IMG, **fields})


def sketch(config: dict[str, Any] | None = None, **cond: Any) -> Build:
    return on(SKETCH, config, text_to_image=_control(SKETCH_MODE, **cond))


def inpaint(model: str = INPAINT, **fields: Any) -> Build:
    return on(model, inpainting={"image": IMG, "mask_image": MASK, "text": "a", **fields})


LONG = "x" * 10_001

CASES = [
    # prompts: 10,000 characters on Stability
    ("i2i-text-missing", i2i(text=""), "image_to_image.text", ["required", "1-10000"]),
    ("i2i-text-too-long", i2i(text=LONG), "image_to_image.text",
     ["at most 10000 characters", SD35, "got 10001"]),
    ("i2i-negative-too-long", i2i(negative_text=LONG), "image_to_image.negative_text",
     ["at most 10000"]),
    ("search-prompt-missing", srep(search_prompt=" "), "search_and_replace.search_prompt",
     ["required"]),
    ("select-prompt-missing", srec(select_prompt=""), "search_and_recolor.select_prompt",
     ["required"]),
    ("recolor-text-missing", srec(text=""), "search_and_recolor.text", ["required"]),
    ("guide-text-missing", guide(text=""), "style_guide.text", ["required"]),
    ("sketch-text-missing", on(SKETCH, text_to_image={**_control(SKETCH_MODE), "text": ""}),
     "text_to_image.text", ["required"]),
    ("conservative-text-missing", on(CONSERVATIVE, conservative_upscale={"image": IMG}),
     "conservative_upscale.text", ["required"]),
    ("stability-inpaint-text-missing", inpaint(text=""), "inpainting.text", ["required"]),
    ("transfer-text-too-long", transfer(text=LONG), "style_transfer.text", ["at most 10000"]),
    # ranges
    ("strength-high", i2i(strength=1.5), "image_to_image.strength",
     ["between 0.0 and 1.0", "got 1.5"]),
    ("strength-nan", i2i(strength=float("nan")), "image_to_image.strength", ["nan"]),
    ("conservative-creativity-low", on(CONSERVATIVE, conservative_upscale={
        "image": IMG, "text": "a", "creativity": 0.05}), "conservative_upscale.creativity",
     ["between 0.1 and 0.5", "got 0.05"]),
    ("creative-creativity-high", on(CREATIVE, creative_upscale={
        "image": png(64, 64), "text": "a", "creativity": 0.6}), "creative_upscale.creativity",
     ["between 0.1 and 0.5", "got 0.6"]),
    ("expand-creativity-low", expand(creativity=0.05), "expand_canvas.creativity",
     ["between 0.1 and 1.0"]),
    ("expand-no-sides", expand(left=0), "expand_canvas", ["at least one", "left, right, up"]),
    ("expand-side-too-big", expand(up=2001), "expand_canvas.up",
     ["between 0 and 2000", "got 2001"]),
    ("guide-fidelity-high", guide(fidelity=1.01), "style_guide.fidelity", ["between 0.0 and 1.0"]),
    ("transfer-style-strength", transfer(style_strength=-0.5), "style_transfer.style_strength",
     ["between 0.0 and 1.0"]),
    ("transfer-composition", transfer(composition_fidelity=2),
     "style_transfer.composition_fidelity", ["between 0.0 and 1.0"]),
    ("transfer-change-low", transfer(change_strength=0.05), "style_transfer.change_strength",
     ["between 0.1 and 1.0", "got 0.05"]),
    ("control-strength-high", sketch(control_strength=1.5),
     "text_to_image.conditioning.control_strength", ["between 0.0 and 1.0"]),
    ("grow-mask-high", srep(grow_mask=21), "search_and_replace.grow_mask",
     ["between 0 and 20", "got 21"]),
    ("erase-grow-mask-high", on(ERASE, erase_object={"image": IMG, "grow_mask": 50}),
     "erase_object.grow_mask", ["between 0 and 20"]),
    # styles
    ("style-unknown", srep(style="watercolour"), "search_and_replace.style",
     ["styles of", SEARCH_REPLACE, "3d-model", "'watercolour'"]),
    ("style-wrong-case", guide(style="Anime"), "style_guide.style", ["did you mean 'anime'"]),
    ("style-nova-name-on-stability", on(SKETCH, text_to_image={
        **_control(SKETCH_MODE), "style": "PHOTOREALISM"}), "text_to_image.style",
     ["styles of", SKETCH]),
    ("style-on-model-without-styles", on(SD35, text_to_image={"text": "a", "style": "anime"}),
     "text_to_image.style", ["not supported", SD35, "no styles"]),
    ("style-on-titan-inpainting", inpaint(TITAN_V2, style="anime"), "inpainting.style",
     ["not supported", TITAN_V2]),
    ("style-unknown-nova", on("amazon.nova-canvas-v1:0", text_to_image={
        "text": "a", "style": "CUBISM"}), "text_to_image.style", ["MAXIMALISM", "'CUBISM'"]),
    # per-dialect fields
    ("stability-mask-prompt", on(INPAINT, inpainting={"image": IMG, "mask_prompt": "the cup",
                                                      "text": "a"}),
     "inpainting.mask_prompt", ["not supported", INPAINT, "mask_image", "transparent"]),
    ("stability-return-mask", inpaint(return_mask=True), "inpainting.return_mask",
     ["not supported", INPAINT, "Titan and Nova Canvas"]),
    ("titan-grow-mask", inpaint(TITAN_V2, grow_mask=5), "inpainting.grow_mask",
     ["not supported", TITAN_V2, "Stability"]),
    ("sd35-conditioning", on(SD35, text_to_image={"text": "a", "conditioning": {
        "condition_image": IMG}}), "text_to_image.conditioning", ["not supported", SD35]),
    # images: Stability's limits
    ("image-webp-mask-lossy", on(ERASE, erase_object={"image": IMG,
                                                      "mask_image": _lossy_webp_mask()}),
     "erase_object.mask_image", ["pure black", "WebP masks lossless"]),
    ("erase-mask-size", on(ERASE, erase_object={"image": IMG, "mask_image": mask_png(300, 200)}),
     "erase_object.mask_image", ["same size as erase_object.image (600x400)", "got 300x200"]),
    ("inpaint-mask-grey", inpaint(mask_image=mask_png(600, 400, other=(9, 9, 9))),
     "inpainting.mask_image", ["pure black"]),
    ("image-aspect", i2i(image=png(651, 260)), "image_to_image.image",
     ["aspect ratio must be between 1:2.5 and 2.5:1", SD35, "651x260"]),
    ("image-side-small", i2i(image=png(63, 100)), "image_to_image.image",
     ["each side must be at least 64 pixels", "63x100"]),
    ("image-pixels", i2i(image=png_header(3073, 3072)), "image_to_image.image",
     ["width x height must be at most 9437184 pixels", "3073x3072"]),
    ("image-gif", i2i(image=encode(Image.new("RGB", (64, 64)), "GIF")), "image_to_image.image",
     ["must be a PNG, JPEG or WebP image"]),
    ("image-empty", i2i(image=b""), "image_to_image.image", ["required", "WebP"]),
    ("style-image-missing", transfer(style_image=b""), "style_transfer.style_image",
     ["required"]),
    ("fast-upscale-side", on(FAST_UPSCALE, fast_upscale={"image": png(1537, 100)}),
     "fast_upscale.image", ["each side must be 32-1536 pixels", FAST_UPSCALE]),
    ("fast-upscale-few-pixels", on(FAST_UPSCALE, fast_upscale={"image": png(32, 31)}),
     "fast_upscale.image", ["each side must be 32-1536", "32x31"]),
    ("fast-upscale-pixels-high", on(FAST_UPSCALE, fast_upscale={"image": png(1100, 1000)}),
     "fast_upscale.image", ["width x height must be 1024-1048576 pixels", "(1100000 given)"]),
    ("creative-upscale-pixels", on(CREATIVE, creative_upscale={"image": png(60, 60), "text": "a"}),
     "creative_upscale.image", ["4096-1048576 pixels", "60x60"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "field", "words"), [pytest.param(*case[1:], id=case[0]) for case in CASES]
)
def test_stability_rule(
    registry: ModelRegistry, build: Build, field: str, words: list[str]
) -> None:
    check_rule(registry, build, field, words)
