"""Tests for dexter_brain.wrappers.memory (``MemoryTRM``) and for ``from_checkpoint`` of all three wrappers.

Uses the session's tiny trained brain (``tiny_brain`` in tests/conftest.py): every test loads its own wrapper,
and anything that writes works on a copy in ``tmp_path``. The tiny model is trained for a few steps only, so
these tests check the contract (keys, real stored facts with their sources, the bank's updates, batching, bad
input), not retrieval quality: that is measured in the evaluation report.

Run: python -m pytest tests/test_wrappers_memory.py -q
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import write_brain_db
from dexter_brain import MemoryTRM, ReasoningTRM, ToolTRM
from dexter_brain.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from dexter_brain.model import RecursiveModel
from dexter_brain.vocab import Vocabulary
from dexter_brain.wrappers.memory import MAX_K

WRAPPERS = {"memory": MemoryTRM, "tool": ToolTRM, "reasoning": ReasoningTRM}
QUERY = "What did I buy from John Lewis?"
NEW_FACT = "The allotment plot at Brockwell Gardens is number 42"


@pytest.fixture
def memory(tiny_brain, tmp_path) -> MemoryTRM:
    """The tiny brain's memory with a bank file of its own (made from the checkpoint's facts)."""
    return MemoryTRM.from_checkpoint(tiny_brain["models"] / "memory", device="cpu", bank=tmp_path / "bank.sqlite")


def bank(memory: MemoryTRM) -> dict[str, dict]:
    """The live facts of the wrapper's bank by id."""
    return {f["id"]: f for f in memory.featurizer.facts if f["id"] in memory.featurizer.position}


def ids_of(result: dict) -> list[str]:
    return [m["id"] for m in result["memories"]]


# --- results ----------------------------------------------------------------------------------------------
def test_retrieve_returns_documented_keys(memory):
    r = memory.retrieve(QUERY, k=3, conversation_id="c1")
    assert set(r) == {"memories", "confidence", "abstain", "steps"}
    assert 1 <= len(r["memories"]) <= 3
    for m in r["memories"]:
        assert set(m) == {"id", "text", "score", "source"}
        assert isinstance(m["id"], str) and isinstance(m["text"], str) and isinstance(m["source"], str)
        assert 0.0 <= m["score"] <= 1.0
    scores = [m["score"] for m in r["memories"]]
    assert scores == sorted(scores, reverse=True)
    assert 0.0 <= r["confidence"] <= 1.0 and r["confidence"] == scores[0]
    assert isinstance(r["abstain"], bool)
    # Recursion steps used: none when the floor scores alone (the residual did not beat it in training).
    assert isinstance(r["steps"], int)
    assert 1 <= r["steps"] <= memory.core.max_steps if memory.core.model.use_residual else r["steps"] == 0


def test_memories_are_real_stored_facts_with_their_source(memory, tiny_brain):
    stored = bank(memory)
    r = memory.retrieve(QUERY, k=MAX_K)
    for m in r["memories"]:
        assert m["text"] == stored[m["id"]]["text"]
        assert m["source"] == stored[m["id"]]["source"]
    # Sources point into the raw directory: a JSON list position or a SQLite rowid.
    raw_facts = {f["id"]: f["text"] for f in json.loads((tiny_brain["raw"] / "d2_memory.json").read_text())["facts"]}
    for m in r["memories"]:
        if m["source"].startswith("d2_memory.json:facts["):
            assert raw_facts[m["id"]] == m["text"]
        else:
            assert re.fullmatch(r"brain\.db:facts#rowid=\d+", m["source"]), m["source"]


def test_a_stored_fact_is_found_by_its_own_words(memory):
    fact = next(f for f in bank(memory).values() if "John Lewis" in f["text"])
    assert fact["id"] in ids_of(memory.retrieve(fact["text"], k=MAX_K))


