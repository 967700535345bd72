"""Contour-mask use cases, one module each; no FastAPI imports.

``inputs`` (what a caller sent, validated), ``decoders`` (label maps and header-only reads), ``cache``
(perceptual result cache), ``processing`` (the work and its stored outputs), ``submit`` (job or
synchronous, both through the jobs table), ``jobs`` (the job handlers), ``downloads`` (stored outputs).
"""
