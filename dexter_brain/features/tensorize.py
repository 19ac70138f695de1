"""Turn corpus examples into the arrays a TRM trains on, with the featurizers the wrappers use.

Each corpus split becomes one dict of numpy arrays (saved as safetensors by the corpus builder), rows
ordered by (episode, turn) so the trainer can replay conversations with their carry. Candidates are
indices into a token bank (facts, catalogue tools or plan steps) saved once per corpus.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

import numpy as np

from dexter_brain.corpora.schema import MemoryExample, ReasoningExample, ToolExample
from dexter_brain.features import memory as mem_features
from dexter_brain.features import reasoning as reason_features
from dexter_brain.features import tool as tool_features
from dexter_brain.features.common import (
    DONE_TEXT, STEP_MATCH_THRESHOLD, Encoder, fact_text, memory_query_text, reasoning_query_text,
    step_similarity, step_text, tool_query_text, tool_text,
)
from dexter_brain.features.memory import MemoryFeaturizer
from dexter_brain.features.reasoning import DONE, ReasoningFeaturizer
from dexter_brain.features.tool import ToolFeaturizer

MEMORY_CANDIDATES = 48
MAX_TOOL_CANDIDATES = 64
COMPLEXITY = ("simple", "moderate", "complex")


def _rng(seed: int, key: str) -> random.Random:
    return random.Random(int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big"))


def _episode_columns(examples: Sequence) -> dict[str, np.ndarray]:
    episodes = {e: i for i, e in enumerate(dict.fromkeys(x.episode for x in examples))}
    return {
        "episode": np.array([episodes[x.episode] for x in examples], dtype=np.int32),
        "turn": np.array([x.turn for x in examples], dtype=np.int32),
        "difficulty": np.array([x.difficulty for x in examples], dtype=np.int32),
        "scored": np.array([x.scored for x in examples], dtype=np.int32),
    }


def _stack(rows: list[np.ndarray], K: int, F: int) -> np.ndarray:
    out = np.zeros((len(rows), K, F), dtype=np.float32)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


# --- memory ------------------------------------------------------------------------------------------
def memory_bank_ids(featurizer: MemoryFeaturizer, encoder: Encoder) -> np.ndarray:
    return encoder.candidates([fact_text(f["text"]) for f in featurizer.facts])


def memory_candidates(featurizer: MemoryFeaturizer, view, example: MemoryExample,
                      focus: Sequence[str], seed: int) -> list[int]:
    """Training candidates: what inference would gather (BM25's list, the conversation focus and its
    entities' facts) plus the positives, hard negatives and random facts, so that no source of a candidate
    gives its label away."""
    pos = featurizer.position
    chosen: list[int] = [pos[f] for f in example.positives if f in pos]
    extra = [int(i) for i in view.top] + [pos[f] for f in example.hard_negatives if f in pos]
    extra += featurizer.focus_candidates(view, focus)
    rng = _rng(seed, example.id)
    extra += rng.sample(range(len(featurizer.facts)), min(8, len(featurizer.facts)))
    for i in extra:
        if len(chosen) >= MEMORY_CANDIDATES:
            break
        if i not in chosen and featurizer.live[i]:
            chosen.append(i)
    return chosen[:MEMORY_CANDIDATES]


def tensorize_memory(examples: Sequence[MemoryExample], featurizer: MemoryFeaturizer, encoder: Encoder,
                     seed: int = 0) -> dict[str, np.ndarray]:
    K, F = MEMORY_CANDIDATES, len(mem_features.CANDIDATE_FEATURES)
    cand_index = np.full((len(examples), K), -1, dtype=np.int32)
    labels = np.zeros((len(examples), K), dtype=np.float32)
    feats, query_feats = [], []
    # The focus a conversation's carry holds: the facts its last answered turn was about.
    focus: dict[str, tuple[str, ...]] = {}
    for n, ex in enumerate(examples):
        view = featurizer.view(ex.query)
        current = focus.get(ex.episode, ())
        cands = memory_candidates(featurizer, view, ex, current, seed)
        cand_index[n, : len(cands)] = cands
        positives = {featurizer.position[f] for f in ex.positives if f in featurizer.position}
        labels[n, : len(cands)] = [float(c in positives) for c in cands]
        feats.append(featurizer.features(view, cands, exclude_episode=ex.episode, focus=current))
        query_feats.append(view.query_feats)
        if ex.positives:
            focus[ex.episode] = ex.positives
    return {
        "query_ids": encoder.queries([memory_query_text(e.query) for e in examples]),
        "query_feats": np.stack(query_feats) if query_feats else np.zeros((0, len(mem_features.QUERY_FEATURES)), np.float32),
        "cand_index": cand_index, "cand_feats": _stack(feats, K, F), "labels": labels,
        "is_followup": np.array([e.is_followup for e in examples], dtype=np.int32),
        "carry_columns": np.array([mem_features.CANDIDATE_FEATURES.index(c) for c in mem_features.CARRY_FEATURES],
                                  dtype=np.int32),
        **_episode_columns(examples),
    }


# --- tool --------------------------------------------------------------------------------------------
def tool_catalogue_ids(featurizer: ToolFeaturizer, encoder: Encoder) -> np.ndarray:
    return encoder.candidates([tool_text(n, featurizer.describe(n)) for n in featurizer.names])


def tensorize_tool(examples: Sequence[ToolExample], featurizer: ToolFeaturizer, encoder: Encoder,
                   reserved: Sequence[str] = (), seed: int = 0) -> dict[str, np.ndarray]:
    width = min(MAX_TOOL_CANDIDATES, max((len(e.available) for e in examples), default=1))
    K, F = width, len(tool_features.CANDIDATE_FEATURES)
    cand_index = np.full((len(examples), K), -1, dtype=np.int32)
    target = np.full(len(examples), -1, dtype=np.int64)
    feats, query_feats = [], []
    for n, ex in enumerate(examples):
        available = list(ex.available)
        if len(available) > K:
            others = [t for t in available if t != ex.tool]
            available = [ex.tool] + _rng(seed, ex.id).sample(others, K - 1)
        view = featurizer.view(ex.task, ex.context, exclude_episode=ex.episode)
        cand_index[n, : len(available)] = [featurizer.tool_pos[t] for t in available]
        target[n] = available.index(ex.tool)
        feats.append(featurizer.features(view, available, ex.previous_tool, ex.previous_error))
        query_feats.append(featurizer.query_features(view, available, ex.previous_error))
    reserved_set = set(reserved)
    return {
        "query_ids": encoder.queries([tool_query_text(e.task, e.context, e.previous_error) for e in examples]),
        "query_feats": np.stack(query_feats) if query_feats else np.zeros((0, len(tool_features.QUERY_FEATURES)), np.float32),
        "cand_index": cand_index, "cand_feats": _stack(feats, K, F), "target": target,
        "failed": np.array([e.status == "error" for e in examples], dtype=np.int32),
        "is_correction": np.array([e.is_correction for e in examples], dtype=np.int32),
        "reserved": np.array([e.tool in reserved_set for e in examples], dtype=np.int32),
        **_episode_columns(examples),
    }


# --- reasoning ---------------------------------------------------------------------------------------
class StepBank:
    """Distinct candidate step texts, so a step shared by many examples is tokenized once."""

    def __init__(self):
        self.texts: list[str] = [DONE_TEXT]
        self.position: dict[str, int] = {DONE_TEXT: 0}

    def index(self, step: str) -> int:
        text = DONE_TEXT if step == DONE else step_text(step)
        if text not in self.position:
            self.position[text] = len(self.texts)
            self.texts.append(text)
        return self.position[text]


def reasoning_targets(cands: Sequence[str], ex: ReasoningExample) -> tuple[list[float], list[float], int]:
    """Inclusion labels, relative positions and the next-step index for an example's candidates."""
    labels = [0.0] * len(cands)
    positions = [0.0] * len(cands)
    target = -1
    if ex.kind == "plan":
        n = len(ex.steps)
        for k, c in enumerate(cands):
            sims = [step_similarity(c, s) for s in ex.steps]
            j = int(np.argmax(sims)) if sims else 0
            if sims and sims[j] >= STEP_MATCH_THRESHOLD:
                labels[k], positions[k] = 1.0, j / max(n - 1, 1)
    elif ex.next_step is None:
        target = cands.index(DONE) if DONE in cands else -1
    else:
        sims = [step_similarity(c, ex.next_step) if c != DONE else 0.0 for c in cands]
        if sims and max(sims) >= STEP_MATCH_THRESHOLD:
            target = int(np.argmax(sims))
    return labels, positions, target


def tensorize_reasoning(examples: Sequence[ReasoningExample], featurizer: ReasoningFeaturizer, encoder: Encoder,
                        bank: StepBank, exclude_own_group: bool) -> dict[str, np.ndarray]:
    K = reason_features.MAX_CANDIDATES + 1
    F = len(reason_features.CANDIDATE_FEATURES)
    cand_index = np.full((len(examples), K), -1, dtype=np.int32)
    labels = np.zeros((len(examples), K), dtype=np.float32)
    positions = np.zeros((len(examples), K), dtype=np.float32)
    target = np.full(len(examples), -1, dtype=np.int64)
    feats, query_feats = [], []
    for n, ex in enumerate(examples):
        cands = featurizer.candidates(ex.goal, ex.completed, exclude_group=ex.group if exclude_own_group else None,
                                      with_done=ex.kind == "next")
        texts = [c.text for c in cands.items]
        cand_index[n, : len(texts)] = [bank.index(t) for t in texts]
        lab, pos, target[n] = reasoning_targets(texts, ex)
        labels[n, : len(texts)], positions[n, : len(texts)] = lab, pos
        feats.append(featurizer.features(ex.goal, cands, ex.completed))
        query_feats.append(cands.query_feats)
    return {
        "query_ids": encoder.queries([reasoning_query_text(e.goal, e.completed, e.state, e.constraints)
                                      for e in examples]),
        "query_feats": np.stack(query_feats) if query_feats else np.zeros((0, len(reason_features.QUERY_FEATURES)), np.float32),
        "cand_index": cand_index, "cand_feats": _stack(feats, K, F), "labels": labels, "positions": positions,
        "target": target, "next_mode": np.array([e.kind == "next" for e in examples], dtype=np.int32),
        "complexity": np.array([COMPLEXITY.index(e.complexity) for e in examples], dtype=np.int32),
        **_episode_columns(examples),
    }
