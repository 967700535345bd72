"""Moved to ``bio_testing.gateway``; this alias keeps old imports working during the transition."""

from bio_testing.gateway import *  # noqa: F403
