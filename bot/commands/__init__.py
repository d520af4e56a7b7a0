"""Subcommands of `relevo`, one module per group, each with `register(subparsers)`."""
