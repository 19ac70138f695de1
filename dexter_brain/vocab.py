"""The unified sentencepiece vocabulary shared by the three TRMs: train, save, load, encode, decode.

Id 0 is padding and id 1 is unknown; the task markers (``<MEM_QUERY>`` ...) are user-defined symbols, so
they are never split. Byte fallback keeps any input encodable (emoji, other scripts, typos).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

from dexter_brain.io import atomic_write_bytes, atomic_write_text

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = (
    "<MEM_QUERY>", "<MEM_FACT>", "<SEP>", "<TOOL_CALL>", "<TOOL_RESULT>", "<TOOL_ERROR>",
    "<REASON_TASK>", "<REASON_PLAN>", "<REASON_STEP>",
)
PAD_ID = 0
UNK_ID = 1
# 256 byte pieces + pad/unk + the special tokens + room for the characters and a few merges.
MIN_VOCAB_SIZE = 400


class Vocabulary:
    """A loaded sentencepiece model with the project's special tokens."""

    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self.sp = spm.SentencePieceProcessor(model_proto=model_proto)
        missing = [t for t in SPECIAL_TOKENS if self.sp.piece_to_id(t) == UNK_ID]
        if missing or self.sp.pad_id() != PAD_ID:
            raise ValueError(f"not a dexter-brain vocabulary: missing special tokens {missing} or pad id != 0")

    @property
    def vocab_size(self) -> int:
        return self.sp.get_piece_size()

    def token_id(self, piece: str) -> int:
        return self.sp.piece_to_id(piece)

    def encode(self, text: str) -> list[int]:
        return self.sp.encode(text)

    def encode_batch(self, texts: list[str]) -> list[list[int]]:
        # sentencepiece starts a thread pool per batch call: worth it for corpora, not for a request.
        return self.sp.encode(texts, num_threads=1 if len(texts) < 256 else -1)

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([i for i in ids if i != PAD_ID])

    @classmethod
    def train_from_iterator(cls, texts: Iterable[str], *, vocab_size: int = 8000,
                            max_sentences: int = 200_000) -> "Vocabulary":
        """Train a unigram model in memory. ``vocab_size`` shrinks to what the text supports.

        Training is single-threaded on a fixed, unshuffled input, so the same texts give a byte-identical
        model.
        """
        sentences = [t for t in (s.strip() for s in texts) if t][:max_sentences]
        if not sentences:
            raise ValueError("cannot train a vocabulary: no text in the training split")
        # Unigram training needs enough distinct pieces; a tiny corpus asks for less than requested.
        distinct_chars = len(set("".join(sentences)))
        supported = 256 + 2 + len(SPECIAL_TOKENS) + distinct_chars + sum(len(s.split()) for s in sentences) // 2
        size = max(MIN_VOCAB_SIZE, min(vocab_size, supported))
        buf = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(sentences), model_writer=buf, vocab_size=size, model_type="unigram",
            hard_vocab_limit=False, byte_fallback=True, pad_id=PAD_ID, unk_id=UNK_ID, bos_id=-1, eos_id=-1,
            user_defined_symbols=list(SPECIAL_TOKENS), normalization_rule_name="nmt_nfkc_cf",
            character_coverage=1.0, num_threads=1, shuffle_input_sentence=False,
            input_sentence_size=max_sentences, minloglevel=2,
        )
        vocab = cls(buf.getvalue())
        logger.info("trained vocabulary: %d pieces (asked %d) from %d sentences",
                    vocab.vocab_size, vocab_size, len(sentences))
        return vocab

    @classmethod
    def from_file(cls, path: str | Path) -> "Vocabulary":
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.model"
        if not path.is_file():
            raise FileNotFoundError(f"vocabulary not found: {path}")
        return cls(path.read_bytes())

    def save(self, directory: str | Path, summary: dict | None = None) -> Path:
        """Write ``tokenizer.model`` and ``vocab.json`` (size, special token ids, extra summary)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(directory / "tokenizer.model", self.model_proto)
        info = {"vocab_size": self.vocab_size, "pad_id": PAD_ID, "unk_id": UNK_ID,
                "special_tokens": {t: self.token_id(t) for t in SPECIAL_TOKENS}, **(summary or {})}
        atomic_write_text(directory / "vocab.json", json.dumps(info, indent=2, sort_keys=True) + "\n")
        return directory / "tokenizer.model"
