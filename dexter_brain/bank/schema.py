"""The bank file's layout and the row-level helpers: table schema, fact validation, the indexed words of a fact,
FTS5 query quoting, vector checks, and the inserts shared by ``create``, ``add`` and ``replace_all``."""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dexter_brain.lexical import content_words, normalize

SCHEMA_VERSION = 1
"""Version of the table layout below; a file with another version is refused with a clear message."""

FTS_TOKENIZER = "unicode61 remove_diacritics 0"
"""The indexed text is already ``content_words`` output (lower-case words); keeping diacritics makes "café" and
"cafe" different words, as they are for ``dexter_brain.lexical``."""

VECTOR_DTYPES = ("float16", "float32")
FACT_FIELDS = ("id", "text", "source", "entity", "topic", "created_at", "neighbours")
"""The fields of a stored fact (those of ``corpora.schema.FactRow``)."""

SQLITE_HEADER = b"SQLite format 3\x00"
_HAS_WORD = re.compile(r"[^\W_]", re.UNICODE)
FETCH_ROWS = 4096

SCHEMA = f"""
CREATE TABLE meta (key TEXT PRIMARY KEY, value);
CREATE TABLE facts (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    text TEXT NOT NULL,
    source TEXT,
    entity TEXT,
    topic TEXT,
    created_at TEXT,
    neighbours TEXT NOT NULL DEFAULT '[]',
    terms TEXT NOT NULL,
    removed INTEGER NOT NULL DEFAULT 0 CHECK (removed IN (0, 1))
);
CREATE UNIQUE INDEX facts_live_id ON facts (id) WHERE removed = 0;
CREATE INDEX facts_removed ON facts (position) WHERE removed = 1;
CREATE TABLE vectors (position INTEGER PRIMARY KEY, vector BLOB NOT NULL);
CREATE VIEW live_terms AS SELECT position, terms FROM facts WHERE removed = 0;
CREATE VIRTUAL TABLE fts USING fts5(terms, content='live_terms', content_rowid='position',
                                    tokenize='{FTS_TOKENIZER}');
CREATE VIRTUAL TABLE fts_vocab USING fts5vocab(fts, 'row');
"""
INSERT_FACT = ("INSERT INTO facts (position, id, text, source, entity, topic, created_at, neighbours, terms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
FACT_COLUMNS = "position, id, text, source, entity, topic, created_at, neighbours, removed"


class BankError(ValueError):
    """A memory bank file that is missing, not a bank, damaged, of another schema version, or closed."""

    def __init__(self, path: str | os.PathLike[str], message: str):
        self.path = Path(path)
        super().__init__(f"memory bank {self.path}: {message}")


class BankRow(NamedTuple):
    """One position of the bank: the fact stored there and whether it was removed (a tombstone)."""

    position: int
    fact: dict[str, Any]
    is_removed: bool


def index_terms(fact: Mapping[str, Any]) -> list[str]:
    """The words a fact is indexed under: the content words of its text, then the words of its entity that
    the text lacks (what ``MemoryFeaturizer.add_fact`` indexes, so both rank the same documents)."""
    text = fact["text"]
    entity_words = normalize(fact.get("entity") or "").split()
    return content_words(text) + [w for w in entity_words if w not in text.lower()]


def match_expression(query_words: Sequence[str]) -> str | None:
    """An FTS5 query matching any of the words: each is a quoted string (``"`` doubled), so ``*``, ``-``, ``:``,
    ``NEAR``, ``AND`` or parentheses in user text are plain characters. ``None`` when no word holds a letter or
    digit (nothing could match)."""
    if isinstance(query_words, str):
        raise TypeError("query_words must be a list of words, not a string: pass content_words(text)")
    phrases = []
    for word in query_words:
        if not isinstance(word, str):
            raise TypeError(f"query words must be strings, got {type(word).__name__}")
        word = word.replace("\x00", " ")
        if _HAS_WORD.search(word):
            phrases.append('"' + word.replace('"', '""') + '"')
    return " OR ".join(phrases) if phrases else None


def fact_values(fact: Any) -> tuple[str, str, str | None, str | None, str | None, str | None, str]:
    """A fact (mapping or pydantic model with ``FACT_FIELDS``) as checked column values; ``ValueError`` names the
    fact and the field."""
    if hasattr(fact, "model_dump"):
        fact = fact.model_dump(mode="json")
    if not isinstance(fact, Mapping):
        raise TypeError(f"a fact is a mapping with fields {', '.join(FACT_FIELDS)}, got {type(fact).__name__}")
    fact_id = fact.get("id")
    if not isinstance(fact_id, str) or not fact_id.strip():
        raise ValueError(f"fact {fact_id!r}: 'id' must be a non-empty string")
    unknown = sorted(set(fact) - set(FACT_FIELDS))
    if unknown:
        raise ValueError(f"fact {fact_id!r}: unknown field(s) {', '.join(map(repr, unknown))}; a fact has "
                         f"{', '.join(FACT_FIELDS)}")
    if not isinstance(fact.get("text"), str):
        raise ValueError(f"fact {fact_id!r}: 'text' must be a string, got {type(fact.get('text')).__name__}")
    values: dict[str, str | None] = {}
    for name in ("source", "entity", "topic", "created_at"):
        value = fact.get(name)
        if isinstance(value, datetime):
            value = value.isoformat()
        if value is not None and not isinstance(value, str):
            raise ValueError(f"fact {fact_id!r}: {name!r} must be a string or None, got {type(value).__name__}")
        values[name] = value
    neighbours = fact.get("neighbours") or ()
    if isinstance(neighbours, str) or not all(isinstance(n, str) for n in neighbours):
        raise ValueError(f"fact {fact_id!r}: 'neighbours' must be a list of fact ids")
    return (fact_id, fact["text"], values["source"], values["entity"], values["topic"], values["created_at"],
            json.dumps(list(neighbours), ensure_ascii=False))


def fact_of(row: Sequence[Any]) -> BankRow:
    position, fact_id, text, source, entity, topic, created_at, neighbours, removed = row
    return BankRow(position, {"id": fact_id, "text": text, "source": source, "entity": entity, "topic": topic,
                              "created_at": created_at, "neighbours": json.loads(neighbours)}, bool(removed))


def checked_batch(facts: Iterable[Any]) -> list[tuple]:
    rows = [fact_values(f) for f in facts]
    seen: set[str] = set()
    for row in rows:
        if row[0] in seen:
            raise ValueError(f"fact id {row[0]!r} appears twice in the batch")
        seen.add(row[0])
    return rows


def as_matrix(vectors: Any, n: int, dim: int | None, dtype: str) -> np.ndarray | None:
    """``vectors`` as a C-contiguous little-endian (n, D) array of the bank's dtype, checked."""
    if vectors is None:
        return None
    array = np.asarray(vectors)
    if array.ndim != 2 or len(array) != n or array.shape[1] == 0:
        raise ValueError(f"vectors must be an (N, D) array with one row per fact (N = {n}), got shape "
                         f"{tuple(array.shape)}")
    if dim is not None and array.shape[1] != dim:
        raise ValueError(f"vectors have {array.shape[1]} dims, the bank stores {dim}")
    if not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"vectors must be numbers, got dtype {array.dtype}")
    with np.errstate(over="ignore"):
        out = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    if not np.isfinite(out).all():
        raise ValueError(f"vectors hold NaN or infinite values (as {dtype})")
    return out


def insert_rows(conn: sqlite3.Connection, rows: list[tuple], matrix: np.ndarray | None, *, start: int) -> None:
    """Insert facts at positions ``start``... with their index entries and vectors (inside the caller's
    transaction)."""
    terms = [" ".join(index_terms({"text": r[1], "entity": r[3]})) for r in rows]
    conn.executemany(INSERT_FACT, ((start + i, *row, t) for i, (row, t) in enumerate(zip(rows, terms))))
    conn.executemany("INSERT INTO fts (rowid, terms) VALUES (?, ?)", ((start + i, t) for i, t in enumerate(terms)))
    if matrix is not None:
        conn.executemany("INSERT INTO vectors (position, vector) VALUES (?, ?)",
                         ((start + i, row.tobytes()) for i, row in enumerate(matrix)))


def set_meta(conn: sqlite3.Connection, **values: Any) -> None:
    conn.executemany("UPDATE meta SET value = ? WHERE key = ?", ((v, k) for k, v in values.items()))
