"""Configs, one per job: ``ModelConfig`` (architecture, saved with the weights), ``TrainConfig`` (optimiser,
schedule, curriculum, callbacks; embeds a ModelConfig) and ``InferConfig`` (device, halting, batch size,
carry limits).

All are frozen pydantic models that reject unknown keys, saved and loaded as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TrmKind = Literal["memory", "tool", "reasoning"]
CONFIG_VERSION = 1


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    @classmethod
    def from_file(cls, path: str | Path):
        return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))

    @classmethod
    def from_checkpoint(cls, checkpoint_dir: str | Path):
        return cls.from_file(Path(checkpoint_dir) / "config.json")

    def to_json(self) -> str:
        return self.model_dump_json(indent=2)


# Layers and cycles follow the seed design (memory 2 layers H3/L4, tool 2 layers H2/L3, reasoning 3 layers
# H4/L4). Its widths (256/192/256) are kept as the "seed" preset: on a 2-core CPU they cost 2-4x the
# latency and training time of the 128-wide default (benchmarks/latency.py, benchmarks/train.py --sizes).
SIZES = {
    "default": {
        "memory": dict(hidden_size=128, num_layers=2, num_improvement_steps=3, num_latent_updates=4),
        "tool": dict(hidden_size=128, num_layers=2, num_improvement_steps=2, num_latent_updates=3),
        "reasoning": dict(hidden_size=128, num_layers=3, num_improvement_steps=4, num_latent_updates=4),
    },
    "seed": {
        "memory": dict(hidden_size=256, num_layers=2, num_improvement_steps=3, num_latent_updates=4),
        "tool": dict(hidden_size=192, num_layers=2, num_improvement_steps=2, num_latent_updates=3),
        "reasoning": dict(hidden_size=256, num_layers=3, num_improvement_steps=4, num_latent_updates=4),
    },
}


class ModelConfig(_Config):
    """The architecture of one TRM: a shared recursive core plus the head of its kind."""

    kind: TrmKind
    """Which TRM this is; decides the extra heads (failure for tool, position/complexity for reasoning)."""
    version: int = CONFIG_VERSION
    """Config format version, checked on load."""
    vocab_size: int = Field(gt=0)
    """Size of the unified sentencepiece vocabulary (id 0 is padding)."""
    embed_dim: int = 64
    """Width of the token embedding table, projected to ``hidden_size`` (keeps the table small)."""
    hidden_size: int = 256
    """Width D of the latent states and the recursive network."""
    num_layers: int = 2
    """Blocks in the recursive network f."""
    num_heads: int = 4
    """Attention heads in the input reader and (with ``mixer='attention'``) the slot mixer."""
    num_slots: int = 4
    """Latent slots S: the states y (z_H) and z (z_L) are (S, D); the carry is these two tensors."""
    mixer: Literal["attention", "mlp"] = "mlp"
    """How f mixes information across slots: an MLP over the (fixed) slot axis, or self-attention.
    The MLP mixer reads 40 % fewer weights per call, which is what CPU latency is bound by."""
    expansion: float = 8 / 3
    """SwiGLU hidden width as a multiple of ``hidden_size``."""
    num_latent_updates: int = 4  # n (L_cycles)
    """Latent updates z = f(z + y + x) per improvement step."""
    num_improvement_steps: int = 3  # T (H_cycles)
    """Improvement steps per supervision step; all but the last run without gradient."""
    max_supervision_steps: int = 4  # N_sup
    """Upper bound on supervision (halting) steps per call."""
    max_query_len: int = 48
    """Query tokens read by the input reader; longer queries keep their first tokens."""
    max_candidate_len: int = 32
    """Tokens per candidate text (fact, tool name + description, plan step)."""
    num_candidate_features: int = Field(ge=0)
    """F: hand-made features per (query, candidate) pair (see ``dexter_brain.features``)."""
    num_query_features: int = Field(ge=0)
    """G: hand-made features of the query alone."""
    scorer_hidden: int = 64
    """H: hidden width of the per-candidate scorer."""
    num_modes: int = Field(default=1, ge=1)
    """M: sets of floor weights (reasoning: 2, plan and next step; the others 1)."""

    @model_validator(mode="after")
    def _check(self) -> "ModelConfig":
        if self.mixer == "attention" and self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads})"
            )
        if self.version != CONFIG_VERSION:
            raise ValueError(f"config version {self.version} is not supported (expected {CONFIG_VERSION})")
        return self

    @property
    def swiglu_hidden(self) -> int:
        return int(round(self.hidden_size * self.expansion / 8)) * 8

    @property
    def calls_per_supervision_step(self) -> int:
        return self.num_improvement_steps * (self.num_latent_updates + 1)

    @classmethod
    def default(cls, kind: TrmKind, *, vocab_size: int, num_candidate_features: int,
                num_query_features: int, num_modes: int = 1, preset: Literal["default", "seed"] = "default"
                ) -> "ModelConfig":
        """Default sizes per kind (see ``SIZES``)."""
        sizes = SIZES[preset][kind]
        return cls(kind=kind, vocab_size=vocab_size, num_candidate_features=num_candidate_features,
                   num_query_features=num_query_features, num_modes=num_modes, **sizes)

    @classmethod
    def tiny(cls, kind: TrmKind = "memory", *, vocab_size: int = 320, num_candidate_features: int = 4,
             num_query_features: int = 2, num_modes: int = 1) -> "ModelConfig":
        """A model small enough for unit tests: trains in well under a second per step on CPU."""
        return cls(kind=kind, vocab_size=vocab_size, embed_dim=16, hidden_size=32, num_layers=1, num_heads=2,
                   num_slots=2, num_latent_updates=2, num_improvement_steps=2, max_supervision_steps=3,
                   max_query_len=16, max_candidate_len=12, num_candidate_features=num_candidate_features,
                   num_query_features=num_query_features, scorer_hidden=16, num_modes=num_modes)


class CurriculumStage(_Config):
    """One stage of the difficulty curriculum; stages run in order, each until ``until`` of training."""

    until: float = Field(gt=0, le=1)
    """Fraction of ``max_steps`` at which this stage ends."""
    max_difficulty: int = Field(ge=0, le=2)
    """Hardest example admitted: 0 easy, 1 moderate, 2 hard (follow-ups, corrections, long plans)."""
    max_supervision_steps: int = Field(ge=1)
    """Supervision steps an example may take in this stage."""


class TrainConfig(_Config):
    """Everything about one training run of one TRM."""

    model: ModelConfig
    """The architecture to train (saved beside the weights)."""
    data_dir: Path
    """Corpus directory written by ``generate_trm_training_data`` (holds ``manifest.json``)."""
    out_dir: Path
    """Where ``best/``, ``last/`` and ``metrics.jsonl`` go."""
    seed: int = 0
    """Seeds data order, initialisation and halting exploration."""
    max_steps: int = 1500
    """Optimiser steps in total (one step = one supervision step of a batch of slots)."""
    batch_size: int = 64
    """Slots per step: each holds one conversation turn and its latent state."""
    lr: float = 2e-3
    """Peak learning rate after warm-up."""
    min_lr_ratio: float = 0.1
    """Cosine decay ends at ``lr * min_lr_ratio``."""
    warmup_steps: int = 100
    """Linear warm-up steps."""
    weight_decay: float = 0.05
    """AdamW decoupled weight decay (not applied to norms, biases or embeddings)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    grad_clip: float = 1.0
    """Max global gradient norm."""
    ema_decay: float = 0.995
    """EMA of weights used for evaluation and checkpoints; 0 disables it."""
    halt_loss_weight: float = 0.5
    """Weight of the halting head's BCE against "the current prediction is correct"."""
    thinking_cost: float = 0.01  # lambda
    """Cost per supervision step used, added to the loss as lambda * expected steps."""
    halt_exploration: float = 0.1
    """Share of slots forced to run a random minimum number of supervision steps."""
    fresh_start_prob: float = 0.15
    """Probability that a follow-up turn is trained from a fresh state instead of its carry."""
    text_dropout: float = Field(0.0, ge=0.0, le=1.0)
    """Share of training examples scored without the text-match terms (query vector against candidate text),
    so the candidate features must rank on their own: the model cannot lean on memorised texts."""
    eval_every: int = 250
    """Evaluate on the validation split every this many steps (and at the end)."""
    eval_max_examples: int = 2000
    """Cap on validation turns per evaluation (keeps evaluation cheap)."""
    checkpoint_every_seconds: float = Field(60.0, ge=0)
    """Also write ``last/`` (with the training state) once this many seconds passed since it was last written,
    so a killed run loses at most this much training; 0 writes it only at evaluations."""
    early_stopping_patience: int = 0
    """Stop after this many evaluations without improvement; 0 disables early stopping."""
    curriculum: tuple[CurriculumStage, ...] = (
        CurriculumStage(until=0.25, max_difficulty=0, max_supervision_steps=1),
        CurriculumStage(until=0.6, max_difficulty=1, max_supervision_steps=2),
        CurriculumStage(until=1.0, max_difficulty=2, max_supervision_steps=4),
    )
    """Difficulty stages: easy examples and short recursion first."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where to train; ``auto`` picks CUDA when available."""
    deterministic: bool = False
    """Turn on ``torch.use_deterministic_algorithms`` (slower; the golden test uses it)."""
    num_threads: int | None = Field(default=None, ge=1)
    """CPU threads for torch; None keeps torch's default. One thread avoids threads spinning against
    other busy processes (the matrices here are small)."""
    show_progress_bar: bool | None = None
    """Progress bar; None means on when the logger shows INFO."""

    @model_validator(mode="after")
    def _check(self) -> "TrainConfig":
        if self.curriculum:
            ends = [s.until for s in self.curriculum]
            if ends != sorted(ends) or ends[-1] != 1.0:
                raise ValueError("curriculum stages must have increasing `until` ending at 1.0")
            too_long = [s.max_supervision_steps for s in self.curriculum
                        if s.max_supervision_steps > self.model.max_supervision_steps]
            if too_long:
                raise ValueError(
                    f"curriculum max_supervision_steps {too_long} exceed model.max_supervision_steps "
                    f"({self.model.max_supervision_steps})"
                )
        if self.warmup_steps >= self.max_steps:
            raise ValueError(f"warmup_steps ({self.warmup_steps}) must be below max_steps ({self.max_steps})")
        return self


