"""Contour mask service."""
