"""Face verification service."""
