"""Deterministic tuning / held-out split of a labelled mood CSV, by a hash of each text."""

from __future__ import annotations

import csv
import hashlib
import sys
from pathlib import Path

TUNE_PERCENT = 60
SALT = b"relevo-mood-split-v1"


def part_of(text: str) -> str:
    """'tune' for about 60% of texts, 'holdout' for the rest; the same text always lands in the same part."""
    digest = hashlib.sha256(SALT + text.strip().encode("utf-8")).digest()
    return "tune" if int.from_bytes(digest[:4], "big") % 100 < TUNE_PERCENT else "holdout"


def split(source: Path, folder: Path) -> dict[str, Path]:
    """Write folder/tune.csv and folder/holdout.csv from source, keeping its columns."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {part: folder / f"{part}.csv" for part in ("tune", "holdout")}
    with source.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or ())
        rows = list(reader)
    for part, path in paths.items():
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=fields)
            writer.writeheader()
            writer.writerows(r for r in rows if part_of(r["text"]) == part)
    return paths


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/eval/mood/emoevent_train.csv")
    dst = Path(sys.argv[2] if len(sys.argv) > 2 else "/tmp/mood_split")
    for name, p in split(src, dst).items():
        print(name, p, sum(1 for _ in p.open(encoding="utf-8")) - 1)
