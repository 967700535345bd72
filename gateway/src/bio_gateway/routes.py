"""The public routing table: which path prefix belongs to which service.

This is the platform's API contract, so the gateway keeps it even in the distributed mode, where
the service packages need not be installed next to it. It is read from the platform's one list of
services (bio_shared/services.toml); each service declares the same prefix in its ServiceSpec, and a
test checks they agree.
"""

from bio_shared.services import ROUTES as ROUTES
