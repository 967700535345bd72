"""Fingerprint service."""
