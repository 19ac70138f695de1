"""Checkpoint directories: safetensors weights + JSON, self-contained, written atomically.

A checkpoint directory holds ``model.safetensors``, ``config.json`` (ModelConfig), ``meta.json`` (step,
metrics, seed, corpus fingerprint, versions), ``tokenizer.model``, ``featurizer.json`` (the bank or index
the wrapper needs), ``scorer.json`` (the fitted linear floor and whether the recursive residual is used)
and, in ``last/`` only, ``train_state.safetensors`` + ``train_state.json``. Nothing is ever pickled.

``meta.json`` records the sha256 of every other file (``"files": {name: sha256}``), and every read checks
them: a corrupt or changed file is refused with a ``CheckpointError`` naming it. A file added to a
checkpoint later (``calibration.json``) goes through ``write_checkpoint_file``, which updates the record
in the same atomic step. A checkpoint without the record (written before it existed) is refused with a
message to rebuild it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from dexter_brain import __version__
from dexter_brain.config import ModelConfig, TrmKind
from dexter_brain.floor import LinearFloor
from dexter_brain.io import dump_json, make_temp_dir, replace_dir, sha256_file
from dexter_brain.model import RecursiveModel
from dexter_brain.vocab import Vocabulary

WEIGHTS = "model.safetensors"
SCORER = "scorer.json"
META = "meta.json"
REQUIRED_FILES = ("model.safetensors", "config.json", "meta.json", "tokenizer.model", "featurizer.json", SCORER)
READ_FILES = ("model.safetensors", "config.json", "tokenizer.model", "featurizer.json", SCORER, "calibration.json",
              "train_state.safetensors", "train_state.json")
"""Every file the SDK reads from a checkpoint besides meta.json: each one present must be in the record."""
REBUILD = "rebuild it (python build_trm_brain.py)"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete, corrupt, or of the wrong kind."""


def scorer_state(model: RecursiveModel, **info) -> dict:
    """``scorer.json``: the model's floor, whether it scores with the residual, and ``info`` (e.g. the
    validation metrics of the floor alone and of the full model)."""
    return {"floor": model.floor.to_json(), "residual": bool(model.use_residual), **info}


