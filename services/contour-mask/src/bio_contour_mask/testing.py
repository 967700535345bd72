"""Moved to ``bio_testing.contour_mask``; this alias keeps old imports working during the transition."""

from bio_testing.contour_mask import *  # noqa: F403
