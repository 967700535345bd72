"""The FastAPI side of bio_shared: error handlers, metrics middleware, pagination.

Only API processes import this package; engines and the pure modules of bio_shared never do.
"""
