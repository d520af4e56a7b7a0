"""`relevo agent` as a real process against the test Redis: add, list, passwd, token, disable."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis

from handoff import audit, keys
from handoff.agents import AgentDirectory, check_password
from handoff.auth import TOKENS
from handoff.presence import Presence
from tests.conftest import CONFIG_DIR, ROOT
from tests.handoff.queue_helpers import queues, route


@pytest.fixture
def store(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    try:
        yield client
    finally:
        client.close()


def relevo(redis_url: str, tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_")}
    env["REDIS_URL"] = redis_url
    return subprocess.run(
        [sys.executable, "-m", "bot", "--config", str(CONFIG_DIR), "agent", "--data", str(tmp_path), *args],
        input=stdin, capture_output=True, text=True, env=env, cwd=ROOT, timeout=50,
    )  # fmt: skip


def test_add_list_passwd_token_disable(store: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    added = relevo(redis_url, tmp_path, "add", "ana", "--departments", "orders,returns", "--tier", "2",
                   "--role", "supervisor", "--capacity", "4", "--display-name", "Ana G.", "--password-stdin",
                   stdin="s3cret pass\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    record = store.hgetall(keys.agent("ana"))
    assert record["departments"] == "orders,returns" and record["tier"] == "2"
    assert record["role"] == "supervisor" and record["capacity"] == "4" and record["display_name"] == "Ana G."
    assert check_password("s3cret pass", str(record["password"]))
    assert "s3cret" not in added.stdout + added.stderr

    again = relevo(redis_url, tmp_path, "add", "ana", "--departments", "orders", "--tier", "1",
                   "--password-stdin", stdin="another pass\n")  # fmt: skip
    assert again.returncode == 1 and "already exists" in again.stderr

    listed = relevo(redis_url, tmp_path, "list")
    assert listed.returncode == 0 and "ana\tAna G.\tsupervisor\ttier 2" in listed.stdout

    before = relevo(redis_url, tmp_path, "token", "ana")  # a script's token, from before a leak
    assert before.returncode == 0 and store.hlen(TOKENS) == 1
    changed = relevo(redis_url, tmp_path, "passwd", "ana", "--password-stdin", stdin="new pass\n")
    assert changed.returncode == 0, changed.stderr
    assert "1 tokens revoked" in changed.stdout and store.hlen(TOKENS) == 0  # every way in closed
    assert check_password("new pass", str(store.hget(keys.agent("ana"), "password")))

    token = relevo(redis_url, tmp_path, "token", "ana")
    assert token.returncode == 0, token.stderr
    printed = token.stdout.strip()
    assert printed.startswith("rlv_")
    assert store.hget(TOKENS, hashlib.sha256(printed.encode()).hexdigest()) == "ana"
    assert printed not in store.hvals(TOKENS) and printed not in store.hkeys(TOKENS)

    disabled = relevo(redis_url, tmp_path, "disable", "ana")
    assert disabled.returncode == 0 and "1 tokens revoked" in disabled.stdout
    assert store.hget(keys.agent("ana"), "disabled") == "1"
    assert store.hlen(TOKENS) == 0

    enabled = relevo(redis_url, tmp_path, "enable", "ana")
    assert enabled.returncode == 0 and "enabled ana" in enabled.stdout
    assert store.hget(keys.agent("ana"), "disabled") == "0"
    assert check_password("new pass", str(store.hget(keys.agent("ana"), "password")))
    nobody = relevo(redis_url, tmp_path, "enable", "nobody")
    assert nobody.returncode == 1 and "does not exist" in nobody.stderr


async def test_disable_gives_back_what_the_agent_held_at_once(
    redis: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    # Before, the conversations stayed "with Ana" until the claim lease lapsed, with nobody to answer.
    added = relevo(redis_url, tmp_path, "add", "ana", "--departments", "general", "--tier", "1", "--password-stdin",
                   stdin="s3cret pass\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    q = queues(redis)
    await q.enqueue("high", route(priority="high"))
    await q.enqueue("normal", route())
    ana = await AgentDirectory(redis).get("ana")
    assert ana is not None
    await q.claim(ana, "high")
    await q.claim(ana, "normal")
    await Presence(redis, 30).heartbeat("ana", "online")
    disabled = relevo(redis_url, tmp_path, "disable", "ana")
    assert disabled.returncode == 0, disabled.stderr
    assert "2 conversations given back" in disabled.stdout
    assert await q.assigned_to("ana") == [] and await q.waiting("general", 1) == ["high", "normal"]
    assert await Presence(redis, 30).status("ana") == "offline"
    released = [e for e in await audit.read(redis, count=100) if e.event == "released"]
    assert sorted(e.conversation_id for e in released) == ["high", "normal"]


def test_set_changes_what_is_given_and_keeps_the_rest(store: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    added = relevo(redis_url, tmp_path, "add", "ana", "--departments", "orders", "--tier", "1",
                   "--password-stdin", stdin="s3cret pass\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    changed = relevo(redis_url, tmp_path, "set", "ana", "--display-name", "Ana G.", "--tier", "2")
    assert changed.returncode == 0, changed.stderr
    record = store.hgetall(keys.agent("ana"))
    assert record["display_name"] == "Ana G." and record["tier"] == "2"
    assert record["departments"] == "orders" and record["capacity"] == "3" and record["role"] == "agent"
    assert check_password("s3cret pass", str(record["password"]))  # the password is kept
    for args, says in (
        ((), "nothing to change"),
        (("--capacity", "0"), "capacity must be 1 to"),
        (("--departments", "nowhere"), "unknown department 'nowhere'"),
    ):
        refused = relevo(redis_url, tmp_path, "set", "ana", *args)
        assert refused.returncode == 1 and says in refused.stderr, refused.stderr
    nobody = relevo(redis_url, tmp_path, "set", "bob", "--tier", "2")
    assert nobody.returncode == 1 and "agent 'bob' does not exist" in nobody.stderr
    assert store.hget(keys.agent("ana"), "tier") == "2"  # the refusals changed nothing


def test_bad_input_is_refused(store: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    bad_tier = relevo(redis_url, tmp_path, "add", "bob", "--departments", "orders", "--tier", "7",
                      "--password-stdin", stdin="pw\n")  # fmt: skip
    assert bad_tier.returncode == 2
    empty = relevo(redis_url, tmp_path, "add", "bob", "--departments", "orders", "--tier", "1",
                   "--password-stdin", stdin="\n")  # fmt: skip
    assert empty.returncode == 1 and "password" in empty.stderr
    for weak in ("x", "seven77", "         "):  # these accounts read transcripts: 8 characters, not blank
        short = relevo(redis_url, tmp_path, "add", "bob", "--departments", "orders", "--tier", "1",
                       "--password-stdin", stdin=f"{weak}\n")  # fmt: skip
        assert short.returncode == 1 and "a password is 8 to 200 characters" in short.stderr, short.stderr
    bad_name = relevo(redis_url, tmp_path, "add", "Bob Smith", "--departments", "orders", "--tier", "1",
                      "--password-stdin", stdin="pw123456\n")  # fmt: skip
    assert bad_name.returncode == 1 and "agent name" in bad_name.stderr
    assert not store.exists(keys.agent("bob"))
    assert relevo(redis_url, tmp_path, "token", "nobody").returncode == 1


def test_a_department_the_handoff_rules_do_not_have_is_refused(store: redis.Redis, redis_url: str,
                                                                tmp_path: Path) -> None:  # fmt: skip
    typo = relevo(redis_url, tmp_path, "add", "eve", "--departments", "orders,nowhere", "--tier", "1",
                  "--password-stdin", stdin="pw123456\n")  # fmt: skip
    assert typo.returncode == 1
    assert "unknown department 'nowhere' (known in " in typo.stderr
    assert "billing, general" in typo.stderr and "orders" in typo.stderr
    assert not store.exists(keys.agent("eve"))


def test_options_after_the_command_and_an_empty_store_named(store: redis.Redis, tmp_path: Path) -> None:
    # As the README and operators write them: --config and --data after the subcommand.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_") and k != "REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)  # run elsewhere, `-m bot` must still be this checkout's
    data = tmp_path / "elsewhere"
    listed = subprocess.run(
        [sys.executable, "-m", "bot", "agent", "list", "--config", str(CONFIG_DIR), "--data", str(data)],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=50,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert f"no agents yet in the embedded Redis in {data.resolve()}" in listed.stdout


def test_config_after_serve_is_the_config() -> None:
    from bot.cli import build_parser

    args = build_parser().parse_args(["serve", "--config", "/etc/relevo", "--port", "0"])
    assert args.config == "/etc/relevo" and args.port == 0
    assert build_parser().parse_args(["--config", "/a", "serve"]).config == "/a"
    assert build_parser().parse_args(["serve"]).config is None


def test_unlock_and_passwd_lift_login_lockouts(store: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    def lock(kind: str, who: str) -> None:
        store.set(keys.lock_key(kind, who), "1", ex=900)
        store.set(keys.failures_key(kind, who), 5, ex=900)

    def locked() -> set[str]:
        return set(store.scan_iter(match="relevo:console:lock:*")) | set(store.scan_iter(match="relevo:console:fail:*"))

    def gone(kind: str, who: str) -> bool:
        return not store.exists(keys.lock_key(kind, who), keys.failures_key(kind, who))

    added = relevo(redis_url, tmp_path, "add", "cat", "--departments", "general", "--tier", "1",
                   "--password-stdin", stdin="pw one two\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    # A name, an address, and names locked at one address (the office's typos lock only the typist there).
    for kind, who in (("name", "cat"), ("ip", "10.0.0.1"), ("name", "ana"), ("ip", "10.0.0.2"),
                      ("pair", keys.login_pair("cat", "10.0.0.9")), ("pair", keys.login_pair("dan", "10.0.0.1")),
                      ("pair", keys.login_pair("eve", "10.0.0.2"))):  # fmt: skip
        lock(kind, who)

    by_address = relevo(redis_url, tmp_path, "unlock", "--address", "10.0.0.1")
    assert by_address.returncode == 0 and "lifted 2 login lockouts (address 10.0.0.1)" in by_address.stdout
    assert gone("ip", "10.0.0.1") and gone("pair", keys.login_pair("dan", "10.0.0.1"))

    # A new password lets the name in at once, from every address; an address lockout is not the reset's to lift.
    changed = relevo(redis_url, tmp_path, "passwd", "cat", "--password-stdin", stdin="pw two three\n")
    assert changed.returncode == 0 and "(login lockout lifted)" in changed.stdout, changed.stdout
    assert gone("name", "cat") and gone("pair", keys.login_pair("cat", "10.0.0.9"))

    by_name = relevo(redis_url, tmp_path, "unlock", "ana")
    assert by_name.returncode == 0 and "lifted 1 login lockout (name ana)" in by_name.stdout
    eve = keys.login_pair("eve", "10.0.0.2")
    assert locked() == {keys.lock_key("ip", "10.0.0.2"), keys.failures_key("ip", "10.0.0.2"),
                        keys.lock_key("pair", eve), keys.failures_key("pair", eve)}  # fmt: skip

    both = relevo(redis_url, tmp_path, "unlock", "eve", "--address", "10.0.0.3")
    assert both.returncode == 0 and "lifted 1 login lockout (name eve and address 10.0.0.3)" in both.stdout
    assert gone("pair", eve)

    lock("name", "bob")
    everything = relevo(redis_url, tmp_path, "unlock")
    assert everything.returncode == 0 and "lifted 2 login lockouts (all)" in everything.stdout
    assert locked() == set()


def test_each_change_names_the_store_it_wrote_to(store: redis.Redis, redis_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_") and k != "REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)  # run elsewhere, `-m bot` must still be this checkout's
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)

    def agent(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        # Relative paths, as an operator types them: the output must name the folder they resolve to.
        argv = [sys.executable, "-m", "bot", "--config", "config", "agent", *args, "--data", "here"]
        return subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=50)

    where = f"in the embedded Redis in {(tmp_path / 'here').resolve()}"
    added = agent("add", "carl", "--departments", "general", "--tier", "1", "--password-stdin", stdin="longenough1\n")
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"added carl (agent, tier 1, general) {where}"
    for args, stdin in ((("passwd", "carl", "--password-stdin"), "longenough2\n"), (("set", "carl", "--tier", "2"), ""),
                        (("disable", "carl"), ""), (("enable", "carl"), ""), (("unlock", "carl"), "")):  # fmt: skip
        done = agent(*args, stdin=stdin)
        assert done.returncode == 0 and where in done.stdout, (args, done.stdout, done.stderr)
    token = agent("token", "carl")
    assert token.stdout.strip().startswith("rlv_") and where not in token.stdout  # stdout: the token alone
    assert f"token of carl stored {where}" in token.stderr


def test_no_config_folder_here_is_said_before_anything_starts(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_") and k != "REDIS_URL"}
    env["PYTHONPATH"] = str(ROOT)  # run elsewhere, `-m bot` must still be this checkout's
    for args in (("agent", "add", "carl", "--departments", "general", "--tier", "1", "--password-stdin"),
                 ("agent", "list"), ("serve", "--port", "0")):  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "bot", *args], input="longenough1\n", capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=50)  # fmt: skip
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip() == (
            f"relevo: settings: no config folder here ({tmp_path / 'config'} does not exist): run Relevo from "
            "its folder, or name the config folder with --config DIR or RELEVO_CONFIG"
        )
        assert not (tmp_path / "data").exists(), "no empty store made on the way"
