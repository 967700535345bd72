"""The public routing table: which path prefix belongs to which service.

This is the platform's API contract, so the gateway keeps it even in the distributed mode, where
the service packages need not be installed next to it. Each service declares the same prefix in its
ServiceSpec; a test checks they agree.
"""

ROUTES: dict[str, str] = {
    "fingerprint": "/api/v1/fingerprint",
    "face_recognition": "/api/v1/faces",
    "face_verify": "/api/v1/verify",
    "contour_mask": "/api/v1/contours",
}
