"""Blob keys of the contour-mask service and the clean-up of a job's uploads."""

from __future__ import annotations

from typing import Any

from bio_contour_mask.runtime import ContourRuntime


def result_key(owner_id: str, name: str, ext: str) -> str:
    return f"{owner_id}/contour_mask-results/{name}.{ext}"


def upload_key(rt: ContourRuntime, owner_id: str) -> str:
    return rt.blobs.new_key(owner_id, "contour_mask-uploads", "bin")


def drop_inputs(rt: ContourRuntime, params: dict[str, Any]) -> None:
    for k in ("image_key", "map_key"):
        if params.get(k):
            rt.blobs.delete(params[k])