def save_checkpoint(directory: str | Path, model: RecursiveModel, *, meta: dict, tokenizer: bytes,
                    featurizer: dict, weights: dict[str, torch.Tensor] | None = None,
                    weights_dtype: torch.dtype | None = None, train_state: tuple[dict, dict] | None = None,
                    extra_json: dict[str, dict] | None = None) -> Path:
    """Write a checkpoint into ``directory`` atomically (a temporary sibling, then a rename).

    Args:
        directory: The checkpoint directory (replaced if it exists).
        model: The model whose config is saved; its weights unless ``weights`` is given.
        meta: Free-form metadata (step, metrics, seed, corpus fingerprint); versions are added.
        tokenizer: The sentencepiece model bytes.
        featurizer: The featurizer state (memory bank, tool catalogue, plan bank).
        weights: Weights to save instead of the model's own (e.g. the EMA copy).
        weights_dtype: Store weights in this dtype (e.g. float16 for the deployable ``best``).
        train_state: (tensors, scalars) of the training state, for ``last``.
        extra_json: More JSON files to write (name -> content), e.g. calibration.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(directory.parent, prefix=f".{directory.name}.")
    try:
        state = weights if weights is not None else model.state_dict()
        state = {k: (v.detach().to(weights_dtype) if weights_dtype is not None and v.is_floating_point()
                     else v.detach()).contiguous().cpu() for k, v in state.items()}
        # save() to bytes rather than save_file(): save_file creates its file owner-only (0600), whatever the umask.
        # One metadata key: safetensors writes several in an order that changes from process to process, and the
        # same weights must give the same bytes (their sha256 is recorded; a resumed build is compared to them).
        (tmp / WEIGHTS).write_bytes(save(state, metadata={"format": "pt"}))
        (tmp / "config.json").write_text(model.config.to_json() + "\n", encoding="utf-8")
        (tmp / "tokenizer.model").write_bytes(tokenizer)
        (tmp / "featurizer.json").write_text(json.dumps(featurizer, ensure_ascii=False, sort_keys=True),
                                             encoding="utf-8")
        extra_json = {SCORER: scorer_state(model), **(extra_json or {})}
        for name, content in extra_json.items():
            (tmp / name).write_text(dump_json(content), encoding="utf-8")
        if train_state is not None:
            tensors, scalars = train_state
            (tmp / "train_state.safetensors").write_bytes(save({k: v.contiguous().cpu() for k, v in tensors.items()}))
            (tmp / "train_state.json").write_text(dump_json(scalars), encoding="utf-8")
        # meta.json goes last: it records the sha256 of every file written before it.
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.name != META}
        full_meta = {**meta, "package_version": __version__, "torch_version": torch.__version__, "files": files}
        (tmp / META).write_text(dump_json(full_meta), encoding="utf-8")
        replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def write_checkpoint_file(directory: str | Path, name: str, content: bytes | str | dict | list) -> Path:
    """Add (or replace) one file of an existing checkpoint and its sha256 in ``meta.json``, together.

    A copy of the directory (hard links where the file system allows) gets the new file and the new
    record, then replaces the directory, so readers see the old checkpoint or the new one, never a file
    its record does not vouch for.

    Args:
        directory: The checkpoint directory.
        name: The file name, e.g. ``calibration.json`` (not ``meta.json``, not a path).
        content: Bytes, text (written as UTF-8), or a JSON value (written as canonical JSON).

    Returns:
        The written file's path.

    Raises:
        CheckpointError: ``directory`` is not a checkpoint with a valid record.
    """
    directory = Path(directory)
    if name == META or Path(name).name != name:
        raise ValueError(f"name must be a file name other than {META}, got {name!r}")
    meta = read_meta(directory)
    data = (content if isinstance(content, bytes) else
            (content if isinstance(content, str) else dump_json(content)).encode("utf-8"))
    tmp = make_temp_dir(directory.parent, prefix=f".{directory.name}.")
    try:
        for path in directory.iterdir():
            if path.is_file() and path.name not in (name, META):
                _link_or_copy(path, tmp / path.name)
        (tmp / name).write_bytes(data)
        meta["files"] = {**meta["files"], name: hashlib.sha256(data).hexdigest()}
        (tmp / META).write_text(dump_json(meta), encoding="utf-8")
        replace_dir(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory / name


def _link_or_copy(source: Path, target: Path) -> None:
    # Files are only ever replaced (written elsewhere, then renamed), never changed in place, so a hard
    # link shares bytes that stay as they are.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def read_meta(directory: str | Path) -> dict:
    """``meta.json`` of a checkpoint directory, after checking every file it records against its sha256.

    Raises:
        CheckpointError: meta.json is unreadable or has no record of the files; a recorded file is missing
            or its bytes differ from the record; a file the SDK reads is present but not recorded.
    """
    directory = Path(directory)
    path = directory / META
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: cannot read it: {exc}") from exc
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or not files:
        raise CheckpointError(f"{path} records no sha256 of the checkpoint's files (written by an earlier version "
                              f"of dexter-brain): {REBUILD}")
    for name, digest in files.items():
        file = directory / name
        try:
            actual = sha256_file(file)
        except OSError as exc:
            raise CheckpointError(f"{file}: listed in meta.json but cannot be read ({exc.strerror}): {REBUILD}"
                                  ) from exc
        if actual != digest:
            raise CheckpointError(f"{file}: its sha256 differs from the one recorded in meta.json (the file is "
                                  f"corrupt or was changed after the checkpoint was written): restore it or "
                                  f"{REBUILD}")
    for name in READ_FILES:
        if name not in files and (directory / name).exists():
            raise CheckpointError(f"{directory / name}: not recorded in meta.json (files are added to a checkpoint "
                                  f"with dexter_brain.checkpoint.write_checkpoint_file): {REBUILD}")
    return meta


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint directory, or a training output directory holding ``best/``."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not (path / WEIGHTS).exists() and (path / "best" / WEIGHTS).exists():
        return path / "best"
    missing = [f for f in REQUIRED_FILES if not (path / f).exists()]
    if missing:
        raise CheckpointError(f"{path} is not a complete checkpoint: missing {', '.join(missing)}")
    return path


def load_checkpoint(path: str | Path, *, kind: TrmKind | None = None, device: str | torch.device = "cpu"
                    ) -> tuple[RecursiveModel, Vocabulary, dict, dict, Path]:
    """Rebuild a model from a checkpoint directory and check that its parts fit together.

    Returns:
        (model in eval mode, vocabulary, featurizer state, meta, resolved directory).

    Raises:
        CheckpointError: Missing or corrupt files, a different TRM kind, or a vocabulary that does not
            match the model.
    """
    directory = resolve_checkpoint(path)
    meta = read_meta(directory)
    try:
        config = ModelConfig.from_checkpoint(directory)
    except Exception as exc:  # pydantic ValidationError or JSON error: say which file
        raise CheckpointError(f"{directory / 'config.json'}: invalid model config: {exc}") from exc
    if kind is not None and config.kind != kind:
        raise CheckpointError(f"{directory} holds a {config.kind} TRM, not a {kind} TRM")
    try:
        vocab = Vocabulary.from_file(directory / "tokenizer.model")
    except Exception as exc:
        raise CheckpointError(f"{directory / 'tokenizer.model'}: not a valid vocabulary: {exc}") from exc
    if vocab.vocab_size != config.vocab_size:
        raise CheckpointError(f"{directory}: tokenizer has {vocab.vocab_size} pieces but the model expects "
                              f"{config.vocab_size}")
    model = RecursiveModel(config)
    try:
        state = load_file(str(directory / WEIGHTS))
    except Exception as exc:
        raise CheckpointError(f"{directory / WEIGHTS}: cannot read weights: {exc}") from exc
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{directory / WEIGHTS}: weights do not match config.json: {exc}") from exc
    try:
        featurizer = json.loads((directory / "featurizer.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{directory / 'featurizer.json'}: cannot read it: {exc}") from exc
    if not isinstance(featurizer, dict):
        raise CheckpointError(f"{directory / 'featurizer.json'}: expected a JSON object, got "
                              f"{type(featurizer).__name__}: {REBUILD}")
    try:
        scorer = json.loads((directory / SCORER).read_text(encoding="utf-8"))
        model.set_floor(LinearFloor.from_json(scorer["floor"]))
        model.use_residual = bool(scorer["residual"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{directory / SCORER}: not a valid scorer: {exc}: {REBUILD}") from exc
    model.to(device).eval()
    return model, vocab, featurizer, meta, directory
