"""What the three input builders share: the per-row columns the trainer replays conversations with."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def episode_columns(examples: Sequence) -> dict[str, np.ndarray]:
    """``episode`` (numbered in order of first appearance), ``turn``, ``difficulty`` and ``scored`` per row."""
    episodes = {e: i for i, e in enumerate(dict.fromkeys(x.episode for x in examples))}
    return {
        "episode": np.array([episodes[x.episode] for x in examples], dtype=np.int32),
        "turn": np.array([x.turn for x in examples], dtype=np.int32),
        "difficulty": np.array([x.difficulty for x in examples], dtype=np.int32),
        "scored": np.array([x.scored for x in examples], dtype=np.int32),
    }