class InferConfig(_Config):
    """How a trained TRM is run; never needed to rebuild the model."""

    device: str = "cpu"
    """``cpu``, ``cuda`` or ``auto``."""
    halt_threshold: float = Field(default=0.5, gt=0, lt=1)
    """Stop recursing when the halting probability passes this."""
    max_supervision_steps: int | None = None
    """Step limit at inference; None uses the model's ``max_supervision_steps``."""
    batch_size: int = 64
    """Batch size for the ``*_many`` calls."""
    num_threads: int | None = Field(default=None, ge=1)
    """If set, ``torch.set_num_threads`` at load (process-wide; None leaves the host's setting alone)."""
    carry_max_in_memory: int = Field(default=1024, ge=1)
    """Conversations whose carry stays in memory; the least recently used beyond this spill to
    ``carry_path``, or are dropped when there is none (a warning is logged the first time)."""
    carry_max_conversations: int = Field(default=100_000, ge=1)
    """Retention: the most conversations kept in all, in memory and spilled (the least recently used go)."""
    carry_max_age_seconds: float | None = Field(default=30 * 24 * 3600, gt=0)
    """Retention, in seconds: a carry untouched for longer is dropped (default 30 days; None: no limit)."""
    carry_path: Path | None = None
    """SQLite file (created if missing) where carries beyond ``carry_max_in_memory`` spill; one per TRM.
    None keeps carries in memory only."""
