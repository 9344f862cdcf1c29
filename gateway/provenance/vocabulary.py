"""What signing (`manifest`) and reading (`reading`) share: the labels and
source types the gateway writes, the c2pa-rs settings that keep the library
off the network, and the one error both raise.

It sits below both so that `manifest` can re-export the reading API without
an import cycle.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import GatewayError

GENERATOR_NAME = "titan-image-gateway"
GENERATION_LABEL = "io.github.titan-gateway.generation"
ACTIONS_LABEL = "c2pa.actions.v2"
SOFT_BINDING_LABEL = "c2pa.soft-binding"
_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED_ALGORITHMIC_MEDIA = _IPTC + "trainedAlgorithmicMedia"
COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA = _IPTC + "compositeWithTrainedAlgorithmicMedia"
# The formats the gateway delivers, marks and checks (Pillow's names).
MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class ManifestError(GatewayError):
    """A manifest could not be made or checked: a bad key, chain or trust
    anchors, or c2pa-rs refused. (An image that fails validation is a
    verdict, `ManifestReport`, never this.)"""


def no_network_settings() -> dict[str, Any]:
    """c2pa-rs settings for signing and reading, fresh for each Context.

    Each key turns off one way the library could reach the network;
    `allowed_network_hosts: []` is the backstop that refuses every host.
    Thumbnails are off: they cost time, and an ingredient thumbnail would
    copy the caller's input image into the delivered one. The signer's own
    time-stamp request ignores these settings: it goes out only to a
    configured `tsa_url`, and its failure fails the signing."""
    return {
        "core": {"allowed_network_hosts": []},
        "verify": {
            "verify_after_reading": True,
            "verify_after_sign": True,
            "verify_trust": True,
            "ocsp_fetch": False,
            "remote_manifest_fetch": False,
        },
        "builder": {"thumbnail": {"enabled": False}},
    }
