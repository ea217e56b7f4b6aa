"""The `fbloop` command line: a thin layer over `lib/` and the Dagster job.

Every command that reports takes ``--json`` and then prints exactly one JSON document on stdout;
progress goes to stderr. Errors are one line on stderr and a non-zero exit (set
``FBLOOP_DEBUG=1`` for the traceback). Each module here adds one group of commands.
"""

from __future__ import annotations

import argparse
import os
import sys

from fbloop_assets.cli import demo, held_back, labels, loop, privacy, tokens, tune, weights, worker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fbloop", description="The feedback loop of an influencer recommender."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in (demo, loop, weights, held_back, tune, labels, privacy, tokens, worker):
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print("fbloop: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the contract: one line, no traceback (unless debugging)
        if os.environ.get("FBLOOP_DEBUG"):
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"fbloop: error: {message}", file=sys.stderr)
        return 1
    return 0
