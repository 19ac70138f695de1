"""``MemoryBank``: opening, creating, reading (through ``BankSnapshot``), writing and closing a bank file."""

from __future__ import annotations

import logging
import os
import sqlite3
import tempfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from dexter_brain.bank.check import check_bank
from dexter_brain.bank.schema import (SCHEMA, SCHEMA_VERSION, SQLITE_HEADER, VECTOR_DTYPES, BankError, BankRow,
                                      as_matrix, checked_batch, insert_rows, set_meta)
from dexter_brain.bank.snapshot import BankSnapshot, VectorCache
from dexter_brain.io import fsync_directory

logger = logging.getLogger(__name__)

BUSY_TIMEOUT_S = 10.0
"""How long a connection waits for another process's write lock before failing."""


class MemoryBank:
    """The durable fact store: facts with provenance, an FTS5 index and vectors in one SQLite file.

    Make one with ``MemoryBank.create``, reopen it with ``MemoryBank.open``. The read calls (``get``, ``search``,
    ``vectors``, ...) are those of ``BankSnapshot``, each on the latest state; the writes (``add``, ``add_many``,
    ``remove``, ``replace_all``, ``write_vectors``) are atomic and durable when they return. Safe to share
    between threads; several processes may open the same file (SQLite's locking serialises their writes).
    ``close()`` it (or use ``with``) once the other threads are done with it.

    Example:
        >>> with MemoryBank.open("models/memory/bank.sqlite") as bank:  # doctest: +SKIP
        ...     bank.add({"id": "f-1", "text": "Dana's birthday is on 3 March", "source": "app"}, vector)
        ...     positions, scores = bank.search(content_words("when is Dana's birthday"), k=10)
    """

    def __init__(self, path: Path, *, read_only: bool):
        self.path = path
        self.read_only = read_only
        self._lock = threading.Lock()  # guards the connection lists and ``_closed``
        self._idle: list[sqlite3.Connection] = []
        self._open: list[sqlite3.Connection] = []
        self._closed = False
        self._write_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache = VectorCache()
        self._writer = None if read_only else self._connect(is_reader=False)

    # --- opening -------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | os.PathLike[str], facts: Iterable[Any] = (), vectors: np.ndarray | None = None,
               *, vector_dtype: str = "float32", encoder: str | None = None) -> MemoryBank:
        """Write a new bank file holding ``facts`` and open it for writing.

        The file is built beside ``path`` in one transaction and linked into place when complete, so a crash
        never leaves half a bank.

        Args:
            path: The bank file; it must not exist (refill an existing bank with ``open(path).replace_all``).
            facts: Mappings (or pydantic models such as ``FactRow``) with ``FACT_FIELDS``; ``id`` and ``text``
                are required and ids must be distinct.
            vectors: (N, D) array, row i for fact i, or ``None`` for a bank without vectors.
            vector_dtype: ``float16`` or ``float32``: how vectors are stored and returned.
            encoder: A tag for what made the vectors (e.g. a checkpoint fingerprint), returned by ``encoder``.

        Returns:
            The open bank.

        Raises:
            BankError: ``path`` already exists.
            ValueError / TypeError: A fact or the vectors are malformed (the message names the fact and field).
        """
        path = Path(path)
        if vector_dtype not in VECTOR_DTYPES:
            raise ValueError(f"vector_dtype must be one of {', '.join(VECTOR_DTYPES)}, got {vector_dtype!r}")
        if path.exists() or path.with_name(path.name + "-wal").exists():
            raise BankError(path, "already exists: open it with MemoryBank.open (replace_all refills it)")
        rows = checked_batch(facts)
        matrix = as_matrix(vectors, len(rows), None, vector_dtype)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            conn = sqlite3.connect(tmp, isolation_level=None)
            try:
                # No journal while building: nobody else can see the file until it is linked into place, and a
                # crash only leaves the temporary file. WAL is switched on at the end (it is kept in the header).
                conn.execute("PRAGMA journal_mode = OFF")
                conn.execute("PRAGMA synchronous = OFF")
                conn.executescript(SCHEMA)
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                    ("schema_version", SCHEMA_VERSION), ("generation", 0), ("epoch", 0),
                    ("vector_dim", None if matrix is None else matrix.shape[1]), ("vector_dtype", vector_dtype),
                    ("encoder", encoder)])
                insert_rows(conn, rows, matrix, start=0)
                conn.execute("COMMIT")
                conn.execute("INSERT INTO fts (fts) VALUES ('optimize')")  # one index segment for the first reads
                conn.execute("PRAGMA journal_mode = WAL")
            finally:
                conn.close()
            with open(tmp, "rb") as file:
                os.fsync(file.fileno())
            try:
                os.link(tmp, path)  # unlike a rename, never replaces a bank created meanwhile
            except FileExistsError:
                raise BankError(path, "already exists: open it with MemoryBank.open (replace_all refills it)") \
                    from None
        finally:
            tmp.unlink(missing_ok=True)
        fsync_directory(path.parent)
        logger.info("created memory bank %s with %d facts", path, len(rows))
        return cls.open(path)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, read_only: bool = False) -> MemoryBank:
        """Open an existing bank file.

        Args:
            path: The bank file.
            read_only: Open for reading only: the writes raise ``BankError``, and nothing but SQLite's own
                ``-wal``/``-shm`` files is ever written.

        Returns:
            The open bank.

        Raises:
            BankError: The file does not exist, is not a SQLite database or not a memory bank, is damaged, or
                was written with another schema version; the message names the file and what to do.
        """
        path = Path(path)
        if not path.is_file():
            raise BankError(path, "is a directory, not a bank file" if path.exists() else
                            "does not exist: make one with MemoryBank.create")
        with open(path, "rb") as file:
            header = file.read(len(SQLITE_HEADER))
        if not header:
            raise BankError(path, "the file is empty, not a memory bank")
        if header != SQLITE_HEADER:
            raise BankError(path, "not a SQLite database (the file does not start with the SQLite header)")
        try:
            bank = cls(path, read_only=read_only)
        except sqlite3.Error as error:
            raise BankError(path, f"the database is damaged or unreadable ({error})") from None
        try:
            bank._check_meta()
            if not read_only:  # create() sets WAL; a copy made by another tool may have lost it
                bank._writer.execute("PRAGMA journal_mode = WAL")
        except BaseException:
            bank.close()
            raise
        return bank

    def _connect(self, *, is_reader: bool) -> sqlite3.Connection:
        uri = self.path.resolve().as_uri() + ("?mode=ro" if self.read_only else "?mode=rw")
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                               timeout=BUSY_TIMEOUT_S)
        conn.execute("PRAGMA synchronous = FULL")  # durable on return: see the module docstring
        if is_reader:
            conn.execute("PRAGMA query_only = 1")
        with self._lock:
            self._open.append(conn)
        return conn

    def _check_meta(self) -> None:
        conn = self._acquire()
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta"))
        except sqlite3.DatabaseError as error:
            if "no such table: meta" in str(error):
                raise BankError(self.path, "a SQLite database but not a memory bank (no meta table)") from None
            raise BankError(self.path, f"the database is damaged or unreadable ({error})") from None
        finally:
            self._release(conn)
        version = meta.get("schema_version")
        if version != SCHEMA_VERSION:
            if version is None:
                raise BankError(self.path, "a SQLite database but not a memory bank (no schema_version in meta)")
            raise BankError(self.path, f"written with bank schema version {version}, this dexter-brain reads "
                            f"version {SCHEMA_VERSION}: rebuild it (MemoryBank.create, or refresh from the raw data)")
        missing = sorted({"generation", "epoch", "vector_dim", "vector_dtype", "encoder"} - set(meta))
        if missing:
            raise BankError(self.path, f"the meta table lacks {', '.join(missing)}: the file is damaged")

    # --- reading -------------------------------------------------------------------------------------------
    def _acquire(self) -> sqlite3.Connection:
        with self._lock:
            if self._closed:
                raise BankError(self.path, "is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect(is_reader=True)

    def _release(self, conn: sqlite3.Connection) -> None:
        with self._lock:
            if self._closed:  # close() has closed it already
                return
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        with self._lock:
            self._idle.append(conn)

    @contextmanager
    def snapshot(self) -> Iterator[BankSnapshot]:
        """A consistent view for several reads: writes made meanwhile, by any thread or process, are not seen
        (and are not held up: the view reads the WAL state of the moment it opened).

        Example:
            >>> with bank.snapshot() as view:  # doctest: +SKIP
            ...     scores, vectors, live = view.scores(words), view.vectors(), view.live()
        """
        conn = self._acquire()
        try:
            conn.execute("BEGIN")
            yield BankSnapshot(self, conn)
        finally:
            self._release(conn)

    def _read(self, name: str, *args: Any) -> Any:
        with self.snapshot() as view:
            return getattr(view, name)(*args)

    def _iterate(self, name: str) -> Iterator[Any]:
        with self.snapshot() as view:  # held while the caller iterates; writers never wait for it
            yield from getattr(view, name)()

    @property
    def generation(self) -> int:
        """+1 on every change by any process: a reader compares two readings to tell whether the bank changed."""
        with self.snapshot() as view:
            return view.generation

    @property
    def epoch(self) -> int:
        """+1 when positions are renumbered or vectors rewritten: what is aligned to positions must be rebuilt."""
        with self.snapshot() as view:
            return view.epoch

    @property
    def num_positions(self) -> int:
        """Positions in use, removed ones included: the length of ``vectors()`` and ``live()``."""
        with self.snapshot() as view:
            return view.num_positions

    @property
    def dim(self) -> int | None:
        """Length of the stored vectors, or ``None`` for a bank without vectors."""
        with self.snapshot() as view:
            return view.dim

    @property
    def encoder(self) -> str | None:
        """The tag given with the vectors (``create``, ``replace_all``, ``write_vectors``), or ``None``."""
        with self.snapshot() as view:
            return view.encoder

    def __len__(self) -> int:
        """Number of live facts."""
        return self._read("__len__")

    def __contains__(self, fact_id: object) -> bool:
        return self._read("__contains__", fact_id)

    def get(self, fact_id: str) -> dict[str, Any] | None:
        """The live fact with this id (a dict of ``FACT_FIELDS``), or ``None``."""
        return self._read("get", fact_id)

    def position_of(self, fact_id: str) -> int | None:
        """The position of the live fact with this id, or ``None``."""
        return self._read("position_of", fact_id)

    def row(self, position: int) -> BankRow:
        """What is stored at ``position``; ``IndexError`` past the end."""
        return self._read("row", position)

    def ids(self) -> list[str]:
        """Ids of the live facts in position order."""
        return self._read("ids")

    def facts(self) -> Iterator[dict[str, Any]]:
        """The live facts in position order, from one consistent state."""
        return self._iterate("facts")

    def rows(self) -> Iterator[BankRow]:
        """Every position in order, removed ones included, from one consistent state."""
        return self._iterate("rows")

    def live(self) -> np.ndarray:
        """(N,) bool: which positions hold a live fact."""
        return self._read("live")

    def vectors(self) -> np.ndarray:
        """(N, D) read-only array of the vectors in position order (see ``BankSnapshot.vectors``)."""
        return self._read("vectors")

    def search(self, query_words: Sequence[str], k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(positions, scores)`` of the live facts holding any of the words, best first (see
        ``BankSnapshot.search``)."""
        return self._read("search", query_words, k)

    def scores(self, query_words: Sequence[str]) -> np.ndarray:
        """(N,) float32 score of every position for the words, 0 where a fact does not match."""
        return self._read("scores", query_words)

    def doc_freq(self, words: Iterable[str]) -> dict[str, int]:
        """How many live facts hold each word."""
        return self._read("doc_freq", words)

    def vocabulary(self) -> list[str]:
        """Every indexed word of the live facts, sorted."""
        with self.snapshot() as view:
            return list(view.vocabulary())

    # --- writing -------------------------------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[tuple[sqlite3.Connection, BankSnapshot]]:
        """One write transaction (the state as it starts, to write against); committed, and so durable, on exit."""
        if self.read_only:
            raise BankError(self.path, "is open read-only")
        with self._write_lock:
            if self._closed:
                raise BankError(self.path, "is closed")
            conn = self._writer
            # IMMEDIATE takes the write lock now: a transaction that read first and then failed to upgrade its
            # lock (another process wrote meanwhile) would have to be retried by hand.
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn, BankSnapshot(self, conn)
                conn.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def add(self, fact: Any, vector: np.ndarray | None = None) -> int:
        """Store one fact; it is searchable, and on disk, when this returns.

        Args:
            fact: A mapping (or pydantic model) with ``FACT_FIELDS``: ``id`` and ``text`` required, ``source``,
                ``entity``, ``topic``, ``created_at`` (ISO text), ``neighbours`` (fact ids) optional.
            vector: (D,) vector of the fact; required when the bank stores vectors, refused when it does not
                (the first fact of an empty bank without vectors may bring one and so set D).

        Returns:
            The fact's position.

        Raises:
            ValueError: A live fact already has this id, or the fact or vector is malformed.
            BankError: The bank is read-only or closed.
        """
        return self.add_many([fact], None if vector is None else np.asarray(vector)[None])[0]

    def add_many(self, facts: Iterable[Any], vectors: np.ndarray | None = None) -> list[int]:
        """``add`` for several facts in one transaction (all or none); returns their positions."""
        rows = checked_batch(facts)
        if not rows:
            return []
        with self._writing() as (conn, state):
            if state.dim is None and vectors is not None and state.num_positions:
                raise ValueError("this bank stores no vectors: add facts without them, or first write_vectors "
                                 "for every position")
            if state.dim is not None and vectors is None:
                raise ValueError(f"this bank stores a {state.dim}-dim vector per fact: pass the vectors")
            matrix = as_matrix(vectors, len(rows), state.dim, state.vector_dtype)
            if state.dim is None and matrix is not None:
                conn.execute("UPDATE meta SET value = ? WHERE key = 'vector_dim'", (matrix.shape[1],))
            ids = [r[0] for r in rows]
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                taken = conn.execute(f"SELECT id FROM facts WHERE removed = 0 AND id IN "
                                     f"({', '.join('?' * len(chunk))}) LIMIT 1", chunk).fetchone()
                if taken is not None:
                    raise ValueError(f"a fact with id {taken[0]!r} is already in the bank (remove it first)")
            start = state.num_positions
            insert_rows(conn, rows, matrix, start=start)
        return list(range(start, start + len(rows)))

    def remove(self, fact_id: str) -> int:
        """Forget a fact: it is never searched or returned again. Its position stays as a tombstone that keeps
        the id, source and created_at; text, entity and topic are cleared.

        Returns:
            The position it held.

        Raises:
            KeyError: No live fact has this id.
        """
        with self._writing() as (conn, _):
            row = conn.execute("SELECT position, terms FROM facts WHERE id = ? AND removed = 0",
                               (fact_id,)).fetchone()
            if row is None:
                raise KeyError(f"no fact with id {fact_id!r} in the bank")
            conn.execute("INSERT INTO fts (fts, rowid, terms) VALUES ('delete', ?, ?)", row)
            conn.execute("UPDATE facts SET removed = 1, text = '', terms = '', entity = NULL, topic = NULL "
                         "WHERE position = ?", (row[0],))
        return row[0]

    def replace_all(self, facts: Iterable[Any], vectors: np.ndarray | None = None, *,
                    encoder: str | None = None) -> None:
        """Replace every fact at once (e.g. a refresh from the raw data): one transaction, so readers see the
        old bank or the new one, never a mix. Positions restart at 0 and ``epoch`` moves on.

        Args:
            facts: The new facts, as for ``create``.
            vectors: (N, D) vectors of the new facts, or ``None`` to store none.
            encoder: The tag of the new vectors.
        """
        rows = checked_batch(facts)
        with self._writing() as (conn, state):
            matrix = as_matrix(vectors, len(rows), None, state.vector_dtype)
            conn.execute("DELETE FROM facts")
            conn.execute("DELETE FROM vectors")
            conn.execute("INSERT INTO fts (fts) VALUES ('delete-all')")
            insert_rows(conn, rows, matrix, start=0)
            set_meta(conn, epoch=state.epoch + 1, vector_dim=None if matrix is None else matrix.shape[1],
                      encoder=encoder)

    def write_vectors(self, vectors: np.ndarray, *, encoder: str | None = None) -> None:
        """Replace the vector of every position (removed ones included), e.g. after the encoder was retrained.

        Args:
            vectors: (num_positions, D) array; D may differ from the old one.
            encoder: The tag of the new vectors.
        """
        with self._writing() as (conn, state):
            matrix = as_matrix(vectors, state.num_positions, None, state.vector_dtype)
            conn.execute("DELETE FROM vectors")
            conn.executemany("INSERT INTO vectors (position, vector) VALUES (?, ?)",
                             ((i, row.tobytes()) for i, row in enumerate(matrix)))
            set_meta(conn, epoch=state.epoch + 1, vector_dim=matrix.shape[1], encoder=encoder)

    # --- checking and closing ------------------------------------------------------------------------------
    def check(self) -> list[str]:
        """Check the whole file (reads all of it; for tests and repair tools): SQLite's own check, FTS5's
        ``integrity-check`` (writable banks), the index against the facts, every position's row, terms and vector.

        Returns:
            One line per problem found; empty when the bank is consistent.
        """
        if self.read_only:
            conn = self._acquire()
            conn.execute("PRAGMA query_only = 0")  # only TEMP tables are written: the file is opened mode=ro
            try:
                return check_bank(conn, self.path, can_write=False)
            finally:
                conn.execute("PRAGMA query_only = 1")
                self._release(conn)
        with self._write_lock:
            if self._closed:
                raise BankError(self.path, "is closed")
            return check_bank(self._writer, self.path, can_write=True)

    def close(self) -> None:
        """Close every connection (the last one to close folds the WAL back into the file)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            connections, self._open, self._idle = self._open, [], []
        for conn in connections:
            conn.close()

    def __enter__(self) -> MemoryBank:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MemoryBank({str(self.path)!r}, read_only={self.read_only})"

