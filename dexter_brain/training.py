"""The Trainer: streams conversation turns through batch slots, one supervision step per optimizer step.

Each of the B slots holds one turn and its latent state (y, z). A step runs one supervision step for
every slot (T improvement steps, the last with gradient), takes the head's loss, the halting BCE against
"the prediction is correct" and the thinking cost ``lambda * P(continue)``, and updates the weights. A slot
whose turn halts (or reaches the stage's step limit) moves to the next turn of its conversation *keeping
its (y, z)*: the carry, detached, exactly what a conversation's next call starts from; a finished
conversation gives way to a new one from a fresh state. The trainer knows only the ``Head`` and the
``SplitData`` it is handed; progress, evaluation bookkeeping, checkpoints, early stopping, EMA and the
learning-rate schedule are callbacks.

Shape key: B slots, S latent slots, D hidden.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor

from dexter_brain.config import CurriculumStage, TrainConfig
from dexter_brain.data import SplitData, without_carry_features
from dexter_brain.inference import replay_episodes
from dexter_brain.model import RecursiveModel
from dexter_brain.objectives import Head

logger = logging.getLogger(__name__)


def seed_everything(seed: int) -> int:
    """Seed python, numpy and torch in one place; returns the seed."""
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return seed


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but no CUDA device is available")
    return torch.device(device)


@dataclass
class Slots:
    """The streaming state of the B batch slots."""

    episode: Tensor  # (B,) index into the epoch's episode order, -1 = empty
    position: Tensor  # (B,) turn within the (curriculum-truncated) episode
    steps: Tensor  # (B,) supervision steps taken on the current turn
    min_steps: Tensor  # (B,) exploration: steps forced before halting is allowed
    fresh: Tensor  # (B,) bool: start the next step from the initial state
    carried: Tensor  # (B,) bool: the current turn started from its conversation's carry
    y: Tensor  # (B, S, D)
    z: Tensor  # (B, S, D)

    @classmethod
    def empty(cls, batch_size: int, num_slots: int, hidden: int, device) -> "Slots":
        long = dict(dtype=torch.long, device=device)
        return cls(episode=torch.full((batch_size,), -1, **long), position=torch.zeros(batch_size, **long),
                   steps=torch.zeros(batch_size, **long), min_steps=torch.ones(batch_size, **long),
                   fresh=torch.ones(batch_size, dtype=torch.bool, device=device),
                   carried=torch.zeros(batch_size, dtype=torch.bool, device=device),
                   y=torch.zeros(batch_size, num_slots, hidden, device=device),
                   z=torch.zeros(batch_size, num_slots, hidden, device=device))

    def tensors(self) -> dict[str, Tensor]:
        return {f"slots.{k}": getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class TrainState:
    """Everything a resumed run needs: counters, optimizer, EMA, RNG, slots and the best metrics."""

    config: TrainConfig
    model: RecursiveModel
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    slots: Slots
    device: torch.device
    step: int = 0
    epoch: int = 0
    cursor: int = 0
    best_metric: float = -math.inf
    floor_metric: float = math.nan
    """The validation metric of the floor alone (the evaluation at step 0, before any training)."""
    best_loss: float = math.inf
    evals_without_improvement: int = 0
    should_stop: bool = False
    ema: dict[str, Tensor] | None = None
    last_loss: float = float("nan")
    last_parts: dict[str, float] = field(default_factory=dict)
    mean_steps: float = float("nan")
    metrics: dict[str, float] = field(default_factory=dict)
    improved: bool = False
    improved_loss: bool = False
    rank: int = 0
    world_size: int = 1
    init_from: str | None = None
    """The checkpoint the weights were initialised from (None: random initialisation). The step-0
    evaluation then turns the residual off, so that ``floor_metric`` is still the floor alone."""

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def stage(self) -> CurriculumStage:
        frac = self.step / max(self.config.max_steps, 1)
        for s in self.config.curriculum:
            if frac < s.until:
                return s
        return self.config.curriculum[-1] if self.config.curriculum else CurriculumStage(
            until=1.0, max_difficulty=2, max_supervision_steps=self.config.model.max_supervision_steps)

    def scalars(self) -> dict:
        return {"step": self.step, "epoch": self.epoch, "cursor": self.cursor, "best_metric": self.best_metric,
                "floor_metric": self.floor_metric,
                "best_loss": self.best_loss, "evals_without_improvement": self.evals_without_improvement,
                "should_stop": self.should_stop,
                "world_size": self.world_size, "param_groups": [
                    {k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]}

    def tensors(self) -> dict[str, Tensor]:
        out = dict(self.slots.tensors())
        out["rng.generator"] = self.generator.get_state()
        for i, st in self.optimizer.state_dict()["state"].items():
            for k, v in st.items():
                out[f"opt.{i}.{k}"] = v if torch.is_tensor(v) else torch.tensor(v)
        for k, v in (self.ema or {}).items():
            out[f"ema.{k}"] = v
        return out

    def restore(self, tensors: dict[str, Tensor], scalars: dict) -> None:
        for k in ("step", "epoch", "cursor", "best_metric", "best_loss", "evals_without_improvement"):
            setattr(self, k, scalars[k])
        self.floor_metric = scalars.get("floor_metric", math.nan)
        self.should_stop = bool(scalars.get("should_stop", False))
        self.generator.set_state(tensors["rng.generator"])
        for k in self.slots.__dataclass_fields__:
            setattr(self.slots, k, tensors[f"slots.{k}"].to(self.device))
        opt_state: dict[int, dict] = {}
        for key, v in tensors.items():
            if key.startswith("opt."):
                _, i, name = key.split(".", 2)
                opt_state.setdefault(int(i), {})[name] = v
        groups = [{**g, "params": og["params"]} for g, og in
                  zip(scalars["param_groups"], self.optimizer.state_dict()["param_groups"])]
        self.optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
        ema = {k[4:]: v.to(self.device) for k, v in tensors.items() if k.startswith("ema.")}
        self.ema = ema or None


class Callback(Protocol):
    def on_train_start(self, state: TrainState) -> None: ...
    def on_step_end(self, state: TrainState) -> None: ...
    def on_eval_end(self, state: TrainState) -> None: ...
    def on_train_end(self, state: TrainState) -> None: ...


def _param_groups(model: RecursiveModel, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        skip = p.dim() < 2 or any(k in name for k in ("embedding", "positions", "slot_queries"))
        (no_decay if skip else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class Trainer:
    """Trains one TRM on one corpus split with a ``Head``; see the module docstring for the loop.

    Example:
        >>> trainer = Trainer(config, MemoryHead(), load_split(d, "memory", "train"),
        ...                   load_split(d, "memory", "val"), callbacks=default_callbacks(...))
        >>> state = trainer.fit()
    """

    def __init__(self, config: TrainConfig, head: Head, train: SplitData, val: SplitData | None = None,
                 callbacks: list[Callback] | None = None):
        self.config, self.head, self.train, self.val = config, head, train, val
        self.callbacks = list(callbacks or [])
        self.device = pick_device(config.device)
        self.rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        self.world_size = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
        if config.batch_size % self.world_size:
            raise ValueError(f"batch_size {config.batch_size} is not divisible by {self.world_size} processes")
        seed_everything(config.seed)
        if config.num_threads is not None and self.device.type == "cpu":
            torch.set_num_threads(config.num_threads)
        if config.deterministic:
            torch.use_deterministic_algorithms(True)
        model = RecursiveModel(config.model).to(self.device)
        model.set_floor(train.floor)
        self.model = model
        self.ddp = None
        if self.world_size > 1:
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        optimizer = torch.optim.AdamW(_param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas)
        generator = torch.Generator().manual_seed(config.seed * 7919 + self.rank)
        slots = Slots.empty(config.batch_size // self.world_size, config.model.num_slots,
                            config.model.hidden_size, self.device)
        self.state = TrainState(config=config, model=model, optimizer=optimizer, generator=generator,
                                slots=slots, device=self.device, rank=self.rank, world_size=self.world_size)
        self._order_epoch, self._order = -1, np.zeros(0, dtype=np.int64)
        self._autocast = self.device.type == "cuda"
        self._micro_batches = 1

    # --- data streaming ---------------------------------------------------------------------------------
    def _episode_order(self, epoch: int) -> np.ndarray:
        if epoch != self._order_epoch:
            g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + epoch)
            self._order = torch.randperm(len(self.train.episodes), generator=g).numpy()
            self._order_epoch = epoch
        return self._order

    def _rows_of(self, episode: int, max_difficulty: int) -> np.ndarray:
        """The episode's turns up to (not including) its first turn harder than the stage admits."""
        rows = self.train.episodes[episode]
        too_hard = np.flatnonzero(self.train.difficulty[rows] > max_difficulty)
        return rows[: too_hard[0]] if len(too_hard) else rows

    def _next_episode(self, max_difficulty: int) -> int:
        st = self.state
        for _ in range(2 * len(self.train.episodes) + 2):
            order = self._episode_order(st.epoch)
            position = st.cursor * self.world_size + self.rank
            if position >= len(order):
                st.epoch, st.cursor = st.epoch + 1, 0
                continue
            st.cursor += 1
            episode = int(order[position])
            if len(self._rows_of(episode, max_difficulty)):
                return episode
        raise RuntimeError("no training example is admitted by the curriculum (all too hard?)")

    def _advance(self, halted: Tensor, stage: CurriculumStage) -> None:
        """Move halted slots to their next turn (keeping the carry) or to a new episode (fresh)."""
        sl, g = self.state.slots, self.state.generator
        for b in torch.nonzero(halted).flatten().tolist():
            ep = int(sl.episode[b])
            nxt = int(sl.position[b]) + 1
            if ep >= 0 and nxt < len(self._rows_of(ep, stage.max_difficulty)):
                sl.position[b] = nxt
                sl.fresh[b] = bool(torch.rand((), generator=g) < self.config.fresh_start_prob)
                sl.carried[b] = not bool(sl.fresh[b])
            else:
                sl.episode[b] = self._next_episode(stage.max_difficulty)
                sl.position[b] = 0
                sl.fresh[b] = True
                sl.carried[b] = False
            sl.steps[b] = 0
            explore = stage.max_supervision_steps > 1 and bool(torch.rand((), generator=g) < self.config.halt_exploration)
            sl.min_steps[b] = int(torch.randint(2, stage.max_supervision_steps + 1, (), generator=g)) if explore else 1

    def _current_rows(self, stage: CurriculumStage) -> np.ndarray:
        sl = self.state.slots
        return np.array([self._rows_of(int(e), stage.max_difficulty)[int(p)]
                         for e, p in zip(sl.episode.tolist(), sl.position.tolist())])

    # --- one optimizer step -----------------------------------------------------------------------------
    def _augment(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        """Training-only input changes (``text_dropout``), drawn from the state's generator so a resumed run
        draws the same."""
        cfg, g = self.config, self.state.generator
        n = len(batch["cand_feats"])
        if cfg.text_dropout > 0:
            keep = (torch.rand(n, generator=g) >= cfg.text_dropout).float().to(self.device)
            batch = {**batch, "text_keep": keep}
        return batch

    def _forward_loss(self, batch: dict[str, Tensor], y: Tensor, z: Tensor, fresh: Tensor, carried: Tensor):
        model = self.model
        init_y, init_z = model.initial_state(len(y))
        y_in = torch.where(fresh[:, None, None], init_y, y)
        z_in = torch.where(fresh[:, None, None], init_z, z)
        batch = without_carry_features(batch, ~carried, self.train.carry_columns)
        batch = self._augment(batch)
        net = self.ddp or model
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast):
            out = net(batch, (y_in, z_in))
        task, correct, parts = self.head.loss(out, batch)
        halt_p = torch.sigmoid(out.halt_logit.float())
        halt = F.binary_cross_entropy_with_logits(out.halt_logit.float(), correct.float())
        thinking = (1.0 - halt_p).mean()  # expected "one more step" per slot: the cost of thinking
        loss = task + self.config.halt_loss_weight * halt + self.config.thinking_cost * thinking
        return loss, out, parts

    def train_step(self) -> None:
        st, cfg = self.state, self.config
        stage = st.stage()
        sl = st.slots
        needs = (sl.episode < 0) | (sl.steps >= stage.max_supervision_steps)
        if needs.any():
            self._advance(needs, stage)
        rows = self._current_rows(stage)
        batch = self.train.batch(rows, self.device)
        self.model.train()
        while True:
            try:
                loss, outs, parts = self._accumulate(batch, sl)
                break
            except torch.cuda.OutOfMemoryError:
                if self._micro_batches >= len(rows):
                    raise
                self._micro_batches *= 2
                st.optimizer.zero_grad(set_to_none=True)
                torch.cuda.empty_cache()
                logger.warning("out of memory: retrying the step in %d micro-batches", self._micro_batches)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        st.optimizer.step()
        st.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            sl.y = torch.cat([o.y for o in outs]).detach().float()
            sl.z = torch.cat([o.z for o in outs]).detach().float()
            halt_logit = torch.cat([o.halt_logit for o in outs]).float()
            sl.steps += 1
            sl.fresh[:] = False
            halted = (sl.steps >= stage.max_supervision_steps) | ((halt_logit > 0) & (sl.steps >= sl.min_steps))
            st.mean_steps = float(sl.steps[halted].float().mean()) if halted.any() else st.mean_steps
            if halted.any():
                self._advance(halted, stage)
        st.step += 1
        st.last_loss = loss
        st.last_parts = parts

    def _accumulate(self, batch, sl):
        n = len(sl.y)
        chunks = np.array_split(np.arange(n), self._micro_batches)
        outs, total, parts_sum = [], 0.0, {}
        for idx in chunks:
            t = torch.from_numpy(idx).to(self.device)
            sub = {k: v[t] for k, v in batch.items()}
            loss, out, parts = self._forward_loss(sub, sl.y[t], sl.z[t], sl.fresh[t], sl.carried[t])
            (loss * len(idx) / n).backward()
            outs.append(out)
            total += float(loss.detach()) * len(idx) / n
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + float(v) * len(idx) / n
        return total, outs, parts_sum

    # --- evaluation -------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, data: SplitData | None = None) -> dict[str, float]:
        """Validation metrics with the EMA weights, replaying each conversation with its carry."""
        data = data or self.val
        if data is None:
            return {}
        model = self.model
        backup = None
        if self.state.ema is not None:
            backup = {k: v.detach().clone() for k, v in model.state_dict().items()}
            model.load_state_dict(self.state.ema)
        model.eval()
        try:
            def collect(out, batch, rows):
                metrics = self.head.example_metrics(out, batch)
                # The floor alone has no heads besides the scores (no failure, position or halting outputs),
                # so it has no loss to report.
                loss = self.head.loss(out, batch)[0] if model.use_residual else float("nan")
                values = {k: v.float().cpu().numpy() for k, v in metrics.items()}
                values["loss"] = np.full(len(rows), float(loss))
                values["scored"] = data.arrays["scored"][rows].astype(np.float64)
                return values
            res = replay_episodes(model, data, max_steps=self.config.model.max_supervision_steps,
                                  max_rows=self.config.eval_max_examples, device=self.device, collect=collect)
        finally:
            if backup is not None:
                model.load_state_dict(backup)
        evaluated = res["evaluated"] & (res.get("scored", np.ones(len(data))) > 0)
        out = {}
        for name, values in res.items():
            if name in ("evaluated", "scored", "steps"):
                continue
            v = values[evaluated]
            v = v[~np.isnan(v)]
            out[name] = float(v.mean()) if len(v) else float("nan")
        out["mean_steps"] = float(res["steps"][res["evaluated"]].mean()) if res["evaluated"].any() else float("nan")
        return out

    # --- the loop ---------------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Train until ``max_steps`` (or early stopping); evaluates every ``eval_every`` steps."""
        st, cfg = self.state, self.config
        for cb in self.callbacks:
            cb.on_train_start(st)
        if st.step == 0 and self.val is not None and math.isnan(st.floor_metric):
            # This measures the floor alone, the bar every later step must beat: a fresh residual starts at
            # zero, an initialised one (weights from another run) is switched off for this evaluation, and then
            # evaluated as it is: when it beats the floor already, it is the best so far.
            self._run_eval(floor_only=st.init_from is not None)
            if st.init_from is not None:
                self._run_eval()
        while st.step < cfg.max_steps and not st.should_stop:
            self.train_step()
            for cb in self.callbacks:
                cb.on_step_end(st)
            if st.step % cfg.eval_every == 0 or st.step == cfg.max_steps:
                self._run_eval()
        for cb in self.callbacks:
            cb.on_train_end(st)
        return st

    def _run_eval(self, floor_only: bool = False) -> None:
        st = self.state
        residual = self.model.use_residual
        self.model.use_residual = not floor_only and residual
        try:
            metrics = self.evaluate() if st.is_main else {}
        finally:
            self.model.use_residual = residual
        st.metrics = metrics
        primary = metrics.get(self.head.primary_metric, float("nan"))
        st.improved = not math.isnan(primary) and primary > st.best_metric
        if st.step == 0 and math.isnan(st.floor_metric):
            st.floor_metric = primary
        if st.improved:
            st.best_metric, st.evals_without_improvement = primary, 0
        else:
            st.evals_without_improvement += 1
        loss = metrics.get("loss", float("nan"))
        st.improved_loss = not math.isnan(loss) and loss < st.best_loss
        if st.improved_loss:
            st.best_loss = loss
        for cb in self.callbacks:
            cb.on_eval_end(st)
        if self.world_size > 1:
            flag = torch.tensor([int(st.should_stop)], device=self.device)
            dist.broadcast(flag, 0)
            st.should_stop = bool(flag.item())


def init_distributed(device: str) -> None:
    """Join the process group when launched by ``torchrun`` (gloo on CPU, nccl on GPU)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if device != "cpu" and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