# --- the bank ---------------------------------------------------------------------------------------------
def test_add_memory_is_retrievable_at_once(memory):
    before = len(memory)
    fact_id = memory.add_memory(NEW_FACT, id="f-9001", topic="garden")
    assert fact_id == "f-9001" and len(memory) == before + 1
    r = memory.retrieve("Which allotment plot do I have at Brockwell Gardens?", k=MAX_K)
    found = [m for m in r["memories"] if m["id"] == "f-9001"]
    assert found == [{"id": "f-9001", "text": NEW_FACT, "score": found[0]["score"], "source": "add_memory"}]


def test_add_memory_without_id_derives_a_stable_one(memory, tmp_path):
    fact_id = memory.add_memory(NEW_FACT)
    assert fact_id.startswith("mem-") and fact_id == MemoryTRM.from_checkpoint(
        memory.core.directory, device="cpu", bank=tmp_path / "other.sqlite").add_memory(NEW_FACT)
    assert memory.add_memory(NEW_FACT) == fact_id  # the same fact again (a retry): nothing changes
    with pytest.raises(ValueError, match=re.escape(f"a memory with id {fact_id!r} already exists")):
        memory.add_memory("something else", id=fact_id)


def test_the_bank_is_durable_across_a_restart(memory, tiny_brain, tmp_path):
    added = memory.add_memory(NEW_FACT, id="f-9001", topic="garden")
    gone = next(f for f in bank(memory).values() if "John Lewis" in f["text"])
    memory.remove_memory(gone["id"])
    again = MemoryTRM.from_checkpoint(tiny_brain["models"] / "memory", device="cpu", bank=tmp_path / "bank.sqlite")
    assert bank(again) == bank(memory) and added in bank(again) and gone["id"] not in bank(again)
    assert added in ids_of(again.retrieve("Which allotment plot do I have at Brockwell Gardens?", k=MAX_K))
    assert gone["id"] not in ids_of(again.retrieve(gone["text"], k=MAX_K))
    # The same query ranks the same facts in both: the bank holds everything retrieval reads.
    query = "Which allotment plot do I have?"
    assert again.retrieve(query, k=10, conversation_id="x") == memory.retrieve(query, k=10, conversation_id="x")


def test_remove_memory_is_gone_at_once(memory):
    fact = next(f for f in bank(memory).values() if "John Lewis" in f["text"])
    assert fact["id"] in ids_of(memory.retrieve(fact["text"], k=MAX_K))
    memory.remove_memory(fact["id"])
    assert fact["id"] not in ids_of(memory.retrieve(fact["text"], k=MAX_K))
    with pytest.raises(KeyError) as info:
        memory.remove_memory(fact["id"])
    assert info.value.args[0] == f"no memory with id {fact['id']!r}"


