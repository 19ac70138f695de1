"""End-to-end: raw sample -> corpora -> vocabulary -> train the memory TRM 4 steps with evaluation every 2 ->
the exact checkpoint files -> resume for 2 more steps -> ``MemoryTRM.from_checkpoint`` -> a real call returns
stored facts, and the carry changes the answer until ``reset_carry``.

Run: python -m pytest tests/test_pipeline.py -q   (a few seconds)
"""

from __future__ import annotations

import logging

from conftest import train_tiny
from dexter_brain.corpora import CorpusSettings, generate_corpora
from dexter_brain.io import read_json, read_jsonl
from dexter_brain.sample import generate_sample
from dexter_brain.vocab import Vocabulary
from dexter_brain.wrappers.memory import MAX_K, MemoryTRM

CHECKPOINT_FILES = {"model.safetensors", "config.json", "meta.json", "tokenizer.model", "featurizer.json",
                    "scorer.json"}
TRAIN_STATE_FILES = {"train_state.safetensors", "train_state.json"}


def names(directory) -> set[str]:
    return {p.name for p in directory.iterdir()}


def test_raw_to_a_trained_memory_trm_that_returns_stored_facts(tmp_path, caplog):
    generate_sample(tmp_path / "raw", seed=3, scale=0.05, show_progress_bar=False)
    manifest = generate_corpora(tmp_path / "raw", tmp_path / "data", CorpusSettings(vocab_size=600),
                                show_progress_bar=False)
    vocab = Vocabulary.from_file(tmp_path / "data" / "vocab" / "tokenizer.model")
    assert vocab.vocab_size == manifest["vocab"]["vocab_size"]
    assert manifest["corpora"]["memory"]["splits"]["val"] > 0

    out = tmp_path / "models" / "memory"
    train_tiny("memory", tmp_path / "data", out, max_steps=4, eval_every=2, warmup_steps=1)
    assert names(out) == {"best", "best_loss", "last", "metrics.jsonl", "train_config.json"}
    assert names(out / "best") == names(out / "best_loss") == CHECKPOINT_FILES
    assert names(out / "last") == CHECKPOINT_FILES | TRAIN_STATE_FILES
    assert read_json(out / "last" / "meta.json")["step"] == 4
    assert (out / "best" / "tokenizer.model").read_bytes() == vocab.model_proto

    with caplog.at_level(logging.INFO, logger="dexter_brain.callbacks"):
        summary = train_tiny("memory", tmp_path / "data", out, max_steps=6, eval_every=2, warmup_steps=1)
    assert f"Resuming from {out / 'last'} at step 4" in caplog.messages
    assert summary["steps"] == 6 and read_json(out / "last" / "meta.json")["step"] == 6
    assert [r["step"] for r in read_jsonl(out / "metrics.jsonl") if "eval" in r] == [0, 2, 4, 6]
    assert names(out / "last") == CHECKPOINT_FILES | TRAIN_STATE_FILES

    memory = MemoryTRM.from_checkpoint(out, device="cpu")  # the training directory resolves to best/
    stored = {f["id"]: f for f in read_jsonl(tmp_path / "data" / "memory" / "bank.jsonl")}
    fact = next(f for f in stored.values() if "John Lewis" in f["text"])
    # The fact asked for by its own words is among the candidates returned.
    r = memory.retrieve(fact["text"], k=MAX_K, conversation_id="c1")
    assert fact["id"] in [m["id"] for m in r["memories"]]
    for m in r["memories"]:
        assert (m["text"], m["source"]) == (stored[m["id"]]["text"], stored[m["id"]]["source"])

    # The carry of conversation c1 changes its next answer; reset_carry gives back the fresh answer.
    follow_up = "tell me more about that"
    carried = memory.retrieve(follow_up, k=5, conversation_id="c1")
    fresh = memory.retrieve(follow_up, k=5, conversation_id="c2")
    assert carried != fresh
    memory.reset_carry("c1")
    assert memory.retrieve(follow_up, k=5, conversation_id="c1") == fresh
