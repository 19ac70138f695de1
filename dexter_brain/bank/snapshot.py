"""``BankSnapshot``: every read of a memory bank, on one consistent state of the file (a SQLite read
transaction), plus the cache that makes ``vectors()`` read each row from disk once."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dexter_brain.bank.schema import FACT_COLUMNS, FETCH_ROWS, BankError, BankRow, fact_of, match_expression

if TYPE_CHECKING:
    import sqlite3

    from dexter_brain.bank.store import MemoryBank


class VectorCache:
    """The vectors of one epoch read so far, with spare rows: within an epoch positions only grow, so a later
    ``vectors()`` reads only the new rows, and arrays handed out earlier stay valid (rows are never rewritten
    in place; a new epoch gets a new array)."""

    def __init__(self) -> None:
        self.epoch: int | None = None
        self.data = np.zeros((0, 0), dtype=np.float32)
        self.size = 0

    def reset(self, epoch: int, dim: int, dtype: np.dtype) -> None:
        self.epoch, self.data, self.size = epoch, np.zeros((0, dim), dtype=dtype), 0

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` rows (and an eighth more, so that single adds rarely copy the array)."""
        if rows > len(self.data):
            grown = np.zeros((rows + rows // 8 + 64, self.data.shape[1]), dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown


class BankSnapshot:
    """A consistent read-only view of the bank: every call sees the state of the moment the view was opened.

    Get one with ``MemoryBank.snapshot()``; the ``MemoryBank`` read methods each use a short one of their own.
    """

    def __init__(self, bank: MemoryBank, conn: sqlite3.Connection):
        self._bank, self._conn = bank, conn
        meta = dict(conn.execute("SELECT key, value FROM meta"))  # the first read fixes the snapshot
        self.generation: int = int(meta["generation"])
        """Changes count: +1 on every add, remove, replace or vector rewrite."""
        self.epoch: int = int(meta["epoch"])
        """+1 when positions are renumbered (``replace_all``) or vectors rewritten; within an epoch positions
        and vectors only grow."""
        self.dim: int | None = None if meta["vector_dim"] is None else int(meta["vector_dim"])
        """Length of the stored vectors, or ``None`` for a bank without vectors."""
        self.vector_dtype: str = str(meta["vector_dtype"])
        self.encoder: str | None = meta["encoder"]
        """The caller's tag for what made the vectors (e.g. a checkpoint fingerprint), or ``None``."""
        self.num_positions: int = conn.execute("SELECT coalesce(max(position) + 1, 0) FROM facts").fetchone()[0]
        """Number of positions, removed ones included: the length of ``vectors()`` and ``live()``."""
        self._removed = conn.execute("SELECT count(*) FROM facts WHERE removed = 1").fetchone()[0]

    def __len__(self) -> int:
        return self.num_positions - self._removed

    def __contains__(self, fact_id: object) -> bool:
        return isinstance(fact_id, str) and self.position_of(fact_id) is not None

    def position_of(self, fact_id: str) -> int | None:
        """The position of the live fact with this id, or ``None``."""
        row = self._conn.execute("SELECT position FROM facts WHERE id = ? AND removed = 0", (fact_id,)).fetchone()
        return None if row is None else row[0]

    def get(self, fact_id: str) -> dict[str, Any] | None:
        """The live fact with this id (a dict of ``FACT_FIELDS``), or ``None``."""
        row = self._conn.execute(f"SELECT {FACT_COLUMNS} FROM facts WHERE id = ? AND removed = 0",
                                 (fact_id,)).fetchone()
        return None if row is None else fact_of(row).fact

    def row(self, position: int) -> BankRow:
        """What is stored at ``position`` (a removed fact keeps its id and source, with empty text)."""
        row = self._conn.execute(f"SELECT {FACT_COLUMNS} FROM facts WHERE position = ?", (position,)).fetchone()
        if row is None:
            raise IndexError(f"position {position} is not in the bank (it has {self.num_positions})")
        return fact_of(row)

    def rows(self) -> Iterator[BankRow]:
        """Every position in order, removed ones included: what a structure aligned to positions is built from."""
        cursor = self._conn.execute(f"SELECT {FACT_COLUMNS} FROM facts ORDER BY position")
        while batch := cursor.fetchmany(FETCH_ROWS):
            yield from map(fact_of, batch)

    def facts(self) -> Iterator[dict[str, Any]]:
        """The live facts in position order (what ``replace_all`` and ``create`` take back)."""
        return (row.fact for row in self.rows() if not row.is_removed)

    def ids(self) -> list[str]:
        """Ids of the live facts in position order."""
        return [r[0] for r in self._conn.execute("SELECT id FROM facts WHERE removed = 0 ORDER BY position")]

    def live(self) -> np.ndarray:
        """(N,) bool: which positions hold a live fact."""
        live = np.ones(self.num_positions, dtype=bool)
        removed = [r[0] for r in self._conn.execute("SELECT position FROM facts WHERE removed = 1")]
        live[removed] = False
        return live

    def vectors(self) -> np.ndarray:
        """(N, D) read-only array of the stored vectors in position order (removed positions keep theirs), in
        the bank's dtype. Read from the file once per epoch and then only the rows added since."""
        if self.dim is None:
            raise BankError(self._bank.path, "stores no vectors (create it with vectors=, or write_vectors)")
        bank, n = self._bank, self.num_positions
        dtype = np.dtype(self.vector_dtype).newbyteorder("<")  # as stored: the native order on usual machines
        with bank._cache_lock:
            cache = bank._cache
            if cache.epoch != self.epoch:
                if cache.epoch is not None and cache.epoch > self.epoch:  # an old view: leave the cache alone
                    out = np.zeros((n, self.dim), dtype=dtype)
                    self._read_vectors(out, 0)
                    out.flags.writeable = False
                    return out
                cache.reset(self.epoch, self.dim, dtype)
            if cache.size < n:
                cache.reserve(n)
                self._read_vectors(cache.data[cache.size:n], cache.size)
                cache.size = n
            out = cache.data[:n]
        out = out.view()
        out.flags.writeable = False
        return out

    def _read_vectors(self, out: np.ndarray, start: int) -> None:
        """Copy the vectors of positions ``start``... into ``out`` (C-contiguous rows), each blob straight into
        place: at 100k vectors, joining the blobs first cost a third more time."""
        size = self.dim * out.dtype.itemsize
        target = memoryview(out).cast("B")
        count = 0
        for count, (blob,) in enumerate(self._conn.execute(
                "SELECT vector FROM vectors WHERE position >= ? AND position < ? ORDER BY position",
                (start, start + len(out))), start=1):
            if len(blob) != size:
                break
            target[(count - 1) * size:count * size] = blob
        else:
            if count == len(out):
                return
        raise BankError(self._bank.path, f"vectors of positions {start}-{start + len(out) - 1} are missing or not "
                        f"{self.dim} x {self.vector_dtype}: the file is damaged")

    def search(self, query_words: Sequence[str], k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Live facts holding any of the words, ranked by FTS5 ``bm25()``.

        Args:
            query_words: Words (e.g. ``content_words(query)``); each is matched as a plain word, so user text
                can never form FTS5 query syntax.
            k: How many to return; ``None`` returns every matching fact (e.g. to fill a score per position).

        Returns:
            ``(positions, scores)``: int64 positions and float32 scores, best first (ties by position). Scores
            are ``-bm25()``, so higher is better and every match scores above 0.
        """
        expression = match_expression(query_words)
        if expression is None or (k is not None and k <= 0):
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        sql = "SELECT rowid, bm25(fts) FROM fts WHERE fts MATCH ? ORDER BY bm25(fts), rowid"
        rows = self._conn.execute(sql + " LIMIT ?" if k is not None else sql,
                                  (expression, k) if k is not None else (expression,)).fetchall()
        positions = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        scores = np.fromiter((-r[1] for r in rows), dtype=np.float64, count=len(rows))
        return positions, scores.astype(np.float32)

    def scores(self, query_words: Sequence[str]) -> np.ndarray:
        """(N,) float32 score of every position for the words (0 where a fact does not match or was removed)."""
        positions, values = self.search(query_words)
        out = np.zeros(self.num_positions, dtype=np.float32)
        out[positions] = values
        return out

    def doc_freq(self, words: Iterable[str]) -> dict[str, int]:
        """How many live facts hold each word (0 for unknown words)."""
        words = list(dict.fromkeys(words))
        found: dict[str, int] = {}
        for start in range(0, len(words), 500):  # SQLite limits the number of parameters of one statement
            chunk = words[start:start + 500]
            found.update(self._conn.execute(
                f"SELECT term, doc FROM fts_vocab WHERE term IN ({', '.join('?' * len(chunk))})", chunk))
        return {w: int(found.get(w, 0)) for w in words}

    def vocabulary(self) -> Iterator[str]:
        """Every word of the live facts' index, in sorted order."""
        return (r[0] for r in self._conn.execute("SELECT term FROM fts_vocab"))
