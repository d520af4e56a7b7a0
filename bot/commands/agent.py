"""`relevo agent`: add, change, list, disable and enable agents, set passwords, lift lockouts, issue API tokens."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from bot.settings import Settings, SettingsError, load_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("agent", help="manage the people who take over from the bot")
    # SUPPRESS: "relevo --data DIR agent list" keeps the top level's value (see bot/cli.py).
    p.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS,
                   help="folder of the embedded Redis (default: store.data_dir)")
    cmds = p.add_subparsers(dest="agent_command", required=True)

    add = cmds.add_parser("add", help="add an agent (password from a prompt or --password-stdin)")
    add.add_argument("name")
    add.add_argument("--departments", required=True, help="comma-separated, e.g. orders,returns")
    add.add_argument("--tier", type=int, required=True, choices=(1, 2, 3))
    add.add_argument("--role", default="agent", choices=("agent", "supervisor", "admin"))
    add.add_argument("--capacity", type=int, default=3, help="conversations at once (default 3)")
    add.add_argument("--display-name", default="", help="name customers see (default: NAME)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    add.set_defaults(func=lambda a: _run(a, _add))

    edit = cmds.add_parser("set", help="change an agent's display name, departments, tier, role or capacity")
    edit.add_argument("name")
    edit.add_argument("--display-name", help="name customers see ('' for the login name)")
    edit.add_argument("--departments", help="comma-separated, e.g. orders,returns")
    edit.add_argument("--tier", type=int, choices=(1, 2, 3))
    edit.add_argument("--role", choices=("agent", "supervisor", "admin"))
    edit.add_argument("--capacity", type=int, help="conversations at once")
    edit.set_defaults(func=lambda a: _run(a, _set))

    ls = cmds.add_parser("list", help="list agents")
    ls.set_defaults(func=lambda a: _run(a, _list))

    off = cmds.add_parser("disable", help="disable an agent and sign them out")
    off.add_argument("name")
    off.set_defaults(func=lambda a: _run(a, _disable))

    on = cmds.add_parser("enable", help="let a disabled agent log in again (same password)")
    on.add_argument("name")
    on.set_defaults(func=lambda a: _run(a, _enable))

    pw = cmds.add_parser("passwd", help="set an agent's password (signs them out)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    pw.set_defaults(func=lambda a: _run(a, _passwd))

    un = cmds.add_parser("unlock", help="lift login lockouts: of a login, of an address, or (neither) all")
    un.add_argument("name", nargs="?", help="the login name that was locked")
    un.add_argument("--address", metavar="A", help="the client address that was locked (as the server logged it)")
    un.set_defaults(func=lambda a: _run(a, _unlock))

    tok = cmds.add_parser("token", help="print a new API token for scripts (shown once)")
    tok.add_argument("name")
    tok.set_defaults(func=lambda a: _run(a, _token))

    for command in cmds.choices.values():  # "relevo agent add ana ... --data DIR" works too
        command.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS, help="as `relevo agent --data`")


class NoTerminal(Exception):
    """A password prompt with no terminal to ask on (`docker exec` without -it, a script, cron)."""


def require_terminal() -> None:
    """Raise NoTerminal unless getpass can ask: it asks on /dev/tty, else on a stdin that is a terminal;
    with neither it would print a warning and fail on stdin with a traceback."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        if not sys.stdin.isatty():
            raise NoTerminal("no terminal to ask for the password; use --password-stdin") from None


def read_password(from_stdin: bool) -> str:
    """One line of stdin, or a prompt asked twice; never a command-line argument (it shows in `ps`)."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise ValueError("the passwords do not match")
    from handoff.agents import check_new_password

    return check_new_password(password)  # the rule of the admin page too


def _settings(args: argparse.Namespace) -> Settings:
    store = {"data_dir": args.data} if getattr(args, "data", None) else {}
    return load_settings(args.config, require_config=True, store=store)


def _where(args: argparse.Namespace) -> str:
    """Which store a command read or wrote, for its output: an agent added to another data folder than
    the server's (run from another folder, a wrong --data) is not known to that server, and cannot log in."""
    settings = _settings(args)
    return settings.store.describe(settings.data_dir)


def _run(args: argparse.Namespace, command: Callable[[Any, argparse.Namespace], Awaitable[int]]) -> int:
    from handoff.agents import AgentError
    from handoff.rules import RulesError

    try:
        if getattr(args, "password_stdin", True) is False:
            require_terminal()  # before the store is touched: nothing half done
        return asyncio.run(_with_store(_settings(args), lambda redis: command(redis, args)))
    except NoTerminal as exc:
        print(f"relevo agent: {exc}", file=sys.stderr)
        return 2  # a missing option, as argparse's own usage errors
    except (RulesError, SettingsError):
        raise  # ValueErrors too, but reported by bot/cli.py as for every command (one per line; exit 2)
    except (AgentError, ValueError, LookupError) as exc:
        print(f"relevo agent: {exc}", file=sys.stderr)
        return 1


