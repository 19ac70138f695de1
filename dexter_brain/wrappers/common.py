"""Helpers the three wrappers share (composition, not a base class): loading a checkpoint for a kind,
input validation with clear messages, calibrated probabilities, and the halting call with carry.
"""

from __future__ import annotations

import json
import threading
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dexter_brain.checkpoint import CheckpointError, load_checkpoint
from dexter_brain.config import InferConfig, TrmKind
from dexter_brain.features.common import Encoder
from dexter_brain.inference import CallResult, halting_call
from dexter_brain.model import RecursiveModel
from dexter_brain.vocab import Vocabulary
from dexter_brain.wrappers.carry import CarryStore

MAX_TEXT_CHARS = 8_000
CALIBRATION_FILE = "calibration.json"
BACKENDS = ("torch", "onnx", "onnx-int8")
"""How a core runs its calls: ``torch`` (the model), ``onnx`` (its fp32 ONNX export, run by onnxruntime) or
``onnx-int8`` (the int8 dynamically quantised export); see ``dexter_brain.export``."""
FEEDBACK_DIR = "feedback"
"""The feedback directory's default name, in the models directory (``models/feedback``)."""


def validate_text(value, name: str, *, allow_empty: bool = False, max_chars: int = MAX_TEXT_CHARS) -> str:
    """``value`` as a stripped string, or a clear TypeError/ValueError naming the argument."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text and not allow_empty:
        raise ValueError(f"{name} is empty")
    if len(text) > max_chars:
        raise ValueError(f"{name} is too long: {len(text)} characters (at most {max_chars})")
    return text


def validate_conversation_id(value) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"conversation_id must be a non-empty string, got {value!r}")
    return value


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@dataclass
class Calibration:
    """Temperature for the scores and the abstention threshold, fitted on the validation split."""

    temperature: float = 1.0
    abstain_below: float = 0.0
    ece: float | None = None
    ece_uncalibrated: float | None = None

    @classmethod
    def from_dir(cls, directory: Path) -> "Calibration":
        """The checkpoint's ``calibration.json``, or the neutral calibration when it has none.

        Raises:
            CheckpointError: The file is not a calibration (not JSON, or not an object of numbers).
        """
        path = directory / CALIBRATION_FILE
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise TypeError(f"expected a JSON object, got {type(data).__name__}")
            return cls(**{k: None if data[k] is None else float(data[k])
                          for k in ("temperature", "abstain_below", "ece", "ece_uncalibrated") if k in data})
        except (OSError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: not a calibration ({exc}): refit it (python -m pipelines.evaluate_trms "
                                  f"--calibrate)") from exc

    def to_dict(self) -> dict:
        return {"temperature": self.temperature, "abstain_below": self.abstain_below, "ece": self.ece,
                "ece_uncalibrated": self.ece_uncalibrated}


def softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = np.asarray(scores, dtype=np.float64) / max(temperature, 1e-6)
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def check_feature_counts(config, directory: Path) -> None:
    """The checkpoint must have been trained on the features this version computes."""
    import importlib

    module = importlib.import_module(f"dexter_brain.inputs.{config.kind}")
    expected = (len(module.CANDIDATE_FEATURES), len(module.QUERY_FEATURES))
    found = (config.num_candidate_features, config.num_query_features)
    if found != expected:
        raise CheckpointError(
            f"{directory} was trained with {found[0]} candidate and {found[1]} query features, but this version "
            f"of dexter-brain computes {expected[0]} and {expected[1]}: rebuild it (python build_trm_brain.py)")


def featurizer_from_state(cls, core: "TRMCore", **kwargs):
    """``cls.from_state`` of the checkpoint's ``featurizer.json``; a state of the wrong shape is a
    CheckpointError naming the file, not a TypeError from deep inside the featurizer."""
    try:
        return cls.from_state(core.featurizer_state, **kwargs)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CheckpointError(f"{core.directory / 'featurizer.json'}: not the state of a {core.kind} featurizer "
                              f"({type(exc).__name__}: {exc}): rebuild it (python build_trm_brain.py)") from exc


class ConversationLocks:
    """Serialises calls of one conversation (its carry is read, then written) without a lock per id
    (which would grow without bound): ids hash onto a fixed set of locks, always taken in one order."""

    def __init__(self, stripes: int = 64):
        self._locks = [threading.Lock() for _ in range(stripes)]

    @contextmanager
    def hold(self, conversation_ids: Sequence[str]) -> Iterator[None]:
        stripes = sorted({zlib.crc32(c.encode("utf-8")) % len(self._locks) for c in conversation_ids})
        for i in stripes:
            self._locks[i].acquire()
        try:
            yield
        finally:
            for i in reversed(stripes):
                self._locks[i].release()


class TRMCore:
    """What a wrapper holds of its checkpoint: the model, vocabulary, encoder, calibration, carry store
    and the halting call (tokenizing and featurizing stay in the wrapper)."""

    def __init__(self, path: str | Path, kind: TrmKind, *, use_carry: bool, device: str,
                 infer_config: InferConfig | None, carry_store: CarryStore | None, backend: str = "torch"):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend != "torch" and device not in ("cpu", "auto"):
            raise ValueError(f"the {backend} backend runs on the CPU (onnxruntime), not on {device!r}")
        self.device = resolve_device(device if backend == "torch" else "cpu")
        model, vocab, featurizer_state, meta, directory = load_checkpoint(path, kind=kind, device=self.device)
        check_feature_counts(model.config, directory)
        self.model: RecursiveModel = model
        self.vocab: Vocabulary = vocab
        self.featurizer_state = featurizer_state
        self.meta = meta
        self.directory = directory
        self.kind = kind
        self.calibration = Calibration.from_dir(directory)
        self.infer = infer_config or InferConfig(device=str(self.device))
        if self.infer.num_threads is not None:
            torch.set_num_threads(self.infer.num_threads)
        self.use_carry = use_carry
        # Not `carry_store or ...`: an empty store has len 0, so it is falsy, and would be silently replaced.
        self.carries = carry_store if carry_store is not None else CarryStore.from_config(self.infer)
        self.encoder = Encoder(vocab, model.config.max_query_len, model.config.max_candidate_len)
        self.lock = threading.RLock()
        self.conversations = ConversationLocks()
        self.backend = backend
        self.onnx = None
        """The ``OnnxBackend`` that runs the calls in place of the model (None with the torch backend)."""
        if backend != "torch":
            from dexter_brain.onnx_backend import OnnxBackend

            self.onnx = OnnxBackend(directory, model, int8=backend == "onnx-int8", max_steps=self.max_steps,
                                    num_threads=self.infer.num_threads)

    @property
    def max_steps(self) -> int:
        return self.infer.max_supervision_steps or self.model.config.max_supervision_steps

    def state_for(self, conversation_ids: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The batch's starting (y, z): each conversation's carry, or the learned initial state."""
        if not self.use_carry:
            return None
        carries = [self.carries.get(c) for c in conversation_ids]
        if all(c is None for c in carries):
            return None
        y0, z0 = self.model.initial_state(1)
        ys = [c.y.to(self.device) if c is not None else y0[0] for c in carries]
        zs = [c.z.to(self.device) if c is not None else z0[0] for c in carries]
        return torch.stack(ys), torch.stack(zs)

    def call(self, batch: dict[str, torch.Tensor], conversation_ids: Sequence[str]) -> CallResult:
        state = self.state_for(conversation_ids)
        if self.onnx is not None:
            return self.onnx.call(batch, state, max_steps=self.max_steps, threshold=self.infer.halt_threshold)
        return halting_call(self.model, batch, state, max_steps=self.max_steps, threshold=self.infer.halt_threshold)

    def encode_candidates(self, cand_ids: np.ndarray) -> torch.Tensor:
        """(N, C) candidate token ids -> (N, D) encodings, on the core's backend."""
        if self.onnx is not None:
            return self.onnx.encode_candidates(cand_ids)
        return self.model.encode_candidates(self.tensor(cand_ids, torch.long))

    def keep_carry(self, conversation_ids: Sequence[str], result: CallResult, extras: Sequence[dict] | None = None
                   ) -> None:
        if not self.use_carry:
            return
        for i, cid in enumerate(conversation_ids):
            self.carries.put(cid, result.out.y[i], result.out.z[i], **((extras or [{}] * len(conversation_ids))[i]))

    def tensor(self, array: np.ndarray, dtype=None) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(array))
        return t.to(self.device, dtype=dtype) if dtype is not None else t.to(self.device)

    def describe(self) -> dict:
        params = sum(p.numel() for p in self.model.parameters())
        size = sum(f.stat().st_size for f in self.directory.iterdir() if f.is_file())
        return {"kind": self.kind, "parameters": params, "size_mb": round(size / 1e6, 2),
                "vocab_size": self.vocab.vocab_size, "hidden_size": self.model.config.hidden_size,
                "layers": self.model.config.num_layers, "max_supervision_steps": self.max_steps,
                "checkpoint": str(self.directory), "backend": self.backend, "step": self.meta.get("step"),
                "package_version": self.meta.get("package_version")}