def test_refresh_from_a_raw_directory(memory, tiny_brain, tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(tiny_brain["raw"], raw)
    d2 = json.loads((raw / "d2_memory.json").read_text())
    dropped = d2["facts"].pop(0)
    d2["facts"].append({"id": "f-new", "text": NEW_FACT, "topic": "garden"})
    (raw / "d2_memory.json").write_text(json.dumps(d2))
    files_before = sorted(p.name for p in raw.iterdir())

    counts = memory.refresh_from(raw)

    assert counts == {"facts": len(bank(memory)), "added": 1, "removed": 1}
    assert sorted(p.name for p in raw.iterdir()) == files_before  # raw stays read-only
    assert "f-new" in ids_of(memory.retrieve("allotment plot Brockwell Gardens", k=MAX_K))
    assert dropped["id"] not in ids_of(memory.retrieve(dropped["text"], k=MAX_K))


def test_refresh_from_a_brain_db_file(memory, tmp_path):
    db = tmp_path / "elsewhere" / "brain.db"
    db.parent.mkdir()
    write_brain_db(db, {"facts": [
        {"id": "g1", "text": NEW_FACT, "entity": None, "topic": "garden", "created_at": "2024-05-01T10:00:00Z",
         "confidence": 1.0},
        {"id": "g2", "text": "The greenhouse key is under the blue pot", "entity": None, "topic": "garden",
         "created_at": "2024-05-02T10:00:00Z", "confidence": 1.0},
    ]})
    before = len(bank(memory))
    assert memory.refresh_from(db) == {"facts": 2, "added": 2, "removed": before}
    r = memory.retrieve("where is the greenhouse key?", k=5)
    assert {m["id"] for m in r["memories"]} <= {"g1", "g2"}
    assert {m["source"] for m in r["memories"]} <= {"brain.db:facts#rowid=1", "brain.db:facts#rowid=2"}
    assert "g2" in ids_of(r)


def test_save_writes_the_current_bank(memory, tmp_path):
    memory.add_memory(NEW_FACT, id="f-9001")
    memory.save(tmp_path / "ckpt")
    again = MemoryTRM.from_checkpoint(tmp_path / "ckpt", device="cpu")
    assert bank(again) == bank(memory)
    query = "Which allotment plot do I have at Brockwell Gardens?"
    assert again.retrieve(query, k=MAX_K) == MemoryTRM.from_checkpoint(tmp_path / "ckpt", device="cpu").retrieve(
        query, k=MAX_K)


# --- batching ---------------------------------------------------------------------------------------------
def test_retrieve_many_equals_single_calls(memory, tiny_brain):
    queries = [QUERY, "tell me more", "When is my dentist appointment?", "and the other one?", "what about the car"]
    conversations = ["a", "a", "b", "b", "c"]  # the same conversation twice in one batch keeps its order
    batched = memory.retrieve_many(queries, k=4, conversation_ids=conversations)
    single = MemoryTRM.from_checkpoint(tiny_brain["models"] / "memory", device="cpu")
    expected = [single.retrieve(q, k=4, conversation_id=c) for q, c in zip(queries, conversations)]
    assert len(batched) == len(expected)
    for got, want in zip(batched, expected):
        assert ids_of(got) == ids_of(want)
        assert [m["score"] for m in got["memories"]] == pytest.approx([m["score"] for m in want["memories"]],
                                                                      abs=1e-5)
        assert (got["abstain"], got["steps"]) == (want["abstain"], want["steps"])
        assert got["confidence"] == pytest.approx(want["confidence"], abs=1e-5)


def test_retrieve_many_with_one_conversation_id_for_all(memory):
    results = memory.retrieve_many([QUERY, "tell me more"], conversation_ids="solo")
    assert len(results) == 2 and memory.core.carries.get("solo").turns == 2


# --- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, error, message", [
    ({"query": ""}, ValueError, "query is empty"),
    ({"query": "  \n\t "}, ValueError, "query is empty"),
    ({"query": "x" * 10_001}, ValueError, "query is too long: 10001 characters (at most 8000)"),
    ({"query": 42}, TypeError, "query must be a string, got int"),
    ({"query": None}, TypeError, "query must be a string, got NoneType"),
    ({"query": ["what"]}, TypeError, "query must be a string, got list"),
    ({"query": QUERY, "k": 0}, ValueError, "k must be an integer between 1 and 128, got 0"),
    ({"query": QUERY, "k": 129}, ValueError, "k must be an integer between 1 and 128, got 129"),
    ({"query": QUERY, "k": "5"}, ValueError, "k must be an integer between 1 and 128, got '5'"),
    ({"query": QUERY, "conversation_id": ""}, TypeError, "conversation_id must be a non-empty string, got ''"),
    ({"query": QUERY, "conversation_id": 7}, TypeError, "conversation_id must be a non-empty string, got 7"),
    ({"query": QUERY, "context": 3}, TypeError, "context must be a string, got int"),
])
def test_retrieve_rejects_bad_input(memory, kwargs, error, message):
    with pytest.raises(error) as info:
        memory.retrieve(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.add_memory(""), ValueError, "text is empty"),
    (lambda m: m.add_memory(None), TypeError, "text must be a string, got NoneType"),
    (lambda m: m.add_memory("a fact", id=5), TypeError, "id must be a non-empty string, got 5"),
    (lambda m: m.retrieve_many("one query"), TypeError, "queries must be a list of strings, got str"),
    (lambda m: m.retrieve_many([QUERY, QUERY], conversation_ids=["a"]), ValueError,
     "got 2 inputs but 1 conversation ids"),
])
def test_bank_and_batch_calls_reject_bad_input(memory, call, error, message):
    with pytest.raises(error) as info:
        call(memory)
    assert str(info.value) == message


