"""`relevo faq check|ask|eval|unanswered`: validate the knowledge base, try a question, measure the
policy, list what customers asked that it could not answer."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot import unanswered
from bot.runtime import FAQ_LAST_GOOD_DIR
from bot.settings import Settings, load_settings
from faq import last_good
from faq.evaluate import CasesError, evaluate, read_cases
from faq.library import Library
from faq.loader import LoadResult, load_dir, load_file
from faq.matcher import Matcher
from faq.model import Action, KnowledgeBase
from faq.policy import Thresholds, decide
from handoff.rules import RulesError, load_rules
from handoff.rules_stamp import changed_since_server_start

logger = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("faq", help="knowledge base: check, ask, eval, unanswered")
    faq_sub = p.add_subparsers(dest="faq_command", required=True)

    check = faq_sub.add_parser("check", help="validate the knowledge-base files")
    check.add_argument("dir", nargs="?", type=Path,
                       help="folder of YAML files (default: settings faq.dir), or one file (a draft) to check "
                            "with that folder")
    check.set_defaults(func=cmd_check)

    ask = faq_sub.add_parser("ask", help="show the candidates and the decision for one question")
    ask.add_argument("text")
    ask.add_argument("--lang", choices=("es", "en"), help="customer's language (default: detect)")
    ask.add_argument("--kb", type=Path, help="knowledge-base folder (default: settings faq.dir)")
    # While the folder has errors, the server answers from the last good copy it keeps there.
    ask.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS,
                     help="data folder whose last good knowledge base is used while the folder has errors "
                          "(default: store.data_dir)")
    _threshold_flags(ask)
    ask.set_defaults(func=cmd_ask)

    ev = faq_sub.add_parser("eval", help="run the policy over labelled cases (text,expected CSV)")
    ev.add_argument("--kb", type=Path, help="knowledge-base folder (default: settings faq.dir)")
    ev.add_argument("--cases", type=Path, required=True)
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    _threshold_flags(ev)
    ev.set_defaults(func=cmd_eval)

    un = faq_sub.add_parser("unanswered", help="the questions the bot could not answer, grouped")
    un.add_argument("--days", type=_whole(1, 3650), default=30, help="how far back, 1..3650 (default: 30)")
    un.add_argument("--top", type=_whole(1, 1000), default=20, help="groups shown, 1..1000 (default: 20)")
    # One output or the other: with both, one would be dropped without a word.
    output = un.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print one JSON object")
    output.add_argument("--draft", action="store_true", help="print a knowledge-base file to start from")
    # SUPPRESS: "relevo --data DIR faq unanswered" keeps the top level's value (see bot/cli.py).
    un.add_argument("--data", metavar="DIR", default=argparse.SUPPRESS,
                    help="folder of the embedded Redis (default: store.data_dir)")
    un.set_defaults(func=cmd_unanswered)


def _whole(least: int, most: int) -> Callable[[str], int]:
    """An argparse type: a whole number in least..most, as /api/unanswered takes them."""

    def parse(text: str) -> int:
        refused = argparse.ArgumentTypeError(f"expected a whole number from {least} to {most}, got {text!r}")
        try:
            value = int(text)
        except ValueError:
            raise refused from None
        if not least <= value <= most:
            raise refused
        return value

    return parse


def _threshold_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--answer-threshold", type=float, help="override settings faq.answer_threshold")
    p.add_argument("--clarify-threshold", type=float, help="override settings faq.clarify_threshold")


def _thresholds(args: argparse.Namespace) -> Thresholds:
    faq = load_settings(args.config).faq
    answer = faq.answer_threshold if args.answer_threshold is None else args.answer_threshold
    clarify = faq.clarify_threshold if args.clarify_threshold is None else args.clarify_threshold
    return Thresholds(answer, clarify, faq.max_suggestions)


def _kb_dir(args: argparse.Namespace, explicit: Path | None) -> Path:
    return explicit if explicit is not None else load_settings(args.config).faq_dir


def _load(folder: Path) -> KnowledgeBase | None:
    result = load_dir(folder)
    for problem in result.errors:
        print(problem, file=sys.stderr)
    if result.kb is None:
        print(f"relevo faq: {folder}: {len(result.errors)} error(s); run `relevo faq check`", file=sys.stderr)
    return result.kb


def _departments(args: argparse.Namespace) -> tuple[set[str] | None, str]:
    """The departments of the handoff rules file the server would use, and a note naming that file or
    saying why there are none (the knowledge base is then checked without them, as before)."""
    settings, beside = _rules_settings(args)
    path = settings.handoff_rules
    if not path.is_file():
        return None, f"departments not checked: no handoff rules file at {path}"
    try:
        rules = load_rules(path, settings.handoff.timezone, settings.handoff.default_department)
    except RulesError as exc:
        first = exc.problems[0] if exc.problems else path
        return None, f"departments not checked: {path} does not load ({first}); the server will not start"
    found = f" (found next to {args.dir}; --config to use another)" if beside else ""
    note = f"departments checked against {path}{found}, as it is on disk"
    # The server read its rules at start: a check that passes here may still be misrouted there.
    restart = changed_since_server_start(path, settings.data_dir)
    return set(rules.departments), note + (f"; {restart}" if restart else "")


def _rules_settings(args: argparse.Namespace) -> tuple[Settings, bool]:
    """The settings whose handoff rules a check uses, and whether they are those of the folder next to
    the knowledge base checked. `relevo faq check cfg/faq`, without --config (nor RELEVO_CONFIG), checks
    against cfg/ as `--config cfg` would: the rules that go with that knowledge base, not ./config's."""
    settings = load_settings(args.config)
    folder: Path | None = args.dir
    if args.config is not None or os.environ.get("RELEVO_CONFIG") or folder is None or not folder.is_dir():
        return settings, False
    beside = folder.resolve().parent
    if (beside / "relevo.toml").is_file():
        there = load_settings(beside)
    elif (beside / "handoff.yaml").is_file():
        there = Settings(config_dir=beside)  # a config folder without relevo.toml: the defaults
    else:
        return settings, False
    if there.faq_dir.resolve() != folder.resolve() or not there.handoff_rules.is_file():
        return settings, False
    if there.handoff_rules.resolve() == settings.handoff_rules.resolve():
        return settings, False  # ./config/faq itself: nothing found that the default would not use
    return there, True