def models_dir_of(checkpoint_dir: Path) -> Path:
    """The models directory of a checkpoint at ``<models_dir>/<kind>/best``."""
    return checkpoint_dir.parent.parent


class FeedbackSink:
    """The ``FeedbackLog`` a wrapper appends to, opened on the first feedback: loading a brain writes nothing, so a
    read-only models directory still serves.

    Args:
        directory: The feedback directory; None means ``<models_dir>/feedback`` of ``checkpoint_dir``.
        checkpoint_dir: The wrapper's checkpoint (``models/<kind>/best``): its models directory's
            ``build_state.json`` names the raw directory the brain was built from, which is refused as the
            feedback directory even while it is empty.
        facts: The fact lookup the log copies referenced facts from (the memory wrapper's bank).
    """

    def __init__(self, directory: str | Path | None, checkpoint_dir: Path, facts=None):
        models_dir = models_dir_of(checkpoint_dir)
        self.directory = Path(directory) if directory is not None else models_dir / FEEDBACK_DIR
        self.raw_dir = _built_from(models_dir)
        self.facts = facts
        self._log = None
        self._lock = threading.Lock()

    @property
    def log(self):
        """The open ``FeedbackLog`` (raises ``FeedbackError``, a ValueError, for a directory it may not use)."""
        from dexter_brain.feedback import FeedbackLog

        with self._lock:
            if self._log is None:
                self._log = FeedbackLog(self.directory, facts=self.facts, raw_dir=self.raw_dir)
            return self._log


