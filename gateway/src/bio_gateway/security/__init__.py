"""Credentials: password hashing, JWT access tokens, opaque refresh tokens, API keys."""