def cmd_check(args: argparse.Namespace) -> int:
    departments, note = _departments(args)
    if args.dir is not None and args.dir.is_file():
        # A draft, checked with the knowledge base it would join (settings faq.dir): its own problems,
        # and an id or question the two have both.
        draft, folder = args.dir, _kb_dir(args, None)
        result = load_dir(folder, departments, extra=(draft,))
        folder_label = f"{draft} with {folder}"
    else:
        folder = _kb_dir(args, args.dir)
        result = load_dir(folder, departments)
        folder_label = str(folder)
    for problem in result.errors:
        print(problem)
    print(note)
    if result.warnings:
        print(f"warnings ({len(result.warnings)}):")
        for problem in result.warnings:
            print(f"  {problem}")
    if result.kb is None:
        print(f"{folder_label}: {len(result.errors)} error(s)")
        return 1
    print(f"{folder_label}: ok, {len(result.kb)} entries")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    thresholds = _thresholds(args)
    folder = _kb_dir(args, args.kb)
    result = load_dir(folder)
    kb = result.kb
    if kb is None:
        kb = _kb_despite_errors(args, folder, result)
        if kb is None:
            return 1
    match = Matcher(kb).match(args.text, args.lang, limit=5)
    decision = decide(match, kb, thresholds)
    related = "" if match.related else "   (unrelated to the knowledge base: no suggestions)"
    print(f"language: {match.lang}   confidence: {match.confidence:.3f}{related}")
    for rank, c in enumerate(match.candidates, 1):
        print(f"  {rank}. {c.entry_id}  score {c.score:.3f}  ~ {c.question!r}")
    action = decision.action.value
    if decision.action is Action.ANSWER and decision.entry is not None:
        answer, lang = decision.entry.answer_in(match.lang)
        print(f"decision: {action} {decision.entry.id} ({lang}): {answer}")
    elif decision.action is Action.CLARIFY:
        print(
            f"decision: {action}: did you mean "
            + " | ".join(e.title(match.lang) for e in decision.suggestions)
        )
    else:
        print(f"decision: {action}")
    print(f"(answer >= {thresholds.answer}, clarify >= {thresholds.clarify})")
    return 0


