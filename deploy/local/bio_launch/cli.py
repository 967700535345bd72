"""The command line: ``launch.py up | status | down [--var-dir DIR]``."""

from __future__ import annotations

import argparse
import sys

from bio_launch.common import LaunchError
from bio_launch.health import render_table, status
from bio_launch.processes import down
from bio_launch.stack import up


def _up(var_dir: str | None) -> int:
    rows = status(var_dir)
    if rows and all(r["alive"] for r in rows.values()):
        print("already running (make down stops it):")
        print(render_table(var_dir))
        return 0
    info = up(var_dir=var_dir)
    print(f"\ngateway: {info['gateway_url']}  (API docs: {info['gateway_url']}/docs)   stop with: make down")
    return 0


def _down(var_dir: str | None) -> int:
    down(var_dir)
    return 0


def _status(var_dir: str | None) -> int:
    rows = status(var_dir)
    print(render_table(var_dir))
    alive = [r["alive"] for r in rows.values()]
    return 0 if all(alive) or not any(alive) else 1  # 1: some process of the stack has died


COMMANDS = {"up": _up, "down": _down, "status": _status}


def main(argv: list[str] | None = None, description: str = "") -> int:
    parser = argparse.ArgumentParser(prog="launch.py", description=description)
    parser.add_argument("command", choices=list(COMMANDS))
    parser.add_argument("--var-dir", help="default: $BIO_VAR_DIR or var/ of the repository")
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args.var_dir)
    except LaunchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
