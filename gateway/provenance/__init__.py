"""Provenance: C2PA manifests and the invisible watermark that is their soft binding."""
