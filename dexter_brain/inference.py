"""Id-level inference: run a TRM call with adaptive halting, and replay whole episodes turn by turn with
their carry. Knows nothing about text; the wrappers tokenize and featurize at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dexter_brain.data import without_carry_features
from dexter_brain.model import RecursiveModel, StepOutput


@dataclass
class CallResult:
    """The outputs of one halted call for a batch."""

    out: StepOutput
    """Outputs at each row's halting step (y, z are the carry to keep)."""
    steps: Tensor
    """Supervision steps each row used (B,)."""


def think(model: RecursiveModel, x: Tensor, state: tuple[Tensor, Tensor] | None, *, max_steps: int,
          threshold: float = 0.5) -> tuple[Tensor, Tensor, Tensor]:
    """Recurse supervision step by supervision step from ``state``; each row stops when its halting
    probability passes ``threshold`` (or at ``max_steps``). Returns (y, z, steps used (B,))."""
    B = x.shape[0]
    y, z = state if state is not None else model.initial_state(B)
    active = torch.ones(B, dtype=torch.bool, device=x.device)
    steps = torch.zeros(B, dtype=torch.long, device=x.device)
    for _ in range(max_steps):
        y_new, z_new = model.recurse(x, y, z)
        keep = active[:, None, None]
        y, z = torch.where(keep, y_new, y), torch.where(keep, z_new, z)
        steps = steps + active.long()
        active = active & (torch.sigmoid(model.halt_logit(y_new)) <= threshold)
        if not active.any():
            break
    return y, z, steps


def halting_call(model: RecursiveModel, batch: dict[str, Tensor], state: tuple[Tensor, Tensor] | None,
                 *, max_steps: int, threshold: float = 0.5) -> CallResult:
    """One call with adaptive halting, then the candidates scored from each row's final answer state
    (scores never feed back into the recursion, so scoring once at the end is exact)."""
    if not model.use_residual:  # the floor alone reads only the features: no recursion, no text encoding
        B = len(batch["cand_feats"])
        y, z = state if state is not None else model.initial_state(B)
        out = model.score(y, None, batch["cand_feats"], batch["cand_mask"], mode=batch.get("mode"))
        out.z = z
        return CallResult(out=out, steps=torch.zeros(B, dtype=torch.long, device=y.device))
    x = model.read(batch["query_ids"], batch.get("query_feats"))
    y, z, steps = think(model, x, state, max_steps=max_steps, threshold=threshold)
    cand_vecs = batch["cand_vecs"] if "cand_vecs" in batch else model.encode_candidates(batch["cand_ids"])
    out = model.score(y, cand_vecs, batch["cand_feats"], batch["cand_mask"], mode=batch.get("mode"))
    out.z = z
    return CallResult(out=out, steps=steps)


@torch.inference_mode()
def replay_episodes(model: RecursiveModel, data, *, max_steps: int, threshold: float = 0.5,
                    use_carry: bool = True, max_rows: int | None = None, chunk: int = 256,
                    device: str | torch.device = "cpu", collect=None) -> dict[str, np.ndarray]:
    """Run every episode of ``data`` (a ``SplitData``) turn by turn, carrying (y, z) between turns.

    ``collect(out, batch, rows)`` returns a dict of per-row numpy arrays to gather (e.g. metrics);
    returns those arrays (row order of ``data``) plus ``steps``.
    """
    episodes = data.episodes
    if max_rows is not None:
        kept, total = [], 0
        for ep in episodes:
            if total >= max_rows:
                break
            kept.append(ep)
            total += len(ep)
        episodes = kept
    n_rows = len(data)
    results: dict[str, np.ndarray] = {"steps": np.zeros(n_rows, dtype=np.int64),
                                      "evaluated": np.zeros(n_rows, dtype=bool)}
    S, D = model.config.num_slots, model.config.hidden_size
    carry_y = torch.zeros(len(episodes), S, D, device=device)
    carry_z = torch.zeros(len(episodes), S, D, device=device)
    longest = max((len(ep) for ep in episodes), default=0)
    for t in range(longest):
        live = [i for i, ep in enumerate(episodes) if len(ep) > t]
        for start in range(0, len(live), chunk):
            idx = live[start:start + chunk]
            rows = np.array([episodes[i][t] for i in idx])
            batch = data.batch(rows, device)
            state = None
            if use_carry and t > 0:
                state = (carry_y[idx], carry_z[idx])
            else:
                fresh = torch.ones(len(rows), dtype=torch.bool, device=device)
                batch = without_carry_features(batch, fresh, data.carry_columns)
            result = halting_call(model, batch, state, max_steps=max_steps, threshold=threshold)
            carry_y[idx], carry_z[idx] = result.out.y, result.out.z
            results["steps"][rows] = result.steps.cpu().numpy()
            results["evaluated"][rows] = True
            if collect is not None:
                for name, values in collect(result.out, batch, rows).items():
                    if name not in results:
                        results[name] = np.full((n_rows, *values.shape[1:]), np.nan, dtype=np.float64)
                    results[name][rows] = values
    return results
