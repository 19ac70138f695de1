"""``BankIndex``: a ``MemoryBank``'s FTS5 index seen through the interface of ``dexter_brain.lexical.LexicalIndex``,
so the memory featurizer scores facts from the durable bank (training tensors and serving alike).

Scores are the bank's ``bm25()`` (higher is better, 0 for a fact that holds no query word or was removed);
IDF uses the bank's document frequencies with the same formula as ``LexicalIndex``. A fact is added to or
removed from the bank first (by its owner, durably); ``add``/``remove`` here only keep the caches right.
The caches assume the bank changes only through this object (one process writing it).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from dexter_brain.bank.store import MemoryBank
from dexter_brain.lexical import bm25_idf, top_of


class BankIndex:
    """The lexical index of a ``MemoryBank`` (positions are the bank's)."""

    def __init__(self, bank: MemoryBank):
        self.bank = bank
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._df: dict[str, int] = {}
        self._live = np.array(self.bank.live(), dtype=bool)
        self._n_live = int(self._live.sum())

    def __len__(self) -> int:
        return len(self._live)

    def add(self, tokens: Sequence[str]) -> int:
        """Account for the fact the bank has just stored at the next position; returns that position. Costs
        the fact's own words, not the bank's size."""
        with self._lock:
            if self.bank.num_positions != len(self._live) + 1:
                raise RuntimeError(f"{self.bank.path}: add the fact to the bank before indexing it")
            live = np.empty(len(self._live) + 1, dtype=bool)  # a new array: readers keep the one they hold
            live[:-1], live[-1] = self._live, True
            self._live, self._n_live = live, self._n_live + 1
            for token in set(tokens):
                self._df.pop(token, None)
            return len(live) - 1

    def remove(self, index: int) -> None:
        """Account for the fact the bank has just removed."""
        with self._lock:
            self._reset()

    @property
    def live(self) -> np.ndarray:
        return self._live

    def _doc_freq(self, token: str) -> int:
        df = self._df.get(token)
        if df is None:
            df = self._df[token] = self.bank.doc_freq([token])[token]
        return df

    def idf(self, token: str) -> float:
        return bm25_idf(max(self._n_live, 1), self._doc_freq(token))

    def known(self, token: str) -> bool:
        return self._doc_freq(token) > 0

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """The bank's BM25 score of every position for the query words; (N,) float32."""
        return self.bank.scores(list(dict.fromkeys(query)))

    def top_k(self, query: Sequence[str], k: int, scores: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        s = self.scores(query) if scores is None else scores
        return top_of(s, np.flatnonzero(s > 0), k)
