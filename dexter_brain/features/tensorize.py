"""Turn corpus examples into the arrays a TRM trains on, with the featurizers the wrappers use.

Each corpus split becomes one dict of numpy arrays (saved as safetensors by the corpus builder), rows
ordered by (episode, turn) so the trainer can replay conversations with their carry. Candidates are
indices into a token bank (facts, catalogue tools or plan steps) saved once per corpus.

A split is built by a ``*Split`` object in three steps, so that the rows can be filled by several processes:
the constructor allocates the arrays (with the allocator it is given, e.g. shared memory) and does the little
work that depends on earlier rows; ``fill(start, stop)`` computes a range of rows (in any process, in any
order) and returns what the parent must see; ``absorb`` takes those results back in row order; ``arrays``
adds the token ids and returns the finished split. ``tensorize_*`` run all three in this process.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence

import numpy as np

from dexter_brain.corpora.schema import MemoryExample, ReasoningExample, ToolExample
from dexter_brain.features import memory as mem_features
from dexter_brain.features import reasoning as reason_features
from dexter_brain.features import tool as tool_features
from dexter_brain.features.common import (
    DONE_TEXT, NEAR_DUPLICATE, STEP_MATCH_THRESHOLD, Encoder, fact_text, memory_query_text, reasoning_query_text,
    step_similarity, step_text, tool_query_text, tool_text,
)
from dexter_brain.features.memory import MemoryFeaturizer
from dexter_brain.features.reasoning import DONE, ReasoningFeaturizer
from dexter_brain.features.tool import ToolFeaturizer

MEMORY_CANDIDATES = 96
MEMORY_BLOCK = 64
"""Memory rows whose features are computed together (``MemoryFeaturizer.features_batch``)."""
MAX_TOOL_CANDIDATES = 64
COMPLEXITY = ("simple", "moderate", "complex")

Allocator = Callable[[tuple[int, ...], type, float], np.ndarray]
"""``alloc(shape, dtype, fill_value)`` -> a new array holding ``fill_value``."""


def allocate(shape: tuple[int, ...], dtype, fill_value: float = 0) -> np.ndarray:
    return np.full(shape, fill_value, dtype=dtype)


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


class _Split:
    """What the three kinds share: the examples, the allocated arrays and the all-rows driver."""

    examples: Sequence
    out: dict[str, np.ndarray]
    alloc: Allocator

    def __len__(self) -> int:
        return len(self.examples)

    def forget(self, piece: np.ndarray) -> None:
        """This process is done with ``piece`` of an array (once written): shared memory can drop its pages."""
        if hasattr(self.alloc, "forget"):
            self.alloc.forget(piece)

    def release(self) -> None:
        """Drop the arrays (once saved), giving shared memory back at once."""
        self.out = {}
        if hasattr(self.alloc, "release"):
            self.alloc.release()

    def fill(self, start: int, stop: int):
        raise NotImplementedError

    def absorb(self, start: int, stop: int, result) -> None:
        """Take back what ``fill(start, stop)`` returned (in the parent, in row order)."""

    def run(self, encoder: Encoder) -> dict[str, np.ndarray]:
        """Fill every row in this process and return the arrays."""
        self.absorb(0, len(self), self.fill(0, len(self)))
        return self.arrays(encoder)


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
    extra = view.top.tolist() + [pos[f] for f in example.hard_negatives if f in pos]
    extra += featurizer.focus_candidates(view, focus)
    rng = _rng(seed, example.id)
    extra += rng.sample(range(len(featurizer.facts)), min(8, len(featurizer.facts)))
    live = featurizer.live
    seen = set(chosen)
    for i in extra:
        if len(chosen) >= MEMORY_CANDIDATES:
            break
        if i not in seen and live[i]:
            chosen.append(i)
            seen.add(i)
    return chosen[:MEMORY_CANDIDATES]


class MemorySplit(_Split):
    def __init__(self, examples: Sequence[MemoryExample], featurizer: MemoryFeaturizer, seed: int = 0,
                 alloc: Allocator = allocate):
        self.examples, self.featurizer, self.seed, self.alloc = examples, featurizer, seed, alloc
        n, K, F = len(examples), MEMORY_CANDIDATES, len(mem_features.CANDIDATE_FEATURES)
        self.out = {
            "query_feats": alloc((n, len(mem_features.QUERY_FEATURES)), np.float32, 0),
            "cand_index": alloc((n, K), np.int32, -1),
            "cand_feats": alloc((n, K, F), np.float32, 0),
            "labels": alloc((n, K), np.float32, 0),
        }
        # The focus a conversation's carry holds at each turn: the facts its last answered turn was about.
        self.focus: list[tuple[str, ...]] = []
        last: dict[str, tuple[str, ...]] = {}
        for ex in examples:
            self.focus.append(last.get(ex.episode, ()))
            if ex.positives:
                last[ex.episode] = ex.positives

    def fill(self, start: int, stop: int) -> None:
        featurizer, out = self.featurizer, self.out
        for block in range(start, stop, MEMORY_BLOCK):
            rows = range(block, min(block + MEMORY_BLOCK, stop))
            views, cand_lists = [], []
            for n in rows:
                ex = self.examples[n]
                view = featurizer.view(ex.query)
                cands = memory_candidates(featurizer, view, ex, self.focus[n], self.seed)
                k = len(cands)
                out["cand_index"][n, :k] = cands
                positives = {featurizer.position[f] for f in ex.positives if f in featurizer.position}
                out["labels"][n, :k] = [float(c in positives) for c in cands]
                out["query_feats"][n] = view.query_feats
                views.append(view)
                cand_lists.append(cands)
            feats = featurizer.features_batch(views, cand_lists, [self.examples[n].episode for n in rows],
                                              [self.focus[n] for n in rows])
            for n, f in zip(rows, feats):
                out["cand_feats"][n, : len(f)] = f

    def arrays(self, encoder: Encoder) -> dict[str, np.ndarray]:
        examples = self.examples
        return {
            "query_ids": encoder.queries([memory_query_text(e.query) for e in examples]),
            "query_feats": self.out["query_feats"], "cand_index": self.out["cand_index"],
            "cand_feats": self.out["cand_feats"], "labels": self.out["labels"],
            "is_followup": np.array([e.is_followup for e in examples], dtype=np.int32),
            "carry_columns": np.array([mem_features.CANDIDATE_FEATURES.index(c)
                                       for c in mem_features.CARRY_FEATURES], dtype=np.int32),
            **_episode_columns(examples),
        }


def tensorize_memory(examples: Sequence[MemoryExample], featurizer: MemoryFeaturizer, encoder: Encoder,
                     seed: int = 0) -> dict[str, np.ndarray]:
    return MemorySplit(examples, featurizer, seed).run(encoder)


# --- tool --------------------------------------------------------------------------------------------
def tool_catalogue_ids(featurizer: ToolFeaturizer, encoder: Encoder) -> np.ndarray:
    return encoder.candidates([tool_text(n, featurizer.describe(n)) for n in featurizer.names])


class ToolSplit(_Split):
    def __init__(self, examples: Sequence[ToolExample], featurizer: ToolFeaturizer, reserved: Sequence[str] = (),
                 seed: int = 0, alloc: Allocator = allocate):
        self.examples, self.featurizer, self.reserved, self.seed = examples, featurizer, reserved, seed
        self.alloc = alloc
        n = len(examples)
        self.width = min(MAX_TOOL_CANDIDATES, max((len(e.available) for e in examples), default=1))
        self.out = {
            "query_feats": alloc((n, len(tool_features.QUERY_FEATURES)), np.float32, 0),
            "cand_index": alloc((n, self.width), np.int32, -1),
            "cand_feats": alloc((n, self.width, len(tool_features.CANDIDATE_FEATURES)), np.float32, 0),
            "target": alloc((n,), np.int64, -1),
        }

    def fill(self, start: int, stop: int) -> None:
        featurizer, out, K = self.featurizer, self.out, self.width
        for n in range(start, stop):
            ex = self.examples[n]
            available = list(ex.available)
            if len(available) > K:
                others = [t for t in available if t != ex.tool]
                available = [ex.tool] + _rng(self.seed, ex.id).sample(others, K - 1)
            view = featurizer.view(ex.task, ex.context, exclude_episode=ex.episode)
            out["cand_index"][n, : len(available)] = [featurizer.tool_pos[t] for t in available]
            out["target"][n] = available.index(ex.tool)
            out["cand_feats"][n, : len(available)] = featurizer.features(view, available, ex.previous_tool,
                                                                         ex.previous_error)
            out["query_feats"][n] = featurizer.query_features(view, available, ex.previous_error)

    def arrays(self, encoder: Encoder) -> dict[str, np.ndarray]:
        examples, reserved = self.examples, set(self.reserved)
        return {
            "query_ids": encoder.queries([tool_query_text(e.task, e.context, e.previous_error) for e in examples]),
            "query_feats": self.out["query_feats"], "cand_index": self.out["cand_index"],
            "cand_feats": self.out["cand_feats"], "target": self.out["target"],
            "failed": np.array([e.status == "error" for e in examples], dtype=np.int32),
            "is_correction": np.array([e.is_correction for e in examples], dtype=np.int32),
            "reserved": np.array([e.tool in reserved for e in examples], dtype=np.int32),
            "history_columns": np.array([tool_features.CANDIDATE_FEATURES.index(c)
                                         for c in tool_features.HISTORY_FEATURES], dtype=np.int32),
            **_episode_columns(examples),
        }


def tensorize_tool(examples: Sequence[ToolExample], featurizer: ToolFeaturizer, encoder: Encoder,
                   reserved: Sequence[str] = (), seed: int = 0) -> dict[str, np.ndarray]:
    return ToolSplit(examples, featurizer, reserved, seed).run(encoder)


# --- reasoning ---------------------------------------------------------------------------------------
class StepBank:
    """Distinct candidate step texts, so a step shared by many examples is tokenized once."""

    def __init__(self):
        self.texts: list[str] = [DONE_TEXT]
        self.position: dict[str, int] = {DONE_TEXT: 0}

    def index(self, step: str) -> int:
        return self.add_text(DONE_TEXT if step == DONE else step_text(step))

    def add_text(self, text: str) -> int:
        """The id of a candidate text (``step_text`` of a step, or ``DONE_TEXT``), added when new."""
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
        # A candidate is in the plan when it matches a step; a weak match (under NEAR_DUPLICATE, e.g. "check
        # tyres" and "check what it's worth" share one word of two) only when no candidate matches that step
        # better, so loosely related steps are not taught as part of the plan.
        n = len(ex.steps)
        sims = np.array([[step_similarity(c, s) for s in ex.steps] for c in cands]).reshape(len(cands), n)
        if n and len(cands):
            best_for_step = sims.max(0)
            for k in range(len(cands)):
                j = int(np.argmax(sims[k]))
                strong = sims[k, j] >= NEAR_DUPLICATE
                if sims[k, j] >= STEP_MATCH_THRESHOLD and (strong or sims[k, j] >= best_for_step[j]):
                    labels[k], positions[k] = 1.0, j / max(n - 1, 1)
    elif ex.next_step is None:
        target = cands.index(DONE) if DONE in cands else -1
    else:
        sims = [step_similarity(c, ex.next_step) if c != DONE else 0.0 for c in cands]
        if sims and max(sims) >= STEP_MATCH_THRESHOLD:
            target = int(np.argmax(sims))
    return labels, positions, target


class ReasoningSplit(_Split):
    """Candidate indices point into one ``StepBank`` shared by the splits, numbered in row order: ``fill``
    numbers a range's steps locally and returns their texts, and ``absorb`` renumbers them into the bank."""

    def __init__(self, examples: Sequence[ReasoningExample], featurizer: ReasoningFeaturizer, bank: StepBank,
                 exclude_own_group: bool, alloc: Allocator = allocate):
        self.examples, self.featurizer, self.bank, self.alloc = examples, featurizer, bank, alloc
        self.exclude_own_group = exclude_own_group
        n, K = len(examples), reason_features.MAX_CANDIDATES + 1
        self.out = {
            "query_feats": alloc((n, len(reason_features.QUERY_FEATURES)), np.float32, 0),
            "cand_index": alloc((n, K), np.int32, -1),
            "cand_feats": alloc((n, K, len(reason_features.CANDIDATE_FEATURES)), np.float32, 0),
            "labels": alloc((n, K), np.float32, 0),
            "positions": alloc((n, K), np.float32, 0),
            "target": alloc((n,), np.int64, -1),
        }

    def fill(self, start: int, stop: int) -> list[str]:
        featurizer, out = self.featurizer, self.out
        local = StepBank()
        for n in range(start, stop):
            ex = self.examples[n]
            cands = featurizer.candidates(ex.goal, ex.completed,
                                          exclude_group=ex.group if self.exclude_own_group else None,
                                          with_done=ex.kind == "next")
            texts = [c.text for c in cands.items]
            k = len(texts)
            out["cand_index"][n, :k] = [local.index(t) for t in texts]
            lab, pos, out["target"][n] = reasoning_targets(texts, ex)
            out["labels"][n, :k], out["positions"][n, :k] = lab, pos
            out["cand_feats"][n, :k] = featurizer.features(ex.goal, cands, ex.completed)
            out["query_feats"][n] = cands.query_feats
        return local.texts

    def absorb(self, start: int, stop: int, texts: list[str]) -> None:
        # Local ids follow first use within the range, so renumbering ranges in row order gives the bank the
        # order one pass over all rows would.
        glob = np.array([self.bank.add_text(t) for t in texts], dtype=np.int32)
        rows = self.out["cand_index"][start:stop]
        known = rows >= 0
        rows[known] = glob[rows[known]]

    def arrays(self, encoder: Encoder) -> dict[str, np.ndarray]:
        examples = self.examples
        return {
            "query_ids": encoder.queries([reasoning_query_text(e.goal, e.completed, e.state, e.constraints)
                                          for e in examples]),
            "query_feats": self.out["query_feats"], "cand_index": self.out["cand_index"],
            "cand_feats": self.out["cand_feats"], "labels": self.out["labels"],
            "positions": self.out["positions"], "target": self.out["target"],
            "next_mode": np.array([e.kind == "next" for e in examples], dtype=np.int32),
            "complexity": np.array([COMPLEXITY.index(e.complexity) for e in examples], dtype=np.int32),
            **_episode_columns(examples),
        }


def tensorize_reasoning(examples: Sequence[ReasoningExample], featurizer: ReasoningFeaturizer, encoder: Encoder,
                        bank: StepBank, exclude_own_group: bool) -> dict[str, np.ndarray]:
    return ReasoningSplit(examples, featurizer, bank, exclude_own_group).run(encoder)
