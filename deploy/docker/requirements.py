#!/usr/bin/env python3
"""Print the third-party requirements of some packages, for a cached dependency layer.

    python requirements.py --variant cpu shared services/face-verify > /tmp/requirements.txt

Reads each package's pyproject.toml (the platform's own ``bio-*`` packages are skipped: their source
is copied after this layer) plus requirements-nodeps.txt handled separately by the Dockerfiles.
In the CUDA variant ``dlib-bin`` (a CPU build) is dropped: the image builds dlib with CUDA instead.
Only the standard library: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

CPU_ONLY = {"dlib-bin"}


def requirements(package_dirs: list[Path], variant: str) -> list[str]:
    seen: dict[str, str] = {}
    for folder in package_dirs:
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        for spec in project.get("dependencies", []):
            name = re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0].lower().replace("_", "-")
            if name.startswith("bio-") or (variant == "cuda" and name in CPU_ONLY):
                continue
            seen.setdefault(name, spec)
    return sorted(seen.values(), key=str.lower)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("packages", nargs="+", type=Path)
    args = parser.parse_args(argv)
    print("\n".join(requirements(args.packages, args.variant)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
