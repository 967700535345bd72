"""Use cases of the face recognition service, one module per sub-domain; no FastAPI here. The API, the
Celery tasks and the CLI call these functions with the service runtime."""
