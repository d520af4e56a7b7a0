"""FAQ matcher speed on synthetic knowledge bases: load time and per-question latency, as JSON."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from faq.matcher import Matcher
from faq.model import Entry, KnowledgeBase

PER_ENTRY = 10
QUESTIONS = 300


def _vocabulary(rng: random.Random, size: int) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)]


def synthetic_kb(examples: int, seed: int = 1) -> tuple[KnowledgeBase, list[str]]:
    """Entries of PER_ENTRY questions: a few topic words per entry + Zipf-distributed common words."""
    rng = random.Random(seed)
    vocab = _vocabulary(rng, 20_000)
    common = ["how", "do", "i", "my", "the", "can", "what", "is", "order", "account", "why", "when"]
    weights = [1.0 / (r + 1) for r in range(len(vocab))]
    entries, questions = [], []
    for e in range(examples // PER_ENTRY):
        topic = rng.sample(vocab[:5000], 3)
        qs = []
        for _ in range(PER_ENTRY):
            words = (
                rng.sample(common, 3)
                + rng.sample(topic, 2)
                + rng.choices(vocab, weights, k=rng.randint(2, 8))
            )
            rng.shuffle(words)
            qs.append(" ".join(words) + "?")
        entries.append(Entry(f"e{e}", {"en": tuple(qs)}, {"en": "."}))
        questions.append(qs[0].replace(topic[0], topic[0][:-1] + "x", 1))  # a typo
    rng.shuffle(questions)
    return KnowledgeBase(tuple(entries)), questions[:QUESTIONS]


def measure(examples: int) -> dict[str, float]:
    kb, questions = synthetic_kb(examples)
    start = time.perf_counter()
    matcher = Matcher(kb)
    load_s = time.perf_counter() - start
    for q in questions[:20]:
        matcher.match(q, "en")  # warm caches, as a running bot has them
    times = []
    for q in questions:
        t = time.perf_counter()
        matcher.match(q, "en")
        times.append((time.perf_counter() - t) * 1000.0)
    return {
        "examples": examples,
        "entries": len(kb),
        "load_s": round(load_s, 3),
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="10000,100000", help="example-question counts, comma separated")
    args = ap.parse_args()
    print(json.dumps([measure(int(n)) for n in args.sizes.split(",")]))


if __name__ == "__main__":
    main()
