"""``MemoryBank``: the memory's stored facts, their full-text index and their vectors in one SQLite file.

One file (e.g. ``models/memory/bank.sqlite``) holds, in schema version ``SCHEMA_VERSION``:

- ``facts(position, id, text, source, entity, topic, created_at, neighbours, terms, removed)``: one row per
  fact ever added. ``position`` is 0, 1, 2, ... in order of addition and never reused, so arrays aligned to it
  (vectors, a featurizer's columns) only ever grow. ``remove`` keeps the row as a tombstone (``removed = 1``,
  text cleared) so later positions do not move; ``replace_all`` renumbers from 0 (a new *epoch*).
- ``fts``: an FTS5 index over ``terms`` (the fact's content words, space-joined) of the live facts, ranked with
  FTS5's ``bm25()``. It is an external-content table over the view ``live_terms`` and is updated in the same
  transaction as ``facts``: an add costs the fact's own words, never a rebuild over the bank.
- ``vectors(position, vector)``: the dense vector of each position as a float16/float32 BLOB, written once by the
  caller (the encoder is the caller's) and read back as one ``(N, D)`` array without re-encoding.
- ``meta(key, value)``: schema version, vector dim and dtype, the encoder tag, and two counters: ``generation``
  (+1 on every change) and ``epoch`` (+1 when positions are renumbered or vectors rewritten).

Durability: the file is in WAL mode, so readers never block the writer nor the writer the readers, and every
connection runs ``synchronous=FULL``: a commit returns only after the WAL is fsynced, so a restart (after a
power cut too, not only a killed process) sees every acknowledged ``add``. ``NORMAL`` would keep the file
consistent but could lose the last commits on power loss, for the price of one fsync per add saved.

Threads: one write connection behind a lock (writes are serialised; other processes wait up to
``BUSY_TIMEOUT_S`` for SQLite's lock) and a pool of read connections, one per concurrent reader. Each read call
sees one consistent state; ``with bank.snapshot() as view:`` keeps one state across many calls.

Modules: ``schema`` (layout, fact checks, query quoting), ``snapshot`` (the reads), ``store`` (``MemoryBank``:
open, create, write), ``check`` (the full consistency check).

Example:
    >>> from dexter_brain.bank import MemoryBank
    >>> bank = MemoryBank.create("models/memory/bank.sqlite", facts, vectors)  # doctest: +SKIP
    >>> position = bank.add({"id": "f-9001", "text": "The shop site runs on Shopify", "source": "app"},
    ...                     vector)  # doctest: +SKIP
    >>> positions, scores = bank.search(["shop", "site"], k=5)  # doctest: +SKIP
"""

from dexter_brain.bank.schema import (FACT_FIELDS, FTS_TOKENIZER, SCHEMA_VERSION, VECTOR_DTYPES, BankError, BankRow,
                                      index_terms, match_expression)
from dexter_brain.bank.snapshot import BankSnapshot
from dexter_brain.bank.store import BUSY_TIMEOUT_S, MemoryBank

__all__ = [
    "MemoryBank", "BankSnapshot", "BankError", "BankRow", "index_terms", "match_expression", "FACT_FIELDS",
    "FTS_TOKENIZER", "SCHEMA_VERSION", "VECTOR_DTYPES", "BUSY_TIMEOUT_S",
]
