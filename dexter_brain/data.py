"""Training data for one TRM: the tensors of one corpus split, its episodes, and batch assembly.

Rows are conversation turns ordered by (episode, turn). The trainer streams episodes through batch slots
turn by turn, so the model trains with the carry a conversation would give it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file
from torch import Tensor

from dexter_brain.floor import LinearFloor
from dexter_brain.io import read_json

# Columns that describe a row for the trainer rather than feed the model, and split-level metadata.
_ROW_COLUMNS = ("episode", "turn", "difficulty", "scored")
_META_COLUMNS = ("carry_columns", "history_columns")


class CorpusNotFoundError(FileNotFoundError):
    """The corpus directory lacks the tensors for the requested TRM and split."""


@dataclass
class SplitData:
    """The arrays of one (kind, split) plus the candidate token bank."""

    kind: str
    split: str
    arrays: dict[str, np.ndarray]
    bank: np.ndarray
    episodes: list[np.ndarray]
    """Row indices of each episode, in turn order."""
    floor: LinearFloor
    """The kind's linear floor, fitted on the training split by the corpus build."""

    def __len__(self) -> int:
        return len(self.arrays["query_ids"])

    @property
    def num_candidate_features(self) -> int:
        return int(self.arrays["cand_feats"].shape[-1])

    @property
    def num_query_features(self) -> int:
        return int(self.arrays["query_feats"].shape[-1])

    @property
    def difficulty(self) -> np.ndarray:
        return self.arrays["difficulty"]

    @property
    def carry_columns(self) -> np.ndarray:
        """Candidate-feature columns that only a conversation's carry provides (zero on a fresh start)."""
        return self.arrays.get("carry_columns", np.zeros(0, dtype=np.int32))

    def episode_subset(self, episodes: Sequence[int]) -> "SplitData":
        """The split restricted to these episodes (indices into ``episodes``), in the order given; the bank
        and the floor are shared."""
        rows = np.concatenate([self.episodes[i] for i in episodes]) if len(episodes) else np.zeros(0, np.int64)
        arrays = {k: (v if k in _META_COLUMNS else v[rows]) for k, v in self.arrays.items()}
        bounds = np.cumsum([0] + [len(self.episodes[i]) for i in episodes])
        return SplitData(kind=self.kind, split=self.split, arrays=arrays, bank=self.bank,
                         episodes=[np.arange(a, b) for a, b in zip(bounds[:-1], bounds[1:])], floor=self.floor)

    def batch(self, rows: np.ndarray, device: torch.device | str = "cpu") -> dict[str, Tensor]:
        """Model inputs and targets for the given rows; candidates are gathered from the bank."""
        out: dict[str, Tensor] = {}
        for name, arr in self.arrays.items():
            if name in _ROW_COLUMNS or name in _META_COLUMNS:
                continue
            t = torch.from_numpy(arr[rows])
            if name in ("query_ids", "cand_index", "target", "complexity", "mode"):
                t = t.long()
            out[name] = t
        index = out["cand_index"]
        bank = torch.from_numpy(self.bank).long()
        out["cand_ids"] = bank[index.clamp(min=0)] * (index >= 0)[..., None]  # (B, K, C)
        out["cand_mask"] = index >= 0
        return {k: v.to(device) for k, v in out.items()}


def without_carry_features(batch: dict[str, Tensor], rows: Tensor, columns: np.ndarray) -> dict[str, Tensor]:
    """The batch with the carry-only feature columns zeroed for ``rows`` (a bool mask): a fresh start."""
    if len(columns) == 0 or not bool(rows.any()):
        return batch
    feats = batch["cand_feats"].clone()
    cols = torch.as_tensor(columns, dtype=torch.long, device=feats.device)
    feats[rows.nonzero().flatten()[:, None], :, cols] = 0.0
    return {**batch, "cand_feats": feats}


def load_split(data_dir: str | Path, kind: str, split: str) -> SplitData:
    """Load ``tensors/{kind}_{split}.safetensors`` and the kind's bank from a corpus directory."""
    data_dir = Path(data_dir)
    path = data_dir / "tensors" / f"{kind}_{split}.safetensors"
    bank_path = data_dir / "tensors" / f"{kind}_bank.safetensors"
    if not path.is_file() or not bank_path.is_file():
        manifest = data_dir / "manifest.json"
        reason = ""
        if manifest.is_file():
            reason = read_json(manifest).get("corpora", {}).get(kind, {}).get("empty_reason", "")
        raise CorpusNotFoundError(
            f"no {kind} {split} data in {data_dir}" + (f": {reason}" if reason else "")
            + " (run pipelines/generate_trm_training_data.py first)"
        )
    arrays = load_file(str(path))
    floor_path = data_dir / "tensors" / f"{kind}_floor.json"
    try:
        floor = LinearFloor.from_json(read_json(floor_path))
    except (OSError, ValueError) as exc:
        raise CorpusNotFoundError(f"{floor_path}: no usable linear floor ({exc}): regenerate the corpus") from exc
    episode = arrays["episode"]
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    ends = np.r_[starts[1:], len(episode)]
    episodes = [np.arange(s, e) for s, e in zip(starts, ends)]
    return SplitData(kind=kind, split=split, arrays=arrays, bank=load_file(str(bank_path))["ids"],
                     episodes=episodes, floor=floor)


def manifest_lengths(data_dir: str | Path) -> dict[str, int]:
    return read_json(Path(data_dir) / "manifest.json")["lengths"]
