"""Shared core of the biometric identity platform."""
