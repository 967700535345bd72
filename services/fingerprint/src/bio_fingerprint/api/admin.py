"""Administration: age-based clean-up of processed outputs (every account)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bio_fingerprint.api.deps import AUTH, IdentityDep, RuntimeDep, error_responses
from bio_fingerprint.runtime import PREFIX
from bio_fingerprint.schemas import FingerprintCleanupOut
from bio_fingerprint.service.outputs import cleanup
from bio_shared.errors import Forbidden
from bio_shared.identity import require_admin

router = APIRouter(prefix=f"{PREFIX}/admin", tags=["fingerprint: admin"], dependencies=AUTH)


@router.post("/cleanup", response_model=FingerprintCleanupOut, operation_id="fingerprint_cleanup_outputs",
             summary="Admin: delete processed outputs older than the retention age (every account)",
             responses=error_responses(Forbidden))
def cleanup_outputs(rt: RuntimeDep, identity: IdentityDep,
                    older_than_days: Annotated[float | None, Query(ge=0, le=36500)] = None) -> FingerprintCleanupOut:
    require_admin(identity)
    return FingerprintCleanupOut.model_validate(cleanup(rt, older_than_days))
