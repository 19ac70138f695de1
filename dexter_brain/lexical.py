"""Lexical machinery shared by corpus mining, features and the baselines: normalisation, word splitting,
a BM25 index (bm25s) that can grow and shrink, and a spelling index that maps typos to known words.
"""

from __future__ import annotations

import logging
import math
import re
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


class LexicalIndex:
    """BM25 over token lists (bm25s), with documents added and removed after construction.

    bm25s indexes are static, so changes mark the index stale and it is rebuilt on the next query;
    removed documents score 0 and never rank.
    """

    def __init__(self, docs: Iterable[Sequence[str]] = (), *, k1: float = 1.5, b: float = 0.75):
        self.k1, self.b = k1, b
        self.docs: list[list[str]] = [list(d) for d in docs]
        self.live = np.ones(len(self.docs), dtype=bool)
        self._retriever: bm25s.BM25 | None = None
        self._df: Counter[str] = Counter()
        self._idf: dict[str, float] = {}
        self._is_stale = True

    def __len__(self) -> int:
        return len(self.docs)

    def add(self, tokens: Sequence[str]) -> int:
        self.docs.append(list(tokens))
        self.live = np.append(self.live, True)
        self._is_stale = True
        return len(self.docs) - 1

    def remove(self, index: int) -> None:
        self.live[index] = False
        self._is_stale = True

    def _build(self) -> bm25s.BM25 | None:
        """The bm25s index, rebuilt when stale; None while no live document has a token."""
        if self._is_stale:
            # Removed documents are indexed empty so positions stay stable.
            corpus = [d if alive else [] for d, alive in zip(self.docs, self.live)]
            self._df = Counter(t for d in corpus for t in set(d))
            self._is_all_live = bool(self.live.all())
            self._idf = {}
            self._retriever = None
            # bm25s cannot index a corpus without a single token (no documents yet, or all removed).
            if self._df:
                self._retriever = bm25s.BM25(k1=self.k1, b=self.b)
                self._retriever.index(corpus, show_progress=False)
            self._is_stale = False
        return self._retriever

    def idf(self, token: str) -> float:
        self._build()
        value = self._idf.get(token)
        if value is None:
            n = max(int(self.live.sum()), 1)
            df = self._df.get(token, 0)
            value = self._idf[token] = math.log(1.0 + (n - df + 0.5) / (df + 0.5))
        return value

    def known(self, token: str) -> bool:
        self._build()
        return token in self._df

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for the query tokens; (N,) float32."""
        retriever = self._build()
        tokens = [t for t in query if retriever is not None and t in retriever.vocab_dict]
        if not tokens:
            return np.zeros(len(self.docs), dtype=np.float32)
        out = np.asarray(retriever.get_scores(tokens), dtype=np.float32)[: len(self.docs)]
        if not self._is_all_live:
            out[~self.live] = 0.0
        return out

    def top_k(self, query: Sequence[str], k: int, scores: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Indices and scores of the best ``k`` documents with a positive score, best first."""
        s = self.scores(query) if scores is None else scores
        return top_of(s, np.flatnonzero(s > 0), k)


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