def _kb_despite_errors(args: argparse.Namespace, folder: Path, result: LoadResult) -> KnowledgeBase | None:
    """What answers while `folder` has errors, said on stderr with the errors: the last good copy the
    server keeps in the data folder (what a running server answers from), else the files of the
    folder that load on their own; None (and why) when there is neither."""
    for problem in result.errors:
        print(problem, file=sys.stderr)
    head = f"relevo faq: note: {folder} has {len(result.errors)} error(s) (see `relevo faq check`)"
    data = getattr(args, "data", None)
    root = (Path(data) if data else load_settings(args.config).data_dir) / FAQ_LAST_GOOD_DIR
    found = last_good.newest_that_loads(root)
    if found is not None:
        copy, kb = found
        print(f"{head}; answering from the last good copy, saved {copy.saved} in {copy.path}, as the server "
              "does until they are fixed", file=sys.stderr)  # fmt: skip
        return kb
    broken = {p.file for p in result.errors}
    usable = [f for f in result.files if str(f) not in broken]
    entries = [e for f in usable for e in load_file(f)[0]]
    if not entries:
        print(f"{head}; no file of it loads, and no last good copy is in {root}", file=sys.stderr)
        return None
    left_out = ", ".join(sorted(str(Path(f).name) for f in broken if Path(f) != folder))
    print(f"{head}; no last good copy in {root}, so answering from the {len(usable)} file(s) that load, "
          f"without {left_out}: the server may answer otherwise", file=sys.stderr)  # fmt: skip
    return KnowledgeBase(entries=tuple(entries), version="partial")


def cmd_eval(args: argparse.Namespace) -> int:
    thresholds = _thresholds(args)
    kb = _load(_kb_dir(args, args.kb))
    if kb is None:
        return 1
    try:
        cases = read_cases(args.cases, kb.by_id)
    except (CasesError, OSError) as exc:
        print(f"relevo faq eval: {exc}", file=sys.stderr)
        return 1
    metrics = evaluate(kb, cases, thresholds)
    if args.json:
        print(json.dumps(metrics))
    else:
        for key, value in metrics.items():
            print(f"{key:>20}: {value}")
    return 0


def cmd_unanswered(args: argparse.Namespace) -> int:
    store = {"data_dir": args.data} if args.data else {}
    settings = load_settings(args.config, store=store)
    items = asyncio.run(_read_unanswered(settings, args.days))
    # Left out: what the knowledge base answers by now (as the server would load it).
    faq = settings.faq
    library = Library(settings.faq_dir, Thresholds(faq.answer_threshold, faq.clarify_threshold, faq.max_suggestions))
    if library.matcher is None:
        print(f"relevo faq unanswered: {settings.faq_dir} does not load (see `relevo faq check`); questions it may "
              "answer by now are listed too", file=sys.stderr)  # fmt: skip
    groups, answered = unanswered.open_groups(items, library)
    groups = groups[: args.top]
    if args.draft:
        print(unanswered.draft(groups, kb=library.kb), end="")
        return 0
    if args.json:
        print(json.dumps({"days": args.days, "noted": len(items), "answered_now": answered,
                          "groups": [unanswered.to_dict(g) for g in groups]}, ensure_ascii=False))
        return 0
    # Which store was read: a wrong --data starts an empty embedded Redis, and "0" must not read as
    # "the bot understood everything".
    where = settings.store.describe(settings.data_dir)
    period = "day" if args.days == 1 else f"{args.days} days"
    print(f"{_count(len(items), 'question')} not answered in the last {period}, {_count(len(groups), 'group')} "
          f"shown (read from {where})")
    if answered:
        print(f"({answered} of them the knowledge base answers by now: left out)")
    for g in groups:
        kinds = " and ".join(sorted(unanswered.LABELS.get(k, k) for k in g.kinds))
        near = f"; near: {', '.join(sorted(g.entries))}" if g.entries else ""
        print(f"\n{g.count:>4}x  ({kinds}{near})")
        for text, lang in unanswered.examples(g):
            print(f"      [{lang}] {text}")
    return 0


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


async def _read_unanswered(settings: Settings, days: int) -> list[unanswered.Unanswered]:
    from handoff.store import Store

    store = await Store.connect(settings.store.redis_url, settings.data_dir)
    try:
        return await unanswered.read(store.redis, days)
    finally:
        await store.close()
