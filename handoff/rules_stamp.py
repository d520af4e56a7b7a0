"""Whether the handoff rules file changed on disk since start: it is read only then (the knowledge base
is reloaded, handoff.yaml is not), so a knowledge base that names a department added since is misrouted
until a restart, and the messages about it must say so."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

# In the data folder: what the server read at start, for `relevo faq check` (another process).
STAMP_FILE = "handoff-rules-at-start.json"


def restart_note(path: Path) -> str:
    return f"{path} has changed on disk since Relevo started: it is read only at start; restart Relevo to use it"


def digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


class RulesAtStart:
    """The rules file as the server read it at start; `note()` is "" until the file on disk differs."""

    def __init__(self, path: Path, data_dir: Path | None = None) -> None:
        self.path = path
        self.digest = digest(path)
        self._seen = self._stat()
        self._changed = False
        if data_dir is not None:
            _write_stamp(data_dir, path, self.digest)

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def changed(self) -> bool:
        # /healthz asks often: the file is read again only when its time or size moved.
        seen = self._stat()
        if seen != self._seen:
            self._seen = seen
            self._changed = digest(self.path) != self.digest
        return self._changed

    def note(self) -> str:
        return restart_note(self.path) if self.changed() else ""


def _write_stamp(data_dir: Path, path: Path, sha256: str | None) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / STAMP_FILE).write_text(json.dumps({"path": str(path.resolve()), "sha256": sha256}) + "\n",
                                           encoding="utf-8")  # fmt: skip
    except OSError as exc:
        # Costs only `relevo faq check`'s restart note.
        logger.warning("handoff rules: cannot note in %s which file was read at start: %s", data_dir, exc)


def changed_since_server_start(path: Path, data_dir: Path) -> str:
    """For `relevo faq check`: the restart note when the server on `data_dir` read another version of
    `path` at its start than the one on disk now; "" when it read this one, or nothing says which."""
    try:
        stamp = json.loads((data_dir / STAMP_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    if not isinstance(stamp, dict) or stamp.get("path") != str(path.resolve()) or not stamp.get("sha256"):
        return ""
    return restart_note(path) if digest(path) != stamp["sha256"] else ""
