"""Moved to ``bio_testing.shared`` (test support lives outside the runtime packages). This alias keeps
old imports (the services' bench modules) working during the transition; new code imports
``bio_testing.shared``. The integrator removes it once nothing imports it."""

import sys
from pathlib import Path

try:
    import bio_testing  # noqa: F401
except ModuleNotFoundError:  # a source checkout where bio-testing is not installed (yet)
    sys.path.append(str(Path(__file__).resolve().parents[2] / "testing" / "src"))

from bio_testing.shared import *  # noqa: F403
