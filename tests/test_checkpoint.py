"""Tests for dexter_brain.checkpoint and the training state kept in ``last/``: save -> load round trips (float32
and float16 weights, the TrainState), the exact file set, atomic replacement, located errors for broken
checkpoints, and no pickle written or read anywhere.

Run: python -m pytest tests/test_checkpoint.py -q   (a few seconds)
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_MODEL, TINY_TRAIN, train_tiny
from dexter_brain import __version__
from dexter_brain.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint, save_checkpoint
from dexter_brain.config import ModelConfig
from dexter_brain.data import load_split
from dexter_brain.io import dump_json
from dexter_brain.objectives import head_for
from dexter_brain.runs import default_train_config
from dexter_brain.training import Trainer
from dexter_brain.vocab import Vocabulary

CORPUS = ["<MEM_QUERY> When does my outbound flight to Lisbon leave?",
          "<MEM_FACT> Outbound flight TP 202 departs Boston at 18:40 on 12 June"] * 4
CHECKPOINT_FILES = {"model.safetensors", "config.json", "meta.json", "tokenizer.model", "featurizer.json",
                    "scorer.json"}
TRAIN_STATE_FILES = {"train_state.safetensors", "train_state.json"}
PICKLE_SUFFIXES = {".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt"}
FEATURIZER = {"facts": [{"id": "f1", "text": "Outbound flight TP 202 departs Boston"}], "note": "Zürich ✈"}


@pytest.fixture(scope="module")
def vocab() -> Vocabulary:
    return Vocabulary.train_from_iterator(CORPUS, vocab_size=320)


def tiny_model(vocab: Vocabulary, kind: str = "memory", seed: int = 0):
    from dexter_brain.model import RecursiveModel

    torch.manual_seed(seed)
    return RecursiveModel(ModelConfig.tiny(kind, vocab_size=vocab.vocab_size))


def save(directory: Path, model, vocab: Vocabulary, **kwargs) -> Path:
    kwargs.setdefault("meta", {"step": 3, "seed": 0})
    kwargs.setdefault("featurizer", FEATURIZER)
    return save_checkpoint(directory, model, tokenizer=vocab.model_proto, **kwargs)


# --- round trips ---------------------------------------------------------------------------------------------
def test_save_load_round_trip_is_exact(vocab, tmp_path):
    model = tiny_model(vocab, "tool")
    save(tmp_path / "ckpt", model, vocab)
    loaded, loaded_vocab, featurizer, meta, directory = load_checkpoint(tmp_path / "ckpt", kind="tool")
    assert directory == tmp_path / "ckpt"
    assert loaded.config == model.config and not loaded.training
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    assert loaded_vocab.model_proto == vocab.model_proto
    assert featurizer == FEATURIZER
    assert meta == {"step": 3, "seed": 0, "package_version": __version__, "torch_version": torch.__version__}
    assert {p.name for p in directory.iterdir()} == CHECKPOINT_FILES


def test_float16_weights_load_as_float32(vocab, tmp_path):
    model = tiny_model(vocab)
    save(tmp_path / "ckpt", model, vocab, weights_dtype=torch.float16)
    stored = load_file(str(tmp_path / "ckpt" / "model.safetensors"))
    assert {v.dtype for v in stored.values()} == {torch.float16}
    loaded = load_checkpoint(tmp_path / "ckpt")[0]
    for name, value in model.state_dict().items():
        assert loaded.state_dict()[name].dtype == torch.float32
        assert torch.equal(loaded.state_dict()[name], value.half().float()), name


def test_explicit_weights_replace_the_models_own(vocab, tmp_path):
    model = tiny_model(vocab)
    other = {k: v + 1 for k, v in model.state_dict().items()}
    save(tmp_path / "ckpt", model, vocab, weights=other)
    loaded = load_checkpoint(tmp_path / "ckpt")[0]
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in other.items())


def test_train_state_round_trip_restores_everything_a_resume_needs(tiny_brain, tmp_path):
    data = tiny_brain["data"]
    config = default_train_config("memory", data, tmp_path, device="cpu", model_overrides=TINY_MODEL, **TINY_TRAIN)
    first = Trainer(config, head_for("memory"), load_split(data, "memory", "train"))
    for _ in range(3):
        first.train_step()
    first.state.ema = {k: v.detach().clone() * 0.5 for k, v in first.model.state_dict().items()}
    save_checkpoint(tmp_path / "last", first.model, meta={}, tokenizer=b"", featurizer={},
                    train_state=(first.state.tensors(), first.state.scalars()))
    assert {p.name for p in (tmp_path / "last").iterdir()} == CHECKPOINT_FILES | TRAIN_STATE_FILES

    second = Trainer(config, head_for("memory"), load_split(data, "memory", "train"))
    second.model.load_state_dict(load_file(str(tmp_path / "last" / "model.safetensors")))
    scalars = json.loads((tmp_path / "last" / "train_state.json").read_text(encoding="utf-8"))
    second.state.restore(load_file(str(tmp_path / "last" / "train_state.safetensors")), scalars)
    a, b = first.state, second.state
    assert (a.step, a.epoch, a.cursor) == (b.step, b.epoch, b.cursor) == (3, a.epoch, a.cursor)
    assert torch.equal(a.generator.get_state(), b.generator.get_state())
    assert a.tensors().keys() == b.tensors().keys()
    assert all(torch.equal(v, b.tensors()[k]) for k, v in a.tensors().items())
    assert json.loads(dump_json(a.scalars())) == json.loads(dump_json(b.scalars()))  # tuples come back as lists
    # The same next step from both: the restored state is the whole state.
    first.train_step()
    second.train_step()
    assert first.state.last_loss == second.state.last_loss
    assert all(torch.equal(v, second.model.state_dict()[k]) for k, v in first.model.state_dict().items())


# --- atomic writes ----------------------------------------------------------------------------------------
def test_replacing_a_checkpoint_leaves_no_temporary_directories(vocab, tmp_path):
    save(tmp_path / "ckpt", tiny_model(vocab, seed=0), vocab, meta={"step": 1})
    save(tmp_path / "ckpt", tiny_model(vocab, seed=1), vocab, meta={"step": 2})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert load_checkpoint(tmp_path / "ckpt")[3]["step"] == 2


def test_a_failed_write_keeps_the_previous_checkpoint_whole(vocab, tmp_path):
    save(tmp_path / "ckpt", tiny_model(vocab), vocab, meta={"step": 1})
    before = {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()}
    with pytest.raises(TypeError, match="not JSON serializable"):
        # The weights are written first; the featurizer then fails half-way through the checkpoint.
        save(tmp_path / "ckpt", tiny_model(vocab, seed=1), vocab, meta={"step": 2}, featurizer={"bad": object()})
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()} == before


# --- located errors -----------------------------------------------------------------------------------------
def _break(directory: Path, how: str) -> None:
    if how == "missing meta":
        (directory / "meta.json").unlink()
    elif how == "unknown config key":
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        (directory / "config.json").write_text(json.dumps({**config, "hiden_size": 3}), encoding="utf-8")
    elif how == "vocab mismatch":
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        (directory / "config.json").write_text(json.dumps({**config, "vocab_size": 999}), encoding="utf-8")
    elif how == "corrupt weights":
        (directory / "model.safetensors").write_bytes(b"not a safetensors file")
    elif how == "weights of another shape":
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
        (directory / "config.json").write_text(json.dumps({**config, "hidden_size": 16}), encoding="utf-8")
    elif how == "corrupt tokenizer":
        (directory / "tokenizer.model").write_bytes(b"garbage")


@pytest.mark.parametrize("how, message", [
    ("missing meta", "{d} is not a complete checkpoint: missing meta.json"),
    ("unknown config key", "{d}/config.json: invalid model config:"),
    ("vocab mismatch", "{d}: tokenizer has {v} pieces but the model expects 999"),
    ("corrupt weights", "{d}/model.safetensors: cannot read weights:"),
    ("weights of another shape", "{d}/model.safetensors: weights do not match config.json:"),
    ("corrupt tokenizer", "{d}/tokenizer.model: not a valid vocabulary:"),
])
def test_a_broken_checkpoint_gives_a_located_error(vocab, tmp_path, how, message):
    directory = save(tmp_path / "ckpt", tiny_model(vocab), vocab)
    _break(directory, how)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(directory)
    assert str(err.value).startswith(message.format(d=directory, v=vocab.vocab_size))


def test_wrong_kind_and_missing_directory_are_errors(vocab, tmp_path):
    directory = save(tmp_path / "ckpt", tiny_model(vocab, "tool"), vocab)
    with pytest.raises(CheckpointError, match=f"^{directory} holds a tool TRM, not a memory TRM$"):
        load_checkpoint(directory, kind="memory")
    with pytest.raises(CheckpointError, match="^checkpoint not found: "):
        load_checkpoint(tmp_path / "nowhere")


def test_a_training_directory_resolves_to_its_best_checkpoint(vocab, tmp_path):
    save(tmp_path / "run" / "best", tiny_model(vocab), vocab)
    assert resolve_checkpoint(tmp_path / "run") == tmp_path / "run" / "best"
    assert load_checkpoint(tmp_path / "run")[4] == tmp_path / "run" / "best"


# --- no pickle -----------------------------------------------------------------------------------------------
def test_training_writes_only_safetensors_json_and_the_tokenizer(tiny_brain):
    files = [p for p in tiny_brain["models"].rglob("*") if p.is_file()]
    assert files
    assert [p for p in files if p.suffix in PICKLE_SUFFIXES] == []
    # Besides the checkpoints: the memory bank (SQLite, made when a wrapper first loads) and its WAL files.
    assert {p.suffix for p in files} <= {".safetensors", ".json", ".jsonl", ".model", ".sqlite", ".sqlite-wal",
                                         ".sqlite-shm"}
    for p in files:
        if p.suffix == ".safetensors":  # an 8-byte header length, then a JSON header: no pickle inside
            assert p.read_bytes()[8:9] == b"{", p


@pytest.fixture
def no_unpickling(monkeypatch):
    """Every way to unpickle raises: a test that passes with it never read a pickle."""
    def refuse(*args, **kwargs):
        raise AssertionError("something tried to unpickle")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)


def test_loading_and_resuming_never_unpickle(tiny_brain, tmp_path, no_unpickling):
    for kind in ("memory", "tool", "reasoning"):
        for which in ("best", "best_loss", "last"):
            model = load_checkpoint(tiny_brain["models"] / kind / which, kind=kind)[0]
            assert model.config.kind == kind
    out = tmp_path / "tool"
    shutil.copytree(tiny_brain["models"] / "tool", out)
    summary = train_tiny("tool", tiny_brain["data"], out, max_steps=10, warmup_steps=2)  # resumes at 8
    assert summary["steps"] == 10
    assert [p for p in out.rglob("*") if p.suffix in PICKLE_SUFFIXES] == []
