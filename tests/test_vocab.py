"""Tests for dexter_brain.vocab: special tokens stay single pieces, the size shrinks on tiny input, training is
deterministic, and save -> load gives the same encodings. Throwaway models are trained in memory.

Run: python -m pytest tests/test_vocab.py -q
"""

from __future__ import annotations

import io
import json

import pytest
import sentencepiece as spm

from dexter_brain.vocab import MIN_VOCAB_SIZE, PAD_ID, SPECIAL_TOKENS, UNK_ID, Vocabulary

CORPUS = [
    "<MEM_QUERY> When does my outbound flight to Lisbon leave?",
    "<MEM_FACT> Outbound flight TP 202 departs Boston at 18:40 on 12 June",
    "<TOOL_CALL> flights.search <SEP> Search flights between two airports on a date",
    "<TOOL_CALL> Convert 500 dollars to euros <TOOL_ERROR> unknown currency pair",
    "<REASON_TASK> Plan an international trip <REASON_PLAN> check passport validity <REASON_STEP> search flights",
    "Réservez un hôtel à Lisbonne pour six nuits",
] * 4


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.train_from_iterator(CORPUS, vocab_size=512)


def test_special_tokens_are_single_pieces(vocab):
    for token in SPECIAL_TOKENS:
        ids = vocab.encode(f"a {token} b")
        assert vocab.token_id(token) in ids, token
        assert vocab.sp.id_to_piece(vocab.token_id(token)) == token
    assert len(set(vocab.token_id(t) for t in SPECIAL_TOKENS)) == len(SPECIAL_TOKENS)
    assert vocab.sp.pad_id() == PAD_ID and vocab.sp.unk_id() == UNK_ID


def test_any_text_is_encodable_and_decodes_back(vocab):
    text = "Zürich ✈ 東京 emoji 🙂"
    ids = vocab.encode(text)
    assert UNK_ID not in ids  # byte fallback
    assert vocab.decode(ids + [PAD_ID, PAD_ID]) == "zürich ✈ 東京 emoji 🙂"  # nmt_nfkc_cf lower-cases
    assert vocab.encode_batch([text, "flight"]) == [ids, vocab.encode("flight")]


@pytest.mark.parametrize("texts", [["hi"], ["book a flight"] * 3, CORPUS[:6]])
def test_size_shrinks_on_tiny_input_without_failing(texts):
    vocab = Vocabulary.train_from_iterator(texts, vocab_size=8000)
    assert 256 + 2 + len(SPECIAL_TOKENS) <= vocab.vocab_size <= MIN_VOCAB_SIZE


def test_training_is_deterministic():
    a = Vocabulary.train_from_iterator(CORPUS, vocab_size=400)
    b = Vocabulary.train_from_iterator(list(CORPUS), vocab_size=400)
    assert a.model_proto == b.model_proto


def test_save_load_round_trip(vocab, tmp_path):
    path = vocab.save(tmp_path / "vocab", {"train_sentences": len(CORPUS)})
    assert path == tmp_path / "vocab" / "tokenizer.model"
    loaded = Vocabulary.from_file(tmp_path / "vocab")  # a directory or the file itself
    assert Vocabulary.from_file(path).model_proto == vocab.model_proto == loaded.model_proto
    for text in CORPUS + ["unseen words: Quetzalcoatl 42"]:
        assert loaded.encode(text) == vocab.encode(text)
    info = json.loads((tmp_path / "vocab" / "vocab.json").read_text())
    assert info["vocab_size"] == vocab.vocab_size and info["train_sentences"] == len(CORPUS)
    assert info["special_tokens"] == {t: vocab.token_id(t) for t in SPECIAL_TOKENS}


@pytest.mark.parametrize("texts", [[], ["", "   "]])
def test_no_text_is_an_error(texts):
    with pytest.raises(ValueError, match="cannot train a vocabulary: no text in the training split"):
        Vocabulary.train_from_iterator(texts)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="vocabulary not found"):
        Vocabulary.from_file(tmp_path / "nowhere")


def test_a_model_without_the_special_tokens_is_rejected():
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(CORPUS), model_writer=buf, vocab_size=100,
                                   hard_vocab_limit=False, num_threads=1, minloglevel=2)
    with pytest.raises(ValueError, match="not a dexter-brain vocabulary"):
        Vocabulary(buf.getvalue())
