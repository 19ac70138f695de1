"""Train / validation / test assignment by a stable hash of each example's group, duplicate removal across
splits, the reserved tools (hidden in the unseen-tool measurement), and the contamination check.

- A group (a conversation, a plan's normalised goal) lands wholly in one split, so no follow-up of a test
  conversation is trained on. Examples generated from the bank itself always train.
- Reserved tools are only named here (for the unseen-tool measurement); their calls split like any other.
- Duplicate keys: the normalised query, and its bag of content words (catches reordered or re-punctuated
  near-duplicates). A follow-up is keyed together with the previous user turn, since "tell me more" in
  two conversations asks two different things. A val/test example whose key is already in an earlier
  split stays in its episode (its carry is still built) but is not scored (``scored=False``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from dexter_brain.io import stable_fraction
from dexter_brain.schema import SPLITS, MemoryExample, Split, ToolEntry, ToolExample
from dexter_brain.lexical import content_words, normalize

ALWAYS_TRAIN_GROUPS = ("bank",)


class ContaminationError(RuntimeError):
    """A test or validation query also appears in the training split."""


def split_of(group: str, seed: int, fractions: Sequence[float]) -> Split:
    if group in ALWAYS_TRAIN_GROUPS:
        return "train"
    u = stable_fraction("split", seed, group)
    return "train" if u < fractions[0] else "val" if u < fractions[0] + fractions[1] else "test"


def _fill_empty_splits(split_of_group: dict[str, Split], seed: int, fractions: Sequence[float]) -> bool:
    """With few groups the hash can leave val or test without any: then move one train group there (the
    one the hash put nearest that split), so a small store still gets a held-out split. Needs 3 groups
    that may move; the train split keeps at least one. Returns whether anything moved."""
    moved = False
    for split, fraction in (("test", fractions[2]), ("val", fractions[1])):
        if fraction <= 0 or split in split_of_group.values():
            continue
        movable = sorted((g for g, s in split_of_group.items() if s == "train" and g not in ALWAYS_TRAIN_GROUPS),
                         key=lambda g: (stable_fraction("split", seed, g), g))
        if len(movable) < 3:
            continue
        split_of_group[movable[-1]] = split
        moved = True
    return moved


def reserved_tools(catalogue: list[ToolEntry], examples: list[ToolExample], fraction: float, seed: int
                   ) -> tuple[str, ...]:
    """About ``fraction`` of the tools that succeed somewhere, chosen by a stable hash of their names: the
    tools the unseen-tool measurement shows without history (they are trained on like every other)."""
    succeeding = sorted({e.tool for e in examples if e.status == "success"})
    count = math.floor(fraction * len(succeeding) + 0.5) if len(succeeding) >= 5 else 0
    ranked = sorted(succeeding, key=lambda name: stable_fraction("reserve", seed, name))
    return tuple(sorted(ranked[:count]))


def keys_of(example) -> tuple[str, str]:
    """(normalised text, bag of content words) of what an example asks."""
    if isinstance(example, MemoryExample):
        text = example.query
        if example.is_followup:
            prev_user = [c for c in example.context if c.startswith("user: ")]
            text = (prev_user[-1] if prev_user else "") + " || " + text
    elif isinstance(example, ToolExample):
        text = f"{example.task} || {example.previous_tool or ''} || {example.context}"
    else:
        text = example.goal if example.kind == "plan" else f"{example.goal} || {' | '.join(example.completed)}"
    return normalize(text), " ".join(sorted(set(content_words(text))))


def assign_splits(examples: list, seed: int, fractions: Sequence[float], *,
                  keys: Sequence[tuple[str, str]] | None = None) -> tuple[list, int]:
    """Examples with ``split`` set and duplicates across splits unscored; returns (examples, unscored).

    ``keys`` may hold ``keys_of`` of each example, in order, when the caller has them already.
    """
    if keys is None:
        keys = [keys_of(e) for e in examples]
    split_of_group: dict[str, Split] = {}
    splits = []
    for e in examples:
        split = split_of_group.get(e.group)
        if split is None:
            split = split_of(e.group, seed, fractions)
            split_of_group[e.group] = split
        splits.append(split)
    moved = _fill_empty_splits(split_of_group, seed, fractions)
    if moved:
        splits = [split_of_group[e.group] for e in examples]
    # One copy per example, in the input order.
    return unscore_seen([e.model_copy(update={"split": split}) for e, split in zip(examples, splits)], keys=keys)


def unscore_seen(examples: list, *, keys: Sequence[tuple[str, str]] | None = None) -> tuple[list, int]:
    """Examples (their splits set) with every val/test example whose key is already in an earlier split marked
    ``scored=False``; returns (examples, how many were marked). Examples already unscored stay so.

    ``keys`` may hold ``keys_of`` of each example, in order, when the caller has them already.
    """
    if keys is None:
        keys = [keys_of(e) for e in examples]
    seen: set[str] = set()
    scored = [True] * len(examples)
    unscored = 0
    for split in SPLITS:
        split_keys: set[str] = set()
        for n, e in enumerate(examples):
            if e.split != split:
                continue
            if split != "train" and e.scored and any(k in seen for k in keys[n] if k):
                scored[n] = False
                unscored += 1
            split_keys.update(k for k in keys[n] if k)
        seen |= split_keys
    return [e if is_scored else e.model_copy(update={"scored": False}) for e, is_scored in zip(examples, scored)], \
        unscored


def check_contamination(examples: list, corpus: str = "", *, keys: Sequence[tuple[str, str]] | None = None) -> None:
    """Raise ``ContaminationError`` when a scored val/test example's normalised text appears in train.

    ``keys`` may hold ``keys_of`` of each example, in order, when the caller has them already.
    """
    if keys is None:
        keys = [keys_of(e) for e in examples]
    train = {k for e, ks in zip(examples, keys) if e.split == "train" for k in ks if k}
    leaks = [(e.split, e.id, ks[0]) for e, ks in zip(examples, keys)
             if e.split != "train" and e.scored and any(k in train for k in ks if k)]
    if leaks:
        split, eid, text = leaks[0]
        raise ContaminationError(
            f"{corpus or 'corpus'}: {len(leaks)} {split} example(s) also appear in train, "
            f"e.g. {eid}: {text[:80]!r}"
        )


def split_counts(examples: list) -> dict[str, int]:
    return {s: sum(1 for e in examples if e.split == s) for s in SPLITS}

