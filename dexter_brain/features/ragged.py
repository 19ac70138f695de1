"""``Ragged``: rows of integers of different lengths in one flat numpy buffer, so that the rows of a few
candidates (a fact's words, its neighbours, the past queries that used it) are gathered with a handful of
numpy calls instead of a Python loop per candidate. Rows can be appended or replaced at any time; both cost
the length of the row, never the size of the whole table.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Ragged:
    """A growable table of integer rows, gathered by row index."""

    def __init__(self):
        self._flat = np.zeros(256, dtype=np.int64)
        self._size = 0
        self._starts = np.zeros(64, dtype=np.int64)
        self._lengths = np.zeros(64, dtype=np.int64)
        self._rows = 0
        self._garbage = 0

    def __len__(self) -> int:
        return self._rows

    def _write(self, values: Sequence[int]) -> int:
        """Append ``values`` to the flat buffer; return where they start."""
        n = len(values)
        end = self._size + n
        if end > len(self._flat):
            grown = np.zeros(max(end, 2 * len(self._flat)), dtype=np.int64)
            grown[: self._size] = self._flat[: self._size]
            self._flat = grown
        start = self._size
        self._flat[start:end] = values
        self._size = end
        return start

    def append(self, values: Sequence[int]) -> int:
        """Add a row; return its index."""
        row = self._rows
        if row == len(self._starts):
            self._starts = np.concatenate([self._starts, np.zeros_like(self._starts)])
            self._lengths = np.concatenate([self._lengths, np.zeros_like(self._lengths)])
        self._starts[row] = self._write(values)
        self._lengths[row] = len(values)
        self._rows += 1
        return row

    def replace(self, row: int, values: Sequence[int]) -> None:
        """Give row ``row`` new values (written at the end; the old ones become garbage until compacted)."""
        self._garbage += int(self._lengths[row])
        self._starts[row] = self._write(values)
        self._lengths[row] = len(values)
        if self._garbage > max(self._size // 2, 1024):
            self._compact()

    def row(self, row: int) -> np.ndarray:
        start = self._starts[row]
        return self._flat[start: start + self._lengths[row]]

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        return self._lengths[rows]

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The values of ``rows`` concatenated in order, and for each value the index into ``rows`` of its row."""
        lengths = self._lengths[rows]
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        owner = np.repeat(np.arange(len(rows)), lengths)
        # Position of each value: its row's start plus its rank inside the row.
        ends = np.cumsum(lengths)
        offsets = np.arange(total) + np.repeat(self._starts[rows] - (ends - lengths), lengths)
        return self._flat[offsets], owner

    def _compact(self) -> None:
        starts, lengths = self._starts[: self._rows], self._lengths[: self._rows]
        rows = np.arange(self._rows)
        values, _ = self.gather(rows)
        self._flat = np.zeros(max(256, 2 * len(values)), dtype=np.int64)
        self._flat[: len(values)] = values
        self._size = len(values)
        starts[:] = np.cumsum(lengths) - lengths
        self._garbage = 0
