"""Use cases of the fingerprint service, one module per sub-domain (no FastAPI here): processing,
enrollment, templates, outputs, matching, calibration (thresholds), jobs (batch), gallery (1:N cache)."""

from bio_fingerprint.service.calibration import fmr_of, threshold_for

__all__ = ["fmr_of", "threshold_for"]