# --- checkpoints (all three wrappers load through the same code) -------------------------------------------
def truncate_weights(ckpt: Path) -> None:
    weights = ckpt / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def swap_tokenizer(ckpt: Path) -> None:
    words = "plan the trip book a hotel check the weather send an email play music order food".split()
    sentences = [" ".join(words[i:] + words[:i]) for i in range(len(words))]
    other = Vocabulary.train_from_iterator(sentences, vocab_size=420)
    (ckpt / "tokenizer.model").write_bytes(other.model_proto)


def vocab_size_of(ckpt: Path) -> int:
    return Vocabulary.from_file(ckpt / "tokenizer.model").vocab_size


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
@pytest.mark.parametrize("damage, message", [
    ("missing", "checkpoint not found: {ckpt}"),
    ("no_config", "{ckpt} is not a complete checkpoint: missing config.json"),
    ("bad_config", "{ckpt}/config.json: invalid model config: "),
    ("truncated_weights", "{ckpt}/model.safetensors: cannot read weights: "),
    ("other_kind", "{ckpt} holds a {other} TRM, not a {kind} TRM"),
    ("other_vocabulary", "{ckpt}: tokenizer has {pieces} pieces but the model expects {expected}"),
])
def test_from_checkpoint_errors_name_the_problem(tiny_brain, tmp_path, kind, damage, message):
    ckpt = tmp_path / "ckpt"
    other = "tool" if kind == "memory" else "memory"
    source = tiny_brain["models"] / (other if damage == "other_kind" else kind) / "best"
    if damage != "missing":
        shutil.copytree(source, ckpt)
    if damage == "no_config":
        (ckpt / "config.json").unlink()
    elif damage == "bad_config":
        (ckpt / "config.json").write_text('{"kind": "memory", "hidden_size": ')
    elif damage == "truncated_weights":
        truncate_weights(ckpt)
    elif damage == "other_vocabulary":
        swap_tokenizer(ckpt)
    expected = message.format(ckpt=ckpt, other=other, kind=kind,
                              pieces=vocab_size_of(ckpt) if damage == "other_vocabulary" else None,
                              expected=vocab_size_of(source))
    with pytest.raises(CheckpointError) as info:
        WRAPPERS[kind].from_checkpoint(ckpt, device="cpu")
    assert str(info.value).startswith(expected)
    if not message.endswith(": "):
        assert str(info.value) == expected


@pytest.mark.parametrize("kind", sorted(WRAPPERS))
def test_a_checkpoint_of_another_feature_set_fails_at_load(tiny_brain, tmp_path, kind):
    model, vocab, featurizer, meta, _ = load_checkpoint(tiny_brain["models"] / kind)
    features = model.config.num_candidate_features
    older = RecursiveModel(model.config.model_copy(update={"num_candidate_features": features - 1}))
    save_checkpoint(tmp_path / "older", older, meta=meta, tokenizer=vocab.model_proto, featurizer=featurizer)
    with pytest.raises(CheckpointError) as info:
        WRAPPERS[kind].from_checkpoint(tmp_path / "older", device="cpu")
    assert "features" in str(info.value) and f"{features - 1}" in str(info.value)


def test_from_checkpoint_accepts_the_training_directory(tiny_brain):
    memory = MemoryTRM.from_checkpoint(tiny_brain["models"] / "memory", device="cpu")
    assert memory.core.directory == tiny_brain["models"] / "memory" / "best"
    assert memory.describe()["kind"] == "memory" and memory.describe()["facts"] == len(memory)
