"""Tests for dexter_brain.checkpoint and the training state kept in ``last/``: save -> load round trips (float32
and float16 weights, the TrainState), the exact file set, atomic replacement, located errors for broken
checkpoints, and no pickle written or read anywhere.

Run: python -m pytest tests/test_checkpoint.py -q   (a few seconds)
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY_MODEL, TINY_TRAIN, train_tiny
from dexter_brain import __version__
from dexter_brain.checkpoint import (
    META, CheckpointError, load_checkpoint, read_meta, resolve_checkpoint, save_checkpoint, write_checkpoint_file,
)
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
    files = {name: hashlib.sha256((directory / name).read_bytes()).hexdigest() for name in CHECKPOINT_FILES - {META}}
    assert meta == {"step": 3, "seed": 0, "package_version": __version__, "torch_version": torch.__version__,
                    "files": files}
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
# Each break is recorded in meta.json (write_checkpoint_file), so that the check it aims at is reached rather
# than the sha256 check that every changed file would fail first.
def _break(directory: Path, how: str) -> None:
    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    if how == "missing meta":
        (directory / "meta.json").unlink()
    elif how == "unknown config key":
        write_checkpoint_file(directory, "config.json", {**config, "hiden_size": 3})
    elif how == "vocab mismatch":
        write_checkpoint_file(directory, "config.json", {**config, "vocab_size": 999})
    elif how == "corrupt weights":
        write_checkpoint_file(directory, "model.safetensors", b"not a safetensors file")
    elif how == "weights of another shape":
        write_checkpoint_file(directory, "config.json", {**config, "hidden_size": 16})
    elif how == "corrupt tokenizer":
        write_checkpoint_file(directory, "tokenizer.model", b"garbage")
    elif how == "featurizer not an object":
        write_checkpoint_file(directory, "featurizer.json", "[]")


@pytest.mark.parametrize("how, message", [
    ("missing meta", "{d} is not a complete checkpoint: missing meta.json"),
    ("unknown config key", "{d}/config.json: invalid model config:"),
    ("vocab mismatch", "{d}: tokenizer has {v} pieces but the model expects 999"),
    ("corrupt weights", "{d}/model.safetensors: cannot read weights:"),
    ("weights of another shape", "{d}/model.safetensors: weights do not match config.json:"),
    ("corrupt tokenizer", "{d}/tokenizer.model: not a valid vocabulary:"),
    ("featurizer not an object", "{d}/featurizer.json: expected a JSON object, got list"),
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


# --- sha256 of every file --------------------------------------------------------------------------------------
def flip_bytes(path: Path, count: int = 1000) -> None:
    """Invert ``count`` bytes in the middle of the file (inside the tensor data of a safetensors file)."""
    data = bytearray(path.read_bytes())
    start = len(data) // 2 - count // 2
    data[start:start + count] = bytes(b ^ 0xFF for b in data[start:start + count])
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_the_weights_are_refused(vocab, tmp_path):
    directory = save(tmp_path / "ckpt", tiny_model(vocab, "tool"), vocab)
    flip_bytes(directory / "model.safetensors")
    load_file(str(directory / "model.safetensors"))  # still a well-formed file: only the checksum can tell
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(directory)
    assert str(err.value) == (f"{directory}/model.safetensors: its sha256 differs from the one recorded in meta.json "
                              f"(the file is corrupt or was changed after the checkpoint was written): restore it or "
                              f"rebuild it (python build_trm_brain.py)")


@pytest.mark.parametrize("name", sorted(CHECKPOINT_FILES - {META}) + ["calibration.json"])
def test_a_change_to_any_recorded_file_is_refused_naming_it(vocab, tmp_path, name):
    directory = save(tmp_path / "ckpt", tiny_model(vocab), vocab)
    if name == "calibration.json":
        write_checkpoint_file(directory, name, {"temperature": 1.5})
    load_checkpoint(directory)
    with open(directory / name, "ab") as f:
        f.write(b" ")
    with pytest.raises(CheckpointError, match=f"^{directory / name}: its sha256 differs"):
        load_checkpoint(directory)


def test_a_recorded_file_that_is_missing_is_refused(vocab, tmp_path):
    directory = save(tmp_path / "ckpt", tiny_model(vocab), vocab)
    write_checkpoint_file(directory, "calibration.json", {"temperature": 1.5})
    (directory / "calibration.json").unlink()
    with pytest.raises(CheckpointError, match=f"^{directory / 'calibration.json'}: listed in meta.json but cannot "
                                              f"be read"):
        load_checkpoint(directory)


def test_a_file_the_sdk_reads_must_be_recorded(vocab, tmp_path):
    directory = save(tmp_path / "ckpt", tiny_model(vocab), vocab)
    (directory / "calibration.json").write_text('{"temperature": 9.0}', encoding="utf-8")  # not through the helper
    with pytest.raises(CheckpointError, match=f"^{directory / 'calibration.json'}: not recorded in meta.json"):
        load_checkpoint(directory)
    (directory / "notes.txt").write_text("a file the SDK never reads is left alone", encoding="utf-8")
    (directory / "calibration.json").unlink()
    load_checkpoint(directory)


def test_a_checkpoint_without_the_record_is_refused_with_a_rebuild_message(vocab, tmp_path):
    directory = save(tmp_path / "ckpt", tiny_model(vocab), vocab)
    meta = json.loads((directory / META).read_text(encoding="utf-8"))
    del meta["files"]
    (directory / META).write_text(json.dumps(meta), encoding="utf-8")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(directory)
    assert str(err.value) == (f"{directory / META} records no sha256 of the checkpoint's files (written by an earlier "
                              f"version of dexter-brain): rebuild it (python build_trm_brain.py)")


def test_write_checkpoint_file_adds_a_file_and_its_record_and_keeps_the_rest(vocab, tmp_path):
    directory = save(tmp_path / "ckpt", tiny_model(vocab), vocab)
    before = {p.name: p.read_bytes() for p in directory.iterdir() if p.name != META}
    path = write_checkpoint_file(directory, "calibration.json", {"temperature": 1.5, "abstain_below": 0.1})
    assert path == directory / "calibration.json"
    assert json.loads(path.read_text(encoding="utf-8")) == {"temperature": 1.5, "abstain_below": 0.1}
    assert {p.name: p.read_bytes() for p in directory.iterdir() if p.name not in (META, path.name)} == before
    record = read_meta(directory)["files"]
    assert record == {name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
                      for name in [*before, path.name]}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary directory left
    write_checkpoint_file(directory, "calibration.json", {"temperature": 2.0})  # replacing keeps the record true
    load_checkpoint(directory)
    with pytest.raises(ValueError, match="name must be a file name other than meta.json"):
        write_checkpoint_file(directory, META, {})


def test_write_checkpoint_file_refuses_a_corrupt_checkpoint(vocab, tmp_path):
    directory = save(tmp_path / "ckpt", tiny_model(vocab), vocab)
    flip_bytes(directory / "model.safetensors", 10)
    with pytest.raises(CheckpointError, match="model.safetensors: its sha256 differs"):
        write_checkpoint_file(directory, "calibration.json", {"temperature": 1.5})
    assert not (directory / "calibration.json").exists()


def test_resuming_from_a_corrupt_last_checkpoint_is_refused(tiny_brain, tmp_path):
    out = tmp_path / "tool"
    shutil.copytree(tiny_brain["models"] / "tool", out)
    flip_bytes(out / "last" / "train_state.safetensors", 100)
    with pytest.raises(CheckpointError, match=f"^{out / 'last' / 'train_state.safetensors'}: its sha256 differs"):
        train_tiny("tool", tiny_brain["data"], out, max_steps=10, warmup_steps=2)


# --- modes -----------------------------------------------------------------------------------------------------
def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mode & 0o777 for p in sorted(root.rglob("*"))}


# A process with its own umask (set before Python starts, as a service manager would) writes a checkpoint, adds
# a file to it and writes a JSON file through dexter_brain.io.
CHILD = """
import sys
from pathlib import Path
from dexter_brain.checkpoint import load_checkpoint, save_checkpoint, write_checkpoint_file
from dexter_brain.io import write_json
model, vocab, featurizer, meta, _ = load_checkpoint(sys.argv[1])
out = Path(sys.argv[2])
save_checkpoint(out / "models" / "best", model, meta=meta, tokenizer=vocab.model_proto, featurizer=featurizer)
write_checkpoint_file(out / "models" / "best", "calibration.json", {"temperature": 1.0})
write_json(out / "report" / "report.json", {})
"""


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_created_directories_and_files_follow_the_umask(vocab, tmp_path, umask):
    source = save(tmp_path / "source", tiny_model(vocab), vocab)
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-c", CHILD, str(source), str(out)], capture_output=True, text=True,
                          umask=umask, timeout=120, env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    assert done.returncode == 0, done.stderr[-2000:]
    directory, file = 0o777 & ~umask, 0o666 & ~umask
    assert modes(out) == {"models": directory, "models/best": directory, "report": directory,
                          "report/report.json": file,
                          **{f"models/best/{name}": file for name in CHECKPOINT_FILES | {"calibration.json"}}}


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
