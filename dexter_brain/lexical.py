"""Lexical machinery shared by corpus mining, features and the baselines: normalisation, word splitting,
a BM25 index (bm25s) that can grow and shrink, and a spelling index that maps typos to known words.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from functools import lru_cache

import bm25s
import numpy as np

# bm25s sets its own logger to DEBUG on import, so every index build would print a line through the host
# app's handlers; put it back to the usual default.
logging.getLogger("bm25s").setLevel(logging.WARNING)

# A short English stop list: function words that carry no topic. Kept small on purpose: words such as
# "other", "more" or "which" matter for follow-ups and are left in.
STOPWORDS = frozenset("""
a an the and or but if then so of to in on at by for with from as is are was were be been being am do does
did have has had i me my mine we our you your he him his she her it its they them their this that these those
there here what whats can could would should will shall may might must please pls just also about into than
too very s t d ll m re ve
""".split())

DENSE_ROW_SHARE = 32
"""A word in more than 1/32 of the documents is scored as a whole dense row: adding a contiguous row costs
less than scattering that many documents one by one."""

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


# Texts repeat a lot (plan steps, tool descriptions, facts re-read for every query): cache the splits.
@lru_cache(maxsize=1 << 16)
def normalize(text: str) -> str:
    """Lower-case, NFKC, punctuation to spaces, whitespace collapsed: the key for duplicate detection."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_WORD.findall(text))


@lru_cache(maxsize=1 << 16)
def _words(text: str) -> tuple[str, ...]:
    text = unicodedata.normalize("NFKC", text)
    out: list[str] = []
    for token in _WORD.findall(text):
        if not token.islower() and any(c.isupper() for c in token[1:]):
            out.extend(part.casefold() for part in _CAMEL.split(token) if part)
        else:
            out.append(token.casefold())
    return tuple(out)


def words(text: str) -> list[str]:
    """Lower-cased word tokens; identifiers are split (``file_system.listDir`` -> file system list dir)."""
    return list(_words(text))


@lru_cache(maxsize=1 << 16)
def content_set(text: str) -> frozenset[str]:
    """The set of content words of a text (cached)."""
    return frozenset(w for w in _words(text) if w not in STOPWORDS)


def content_words(text: str) -> list[str]:
    return [w for w in _words(text) if w not in STOPWORDS]


def trigrams(word: str) -> set[str]:
    padded = f"#{word}#"
    return {padded[i:i + 3] for i in range(len(padded) - 2)}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def bm25_idf(n: int, df: int) -> float:
    """BM25's inverse document frequency of a word in ``df`` of ``n`` documents (never negative)."""
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


