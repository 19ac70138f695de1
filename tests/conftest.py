"""Shared pytest fixtures: the hand-written travel-assistant raw directory (tests/fixtures/travel_raw) with its
``brain.db`` built from ``TRAVEL_DB`` below, and the corpora mined from it once per session.

Run: python -m pytest tests -q
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import sqlite_utils
import torch

# Tiny models gain nothing from threads, and threads spin badly on a busy 2-core machine.
torch.set_num_threads(1)

FIXTURES = Path(__file__).parent / "fixtures"
TRAVEL_FILES = ("d2_memory.json", "training_data_fast.jsonl", "art_1.json")

# brain.db of the travel fixture, kept as Python so that no binary is committed (tests/fixtures/README.md).
TRAVEL_DB_SCHEMA = {
    "facts": "CREATE TABLE facts (id TEXT PRIMARY KEY, text TEXT, entity TEXT, topic TEXT, created_at TEXT, "
             "confidence REAL)",
    "triples": "CREATE TABLE triples (subject TEXT, predicate TEXT, object TEXT, fact_id TEXT, created_at TEXT)",
    "patterns": "CREATE TABLE patterns (id TEXT PRIMARY KEY, goal TEXT, steps TEXT, success_count INTEGER, "
                "created_at TEXT)",
    "history": "CREATE TABLE history (id INTEGER PRIMARY KEY, conversation_id TEXT, ts TEXT, role TEXT, "
               "content TEXT, memory_refs TEXT, tool TEXT, status TEXT)",
}
TRAVEL_DB = {
    "facts": [
        {"id": "b1", "text": "Global Entry membership expires in August 2026", "entity": "Global Entry",
         "topic": "documents", "created_at": "2023-08-14T10:00:00Z", "confidence": 1.0},
        {"id": "b2", "text": "Preferred car rental company is Sixt", "entity": None, "topic": "preferences",
         "created_at": "2024-03-01T10:00:00Z", "confidence": 0.8},
        {"id": "b3", "text": "Airport transfer in Lisbon is booked with Sixt Ride for 12 June", "entity": "Lisbon trip",
         "topic": "bookings", "created_at": "2024-04-06T10:00:00Z", "confidence": 0.9},
    ],
    "triples": [
        {"subject": "Lisbon trip", "predicate": "return_flight", "object": "TP 217", "fact_id": "t3"},
        {"subject": "Hotel Avenida", "predicate": "confirmation_number", "object": "AV-5531", "fact_id": "t4"},
        {"subject": "SkyMiles account", "predicate": "status", "object": "Gold Medallion", "fact_id": "t7"},
        {"subject": "Global Entry", "predicate": "expires_on", "object": "August 2026", "fact_id": "b1"},
    ],
    "patterns": [
        {"id": "p-intl", "goal": "Plan an international trip", "success_count": 4, "steps": json.dumps([
            "check passport validity", "search flights", "compare hotel prices", "book flights", "book hotel",
            "buy travel insurance", "add the trip to the calendar"])},
        {"id": "p-weekend", "goal": "Book a weekend getaway", "success_count": 2, "steps": json.dumps([
            "pick a destination", "search hotels", "book hotel"])},
        {"id": "p-refund", "goal": "Get a refund for a cancelled flight", "success_count": 1, "steps": json.dumps([
            "find the booking reference", "check the airline refund policy", "submit the refund request",
            "track the refund status"])},
        {"id": "p-visa", "goal": "Apply for a tourist visa", "success_count": 1, "steps": json.dumps([
            "check visa requirements", "gather documents", "fill in the application form", "pay the visa fee",
            "book an embassy appointment"])},
        {"id": "p-miles", "goal": "Redeem miles for a flight", "success_count": 3, "steps": json.dumps([
            "check the miles balance", "search award availability"])},
        {"id": "p-road", "goal": "Plan a road trip", "success_count": 1, "steps": json.dumps([
            "choose the route", "rent a car", "book motels along the route", "download offline maps",
            "pack an emergency kit", "check the weather forecast"])},
    ],
    "history": [
        {"id": 1, "conversation_id": "h-docs", "ts": "2024-06-01T08:00:00Z", "role": "user",
         "content": "When does my passport expire?", "memory_refs": json.dumps(["t10"])},
        {"id": 2, "conversation_id": "h-docs", "ts": "2024-06-01T08:00:01Z", "role": "assistant",
         "content": "On 3 February 2027."},
        {"id": 3, "conversation_id": "h-docs", "ts": "2024-06-01T08:01:00Z", "role": "user",
         "content": "Do I need to renew it before the Kyoto trip?", "memory_refs": json.dumps(["t10", "t5"])},
        {"id": 4, "conversation_id": "h-docs", "ts": "2024-06-01T08:01:01Z", "role": "assistant",
         "content": "No, it stays valid until 2027."},
        {"id": 5, "conversation_id": "h-global", "ts": "2024-06-02T08:00:00Z", "role": "user",
         "content": "When does my Global Entry run out?", "memory_refs": json.dumps(["b1"])},
        {"id": 6, "conversation_id": "h-global", "ts": "2024-06-02T08:00:05Z", "role": "tool",
         "content": "calendar.addEvent: reminder set", "tool": "calendar.addEvent", "status": "success"},
    ],
}


def write_brain_db(path: Path, tables: dict[str, list[dict]], schema: dict[str, str] = TRAVEL_DB_SCHEMA) -> None:
    """Create ``path`` with the real brain.db schema and insert ``tables``' rows."""
    db = sqlite_utils.Database(path)
    db.execute("PRAGMA synchronous = OFF")  # test files need no durability
    for name, rows in tables.items():
        if name in schema:
            db.execute(schema[name])
        db[name].insert_all(rows)
    db.close()


