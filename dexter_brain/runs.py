"""Library entry points for training: ``train_trm`` trains one TRM from a corpus directory into
``models/<kind>/`` (``best/``, ``best_loss/``, ``last/``, ``metrics.jsonl``, ``train_config.json``).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from dexter_brain.callbacks import (
    EMA, Checkpointer, EarlyStopping, LRSchedule, MetricsLogger, ProgressBar, SaveConfig, TimedCheckpoint,
)
from dexter_brain.config import ModelConfig, TrainConfig, TrmKind
from dexter_brain.data import CorpusNotFoundError, load_split
from dexter_brain.io import read_json
from dexter_brain.objectives import head_for
from dexter_brain.training import Trainer, init_distributed

logger = logging.getLogger(__name__)

# A smoke-test budget (``--quick``): a smaller model, 20 steps of 16 examples and one evaluation of 100, so every
# TRM trains in seconds on a busy 2-core machine. It checks that the pipeline runs end to end, not quality.
# One thread: the matrices are tiny, and on a machine busy with other jobs the threads torch starts by default
# spin against them (a quick build trained in 41 s with two threads, 5 s with one; README "Figures").
QUICK = dict(max_steps=20, batch_size=16, eval_every=20, warmup_steps=2, eval_max_examples=100, num_threads=1,
             early_stopping_patience=0)
QUICK_MODEL = dict(hidden_size=64, num_layers=1, num_improvement_steps=2, num_latent_updates=2)
EPOCHS = 4
"""The residual's budget: this many passes over the training rows (bounded by STEP_RANGE), evaluated four
times, stopping early after two evaluations without improvement. It starts at the floor, so it needs
only to learn what the features miss, and with few labels it over-fits fast."""
STEP_RANGE = (100, 1200)
CHOICES = {"memory": {}, "tool": {}, "reasoning": dict(text_dropout=0.5)}
"""Per-kind training choices: plans must follow the stored plans' evidence rather than memorised goal texts
(half the examples are scored without text match)."""


def budget_steps(rows: int, batch_size: int, epochs: float = EPOCHS,
                 step_range: tuple[int, int] = STEP_RANGE) -> int:
    """Steps for ``epochs`` passes over ``rows`` training rows, within ``step_range``."""
    return int(min(max(epochs * rows / batch_size, step_range[0]), step_range[1]))


def budget(rows: int, batch_size: int) -> dict:
    """``max_steps``, ``eval_every``, ``warmup_steps`` and ``early_stopping_patience`` for ``rows`` training rows."""
    steps = budget_steps(rows, batch_size)
    every = max(steps // 4, 1)
    return dict(max_steps=steps, eval_every=every, warmup_steps=min(100, steps // 5),
                early_stopping_patience=2)


def default_train_config(kind: TrmKind, data_path: str | Path, out_dir: str | Path, *, quick: bool = False,
                         seed: int = 0, device: str = "auto", model_overrides: dict | None = None,
                         **overrides) -> TrainConfig:
    """The TrainConfig ``train_trm`` uses: default model sizes (``QUICK_MODEL`` with ``quick``;
    ``model_overrides`` changes them), dimensions read from the corpus, ``overrides`` for TrainConfig fields."""
    data_path = Path(data_path)
    if quick:
        model_overrides = {**QUICK_MODEL, **(model_overrides or {})}
    manifest = read_json(data_path / "manifest.json")
    train = load_split(data_path, kind, "train")
    model = ModelConfig.default(kind, vocab_size=manifest["vocab"]["vocab_size"],
                                num_candidate_features=train.num_candidate_features,
                                num_query_features=train.num_query_features, num_modes=train.floor.num_modes)
    model = ModelConfig.model_validate({
        **model.model_dump(), "max_query_len": manifest["lengths"]["max_query_len"],
        "max_candidate_len": manifest["lengths"]["max_candidate_len"], **(model_overrides or {})})
    fields = dict(model=model, data_dir=data_path, out_dir=Path(out_dir), seed=seed, device=device,
                  eval_max_examples=1000, **budget(len(train), TrainConfig.model_fields["batch_size"].default),
                  **CHOICES[kind])
    if quick:
        fields.update(QUICK)
    fields.update(overrides)
    return TrainConfig(**fields)


def train_trm(trm_type: TrmKind, data_path: str | Path = "datasets/offline", out_dir: str | Path | None = None,
              *, config: TrainConfig | None = None, quick: bool = False, seed: int = 0, device: str = "auto",
              resume: bool = True, on_other_run: str = "restart", init_from: str | Path | None = None,
              train_episodes: Sequence[int] | None = None, show_progress_bar: bool | None = None,
              **overrides) -> dict:
    """Train one TRM on its corpus and write its checkpoints.

    Args:
        trm_type: ``memory``, ``tool`` or ``reasoning``.
        data_path: Corpus directory written by ``generate_corpora``.
        out_dir: Where checkpoints go; defaults to ``models/<trm_type>``.
        config: A full TrainConfig (overrides every other choice).
        quick: A smoke-test budget (``QUICK``, ``QUICK_MODEL``: seconds per TRM).
        seed: Seeds initialisation, data order and exploration.
        device: ``auto``, ``cpu`` or ``cuda``.
        resume: Continue from ``out_dir/last`` when it holds a run of this corpus for a model of this shape.
        on_other_run: What to do when ``out_dir/last`` holds a run of another corpus or model shape:
            ``restart`` moves that run into ``out_dir/old_run/`` and starts afresh (``train``); ``refuse`` raises
            a ``ResumeError`` (``build --resume``).
        init_from: Start a fresh run from this checkpoint's weights (a ``best/`` directory, or a training
            directory holding one) instead of a random initialisation; it must be of this kind, vocabulary and
            model shape. Ignored when the run resumes.
        train_episodes: Train on these episodes of the training split only (indices in its episode order);
            the floor stays the one the corpus build fitted on the whole split. None: every episode.
        show_progress_bar: None means on when logging shows INFO.
        **overrides: TrainConfig fields to change (e.g. ``max_steps=200``).

    Returns:
        A summary dict: ``kind``, ``steps``, ``seconds``, ``examples_per_second``, ``best_metric``,
        ``metrics`` (last validation), ``out_dir``, ``start`` (fresh, initialised, resumed, finished or
        restarted: see ``Checkpointer``) and ``message`` (the one line saying how it started; empty for a
        plain fresh run).

    Raises:
        CorpusNotFoundError: The corpus has no training data for this TRM.
        ResumeError: ``on_other_run="refuse"`` and ``out_dir/last`` holds a run of another corpus or shape.
        InitError: ``init_from`` is not a checkpoint of this kind, vocabulary and model shape.
    """
    data_path = Path(data_path)
    out_dir = Path(out_dir or Path("models") / trm_type)
    init_distributed(device)
    if config is None:
        config = default_train_config(trm_type, data_path, out_dir, quick=quick, seed=seed, device=device,
                                      **overrides)
    if show_progress_bar is None:
        show_progress_bar = logger.getEffectiveLevel() <= logging.INFO
    train = load_split(data_path, trm_type, "train")
    if train_episodes is not None:
        train = train.episode_subset(train_episodes)
    try:
        val = load_split(data_path, trm_type, "val")
    except CorpusNotFoundError:
        val = None
        logger.warning("%s: no validation split; `best` will be the final weights", trm_type)
    manifest = read_json(data_path / "manifest.json")
    featurizer = read_json(data_path / trm_type / "featurizer.json")
    tokenizer = (data_path / "vocab" / "tokenizer.model").read_bytes()
    meta = {"kind": trm_type, "corpus_fingerprint": manifest["fingerprint"], "manifest_version": manifest["version"],
            "vocab_sha256": hashlib.sha256(tokenizer).hexdigest()}
    head = head_for(trm_type)
    checkpointer = Checkpointer(out_dir, tokenizer=tokenizer, featurizer=featurizer, meta=meta, resume=resume,
                                on_other_run=on_other_run, init_from=Path(init_from) if init_from else None)
    callbacks = [
        checkpointer,
        SaveConfig(out_dir / "train_config.json"),  # once the checkpointer has decided (and moved an old run)
        LRSchedule(),
        *([EMA(config.ema_decay)] if config.ema_decay > 0 else []),
        MetricsLogger(out_dir / "metrics.jsonl"),
        ProgressBar(f"train {trm_type}", enabled=show_progress_bar),
        EarlyStopping(config.early_stopping_patience),
        TimedCheckpoint(checkpointer, config.checkpoint_every_seconds),  # last: the step's state is complete
    ]
    trainer = Trainer(config, head, train, val, callbacks=callbacks)
    start_step = trainer.state.step
    start = time.perf_counter()
    state = trainer.fit()
    seconds = time.perf_counter() - start
    steps = state.step - start_step
    return {
        "kind": trm_type, "steps": state.step, "seconds": round(seconds, 2),
        "examples_per_second": round(steps * config.batch_size / seconds, 1) if seconds > 0 else 0.0,
        "best_metric": state.best_metric, "primary_metric": head.primary_metric, "metrics": state.metrics,
        "out_dir": str(out_dir), "start": checkpointer.start, "message": checkpointer.message,
    }