class _Built:
    """One immutable build of a LexicalIndex: queries read a build whole, so a rebuild started by another
    thread (after an ``add``) never shows them half-made state."""

    def __init__(self, docs: list[list[str]], live: np.ndarray, k1: float, b: float):
        # Removed documents are indexed empty so positions stay stable.
        corpus = [d if alive else [] for d, alive in zip(docs, live)]
        self.n_docs = len(corpus)
        self.live = live.copy()
        self.is_all_live = bool(live.all())
        self.n_live = max(int(live.sum()), 1)
        self.df = Counter(t for d in corpus for t in set(d))
        self.idf: dict[str, float] = {}
        self.retriever: bm25s.BM25 | None = None
        self.postings = None
        self.dense: dict[int, np.ndarray] = {}
        # bm25s cannot index a corpus without a single token (no documents yet, or all removed).
        if self.df:
            self.retriever = bm25s.BM25(k1=k1, b=b)
            self.retriever.index(corpus, show_progress=False)
            self.postings = _postings_of(self.retriever)
            if self.postings is not None:
                # Common words are kept as whole dense rows, made here so processes forked later share them.
                data, indices, indptr = self.postings
                for i in np.flatnonzero(np.diff(indptr) > self.n_docs // DENSE_ROW_SHARE).tolist():
                    row = np.zeros(self.n_docs, dtype=np.float32)
                    row[indices[indptr[i]:indptr[i + 1]]] = data[indptr[i]:indptr[i + 1]]
                    self.dense[i] = row

    def word_ids(self, query: Sequence[str]) -> list[int]:
        vocab = self.retriever.vocab_dict if self.retriever is not None else {}
        return [vocab[t] for t in query if t in vocab]

    def scores(self, query: Sequence[str]) -> np.ndarray:
        ids = self.word_ids(query)
        if not ids:
            return np.zeros(self.n_docs, dtype=np.float32)
        if self.postings is None:
            tokens = [t for t in query if t in self.retriever.vocab_dict]
            out = np.asarray(self.retriever.get_scores(tokens), dtype=np.float32)[: self.n_docs]
        else:
            out = self._sum_scores(ids)
        if not self.is_all_live:
            out[~self.live] = 0.0
        return out

    def _sum_scores(self, ids: list[int]) -> np.ndarray:
        """What bm25s ``get_scores`` gives (the same float32 sums, word by word in query order), faster: a
        word in many documents is added as a whole precomputed row (0 where absent; x + 0 is x) rather than
        scattered document by document."""
        data, indices, indptr = self.postings
        out = np.zeros(self.n_docs, dtype=np.float32)
        for i in ids:
            row = self.dense.get(i)
            if row is not None:
                out += row
            else:
                start, end = indptr[i], indptr[i + 1]
                out[indices[start:end]] += data[start:end]  # a word's documents are distinct: no lost adds
        return out

    def floor(self, query: Sequence[str], k: int, scores: np.ndarray) -> float:
        """A lower bound of the k-th best score, or 0 when not worth finding: the k-th best among the few
        documents holding the query's rarest words. Worth it when a common word (a UI context word such as
        "screen") makes nearly every document a hit, so a top-k over all hits would sort the whole index."""
        if self.postings is None or k <= 0 or len(scores) != self.n_docs:
            return 0.0
        _, indices, indptr = self.postings
        df = {i: int(indptr[i + 1] - indptr[i]) for i in self.word_ids(query)}
        if max(df.values(), default=0) <= self.n_docs // 8:
            return 0.0
        rarest, seen = [], 0
        for i in sorted(df, key=lambda i: (df[i], i)):
            rarest.append(indices[indptr[i]:indptr[i + 1]])
            seen += df[i]
            if seen >= 4 * k:
                break
        docs = np.unique(np.concatenate(rarest))
        if len(docs) < k:
            return 0.0
        values = scores[docs]
        return float(np.partition(values, len(values) - k)[len(values) - k])


class LexicalIndex:
    """BM25 over token lists (bm25s), with documents added and removed after construction.

    bm25s indexes are static, so changes mark the index stale and it is rebuilt (once, under a lock) on the
    next query; removed documents score 0 and never rank. Safe to query from several threads.
    """

    def __init__(self, docs: Iterable[Sequence[str]] = (), *, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.docs: list[list[str]] = [list(d) for d in docs]
        self.live = np.ones(len(self.docs), dtype=bool)
        self._built: _Built | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.docs)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def add(self, tokens: Sequence[str]) -> int:
        with self._lock:
            self.docs.append(list(tokens))
            self.live = np.append(self.live, True)
            self._built = None
            return len(self.docs) - 1

    def remove(self, index: int) -> None:
        with self._lock:
            live = self.live.copy()
            live[index] = False
            self.live = live
            self._built = None

    def _build(self) -> _Built:
        """The current build, made when stale."""
        built = self._built
        if built is None:
            with self._lock:
                built = self._built
                if built is None:
                    built = self._built = _Built(self.docs, self.live, self.k1, self.b)
        return built

    def idf(self, token: str) -> float:
        built = self._build()
        value = built.idf.get(token)
        if value is None:
            df = built.df.get(token, 0)
            value = built.idf[token] = bm25_idf(built.n_live, df)
        return value

    def known(self, token: str) -> bool:
        return token in self._build().df

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for the query tokens; (N,) float32."""
        return self._build().scores(query)

    def top_k(self, query: Sequence[str], k: int, scores: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Indices and scores of the best ``k`` documents with a positive score, best first."""
        built = self._build()
        s = built.scores(query) if scores is None else scores
        floor = built.floor(query, k, s)
        # Only documents at or above a floor of the k-th best score can be among the k best (or tie).
        return top_of(s, np.flatnonzero(s >= floor if floor > 0 else s > 0), k)


def _postings_of(retriever: bm25s.BM25) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """bm25s' per-word score lists (data, documents, word offsets), when they are laid out as ``_sum_scores``
    and ``floor`` need (a plain BM25 sum, documents ascending within a word)."""
    scores = getattr(retriever, "scores", None)
    if getattr(retriever, "nonoccurrence_array", None) is not None or not isinstance(scores, dict) or not all(
            key in scores for key in ("data", "indices", "indptr")):
        return None
    data, indices, indptr = (np.asarray(scores[key]) for key in ("data", "indices", "indptr"))
    if data.dtype != np.float32 or len(indices) == 0 or (data < 0).any():
        return None
    steps = np.diff(indices.astype(np.int64))
    steps[indptr[1:-1][(indptr[1:-1] > 0) & (indptr[1:-1] < len(indices))] - 1] = 1  # word boundaries
    if (steps <= 0).any():
        return None
    return data, indices, indptr


def top_of(s: np.ndarray, hits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``LexicalIndex.top_k`` given the scores and the positions of those above 0 (ascending)."""
    k = min(k, hits.size)  # usually a small part of the bank: select among those only
    if k <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    values = s[hits]
    kth = np.partition(values, hits.size - k)[hits.size - k]  # the k-th best score
    # Ties at the cut go to the lower index too, so the result never depends on partition order.
    above = hits[values > kth]
    idx = np.concatenate([above, hits[values == kth][: k - above.size]])
    idx = idx[np.lexsort((idx, -s[idx]))]  # score desc, then index
    return idx.astype(np.int64), s[idx]


class SpellingIndex:
    """Maps a word that no document contains to the closest known word by character trigrams."""

    def __init__(self, vocabulary: Iterable[str], *, min_similarity: float = 0.5, min_length: int = 4):
        self.min_similarity, self.min_length = min_similarity, min_length
        self.by_trigram: dict[str, list[str]] = defaultdict(list)
        self.known: set[str] = set()
        self._corrections: dict[str, str | None] = {}  # the same typos and words come back query after query
        for word in sorted(set(vocabulary)):
            self.add(word)

    def add(self, word: str) -> None:
        if word in self.known:
            return
        self.known.add(word)
        if self._corrections:
            self._corrections.clear()
        if len(word) >= self.min_length and not word.isdigit():
            for g in trigrams(word):
                self.by_trigram[g].append(word)

    def correct(self, word: str) -> str | None:
        """The known word closest to ``word``, or None when ``word`` is known, short, or nothing is close."""
        if word in self.known or len(word) < self.min_length or word.isdigit():
            return None
        if word in self._corrections:
            return self._corrections[word]
        best = self._closest(word)
        if len(self._corrections) >= 1 << 16:
            self._corrections.clear()
        self._corrections[word] = best
        return best

    def _closest(self, word: str) -> str | None:
        grams = trigrams(word)
        counts: Counter[str] = Counter()
        for g in grams:
            counts.update(self.by_trigram.get(g, ()))
        best, best_sim = None, self.min_similarity
        for cand, _ in counts.most_common(30):
            if abs(len(cand) - len(word)) > 2:  # a typo, not another word that shares a stem
                continue
            other = trigrams(cand)
            # Dice rather than Jaccard: one dropped or swapped letter in a short word still matches.
            sim = 2 * len(grams & other) / (len(grams) + len(other))
            if sim > best_sim or (sim == best_sim and best is not None and cand < best):
                best, best_sim = cand, sim
        return best

    def expand(self, tokens: Sequence[str]) -> tuple[list[str], int]:
        """Tokens with each typo replaced by its correction, and the number of corrections made."""
        out, fixed = [], 0
        for t in tokens:
            c = self.correct(t)
            if c is not None:
                out.append(c)
                fixed += 1
            else:
                out.append(t)
        return out, fixed
