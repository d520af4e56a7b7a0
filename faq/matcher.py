"""Find the knowledge-base entries that answer a question, with a confidence in [0, 1].

How a question is scored (per language, against the example questions of every entry):
- a TF-IDF vector of three blocks: stemmed word 1-3 grams, stemmed content words (stop words out)
  and character 2-5 grams of each folded word (typos keep most of their character grams);
- cosine similarity to each example and to each entry's centroid;
- on knowledge bases small enough to fit in the load-time budget, a multinomial logistic model in
  kernel form, fitted at load time on the examples (it learns which words tell entries apart);
- rapidfuzz's token_set_ratio against the best entry's examples, for what n-grams miss.
A question with no language evidence either way is matched in both languages' indexes; the surer
match wins. The confidence is a logistic calibration of those signals for the best entry (with
the runner-up margins, the model's entropy and the best example's lead over other entries); its coefficients
are constants below, fitted by cross-validation on the banking77 TRAIN split
(`python bench/faq_eval.py --calibrate`), so that it estimates P(the best entry is right).
"""

from __future__ import annotations

import itertools
import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process
from scipy import sparse

from faq.lang import lang_scores
from faq.model import LANGS, Candidate, KnowledgeBase, Match
from faq.normalize import STOP_WORDS, fold, stem, word_tokens

logger = logging.getLogger(__name__)

MAX_WORDS = 64  # a question longer than this is cut: customers' essays add noise, not signal
# The kernel model costs examples² × entries per iteration; above this it is skipped (large KBs
# then rank by similarity alone, with their own calibration).
KERNEL_BUDGET = 2.5e8
KERNEL_ITERATIONS = 50
KERNEL_STEP = 0.5
KERNEL_L2 = 0.01
FUZZ_EXAMPLES = 32
PRUNE_FROM_EXAMPLES = 5000
PRUNE_DF = 0.02
WORD_CACHE = 50_000  # words of questions remembered per language index
BLOCK_WEIGHTS = (1.0, 1.0, 1.0)
# Up to this many stored (example, feature) weights, a question is scored by one sparse product over
# all of them: faster than gathering its features' lists, which pays off only on large indexes.
FULL_PRODUCT_NNZ = 200_000
# A question is unrelated to the knowledge base when both its cosine to the best entry's centroid and
# rapidfuzz's ratio to that entry's examples are under these. Chosen on bench/shop_cases.csv and on
# knowledge bases made from banking77 TRAIN (README, "How the bot decides"): it stops 17 of the 40
# off-topic questions the shop KB clarified with noise, and costs 1 of 123 useful clarifies there, under
# 0.5 % of them on banking77.
RELATED_CENTROID = 0.14
RELATED_FUZZ = 0.6

# Calibration: confidence = sigmoid(w · features + b). Features in CALIBRATION_FEATURES order.
# Fitted by `python bench/faq_eval.py --calibrate` (logistic regression on cross-validation folds
# of banking77 TRAIN; see that script). Kept as constants so matching needs no data at run time.
CALIBRATION_FEATURES = (
    "prob",
    "prob_margin",
    "entropy",
    "centroid",
    "centroid_margin",
    "best_example",
    "best_margin",
    "fuzz",
)
KERNEL_ONLY = ("prob", "prob_margin", "entropy")  # zero without the kernel model
CALIBRATION_KERNEL = (3.646, 3.022, 0.749, 0.382, 1.321, 0.109, 1.828, 1.44, -5.291)
CALIBRATION_PLAIN = (0.0, 0.0, 0.0, 3.223, 8.749, 0.124, 4.455, 1.294, -2.709)


# A word of a question: stem, stem id, content word?, its gram columns, its unseen grams.
# Only immutable atoms, so the garbage collector stops tracking them: a big index then costs no
# collection pauses (gram columns are int64 bytes).
_WordInfo = tuple[str, int, bool, bytes, tuple[str, ...]]


@lru_cache(maxsize=100_000)
def _char_grams(word: str) -> tuple[str, ...]:
    padded = f" {word} "
    return tuple(padded[i : i + n] for n in range(2, 6) for i in range(len(padded) - n + 1))


def words_of(text: str) -> list[str]:
    """The folded words the matcher reads; a long question is cut to MAX_WORDS."""
    return fold(text).split()[:MAX_WORDS]


