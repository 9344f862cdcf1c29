"""A faithful local stand-in for Amazon Bedrock's image models.

Speaks bedrock-runtime InvokeModel (``POST /model/{modelId}/invoke``) for
``amazon.titan-image-generator-v1``, ``amazon.titan-image-generator-v2:0`` and
``amazon.nova-canvas-v1:0``, and for the Stability dialect (Stable Image Ultra
1.1, Stable Image Core 1.1, SD3.5 Large and the 13 Stability AI Image
Services, by bare id, ``us.`` profile id or ARN), so the gateway's real
aiobotocore client can be tested and benchmarked without AWS. Rules follow
``shared/titan-api.md`` and ``shared/bedrock-image-models.md``.

Choices where the documentation is silent or contradictory:

* Default size is 1024x1024 for every family (Titan's docs say 1408, but
  1408x1408 is not in Titan's size list).
* Nova input images must obey Nova's output resolution rules (the docs say
  input sizes "follow the same resolution rules as output").
* ``text`` is optional for Nova INPAINTING/OUTPAINTING/IMAGE_VARIATION (the docs
  describe omitting it) and for Titan INPAINTING/IMAGE_VARIATION; Titan
  OUTPAINTING, every TEXT_IMAGE and COLOR_GUIDED_GENERATION require it.
* ``returnMask`` is accepted by both families and answered with ``maskImage``.
* Schema errors report the first violation only, as ``#/path: reason``.
* Checks run in this order: route/model (404), body (400), schema and images
  (400), input filter (400), throttling (429), faults (500), output filter.
* Stability: filters answer 200 with a finish reason (``stability.py`` and
  ``policy.py`` say which shape); seed 0 or omitted gets a seed derived from
  the body instead of a random one; SD3.5 without ``mode`` but with ``image``
  is image-to-image (AWS's own example); Ultra accepts ``mode``
  ``image-to-image`` with an image; every call counts one image.
"""

from gateway.emulator.app import Emulator, EmulatorStats
from gateway.emulator.config import EmulatorConfig

__all__ = ["Emulator", "EmulatorConfig", "EmulatorStats"]