def _built_from(models_dir: Path) -> Path | None:
    """The raw directory ``models_dir/build_state.json`` says the brain was built from, if it still exists."""
    try:
        raw = json.loads((models_dir / "build_state.json").read_text(encoding="utf-8"))["settings"]["raw"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = Path(raw) if Path(raw).is_absolute() else Path.cwd() / raw
    return path if path.is_dir() else None


def validate_ids(values, name: str) -> list[str]:
    """A list of non-empty id strings, or a clear TypeError/ValueError naming the argument."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise TypeError(f"{name} must be a list of ids, got {type(values).__name__}")
    for i, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}[{i}] must be a non-empty string, got {value!r}")
    return list(dict.fromkeys(values))


def padded(feats: Sequence[np.ndarray], index: Sequence[Sequence[int]], num_features: int
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of candidate features and ids as (B, K, F) features, (B, K) ids (-1 past a row's end) and the
    (B, K) mask, K the longest row (at least 1)."""
    B, K = len(feats), max([len(f) for f in feats] + [1])
    out = np.zeros((B, K, num_features), dtype=np.float32)
    ids = np.full((B, K), -1, dtype=np.int64)
    for b, (f, i) in enumerate(zip(feats, index)):
        out[b, : len(f)], ids[b, : len(f)] = f, i
    return out, ids, ids >= 0


def check_conversations(conversation_ids: Sequence[str], n: int) -> list[str]:
    if isinstance(conversation_ids, str):
        return [conversation_ids] * n
    ids = [validate_conversation_id(c) for c in conversation_ids]
    if len(ids) != n:
        raise ValueError(f"got {n} inputs but {len(ids)} conversation ids")
    return ids


def split_by_conversation(conversation_ids: Sequence[str]) -> list[list[int]]:
    """Group batch positions into waves in which every conversation appears at most once (keeps order)."""
    waves: list[list[int]] = []
    seen_in: list[set[str]] = []
    last_wave: dict[str, int] = {}
    for i, cid in enumerate(conversation_ids):
        w = last_wave.get(cid, -1) + 1
        while len(waves) <= w:
            waves.append([])
            seen_in.append(set())
        waves[w].append(i)
        seen_in[w].add(cid)
        last_wave[cid] = w
    return waves


__all__ = ["CheckpointError", "TRMCore", "Calibration", "featurizer_from_state", "validate_text", "softmax",
           "check_conversations", "split_by_conversation", "MAX_TEXT_CHARS", "FeedbackSink", "validate_ids"]
