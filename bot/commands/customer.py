"""`relevo customer`: export or forget everything stored about one customer (GDPR access and erasure)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any, cast

from bot.commands.agent import _settings, _where, _with_store


class Refused(Exception):
    """The command will not do it as asked (a handoff holds a conversation, no confirmation)."""


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("customer", help="export or delete one customer's data")
    p.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS,
                   help="folder of the embedded Redis (default: store.data_dir)")
    cmds = p.add_subparsers(dest="customer_command", required=True)
    key_help = "the conversation key (web:<session>, telegram:<chat id>) or one of its conversation ids"

    ex = cmds.add_parser("export", help="print every stored conversation of the customer as JSON")
    ex.add_argument("key", help=key_help)
    ex.set_defaults(func=lambda a: _run(a, _export))

    fg = cmds.add_parser("forget", help="delete every stored conversation of the customer")
    fg.add_argument("key", help=key_help)
    fg.add_argument("--yes", action="store_true", help="do not ask (needed without a terminal)")
    fg.add_argument("--force", action="store_true",
                    help="end a handoff that holds one of them first (as if the customer left)")
    fg.set_defaults(func=lambda a: _run(a, _forget))

    for command in cmds.choices.values():
        command.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS, help="as `relevo customer --data`")


def _run(args: argparse.Namespace, command: Any) -> int:
    try:
        return int(asyncio.run(_with_store(_settings(args), lambda redis: command(redis, args))))
    except Refused as exc:
        print(f"relevo: {exc}", file=sys.stderr)
        return 2 if "--yes" in str(exc) else 1


async def _export(redis: Any, args: argparse.Namespace) -> int:
    from handoff import keys
    from handoff.retention import customer_conversations, customer_key

    key = await customer_key(redis, args.key)
    out: list[dict[str, Any]] = []
    for cid in await customer_conversations(redis, key):
        record = await redis.get(keys.handoff_record(cid))
        handoff = json.loads(record) if record else None
        out.append({
            "id": cid,
            "record": await redis.hgetall(keys.conv(cid)),
            "transcript": [{"id": i, **f} for i, f in await redis.xrange(keys.conv_log(cid))],
            "notes": [{"id": i, **f} for i, f in await redis.xrange(keys.notes_key(cid))],
            # What an agent was handed: the transcript in it is the one above, so only the summary.
            "handoff": {k: handoff.get(k) for k in ("department", "tier", "priority", "reasons", "summary",
                                                     "mood_score", "created_at")} if handoff else None,
        })  # fmt: skip
    json.dump({"customer": key, "conversations": out}, sys.stdout, ensure_ascii=False, indent=2)
    print()
    if not out:
        print(f"relevo: nothing stored for {key} in {_where(args)}", file=sys.stderr)
    return 0


async def _forget(redis: Any, args: argparse.Namespace) -> int:
    from handoff import keys
    from handoff.conversations import Conversation, Conversations
    from handoff.queues import HandoffQueues, QueueError
    from handoff.retention import customer_conversations, customer_key, erase, handoff_state, leftover_keys
    from handoff.rules import rules_of

    key = await customer_key(redis, args.key)
    ids = await customer_conversations(redis, key)
    if not ids:
        print(f"nothing stored for {key} in {_where(args)}")
        return 0
    held = []
    for cid in ids:
        state = await handoff_state(redis, cid) or cast(str, await redis.hget(keys.conv(cid), "state"))
        if state in ("queued", "assigned"):
            held.append((cid, state))
    if held and not args.force:
        cid, state = held[0]
        raise Refused(f"conversation {cid} of {key} is {state}: resolve it in the console first, or use --force")
    _confirm(args, f"delete {len(ids)} conversation(s) of {key} in {_where(args)}")
    conversations = Conversations(redis)
    if held:
        settings = _settings(args)
        queues = HandoffQueues(redis, rules_of(settings), settings.handoff)
        for cid, _ in held:
            try:  # the handoff's own end, as when a customer leaves: the agent's console is told
                await queues.abandon(cid)
            except QueueError as exc:
                if exc.code not in ("not_found", "gone"):
                    raise Refused(f"conversation {cid}: the handoff did not end: {exc}") from None
    for cid in ids:
        data = cast(dict[str, str], await redis.hgetall(keys.conv(cid)))
        if data and data.get("state") != "closed":
            await conversations.close(Conversation.from_hash(data), "erased")
    erased = await erase(redis, ids)
    if erased.refused:  # a handoff came back meanwhile: nothing else of it was touched
        cid, state = erased.refused[0]
        raise Refused(f"conversation {cid} of {key} is {state} again; nothing of it was deleted")
    extra = await leftover_keys(redis, ids)
    extra += int(await redis.delete(keys.customer(key), keys.customer_last(key), keys.handoffs_key(key)))
    print(f"forgot {key}: {len(erased.conversations)} conversation(s), {erased.keys + extra} keys deleted, "
          f"{erased.audit_blanked} audit comment(s) blanked, {erased.unanswered} unanswered question(s) "
          f"removed, in {_where(args)}")  # fmt: skip
    return 0


def _confirm(args: argparse.Namespace, what: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise Refused(f"customer forget: no terminal to ask before it would {what}; add --yes")
    if input(f"This will {what}. Continue? [y/N] ").strip().lower() not in ("y", "yes"):
        raise Refused("customer forget: nothing deleted")