def make_travel_raw(directory: Path) -> Path:
    """Copy the travel fixture's JSON files into ``directory`` and build its ``brain.db`` there."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in TRAVEL_FILES:
        shutil.copyfile(FIXTURES / "travel_raw" / name, directory / name)
    write_brain_db(directory / "brain.db", TRAVEL_DB)
    return directory


@pytest.fixture
def travel_raw_dir(tmp_path) -> Path:
    """A fresh copy of the travel-assistant raw directory (all four sources) in ``tmp_path``."""
    return make_travel_raw(tmp_path / "travel_raw")


@pytest.fixture(scope="session")
def travel_corpora(tmp_path_factory) -> tuple[Path, dict]:
    """(out_dir, manifest) of the travel fixture mined once per session with default settings; read only."""
    from dexter_brain.corpora import generate_corpora

    root = tmp_path_factory.mktemp("travel")
    raw = make_travel_raw(root / "raw")
    manifest = generate_corpora(raw, root / "out", show_progress_bar=False)
    return root / "out", manifest


# A model small enough to train in about a second; the data dimensions come from the corpus.
TINY_MODEL = dict(embed_dim=16, hidden_size=32, num_layers=1, num_heads=2, num_slots=2, num_latent_updates=2,
                  num_improvement_steps=2, max_supervision_steps=3, scorer_hidden=16)
TINY_TRAIN = dict(max_steps=8, batch_size=8, eval_every=4, warmup_steps=2, eval_max_examples=64, lr=3e-3,
                  early_stopping_patience=0,
                  curriculum=[{"until": 0.5, "max_difficulty": 1, "max_supervision_steps": 2},
                              {"until": 1.0, "max_difficulty": 2, "max_supervision_steps": 3}])


def train_tiny(kind: str, data_dir: Path, out_dir: Path, **overrides) -> dict:
    """Train one TRM with the tiny model on ``data_dir`` (quietly, on CPU)."""
    from dexter_brain.runs import train_trm

    return train_trm(kind, data_dir, out_dir, device="cpu", show_progress_bar=False,
                     model_overrides=TINY_MODEL, **{**TINY_TRAIN, **overrides})


@pytest.fixture(scope="session")
def tiny_brain(tmp_path_factory) -> dict:
    """A whole tiny brain built once per session from a small embedded sample: {"raw", "data", "models"}.

    Read only: tests that change a model or its carry must load their own wrapper or copy the directory.
    """
    from dexter_brain.corpora import CorpusSettings, generate_corpora
    from dexter_brain.sample import generate_sample

    root = tmp_path_factory.mktemp("tiny_brain")
    generate_sample(root / "raw", seed=3, scale=0.05, show_progress_bar=False)
    generate_corpora(root / "raw", root / "data", CorpusSettings(vocab_size=600), show_progress_bar=False)
    for kind in ("memory", "tool", "reasoning"):
        train_tiny(kind, root / "data", root / "models" / kind)
    return {"raw": root / "raw", "data": root / "data", "models": root / "models"}
