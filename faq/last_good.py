"""The last good knowledge base, kept on disk so that a start with a broken file still has one to serve.

Every clean load is written as `<root>/<UTC time>-<version>/` holding the very files that loaded.
Each copy is written into a hidden temporary folder and renamed into place, so a crash, a full disk
or two workers saving at once never leave a half-written copy under a copy's name: a rename within
one folder is atomic, and every copy has its own name, so no rename ever replaces a folder in use.
The newest few are kept: should the newest be damaged (a disk fault, a hand edit), an older one
still loads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from faq.loader import load_dir
from faq.model import KnowledgeBase

logger = logging.getLogger(__name__)

KEEP = 3
# Temporary folders older than this are leftovers of a crash mid-save, not a save in progress.
STALE_TMP_S = 3600.0
TMP_PREFIX = ".tmp-"
NAME_RE = re.compile(r"^(?P<saved>\d{8}T\d{6}\.\d{6}Z)-(?P<version>[0-9a-f]+)$")


@dataclass(frozen=True)
class Copy:
    path: Path
    saved: str  # UTC time of the save, as in the folder's name (20261124T101500.123456Z)
    version: str


def copies(root: Path) -> list[Copy]:
    """The saved copies under `root`, newest first (the names sort by time)."""
    try:
        children = list(root.iterdir())
    except OSError:
        return []
    found = []
    for child in children:
        m = NAME_RE.match(child.name)
        if m and child.is_dir():
            found.append(Copy(child, m["saved"], m["version"]))
    return sorted(found, key=lambda c: c.path.name, reverse=True)


def newest_that_loads(root: Path) -> tuple[Copy, KnowledgeBase] | None:
    """The newest copy under `root` that loads cleanly, with its knowledge base (entries naming the copy's
    files); a copy that does not load is logged and the next older one tried; None when none loads."""
    for copy in copies(root):
        result = load_dir(copy.path)
        if result.kb is not None:
            return copy, result.kb
        logger.warning("knowledge base: last good copy %s does not load: %s", copy.path, result.errors[0])
    return None


def save(root: Path, version: str, sources: Mapping[str, bytes]) -> Copy | None:
    """Keep `sources` (relative path -> bytes) as the newest copy; None when it already is.

    Raises OSError when the data folder cannot be written; the caller logs it and serves on."""
    kept = copies(root)
    if kept and kept[0].version == version:
        return None
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=TMP_PREFIX, dir=root))
    try:
        for relative, raw in sources.items():
            _write(tmp, relative, raw)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        final = root / f"{stamp}-{version}"
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(root)  # the rename itself survives a power cut
    _prune(root)
    return Copy(final, stamp, version)


def _write(folder: Path, relative: str, raw: bytes) -> None:
    parts = PurePosixPath(relative).parts
    if not parts or any(p in ("", ".", "..") for p in parts):
        raise OSError(f"refusing to write {relative!r} outside the copy")  # load_dir never gives one
    path = folder.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(raw)
        f.flush()
        # On disk before the rename names the copy: otherwise a power cut could leave a copy of empty files.
        os.fsync(f.fileno())


def _fsync_dir(folder: Path) -> None:
    # Not every platform can open a folder; there the rename is as durable as the OS makes it.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _prune(root: Path) -> None:
    """Drop all but the newest KEEP copies, and temporary folders a crash left behind."""
    for old in copies(root)[KEEP:]:
        shutil.rmtree(old.path, ignore_errors=True)
    now = time.time()
    for child in root.glob(f"{TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if now - child.stat().st_mtime > STALE_TMP_S:
                shutil.rmtree(child, ignore_errors=True)
