"""``BankIndex``: a ``MemoryBank``'s FTS5 index seen through the interface of ``dexter_brain.lexical.LexicalIndex``,
so the memory featurizer scores facts from the durable bank (training tensors and serving alike).

Scores are the bank's ``bm25()`` (higher is better, 0 for a fact that holds no query word or was removed);
IDF uses the bank's document frequencies with the same formula as ``LexicalIndex``. A fact is added to or
removed from the bank first (by its owner, durably); ``add``/``remove`` here only keep the caches right.
The caches assume the bank changes only through this object (one process writing it).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence

import numpy as np

from dexter_brain.bank.store import MemoryBank
from dexter_brain.lexical import top_of


class BankIndex:
    """The lexical index of a ``MemoryBank`` (positions are the bank's)."""

    def __init__(self, bank: MemoryBank):
        self.bank = bank
        self._lock = threading.Lock()
        self._reset()

    def _reset(self) -> None:
        self._df: dict[str, int] = {}
        self._live: np.ndarray | None = None
        self._n = self.bank.num_positions

    def __len__(self) -> int:
        return self._n

    def add(self, tokens: Sequence[str]) -> int:
        """Account for the fact the bank has just stored at the next position; returns that position."""
        with self._lock:
            if self.bank.num_positions != self._n + 1:
                raise RuntimeError(f"{self.bank.path}: add the fact to the bank before indexing it")
            self._reset()
            return self._n - 1

    def remove(self, index: int) -> None:
        """Account for the fact the bank has just removed."""
        with self._lock:
            self._reset()

    @property
    def live(self) -> np.ndarray:
        live = self._live
        if live is None:
            live = self._live = self.bank.live()
        return live

    def idf(self, token: str) -> float:
        df = self._df.get(token)
        if df is None:
            df = self._df[token] = self.bank.doc_freq([token])[token]
        n = max(int(self.live.sum()), 1)
        return math.log(1.0 + (n - df + 0.5) / (df + 0.5))

    def known(self, token: str) -> bool:
        return self.idf(token) >= 0 and self._df[token] > 0

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """The bank's BM25 score of every position for the query words; (N,) float32."""
        return self.bank.scores(list(dict.fromkeys(query)))

    def top_k(self, query: Sequence[str], k: int, scores: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        s = self.scores(query) if scores is None else scores
        return top_of(s, np.flatnonzero(s > 0), k)