def _gather(indptr: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the concatenated slices indptr[r]:indptr[r+1] of the rows, and each slice's length."""
    starts = indptr[rows]
    lengths = indptr[rows + 1] - starts
    offsets = np.cumsum(lengths) - lengths
    return np.arange(int(lengths.sum())) + np.repeat(starts - offsets, lengths), lengths


class _Space:
    """A TF-IDF space over three blocks, fitted on the example questions of one language.

    Blocks: stemmed word 1-3 grams, stemmed content words (stop words out), character 2-5 grams of
    each folded word. Each block is l2-normalised and the blocks weigh the same. Everything is built
    per distinct word, then in bulk numpy operations: a knowledge base repeats its words a lot.
    """

    def __init__(self, docs: Sequence[tuple[str, Sequence[str]]]) -> None:
        self.stems: dict[str, int] = {}
        self.grams: dict[str, int] = {}
        # Per language, word -> what it brings: the knowledge base's own words, and other words of
        # questions (bounded).
        self._known: dict[str, dict[str, _WordInfo]] = {}
        self._seen: dict[str, dict[str, _WordInfo]] = {}
        self.fitted = self._fit(docs)

    def _fit(self, docs: Sequence[tuple[str, Sequence[str]]]) -> sparse.csr_matrix:
        """The l2-normalised example matrix (documents are (language, words) pairs)."""
        word_ids: dict[tuple[str, str], int] = {}
        tok_word = np.fromiter(
            (word_ids.setdefault((w, lang), len(word_ids)) for lang, words in docs for w in words), np.int64
        )
        tok_doc = np.repeat(np.arange(len(docs)), [len(words) for _, words in docs])
        word_stem = np.zeros(len(word_ids), np.int64)
        word_content = np.zeros(len(word_ids), bool)
        gram_ids: list[int] = []
        gram_ptr = np.zeros(len(word_ids) + 1, np.int64)
        for (w, lang), i in word_ids.items():
            word_stem[i] = self.stems.setdefault(stem(w, lang), len(self.stems))
            word_content[i] = w not in STOP_WORDS.get(lang, STOP_WORDS["en"])
            gram_ids += [self.grams.setdefault(g, len(self.grams)) for g in _char_grams(w)]
            gram_ptr[i + 1] = len(gram_ids)
        if len(self.stems) + MAX_WORDS + 2 >= 2_000_000:
            raise ValueError(f"knowledge base too large: {len(self.stems)} distinct word stems")
        self.base = len(self.stems) + MAX_WORDS + 2  # stems of a question's unseen words go above
        tok_stem = word_stem[tok_word]
        keys, key_docs = self._ngram_keys(tok_stem, tok_doc)
        self.ngram_keys, key_cols = np.unique(keys, return_inverse=True)
        self.content_from = len(self.ngram_keys)
        self.chars_from = self.content_from + len(self.stems)
        size = self.chars_from + len(self.grams)
        gram_cols = self.chars_from + np.array(gram_ids, np.int64)
        stem_names = list(self.stems)
        for ((w, lang), i), s, c in zip(word_ids.items(), word_stem.tolist(), word_content.tolist(), strict=True):
            info = (stem_names[s], int(s), bool(c), gram_cols[gram_ptr[i] : gram_ptr[i + 1]].tobytes(), ())
            self._known.setdefault(lang, {})[w] = info
        content = word_content[tok_word]
        positions, lengths = _gather(gram_ptr, tok_word)
        rows = np.concatenate([3 * key_docs, 3 * tok_doc[content] + 1, np.repeat(3 * tok_doc + 2, lengths)])
        cols = np.concatenate(
            [
                key_cols,
                self.content_from + tok_stem[content],
                gram_cols[positions],
            ]
        )
        n = len(docs)
        counts = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(3 * n, size))
        counts.sum_duplicates()
        # The blocks have disjoint column ranges: a feature occurs in one row of its document.
        df = np.bincount(counts.indices, minlength=size)
        self.idf = np.log((1 + n) / (1 + df)) + 1.0
        self.unseen_idf = math.log(1 + n) + 1.0
        row_of = np.repeat(np.arange(3 * n), np.diff(counts.indptr))
        data = (1.0 + np.log(counts.data)) * self.idf[counts.indices]
        norms = np.sqrt(np.bincount(row_of, data * data, minlength=3 * n))
        block_w2 = np.tile(np.square(BLOCK_WEIGHTS), n) * (norms > 0)
        doc_w2 = np.add.reduceat(block_w2, np.arange(0, 3 * n, 3)) if n else np.zeros(0)
        scale = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0.0)
        scale *= np.sqrt(block_w2 / np.maximum(np.repeat(doc_w2, 3), 1e-12))
        data *= scale[row_of]
        # A document's three rows are consecutive: dropping two row starts in three joins them.
        return sparse.csr_matrix((data, counts.indices, counts.indptr[::3]), shape=(n, size))

    def _ngram_keys(self, stems: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One integer per word 1-, 2- and 3-gram (stem ids in base `self.base`), and its document."""
        b, s = self.base, stems + 1
        same2 = docs[1:] == docs[:-1]
        same3 = same2[1:] & same2[:-1]
        keys = [s, (s[:-1] * b + s[1:])[same2], ((s[:-2] * b + s[1:-1]) * b + s[2:])[same3]]
        return np.concatenate(keys), np.concatenate([docs, docs[:-1][same2], docs[:-2][same3]])

    def _word(self, word: str, lang: str) -> _WordInfo:
        """What one word of a question brings, cached: most questions reuse the knowledge base's words."""
        seen = self._seen.setdefault(lang, {})
        info = self._known.get(lang, {}).get(word) or seen.get(word)
        if info is None:
            s = stem(word, lang)
            grams = _char_grams(word)
            found = [self.grams[g] for g in grams if g in self.grams]
            info = (
                s,
                self.stems.get(s, -1),
                word not in STOP_WORDS.get(lang, STOP_WORDS["en"]),
                (self.chars_from + np.array(found, np.int64)).tobytes(),
                tuple(g for g in grams if g not in self.grams),
            )
            if sum(map(len, self._seen.values())) >= WORD_CACHE:
                self._seen.clear()  # bounded: a bot runs for months on what customers type
                seen = self._seen.setdefault(lang, {})
            seen[word] = info
        return info

    def vector(self, words: list[str], lang: str) -> tuple[np.ndarray, np.ndarray]:
        """(column indices, values), l2-normalised; unseen features count in the norm only.

        Plain Python for the word blocks: a question has a few dozen of them, where numpy's
        per-call cost would dominate.
        """
        known_words = self._known.get(lang, {})
        infos = [known_words.get(w) or self._word(w, lang) for w in words]
        known, unseen_stems = len(self.stems), dict[str, int]()
        sids = [
            i[1] if i[1] >= 0 else known + unseen_stems.setdefault(i[0], len(unseen_stems)) for i in infos
        ]
        b = self.base
        # Word 1-, 2- and 3-grams as integer keys (stem ids + 1 in base b), counted in one go; the three
        # ranges do not overlap, so the counts (and their order) are those of counting each in turn.
        u = [s + 1 for s in sids]
        ngrams = Counter(
            [*u, *[x * b + y for x, y in itertools.pairwise(u)],
             *[(x * b + y) * b + z for x, y, z in zip(u, u[1:], u[2:], strict=False)]]
        )
        content = Counter([s for s, i in zip(sids, infos, strict=True) if i[2]])
        chars, char_counts = _count_sorted(np.frombuffer(b"".join([i[3] for i in infos]), np.int64))
        unseen_grams = [g for i in infos for g in i[4]]
        keys = np.fromiter(ngrams, np.int64, len(ngrams))
        pos = np.minimum(np.searchsorted(self.ngram_keys, keys), max(len(self.ngram_keys) - 1, 0))
        ngram_seen = self.ngram_keys[pos] == keys if len(self.ngram_keys) else np.zeros(len(keys), bool)
        ngram_counts = np.fromiter(ngrams.values(), np.float64, len(ngrams))
        if unseen_stems:
            content_seen = [(s, c) for s, c in content.items() if s < known]
            content_missing = [c for s, c in content.items() if s >= known]
        else:
            content_seen, content_missing = list(content.items()), []
        ngram_cols = pos[ngram_seen]
        # The three blocks' seen features in one array each (numpy's per-call cost is most of a
        # question's time), then one weight per feature and one norm per block.
        cols = np.concatenate([ngram_cols, np.array([self.content_from + s for s, _ in content_seen], np.int64), chars])
        counts = np.concatenate(
            [ngram_counts[ngram_seen], np.array([c for _, c in content_seen], np.float64), char_counts]
        )
        lengths = (len(ngram_cols), len(content_seen), len(chars))
        weights = (1.0 + np.log(counts)) * self.idf[cols]
        seen_norm2 = np.bincount(np.repeat(_BLOCKS, lengths), weights * weights, minlength=3).tolist()
        missing = (
            ngram_counts[~ngram_seen].tolist(),
            content_missing,
            list(Counter(unseen_grams).values()) if unseen_grams else [],
        )
        scales = [0.0, 0.0, 0.0]
        total_w2 = 0.0
        for b, (seen2, gone, w) in enumerate(zip(seen_norm2, missing, BLOCK_WEIGHTS, strict=True)):
            norm2 = seen2 + (sum((1.0 + math.log(c)) ** 2 for c in gone) * self.unseen_idf**2 if gone else 0.0)
            if norm2 > 0:
                scales[b] = w / math.sqrt(norm2)
                total_w2 += w * w
        if not total_w2:
            return np.zeros(0, np.int64), np.zeros(0)
        return cols, weights * np.repeat(np.array(scales) / math.sqrt(total_w2), lengths)


_BLOCKS = np.arange(3)


def _count_sorted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_counts=True) of a small 1-d array, without its per-call overhead."""
    if not len(values):
        return values, np.zeros(0, np.int64)
    ordered = np.sort(values)
    first = np.empty(len(ordered), bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def _kernel_logistic(gram: np.ndarray, labels: np.ndarray, n_entries: int) -> np.ndarray:
    """Dual coefficients A (examples × entries) of an L2 multinomial logistic model, logits = K A.

    Functional gradient descent with Nesterov momentum; a fixed, small number of steps also acts
    as regularisation.
    """
    n = len(labels)
    onehot = np.zeros((n, n_entries))
    onehot[np.arange(n), labels] = 1.0
    a = np.zeros((n, n_entries))
    v = a.copy()
    for t in range(KERNEL_ITERATIONS):
        logits = gram @ v
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        a_next = v - KERNEL_STEP * (p - onehot + KERNEL_L2 * v)
        v = a_next + (t / (t + 3)) * (a_next - a)
        a = a_next
    return a


@dataclass(frozen=True)
class Signals:
    """What the matcher saw for one question, per entry (arrays are in entry order)."""

    score: np.ndarray  # ranking score in [0, 1]
    prob: np.ndarray | None  # kernel model probabilities, if fitted
    centroid: np.ndarray
    best_example: np.ndarray
    sims: np.ndarray  # per example
    known: float  # share of the question's weight on features the knowledge base has, in [0, 1]


class _LangIndex:
    """Every entry's example questions as seen from one language."""

    def __init__(self, kb: KnowledgeBase, lang: str) -> None:
        self.lang = lang
        self.entry_ids: list[str] = []
        self.texts: list[str] = []
        self.text_langs: list[str] = []
        labels: list[int] = []
        for entry in kb.entries:
            own = entry.questions.get(lang)
            pairs = (
                [(lang, q) for q in own] if own else [(o, q) for o, qs in entry.questions.items() for q in qs]
            )
            if not pairs:
                continue
            self.entry_ids.append(entry.id)
            for q_lang, q in pairs:
                labels.append(len(self.entry_ids) - 1)
                self.texts.append(q)
                self.text_langs.append(q_lang)
        self._norms: dict[int, str] = {}  # filled on demand: only the best entry's are compared
        self._entry_norms: dict[int, list[str]] = {}
        self.labels = np.array(labels, dtype=np.int64)
        self.starts = (
            np.flatnonzero(np.r_[True, self.labels[1:] != self.labels[:-1]]) if labels else self.labels
        )
        self.ends = np.r_[self.starts[1:], len(self.labels)].astype(np.int64)
        self.words = [tuple(words_of(q)) for q in self.texts]  # tuples of str: not tracked by the gc
        self.space = _Space(list(zip(self.text_langs, self.words, strict=True)))
        x = self.space.fitted
        pruned = self._prune(x)
        self.x_t = pruned.T.tocsr()  # feature -> examples: a question touches only its features' rows
        self.x = pruned if pruned.nnz <= FULL_PRODUCT_NNZ else None
        self.centroid_norms = self._centroid_norms(pruned)
        self.kernel: np.ndarray | None = None
        n, e = x.shape[0], len(self.entry_ids)
        if e >= 2 and n * n * e <= KERNEL_BUDGET:
            self.kernel = _kernel_logistic((x @ x.T).toarray(), self.labels, e)

    @staticmethod
    def _prune(x: sparse.csr_matrix) -> sparse.csr_matrix:
        """On large KBs, drop from the example index the features most examples share.

        Their weight is small (low idf) but their lists are long: most of the time of a question.
        Small KBs keep them all, so the calibration sees exactly the scores it was fitted on.
        """
        if x.shape[0] < PRUNE_FROM_EXAMPLES:
            return x
        df = np.bincount(x.indices, minlength=x.shape[1])
        keep = (df <= PRUNE_DF * x.shape[0])[x.indices]
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))[keep]
        indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=x.shape[0]))]
        return sparse.csr_matrix((x.data[keep], x.indices[keep], indptr), shape=x.shape)

    def _centroid_norms(self, x: sparse.csr_matrix) -> np.ndarray:
        """Norm of each entry's sum of examples: its centroid cosine is then a sum of example scores."""
        n, e = x.shape[0], len(self.entry_ids)
        member = sparse.csr_matrix((np.ones(n), (self.labels, np.arange(n))), shape=(e, n))
        c = (member @ x).tocsr()
        norms = np.sqrt(np.asarray(c.multiply(c).sum(axis=1)).ravel())
        norms[norms == 0] = 1.0
        return np.asarray(norms)

    def norm(self, example: int) -> str:
        got = self._norms.get(example)
        if got is None:
            words = list(self.words[example])
            if len(words) == MAX_WORDS:  # cut: the loader's normal form has them all
                words = fold(self.texts[example]).split()
            got = self._norms[example] = " ".join(word_tokens(words, self.text_langs[example]))
        return got

    def signals(self, words: list[str]) -> Signals | None:
        cols, vals = self.space.vector(words, self.lang)
        if not len(cols) or not len(self.entry_ids):
            return None
        if self.x is not None:
            query = np.zeros(self.x.shape[1])
            query[cols] = vals
            sims = self.x @ query
        else:
            sims = self._dot(self.x_t, cols, vals, len(self.labels))
        centroid = np.bincount(self.labels, sims, minlength=len(self.entry_ids)) / self.centroid_norms
        best = np.maximum.reduceat(sims, self.starts)
        prob = None
        if self.kernel is not None:
            logits = sims @ self.kernel
            logits -= logits.max()
            prob = np.exp(logits)
            prob /= prob.sum()
            score = prob
        else:
            score = (centroid + 0.5 * best) / 1.5
        # Probabilities are in [0, 1] already (each exp() is at most their sum): only the plain score is cut.
        score = score if prob is not None else np.clip(score, 0.0, 1.0)
        return Signals(score, prob, centroid, best, sims, float(vals @ vals))

    def norms_of(self, entry: int) -> list[str]:
        """The normal forms of the entry's first FUZZ_EXAMPLES examples (what rapidfuzz compares)."""
        got = self._entry_norms.get(entry)
        if got is None:
            got = self._entry_norms[entry] = [self.norm(i) for i in self.examples_of(entry)[:FUZZ_EXAMPLES]]
        return got

    def examples_of(self, entry: int) -> range:
        return range(int(self.starts[entry]), int(self.ends[entry]))

    @staticmethod
    def _dot(m_t: sparse.csr_matrix, cols: np.ndarray, vals: np.ndarray, size: int) -> np.ndarray:
        """The question's vector times every row of m_t (features × items), gathering only its rows."""
        positions, lengths = _gather(m_t.indptr, cols)
        if not len(positions):
            return np.zeros(size)
        weights = m_t.data[positions] * np.repeat(vals, lengths)
        return np.bincount(m_t.indices[positions], weights, minlength=size)


