"""`relevo` as a real process: options before the command, and errors an admin can act on (no traceback)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CONFIG_DIR, ROOT

UNREACHABLE = "redis://127.0.0.1:1/0"


def relevo(*args: str, redis_url: str | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELEVO_") and k != "REDIS_URL"}
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    env["PYTHONPATH"] = str(ROOT)  # with another cwd, `-m bot` must still be this checkout's
    # A new session and no stdin: no terminal, as under systemd, cron or `docker exec` without -it.
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=50, stdin=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


def errors(done: subprocess.CompletedProcess[str]) -> list[str]:
    """The lines meant for the admin: log lines (INFO on stderr) left out."""
    assert "Traceback" not in done.stderr, done.stderr
    return [line for line in done.stderr.splitlines() if line.startswith("relevo")]


def test_data_before_the_command_is_the_data_folder(tmp_path: Path) -> None:
    data = tmp_path / "elsewhere"
    listed = relevo("--config", str(CONFIG_DIR), "--data", str(data), "agent", "list", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"no agents yet in the embedded Redis in {data.resolve()}" in listed.stdout

    from bot.cli import build_parser

    for argv in (["--data", "/d", "serve"], ["--data", "/d", "faq", "unanswered"], ["serve", "--data", "/d"],
                 ["--data", "/x", "agent", "--data", "/d", "list"], ["--data", "/x", "agent", "list", "--data", "/d"]):
        assert build_parser().parse_args(argv).data == "/d", argv
    assert build_parser().parse_args(["serve"]).data is None


def test_data_for_a_command_without_a_data_folder_is_refused() -> None:
    done = relevo("--data", "/tmp/nowhere", "faq", "check")
    assert done.returncode == 2
    assert "--data: `relevo faq check` does not use a data folder" in done.stderr


@pytest.mark.parametrize("command", [("agent", "list"), ("faq", "unanswered"), ("serve", "--port", "0")])
def test_an_unreachable_redis_is_one_line(command: tuple[str, ...], tmp_path: Path) -> None:
    done = relevo("--config", str(CONFIG_DIR), "--data", str(tmp_path), *command, redis_url=UNREACHABLE)
    assert done.returncode == 1
    [line] = errors(done)
    assert line.startswith(f"relevo: cannot reach Redis at {UNREACHABLE}: "), line


@pytest.fixture
def broken_rules(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    rules = config / "handoff.yaml"
    lines = rules.read_text(encoding="utf-8").splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if line.lstrip().startswith("hours:") and "mon-fri" in line)
    lines[at] = lines[at].replace("mon-fri", "mon-fry")
    rules.write_text("".join(lines), encoding="utf-8")
    return config


def test_a_broken_handoff_rules_file_is_its_file_line_message(broken_rules: Path, redis_url: str,
                                                              tmp_path: Path) -> None:  # fmt: skip
    at = f"{broken_rules / 'handoff.yaml'}:"
    served = relevo("serve", "--config", str(broken_rules), "--port", "0", "--data", str(tmp_path),
                    redis_url=redis_url)  # fmt: skip
    assert served.returncode == 1 and "serving on" not in served.stdout
    [line] = errors(served)
    assert line.startswith(f"relevo: handoff rules: {at}") and "'mon-fry' is not a day" in line, line

    # `agent add` checks departments against the same file: it does not load either.
    added = subprocess.run(
        [sys.executable, "-m", "bot", "agent", "add", "eve", "--departments", "general", "--tier", "1",
         "--password-stdin", "--config", str(broken_rules), "--data", str(tmp_path)],
        input="pw123456\n", capture_output=True, text=True, cwd=ROOT, timeout=50,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("RELEVO_")}, "REDIS_URL": redis_url},
    )  # fmt: skip
    assert added.returncode == 1
    [line] = errors(added)
    assert line.startswith(f"relevo: handoff rules: {at}"), line


@pytest.mark.parametrize("where", ["a_file", "a_file/data", "/proc/sys/relevo-data"])
def test_a_data_folder_that_cannot_be_one_is_one_line(where: str, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder\n")
    data = Path(where) if where.startswith("/") else tmp_path / where
    done = relevo("serve", "--config", str(CONFIG_DIR), "--port", "0", "--data", str(data))
    assert done.returncode == 1 and "serving on" not in done.stdout
    [line] = errors(done)
    assert line.startswith(f"relevo: data folder {data} (--data or store.data_dir): "), line
    why = {"a_file": "not a folder", "a_file/data": "cannot create it: a part of its path is a file"}
    assert line.endswith(why.get(where, "cannot create it: No such file or directory")), line


@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("agent", "list")])
def test_a_redis_url_of_no_known_scheme_is_one_line_without_its_password(command: tuple[str, ...],
                                                                        tmp_path: Path) -> None:  # fmt: skip
    done = relevo("--config", str(CONFIG_DIR), "--data", str(tmp_path), *command,
                  redis_url="localhost://admin:s3cret@db:6379")  # fmt: skip
    assert done.returncode == 2
    assert errors(done) == ["relevo: settings: environment REDIS_URL: must start with redis://, rediss:// or unix://"]
    assert "s3cret" not in done.stderr + done.stdout
    assert not any(tmp_path.iterdir()), "refused before the embedded Redis started"


def test_a_redis_url_redis_py_refuses_is_one_line_without_its_password(tmp_path: Path) -> None:
    done = relevo("--config", str(CONFIG_DIR), "--data", str(tmp_path), "agent", "list",
                  redis_url="redis://admin:s3cret@db:port/0")  # fmt: skip
    assert done.returncode == 1
    [line] = errors(done)
    assert line.startswith("relevo: cannot use Redis URL redis://***@db:port/0: "), line
    assert "s3cret" not in done.stderr


@pytest.mark.parametrize("command", [("add", "erin", "--departments", "general", "--tier", "1"), ("passwd", "erin")])
def test_a_password_prompt_without_a_terminal_says_use_password_stdin(command: tuple[str, ...],
                                                                     tmp_path: Path) -> None:  # fmt: skip
    data = tmp_path / "data"
    done = relevo("--config", str(CONFIG_DIR), "agent", *command, "--data", str(data))
    assert done.returncode == 2
    assert errors(done) == ["relevo agent: no terminal to ask for the password; use --password-stdin"]
    assert not data.exists(), "refused before the store was touched"
