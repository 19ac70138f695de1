"""The full consistency check of a bank file (``MemoryBank.check``): SQLite's own check, FTS5's, the index
against the stored facts word by word, and every position's row, indexed words and vector."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path

import numpy as np

from dexter_brain.bank.schema import FTS_TOKENIZER, index_terms

logger = logging.getLogger(__name__)


def check_bank(conn: sqlite3.Connection, path: Path, *, can_write: bool) -> list[str]:
    problems: list[str] = []
    conn.execute("BEGIN")
    try:
        result = [r[0] for r in conn.execute("PRAGMA quick_check")]
        if result != ["ok"]:
            problems += [f"sqlite: {line}" for line in result]
        if can_write:
            try:
                conn.execute("INSERT INTO fts (fts) VALUES ('integrity-check')")
            except sqlite3.DatabaseError as error:
                problems.append(f"fts: integrity-check failed ({error})")
        problems += _check_index(conn)
        problems += _check_rows(conn)
    finally:
        conn.execute("ROLLBACK")
        conn.execute("DROP TABLE IF EXISTS temp.fts_expected")
        conn.execute("DROP TABLE IF EXISTS temp.fts_expected_words")
        conn.execute("DROP TABLE IF EXISTS temp.fts_words")
    for problem in problems:
        logger.warning("memory bank %s: %s", path, problem)
    return problems


def _check_index(conn: sqlite3.Connection) -> list[str]:
    """The FTS index holds exactly the words of the live facts (FTS5's own check does not look at the content
    table): index a fresh copy in a TEMP table and compare word by word."""
    conn.execute(f"CREATE VIRTUAL TABLE temp.fts_expected USING fts5(terms, content='', tokenize='{FTS_TOKENIZER}')")
    conn.execute("INSERT INTO temp.fts_expected (rowid, terms) SELECT position, terms FROM facts WHERE removed = 0")
    conn.execute("CREATE VIRTUAL TABLE temp.fts_expected_words USING fts5vocab(temp, fts_expected, 'instance')")
    conn.execute("CREATE VIRTUAL TABLE temp.fts_words USING fts5vocab(main, fts, 'instance')")
    problems = []
    for name, first, second in (("indexed but not stored", "fts_words", "fts_expected_words"),
                                ("stored but not indexed", "fts_expected_words", "fts_words")):
        rows = conn.execute(f"SELECT term, doc FROM temp.{first} EXCEPT SELECT term, doc FROM temp.{second} "
                            f"LIMIT 5").fetchall()
        problems += [f"fts: word {term!r} of position {doc} is {name}" for term, doc in rows]
    return problems


def _check_rows(conn: sqlite3.Connection) -> list[str]:
    problems = []
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    count, end = conn.execute("SELECT count(*), coalesce(max(position) + 1, 0) FROM facts").fetchone()
    if count != end:
        problems.append(f"facts: {end - count} of positions 0-{end - 1} are missing")
    for position, text, entity, terms, neighbours, removed in conn.execute(
            "SELECT position, text, entity, terms, neighbours, removed FROM facts ORDER BY position"):
        expected = "" if removed else " ".join(index_terms({"text": text, "entity": entity}))
        if terms != expected:
            problems.append(f"facts: position {position} is indexed under {terms!r}, its text gives {expected!r}")
        if removed and text:
            problems.append(f"facts: removed position {position} still holds its text")
        try:
            if not isinstance(json.loads(neighbours), list):
                raise ValueError
        except ValueError:
            problems.append(f"facts: position {position} has neighbours {neighbours!r}, not a JSON list")
    dim = meta.get("vector_dim")
    n_vectors, first, last = conn.execute(
        "SELECT count(*), min(position), max(position) FROM vectors").fetchone()
    if dim is None:
        if n_vectors:
            problems.append(f"vectors: {n_vectors} stored in a bank without vectors")
    else:
        size = int(dim) * np.dtype(str(meta.get("vector_dtype"))).itemsize
        if n_vectors != end or (n_vectors and (first != 0 or last != end - 1)):
            problems.append(f"vectors: {n_vectors} stored for {end} positions")
        wrong = conn.execute("SELECT count(*) FROM vectors WHERE length(vector) != ?", (size,)).fetchone()[0]
        if wrong:
            problems.append(f"vectors: {wrong} are not {dim} x {meta.get('vector_dtype')}")
    return problems