async def _with_store(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from handoff.store import Store

    store = await Store.connect(settings.store.redis_url, settings.data_dir)
    try:
        return await work(store.redis)
    finally:
        await store.close()


def _auth(redis: Any) -> Any:
    from handoff.agents import AgentDirectory
    from handoff.auth import ConsoleAuth

    # Only session and token bookkeeping is used here; the cookie secret does not matter.
    return ConsoleAuth(redis, b"relevo-cli-no-cookies-here", AgentDirectory(redis))


def _admin(redis: Any) -> Any:
    from handoff.accounts import AgentAdmin

    return AgentAdmin(_auth(redis))  # the admin page's implementation (handoff/accounts.py)


async def _add(redis: Any, args: argparse.Namespace) -> int:
    from handoff.agents import Agent

    departments = tuple(d.strip() for d in args.departments.split(",") if d.strip())
    _check_departments(_settings(args), departments)
    agent = Agent(args.name, departments, tier=args.tier, role=args.role, capacity=args.capacity,
                  display_name=args.display_name.strip()[:100])  # fmt: skip
    admin = _admin(redis)
    if await admin.directory.get(agent.name) is not None:
        raise ValueError(f"agent '{agent.name}' already exists")
    await admin.add(agent, read_password(args.password_stdin))
    print(f"added {agent.name} ({agent.role}, tier {agent.tier}, {','.join(agent.departments)}) in {_where(args)}")
    return 0


async def _set(redis: Any, args: argparse.Namespace) -> int:
    """Change what was given and keep the rest: an agent added without a display name is shown to
    customers by login name, the one thing a lockout is counted against, until one is set here."""
    from handoff.agents import AgentDirectory

    changes: dict[str, Any] = {}
    if args.display_name is not None:
        changes["display_name"] = args.display_name.strip()[:100]
    if args.departments is not None:
        changes["departments"] = tuple(d.strip() for d in args.departments.split(",") if d.strip())
        _check_departments(_settings(args), changes["departments"])
    changes.update({k: getattr(args, k) for k in ("tier", "role", "capacity") if getattr(args, k) is not None})
    if not changes:
        raise ValueError("nothing to change: give --display-name, --departments, --tier, --role or --capacity")
    if await AgentDirectory(redis).get(args.name) is None:
        raise LookupError(f"agent '{args.name}' does not exist")
    changed = await _admin(redis).change(args.name, **changes)
    print(f"changed {changed.name}: {changed.label}, {changed.role}, tier {changed.tier}, "
          f"{','.join(changed.departments)}, capacity {changed.capacity} in {_where(args)}")  # fmt: skip
    return 0


def _check_departments(settings: Settings, departments: tuple[str, ...]) -> None:
    """Only departments of the handoff rules: an agent of any other sees no queue, and nothing says why."""
    from handoff.accounts import check_departments
    from handoff.rules import rules_of

    # A broken rules file is a RulesError (`file:line: message`, reported by bot/cli.py): serve would not start either.
    known = rules_of(settings).departments
    check_departments(departments, known, str(settings.handoff_rules))


async def _list(redis: Any, args: argparse.Namespace) -> int:
    from handoff.agents import AgentDirectory

    agents = await AgentDirectory(redis).all()
    if not agents:
        print(f"no agents yet in {_where(args)}: relevo agent add NAME --departments general --tier 1")
    for a in agents:
        state = "disabled" if a.disabled else "active"
        print(f"{a.name}\t{a.label}\t{a.role}\ttier {a.tier}\t{','.join(a.departments)}\t"
              f"capacity {a.capacity}\t{state}")  # fmt: skip
    return 0


async def _disable(redis: Any, args: argparse.Namespace) -> int:
    from handoff.accounts import AgentAdmin
    from handoff.queues import HandoffQueues
    from handoff.rules import rules_of

    # With the queues, as the admin page: what they hold goes back to the front of its queue now.
    settings = _settings(args)
    out = await AgentAdmin(_auth(redis), HandoffQueues(redis, rules_of(settings), settings.handoff)).disable(args.name)
    held = f", {out.given_back} conversation{'s' if out.given_back != 1 else ''} given back" if out.given_back else ""
    print(f"disabled {args.name} ({out.sessions} sessions ended, {out.tokens} tokens revoked{held}) in {_where(args)}")
    return 0


async def _enable(redis: Any, args: argparse.Namespace) -> int:
    await _admin(redis).enable(args.name)
    print(f"enabled {args.name} in {_where(args)}: they can log in again with their password")
    return 0


async def _passwd(redis: Any, args: argparse.Namespace) -> int:
    from handoff.agents import AgentDirectory

    if await AgentDirectory(redis).get(args.name) is None:
        raise LookupError(f"agent '{args.name}' does not exist")
    # Closes every way in (sessions, API tokens) and lifts the name's lockout, as the admin page does.
    out = await _admin(redis).set_password(args.name, read_password(args.password_stdin), lift_lockout=True)
    print(f"password of {args.name} changed ({out.sessions} sessions ended, {out.tokens} tokens revoked)"
          + (" (login lockout lifted)" if out.lockout_lifted else "") + f" in {_where(args)}")
    return 0


async def _unlock(redis: Any, args: argparse.Namespace) -> int:
    auth = _auth(redis)
    if args.name is None and args.address is None:
        lifted = await auth.unlock()
        print(f"lifted {lifted} login lockout{'s' if lifted != 1 else ''} (all) in {_where(args)}")
        return 0
    lifted = await auth.unlock(name=args.name, address=args.address)
    which = " and ".join(
        x for x in (args.name and f"name {args.name}", args.address and f"address {args.address}") if x
    )
    print(f"lifted {lifted} login lockout{'s' if lifted != 1 else ''} ({which}) in {_where(args)}")
    return 0


async def _token(redis: Any, args: argparse.Namespace) -> int:
    print(await _auth(redis).new_token(args.name))
    # stdout is the token alone (scripts read it); which store holds it goes to stderr.
    print(f"token of {args.name} stored in {_where(args)}", file=sys.stderr)
    return 0
