"""Face recognition service."""
