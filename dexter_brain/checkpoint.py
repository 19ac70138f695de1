"""Checkpoint directories: safetensors weights + JSON, self-contained, written atomically.

A checkpoint directory holds ``model.safetensors``, ``config.json`` (ModelConfig), ``meta.json`` (step,
metrics, seed, corpus fingerprint, versions), ``tokenizer.model``, ``featurizer.json`` (the bank or index
the wrapper needs), ``scorer.json`` (the fitted linear floor and whether the recursive residual is used)
and, in ``last/`` only, ``train_state.safetensors`` + ``train_state.json``. Nothing is ever pickled.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from dexter_brain import __version__
from dexter_brain.config import ModelConfig, TrmKind
from dexter_brain.floor import LinearFloor
from dexter_brain.io import dump_json
from dexter_brain.model import RecursiveModel
from dexter_brain.vocab import Vocabulary

WEIGHTS = "model.safetensors"
SCORER = "scorer.json"
REQUIRED_FILES = ("model.safetensors", "config.json", "meta.json", "tokenizer.model", "featurizer.json", SCORER)


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
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        state = weights if weights is not None else model.state_dict()
        state = {k: (v.detach().to(weights_dtype) if weights_dtype is not None and v.is_floating_point()
                     else v.detach()).contiguous().cpu() for k, v in state.items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt", "dtype": str(weights_dtype or "float32")})
        (tmp / "config.json").write_text(model.config.to_json() + "\n", encoding="utf-8")
        full_meta = {**meta, "package_version": __version__, "torch_version": torch.__version__}
        (tmp / "meta.json").write_text(dump_json(full_meta), encoding="utf-8")
        (tmp / "tokenizer.model").write_bytes(tokenizer)
        (tmp / "featurizer.json").write_text(json.dumps(featurizer, ensure_ascii=False, sort_keys=True),
                                             encoding="utf-8")
        extra_json = {SCORER: scorer_state(model), **(extra_json or {})}
        for name, content in extra_json.items():
            (tmp / name).write_text(dump_json(content), encoding="utf-8")
        if train_state is not None:
            tensors, scalars = train_state
            save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(tmp / "train_state.safetensors"))
            (tmp / "train_state.json").write_text(dump_json(scalars), encoding="utf-8")
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


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
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{directory}: cannot read featurizer.json or meta.json: {exc}") from exc
    try:
        scorer = json.loads((directory / SCORER).read_text(encoding="utf-8"))
        model.set_floor(LinearFloor.from_json(scorer["floor"]))
        model.use_residual = bool(scorer["residual"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{directory / SCORER}: not a valid scorer: {exc}") from exc
    model.to(device).eval()
    return model, vocab, featurizer, meta, directory
