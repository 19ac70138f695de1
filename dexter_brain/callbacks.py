"""Built-in training callbacks: learning-rate schedule, EMA of weights, metrics log, progress bar,
best/last checkpoints (and resume), early stopping. Each implements the four ``Callback`` hooks.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

import torch
from safetensors.torch import load_file
from tqdm.auto import tqdm

from dexter_brain.checkpoint import SCORER, CheckpointError, read_meta, save_checkpoint, scorer_state
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
    """``last/`` cannot be resumed: trained on another corpus, or for a model of another shape."""


class Checkpointer(_Base):
    """Writes ``best`` (validation metric), ``best_loss`` and ``last`` (with training state) under
    ``out_dir``, and restores ``last`` at the start of a run when it exists (resume). ``last`` is written at
    every evaluation (and between them by ``TimedCheckpoint``)."""

    def __init__(self, out_dir: Path, *, tokenizer: bytes, featurizer: dict, meta: dict, resume: bool = True,
                 best_dtype: torch.dtype = torch.float16):
        self.out_dir, self.tokenizer, self.featurizer = Path(out_dir), tokenizer, featurizer
        self.meta, self.resume, self.best_dtype = meta, resume, best_dtype
        self._saved_at = -1

    def on_train_start(self, state: TrainState) -> None:
        last = self.out_dir / "last"
        if self.resume and (last / "train_state.json").exists():
            self._check_resumable(last)
            try:
                scalars = json.loads((last / "train_state.json").read_text(encoding="utf-8"))
                state.model.load_state_dict(load_file(str(last / "model.safetensors")), strict=True)
                state.restore(load_file(str(last / "train_state.safetensors")), scalars)
            except (RuntimeError, KeyError, ValueError) as exc:  # another model size, or another optimizer state
                raise ResumeError(f"{last / 'model.safetensors'}: the run in {last} does not fit the model "
                                  f"being trained ({str(exc).splitlines()[0]}): start afresh (train: "
                                  f"--no-resume; build: without --resume)") from exc
            self._saved_at = state.step
            logger.info("Resuming from %s at step %d", last, state.step)

    def _check_resumable(self, last: Path) -> None:
        """``last/`` must be intact (every file's sha256) and trained on this corpus, or nothing resumes."""
        meta = read_meta(last)
        trained_on, training_on = meta.get("corpus_fingerprint"), self.meta.get("corpus_fingerprint")
        if trained_on != training_on:
            raise ResumeError(f"{last} was trained on another corpus (fingerprint {str(trained_on)[:12]}, this "
                              f"corpus {str(training_on)[:12]}): start afresh (train: --no-resume; build: without "
                              f"--resume), or train into another --models-dir")

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
        residual = which != "best" or (state.step > 0 and beats_floor)
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