SORT_ALL_BELOW = 512  # entries: one full sort is then cheaper than partitioning first


def _top(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k highest scores, best first (ties: lower index first)."""
    k = min(k, len(scores))
    if len(scores) <= SORT_ALL_BELOW:
        return np.argsort(-scores, kind="stable")[:k].tolist()
    part = np.argpartition(-scores, k - 1)[:k]
    part.sort()  # the stable sort below then breaks ties by index, as above
    return part[np.argsort(-scores[part], kind="stable")].tolist()


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))


class Matcher:
    """An index of every example question, per language; built once per knowledge base."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        counts = Counter({lang: 0 for lang in LANGS})
        for entry in kb.entries:
            for lang, qs in entry.questions.items():
                counts[lang] += len(qs)
        self.default_lang = max(LANGS, key=lambda lang: counts[lang])
        # A language no entry has questions in is matched against the main language's index.
        self._indexes = {lang: _LangIndex(kb, lang) for lang in LANGS if counts[lang]}
        for lang in LANGS:
            self._indexes.setdefault(lang, self._indexes.get(self.default_lang) or _LangIndex(kb, lang))

    def features(self, text: str, lang: str) -> tuple[dict[str, float], Signals] | None:
        """The calibration features of the best entry, and the per-entry signals (None: no signal)."""
        got = self._features(text, lang, 2)
        return None if got is None else got[:2]

    def _features(self, text: str, lang: str, k: int) -> tuple[dict[str, float], Signals, list[int]] | None:
        """features(), and the k (at least 2) best entries, best first."""
        index = self._indexes[lang]
        lang = index.lang
        words = words_of(text)
        s = index.signals(words)
        if s is None:
            return None
        top = _top(s.score, max(k, 2))
        first = top[0]
        second = top[1] if len(top) > 1 else None
        fz = process.extractOne(" ".join(word_tokens(words, lang)), index.norms_of(first), scorer=fuzz.token_set_ratio)

        def runner_up(a: np.ndarray) -> float:
            return float(a[second]) if second is not None else 0.0

        prob1 = float(s.prob[first]) if s.prob is not None else 0.0
        others = s.best_example.copy()
        others[first] = -np.inf
        feats = {
            "entropy": float(-(s.prob @ np.log(s.prob + 1e-12))) if s.prob is not None else 0.0,
            "best_margin": float(s.best_example[first]) - (float(others.max()) if len(others) > 1 else 0.0),
            "known": s.known,
            "words": math.log1p(len(words)),
            "prob": prob1,
            "prob_margin": prob1 - (runner_up(s.prob) if s.prob is not None else 0.0),
            "centroid": float(s.centroid[first]),
            "centroid_margin": float(s.centroid[first]) - runner_up(s.centroid),
            "best_example": float(s.best_example[first]),
            "fuzz": (fz[1] / 100.0) if fz else 0.0,
        }
        return feats, s, top

    def confidence(self, feats: dict[str, float], kernel: bool) -> float:
        coef = CALIBRATION_KERNEL if kernel else CALIBRATION_PLAIN
        z = coef[-1] + sum(w * feats[name] for w, name in zip(coef, CALIBRATION_FEATURES, strict=False))
        return _sigmoid(z)

    def match(self, text: str, lang: str | None = None, limit: int = 5) -> Match:
        if lang in LANGS:
            return self._match(text, lang, limit)
        es, en = lang_scores(text)
        if es != en or self._indexes["es"] is self._indexes["en"]:
            return self._match(text, "es" if es > en else "en", limit)
        # No evidence either way ("battery dies quickly"): ask both indexes, keep the surer.
        first = self._match(text, self.default_lang, limit)
        other = self._match(text, "en" if self.default_lang == "es" else "es", limit)
        return other if other.confidence > first.confidence else first

    def _match(self, text: str, lang: str, limit: int) -> Match:
        got = self._features(text, lang, limit)
        if got is None:
            return Match(text=text, lang=lang, confidence=0.0)
        feats, s, top = got
        index = self._indexes[lang]
        candidates = []
        for i in top[: max(limit, 1)]:
            rows = index.examples_of(i)
            best_row = rows.start + int(s.sims[rows.start : rows.stop].argmax())
            candidates.append(Candidate(index.entry_ids[i], float(s.score[i]), index.texts[best_row]))
        confidence = self.confidence(feats, s.prob is not None)
        related = feats["centroid"] >= RELATED_CENTROID or feats["fuzz"] >= RELATED_FUZZ
        return Match(text=text, lang=lang, confidence=confidence, candidates=tuple(candidates), related=related)
