"""Built-in training callbacks: learning-rate schedule, EMA of weights, metrics log, progress bar,
best/last checkpoints (and resume), early stopping. Each implements the four ``Callback`` hooks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from dexter_brain.checkpoint import SCORER, CheckpointError, read_meta, save_checkpoint, scorer_state
from dexter_brain.io import make_temp_dir, replace_dir, write_json
from dexter_brain.training import TrainState

logger = logging.getLogger(__name__)


class _Base:
    def on_train_start(self, state: TrainState) -> None:
        pass

    def on_step_end(self, state: TrainState) -> None:
        pass

    def on_eval_end(self, state: TrainState) -> None:
        pass

    def on_train_end(self, state: TrainState) -> None:
        pass


def lr_factor(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up, then cosine decay to ``min_ratio`` of the peak."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class LRSchedule(_Base):
    """Sets every parameter group's learning rate from the step (no state of its own to save)."""

    def _apply(self, state: TrainState) -> None:
        c = state.config
        lr = c.lr * lr_factor(state.step, c.warmup_steps, c.max_steps, c.min_lr_ratio)
        for g in state.optimizer.param_groups:
            g["lr"] = lr

    on_train_start = _apply
    on_step_end = _apply


class EMA(_Base):
    """Keeps an exponential moving average of the weights in ``state.ema`` (used for eval and ``best``)."""

    def __init__(self, decay: float):
        self.decay = decay

    def on_train_start(self, state: TrainState) -> None:
        if state.ema is None:
            state.ema = {k: v.detach().clone().float() for k, v in state.model.state_dict().items()}

    @torch.no_grad()
    def on_step_end(self, state: TrainState) -> None:
        # Warm-up of the decay so early evaluations are not dominated by the random initialisation.
        d = min(self.decay, (1 + state.step) / (10 + state.step))
        for k, v in state.model.state_dict().items():
            if v.is_floating_point():
                state.ema[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                state.ema[k].copy_(v)


class MetricsLogger(_Base):
    """Appends training and evaluation records to ``metrics.jsonl`` (rank 0 only)."""

    def __init__(self, path: Path, every: int = 10):
        self.path, self.every = Path(path), every

    def on_train_start(self, state: TrainState) -> None:
        if not state.is_main:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A resumed run drops what an interrupted run logged after its last checkpoint.
        if self.path.exists():
            kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                    if line.strip() and json.loads(line).get("step", 0) <= state.step]
            self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")

    def _write(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def on_step_end(self, state: TrainState) -> None:
        if state.is_main and (state.step % self.every == 0 or state.step == 1):
            self._write({"step": state.step, "loss": state.last_loss, "lr": state.optimizer.param_groups[0]["lr"],
                         "mean_steps": state.mean_steps, "stage": state.stage().max_difficulty,
                         **{f"loss_{k}": v for k, v in state.last_parts.items()}})

    def on_eval_end(self, state: TrainState) -> None:
        if state.is_main:
            self._write({"step": state.step, "eval": state.metrics})


class SaveConfig(_Base):
    """Writes the run's TrainConfig to ``path`` (``train_config.json``) when training starts (rank 0 only)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_train_start(self, state: TrainState) -> None:
        if state.is_main:
            write_json(self.path, state.config.model_dump(mode="json"))


class ProgressBar(_Base):
    """A tqdm bar with the step, loss and the last validation metric."""

    def __init__(self, desc: str, enabled: bool = True):
        self.desc, self.enabled, self.bar = desc, enabled, None

    def on_train_start(self, state: TrainState) -> None:
        self.bar = tqdm(total=state.config.max_steps, initial=state.step, desc=self.desc, mininterval=1.0,
                        disable=not (self.enabled and state.is_main), unit="step")

    def on_step_end(self, state: TrainState) -> None:
        self.bar.update(1)
        if state.step % 10 == 0:
            self.bar.set_postfix(loss=f"{state.last_loss:.3f}", refresh=False)

    def on_eval_end(self, state: TrainState) -> None:
        shown = {k: f"{v:.3f}" for k, v in state.metrics.items() if k in ("recall@5", "top1", "score")}
        self.bar.set_postfix(loss=f"{state.last_loss:.3f}", **shown)

    def on_train_end(self, state: TrainState) -> None:
        self.bar.close()


class ResumeError(CheckpointError):
    """``last/`` cannot be resumed (trained on another corpus, or for a model of another shape) and the run was
    asked to refuse rather than start afresh (``build --resume``)."""


class InitError(CheckpointError):
    """``init_from`` names a checkpoint whose weights cannot start this model: another kind, another vocabulary
    or another model shape."""


OLD_RUN = "old_run"
"""Where a run that cannot be resumed is moved when training starts afresh beside it (``<out_dir>/old_run/``)."""
RUN_ENTRIES = ("best", "best_loss", "last", "previous", "metrics.jsonl", "train_config.json")
"""What of ``out_dir`` belongs to one training run (the memory bank beside it is the user's and stays)."""


def shape_mismatch(weights: Path, model: torch.nn.Module) -> str | None:
    """Why the weights file cannot be loaded into ``model`` (a missing, extra or differently shaped tensor),
    or None when every tensor fits. Reads the file's header only."""
    from safetensors import safe_open

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    with safe_open(str(weights), framework="pt") as f:
        found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    for name in sorted(expected.keys() | found.keys()):
        if name not in found:
            return f"it has no {name}"
        if name not in expected:
            return f"it has a {name} this model lacks"
        if found[name] != expected[name]:
            return f"{name} is {list(found[name])} there, {list(expected[name])} here"
    return None


class Checkpointer(_Base):
    """Writes ``best`` (validation metric), ``best_loss`` and ``last`` (with training state) under
    ``out_dir``, and at the start of a run decides where it starts from. ``last`` is written at every
    evaluation (and between them by ``TimedCheckpoint``).

    How a run starts (``start``, also logged in one line):

    - ``resumed``: ``last/`` holds a run of this corpus for a model of this shape; it continues
      (``finished`` when that run had already reached ``max_steps`` or stopped early: nothing to train).
    - ``restarted``: ``last/`` holds a run of another corpus or another model shape. With
      ``on_other_run="restart"`` (what ``train`` does) the old run (``best/``, ``last/``, ``metrics.jsonl``,
      ...) is moved into ``out_dir/old_run/`` and training starts afresh; with ``"refuse"`` (``build --resume``,
      which must never silently drop a run) a ``ResumeError`` is raised instead.
    - ``initialised``: a fresh run whose weights come from ``init_from`` (a checkpoint of the same kind,
      vocabulary and model shape; anything else is an ``InitError`` raised before anything is moved).
    - ``fresh``: a fresh run from the random initialisation.
    """

    def __init__(self, out_dir: Path, *, tokenizer: bytes, featurizer: dict, meta: dict, resume: bool = True,
                 on_other_run: str = "restart", init_from: Path | None = None,
                 best_dtype: torch.dtype = torch.float16):
        if on_other_run not in ("restart", "refuse"):
            raise ValueError(f"on_other_run must be 'restart' or 'refuse', got {on_other_run!r}")
        self.out_dir, self.tokenizer, self.featurizer = Path(out_dir), tokenizer, featurizer
        self.meta, self.resume, self.best_dtype = dict(meta), resume, best_dtype
        self.on_other_run = on_other_run
        self.init_from = Path(init_from) if init_from is not None else None
        self._saved_at = -1
        self.start: str = "fresh"
        """How the run started: fresh, initialised, resumed, finished (resumed with nothing left) or
        restarted (afresh beside a run that could not be resumed; ``initialised`` wins when both apply)."""
        self.message: str = ""
        """The one line that says how the run started (empty for a plain fresh run)."""

    def on_train_start(self, state: TrainState) -> None:
        last = self.out_dir / "last"
        # Read and check the init weights before anything moves: they may live in this very run (best/).
        init = self._init_weights(state) if self.init_from is not None else None
        notes = []
        if self.resume and (last / "train_state.json").exists():
            meta = read_meta(last)  # checks every file's sha256: a corrupt last/ is an error, never replaced
            reason = self._why_not_resumable(last, meta, state)
            if reason is None:
                self._restore(last, meta, state)
                if init is not None:
                    self.message += f" ({self.init_from} is not used: a run that resumes keeps its own weights)"
                return
            if self.on_other_run == "refuse":
                raise ResumeError(reason)
            kept = self._move_old_run()
            self.start = "restarted"
            notes.append(f"{reason.split(': start afresh')[0]}: starting afresh (the old run is kept in {kept})")
        if init is not None:
            state.model.load_state_dict(init, strict=True)
            state.init_from = str(self.init_from)
            self.meta["init_from"] = str(self.init_from)
            self.start = "initialised"
            notes.append(f"initialised from {self.init_from} (same vocabulary and model shape)")
        self.message = "; ".join(notes)
        if self.message:
            logger.info("%s", self.message)

    def _restore(self, last: Path, meta: dict, state: TrainState) -> None:
        try:
            scalars = json.loads((last / "train_state.json").read_text(encoding="utf-8"))
            state.model.load_state_dict(load_file(str(last / "model.safetensors")), strict=True)
            state.restore(load_file(str(last / "train_state.safetensors")), scalars)
        except (RuntimeError, KeyError, ValueError) as exc:  # another optimizer state than this run's
            raise ResumeError(f"{last / 'train_state.json'}: the run in {last} does not fit the run being "
                              f"trained ({str(exc).splitlines()[0]}): start afresh (train: --no-resume; build: "
                              f"without --resume)") from exc
        self._saved_at = state.step
        trained_from = meta.get("init_from")
        if trained_from:
            self.meta["init_from"] = trained_from
        patience = state.config.early_stopping_patience
        if state.step >= state.config.max_steps or state.should_stop or (
                patience and state.evals_without_improvement >= patience):
            self.start = "finished"
            self.message = (f"the run in {last} already finished at step {state.step} (max_steps "
                            f"{state.config.max_steps}): nothing to train (--no-resume trains it again)")
        else:
            self.start = "resumed"
            self.message = f"resuming {last} at step {state.step}"
        logger.info("Resuming from %s at step %d", last, state.step)

    def _why_not_resumable(self, last: Path, meta: dict, state: TrainState) -> str | None:
        """Why ``last/`` (whose checked ``meta.json`` is ``meta``) cannot be continued (another corpus, another
        model shape), or None."""
        trained_on, training_on = meta.get("corpus_fingerprint"), self.meta.get("corpus_fingerprint")
        if trained_on != training_on:
            return (f"{last} was trained on another corpus (fingerprint {str(trained_on)[:12]}, this corpus "
                    f"{str(training_on)[:12]}): start afresh (train: --no-resume; build: without --resume), or "
                    f"train into another --models-dir")
        mismatch = shape_mismatch(last / "model.safetensors", state.model)
        if mismatch is not None:
            return (f"{last / 'model.safetensors'}: the run in {last} does not fit the model being trained "
                    f"({mismatch}): start afresh (train: --no-resume; build: without --resume)")
        return None

    def _move_old_run(self) -> Path:
        """Move the run in ``out_dir`` (not the memory bank beside it) into ``out_dir/old_run/``, replacing an
        older one; returns where it went."""
        tmp = make_temp_dir(self.out_dir, prefix=f".{OLD_RUN}.")
        for name in RUN_ENTRIES:
            if (self.out_dir / name).exists():
                os.replace(self.out_dir / name, tmp / name)
        replace_dir(tmp, self.out_dir / OLD_RUN)
        return self.out_dir / OLD_RUN

    def _init_weights(self, state: TrainState) -> dict[str, torch.Tensor]:
        """The weights of ``init_from`` (a checkpoint directory, or a training directory holding ``best/``),
        checked to fit this run: same kind, same vocabulary (tokenizer sha256), same model shape."""
        from dexter_brain.checkpoint import WEIGHTS, resolve_checkpoint
        from dexter_brain.config import ModelConfig

        given = self.init_from
        try:
            directory = resolve_checkpoint(given)
            recorded = read_meta(directory)["files"]
            config = ModelConfig.from_checkpoint(directory)
        except CheckpointError as exc:
            raise InitError(f"--init-from {given}: {exc}") from exc
        except (OSError, ValueError) as exc:
            raise InitError(f"--init-from {given}: not a checkpoint ({str(exc).splitlines()[0]})") from exc
        kind = state.config.model.kind
        if config.kind != kind:
            raise InitError(f"--init-from {given}: it holds a {config.kind} TRM, not a {kind} TRM")
        theirs = recorded.get("tokenizer.model", "none")  # checked by read_meta
        ours = hashlib.sha256(self.tokenizer).hexdigest()
        if theirs != ours:
            raise InitError(f"--init-from {given}: it was trained with another vocabulary (tokenizer sha256 "
                            f"{theirs[:12]}, this corpus {ours[:12]}): its token embeddings would mean other "
                            f"words; train without --init-from to start afresh")
        mismatch = shape_mismatch(directory / WEIGHTS, state.model)
        if mismatch is not None:
            raise InitError(f"--init-from {given}: its model has another shape than the one being trained "
                            f"({mismatch}): give the same model sizes (e.g. --quick as it was trained), or train "
                            f"without --init-from")
        weights = load_file(str(directory / WEIGHTS))
        return {k: v.float() if v.is_floating_point() else v for k, v in weights.items()}

    def _meta(self, state: TrainState, which: str) -> dict:
        return {**self.meta, "which": which, "step": state.step, "epoch": state.epoch,
                "seed": state.config.seed, "metrics": state.metrics, "best_metric": state.best_metric,
                "best_loss": state.best_loss}

    def _save(self, state: TrainState, which: str, *, weights=None, dtype=None, with_state=False) -> None:
        model = state.model
        # ``best`` keeps the residual only when it beat the floor alone on validation: the step-0 evaluation
        # (before any training) is the floor, and ``best`` is replaced only by a strictly better one.
        # Without validation nothing shows that the residual helps: the floor alone ships.
        beats_floor = state.best_metric > state.floor_metric if math.isfinite(state.floor_metric) else False
        trained = state.step > 0 or state.init_from is not None  # an initialised residual is trained already
        residual = which != "best" or (trained and beats_floor)
        scorer = scorer_state(model, floor_val=_finite(state.floor_metric), full_val=_finite(state.best_metric))
        scorer["residual"] = residual
        save_checkpoint(self.out_dir / which, model, meta=self._meta(state, which), tokenizer=self.tokenizer,
                        featurizer=self.featurizer, weights=weights, weights_dtype=dtype,
                        train_state=(state.tensors(), state.scalars()) if with_state else None,
                        extra_json={SCORER: scorer})

    def save_last(self, state: TrainState) -> None:
        """Write ``last`` with the whole training state (what a resume needs)."""
        if state.is_main and self._saved_at != state.step:
            self._save(state, "last", with_state=True)
            self._saved_at = state.step

    def on_eval_end(self, state: TrainState) -> None:
        if not state.is_main:
            return
        weights = state.ema if state.ema is not None else None
        if state.improved:
            self._save(state, "best", weights=weights, dtype=self.best_dtype)
        if state.improved_loss:
            self._save(state, "best_loss", weights=weights, dtype=self.best_dtype)
        self._save(state, "last", with_state=True)
        self._saved_at = state.step

    def on_train_end(self, state: TrainState) -> None:
        if not state.is_main:
            return
        if self._saved_at != state.step:
            self._save(state, "last", with_state=True)
        if not (self.out_dir / "best").exists():
            # No validation split: the final (EMA) weights are the best we have.
            self._save(state, "best", weights=state.ema, dtype=self.best_dtype)


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


class TimedCheckpoint(_Base):
    """Writes ``last`` through the ``Checkpointer`` once ``every_seconds`` have passed since it last did, so a
    killed run loses at most that much training (without it, a kill before the first evaluation loses all).
    It must come after every other callback: the step's state (EMA, schedule) is then complete."""

    def __init__(self, checkpointer: Checkpointer, every_seconds: float, clock=time.monotonic):
        self.checkpointer, self.every_seconds, self.clock = checkpointer, every_seconds, clock
        self._since = clock()

    def on_eval_end(self, state: TrainState) -> None:
        self._since = self.clock()  # the evaluation wrote ``last``

    def on_step_end(self, state: TrainState) -> None:
        if self.every_seconds > 0 and self.clock() - self._since >= self.every_seconds:
            self.checkpointer.save_last(state)
            self._since = self.clock()


class EarlyStopping(_Base):
    """Stops when the validation metric has not improved for ``patience`` evaluations."""

    def __init__(self, patience: int):
        self.patience = patience

    def on_train_start(self, state: TrainState) -> None:
        # A resumed run that had already run out of patience stays stopped.
        if self.patience and state.evals_without_improvement >= self.patience:
            state.should_stop = True

    def on_eval_end(self, state: TrainState) -> None:
        if self.patience and state.evals_without_improvement >= self.patience:
            logger.info("early stopping at step %d: no improvement in %d evaluations", state.step, self.patience)
            state.should_stop = True
